//! `tgpulse export`: one relation to a file, stdout or an S3 object, or to a partitioned or
//! incremental dataset in a folder or S3 prefix.

use std::path::PathBuf;

use anyhow::{Result, bail};
use chrono::NaiveDate;

use super::{Cli, open};
use crate::domain::{ChannelId, ChannelRef, DayWindow};
use crate::export::{self, DatasetRequest, Destination, ExportFormat, ExportRequest, PartitionBy};
use crate::lake::{Location, S3Options};
use crate::query::{self, Engine};

#[derive(Debug, clap::Args)]
pub(super) struct ExportArgs {
    /// Relation: members_daily, views_daily, post_reach, member_samples or post_samples.
    #[arg(long)]
    relation: String,
    /// Only this channel (@handle or id).
    #[arg(long)]
    channel: Option<ChannelRef>,
    /// First local day (YYYY-MM-DD), inclusive, on the relation's time column.
    #[arg(long)]
    from: Option<NaiveDate>,
    /// Last local day (YYYY-MM-DD), inclusive.
    #[arg(long)]
    to: Option<NaiveDate>,
    /// parquet, csv or jsonl (JSON Lines).
    #[arg(long, value_enum)]
    format: ExportFormat,
    /// Output: a file, - for stdout, file:///path, or s3://bucket/key. With --partition-by
    /// or --since-last, a folder or s3://bucket/prefix. An existing file or object is refused
    /// unless --force is given.
    #[arg(long)]
    out: String,
    /// Replace an existing --out file or object. A symlink at --out is replaced itself,
    /// never written through.
    #[arg(long)]
    force: bool,
    /// Write a Hive-style dataset with one folder per local month, local day or channel
    /// (month=2021-07/part-0.parquet) into an empty folder or prefix.
    #[arg(long, value_enum)]
    partition_by: Option<PartitionBy>,
    /// Export only the rows stored since the last completed export of this name (its
    /// watermark is kept in PostgreSQL), as new files NAME-<run>-<n>.<format> under --out.
    /// For member_samples and post_samples.
    #[arg(long, value_name = "NAME")]
    since_last: Option<String>,
    /// Endpoint of an S3-compatible server (MinIO, Ceph, R2, ...); default AWS_ENDPOINT_URL,
    /// else AWS itself.
    #[arg(long, value_name = "URL")]
    s3_endpoint: Option<String>,
    /// Retries of a failed S3 request before the export gives up (and aborts its upload).
    #[arg(long, value_name = "N", default_value_t = 10)]
    s3_max_retries: usize,
}

/// `tgpulse export`.
pub(super) async fn export_cmd(cli: &Cli, a: &ExportArgs) -> Result<()> {
    let db = open(cli).await?;
    let Some(relation) = query::relation(&a.relation) else {
        bail!(
            "unknown relation `{}`; expected one of: {}",
            a.relation,
            query::RELATIONS
                .iter()
                .chain(query::VIEWS.iter().map(|v| &v.def))
                .map(|r| r.name)
                .collect::<Vec<_>>()
                .join(", ")
        );
    };
    let channel: Option<ChannelId> = match &a.channel {
        Some(r) => Some(query::resolve(&db, r).await?.id),
        None => None,
    };
    let tz = db.timezone;
    let req = ExportRequest {
        relation,
        channel,
        from: a.from.map(|d| DayWindow::midnight(tz, d)),
        to: a
            .to
            .and_then(|d| d.succ_opt())
            .map(|d| DayWindow::midnight(tz, d)),
        format: a.format,
    };
    let s3 = S3Options {
        endpoint: a.s3_endpoint.clone(),
        max_retries: Some(a.s3_max_retries),
    };
    let engine = Engine::new(db);
    // Ctrl-C stops the export cleanly: nothing is put in place, uploads are aborted.
    let mut stop = Box::pin(async {
        let _ = tokio::signal::ctrl_c().await;
    });
    if a.partition_by.is_some() && query::is_view(relation.name) {
        bail!(
            "--partition-by applies to stored relations; {} is computed from post_samples (export it whole, or partition post_samples)",
            relation.name
        );
    }
    if a.partition_by.is_some() || a.since_last.is_some() {
        if a.out == "-" {
            bail!(
                "--partition-by and --since-last write files: give --out a folder or s3:// prefix"
            );
        }
        if a.force {
            bail!(
                "--force does not apply to a dataset: a partitioned export starts in an empty folder, an incremental one adds new files"
            );
        }
        let ds = DatasetRequest {
            root: Location::parse(&a.out, &s3)?,
            partition_by: a.partition_by,
            since_last: a.since_last.clone(),
        };
        let s = export::export_dataset(&engine, &req, &ds, &|_| {}, &mut stop).await?;
        match (&a.since_last, s.files.len()) {
            (Some(name), 0) => eprintln!(
                "nothing new in {} since the last export {name}; watermark now {}",
                relation.name,
                s.stored.map_or_else(String::new, |(_, to)| to.to_rfc3339())
            ),
            _ => {
                eprintln!(
                    "exported {} rows of {} in {} files under {}{}",
                    s.rows,
                    relation.name,
                    s.files.len(),
                    a.out,
                    s.run.map(|r| format!(" (run {r})")).unwrap_or_default()
                );
                for f in &s.files {
                    println!("{f}");
                }
            }
        }
        return Ok(());
    }
    let dest = Destination::from_out(&a.out, a.force, &s3)?;
    let s = export::export_until(&engine, &req, &dest, &|_| {}, &mut stop).await?;
    if let Some(shown) = s
        .path
        .as_ref()
        .map(|p: &PathBuf| p.display().to_string())
        .or(s.url)
    {
        eprintln!("exported {} rows of {} to {shown}", s.rows, relation.name);
    }
    Ok(())
}
