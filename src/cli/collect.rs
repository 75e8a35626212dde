//! `tgpulse collect`: the sources, the shared source setup of `collect` and `serve`, and the
//! summary printed at exit.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use tokio_util::sync::CancellationToken;

use super::{Cli, open};
use crate::catalog::Shard;
use crate::collect::{self, Collector, SourceConfig, SourcesConfig};

/// Where the sources file is.
#[derive(Debug, Clone, clap::Args)]
pub(super) struct SourcesArgs {
    /// Sources file (TOML, one table per source; see README "Live collection").
    #[arg(
        long = "sources",
        env = "TGPULSE_SOURCES",
        default_value = "tgpulse.toml"
    )]
    pub(super) sources: PathBuf,
}

#[derive(Debug, clap::Args)]
pub(super) struct CollectArgs {
    #[command(flatten)]
    pub(super) sources: SourcesArgs,
    /// Collect every watched channel once, then exit.
    #[arg(long)]
    pub(super) once: bool,
    /// Run only these sources (repeatable). Default: every source in the sources file.
    #[arg(long = "source")]
    only: Vec<String>,
    /// Collect the watched channels whose id modulo N is i (for N instances).
    #[arg(long, default_value = "0/1")]
    pub(super) shard: Shard,
    /// Replay: the file to stream (implies --source replay when no source is named).
    #[arg(long)]
    file: Option<PathBuf>,
    /// Replay speed: 1x, 3600x, ... or max.
    #[arg(long)]
    speed: Option<String>,
}

/// Cancelled on SIGTERM or Ctrl-C.
pub(super) fn shutdown_signal() -> Result<CancellationToken> {
    let token = CancellationToken::new();
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("cannot listen for SIGTERM")?;
    let t = token.clone();
    tokio::spawn(async move {
        tokio::select! {
            _ = term.recv() => {}
            _ = tokio::signal::ctrl_c() => {}
        }
        tracing::info!("shutdown requested: finishing jobs in flight and flushing the last batch");
        t.cancel();
    });
    Ok(token)
}

pub(super) async fn build_sources(
    a: &CollectArgs,
    cfg: &SourcesConfig,
) -> Result<Vec<Arc<dyn Collector>>> {
    let mut wanted: Vec<(String, SourceConfig)> = if a.only.is_empty() {
        cfg.enabled()
            .map(|(n, c)| (n.to_owned(), c.clone()))
            .collect()
    } else {
        a.only
            .iter()
            .map(|n| (n.clone(), cfg.sources.get(n).cloned().unwrap_or_default()))
            .collect()
    };
    if a.file.is_some() && !wanted.iter().any(|(n, _)| n == "replay") {
        if a.only.is_empty() {
            wanted.clear();
        }
        wanted.push((
            "replay".into(),
            cfg.sources.get("replay").cloned().unwrap_or_default(),
        ));
    }
    if wanted.is_empty() {
        bail!(
            "no sources configured: add a table per source to the sources file (see README, \
             \"Live collection\"), or replay a file with --file PATH"
        );
    }
    let mut out = Vec::with_capacity(wanted.len());
    for (name, mut c) in wanted {
        if name == "replay" {
            c.file = a.file.clone().or(c.file);
            c.speed = a.speed.clone().or(c.speed);
        }
        out.push(
            collect::build(&name, &c)
                .await
                .with_context(|| format!("cannot start source {name}"))?,
        );
    }
    Ok(out)
}

/// `tgpulse collect`: the sources into one writer until each returns (`--once`) or SIGTERM.
pub(super) async fn collect_cmd(cli: &Cli, a: &CollectArgs) -> Result<()> {
    let db = open(cli).await?;
    let cfg = SourcesConfig::load(&a.sources.sources)?;
    let sources = build_sources(a, &cfg).await?;
    let shutdown = shutdown_signal()?;
    let summary = collect::collect(&db, sources, &cli.ingest, a.shard, a.once, shutdown)
        .await
        .context("the ingest writer failed")?;
    for (name, r) in &summary.sources {
        match r {
            Ok(r) => print_source(name, r),
            Err(e) => println!("{name}: stopped: {}", crate::error_chain(e)),
        }
    }
    print_ingest(&summary.ingest);
    if summary.sources.iter().any(|(_, r)| r.is_err()) {
        bail!("a source stopped with an error");
    }
    Ok(())
}

/// One source's line of the summary printed at exit.
pub(super) fn print_source(name: &str, r: &collect::RunReport) {
    println!(
        "{name}: {} jobs ok, {} failed, {} samples accepted",
        r.jobs_ok, r.jobs_failed, r.samples_sent
    );
}

/// The writer's line of the summary printed at exit.
pub(super) fn print_ingest(i: &crate::ingest::IngestReport) {
    println!(
        "stored {} new samples ({} member, {} post), {} already stored, {} batches",
        i.inserted(),
        i.member_samples_inserted,
        i.post_samples_inserted,
        i.duplicates(),
        i.batches
    );
    if i.mentions_received > 0 {
        println!(
            "recorded {} new forwards/mentions/links of {} read",
            i.mentions_inserted, i.mentions_received
        );
    }
}
