//! `tgpulse demo`: the whole slice on the real 30-channel file.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

use super::{Cli, DemoArgs, open};
use crate::domain::ChannelRef;
use crate::export::{self, Destination, ExportFormat, ExportRequest};
use crate::import::{self, ImportOptions};
use crate::query::{self, Engine};
use crate::render::{self, OutputFormat};

/// The quick demo input, relative to the data folder.
pub(super) const DEMO_FILE: &str = "telegram-animals/subscriber_observations_top30.csv";

/// Path of the demo file, or an actionable error when the data folder is missing.
pub(crate) fn demo_file(data_dir: &Path) -> Result<PathBuf> {
    let file = data_dir.join(DEMO_FILE);
    if !file.is_file() {
        bail!(
            "the real data set is not at {}\n\
             hint: tgpulse reads the public datasets from ../shared/data beside the project \
             (see README, section \"Real data\": how to get telegram-animals and telegram-posts); \
             put them there, or pass --data DIR / TGPULSE_DATA_DIR=DIR",
            file.display()
        );
    }
    Ok(file)
}

pub(super) async fn run(cli: &Cli, a: &DemoArgs) -> Result<()> {
    let file = demo_file(&cli.data.dir)?;
    let db = open(cli).await?;
    println!(
        "== database: storage {}, time zone {}",
        db.storage, db.timezone
    );

    let opts = ImportOptions {
        progress: std::io::IsTerminal::is_terminal(&std::io::stderr()),
        ..ImportOptions::default()
    };
    let summary = import::import(&db, &file, &opts, &cli.ingest)
        .await
        .context("demo import failed")?;
    println!("== import\n{summary}\n");

    let engine = Engine::new(db.clone());
    let top = query::largest_channels(&engine, 5).await?;
    let Some((largest, _)) = top.first().copied() else {
        bail!("no channel has member samples after the import");
    };
    let largest = query::resolve(&db, &ChannelRef::Id(largest)).await?;
    let stats = query::stats(&engine, &largest, a.days, None).await?;
    println!(
        "== stats of the largest channel\n{}",
        render::stats(&stats, OutputFormat::Table)?
    );

    let mut five = Vec::new();
    for (id, _) in &top {
        five.push(query::resolve(&db, &ChannelRef::Id(*id)).await?);
    }
    let cmp = query::compare(&engine, &five, a.days, None).await?;
    println!(
        "== comparison of the 5 largest\n{}",
        render::comparison(&cmp, OutputFormat::Table)?
    );

    std::fs::create_dir_all(&a.out_dir)
        .with_context(|| format!("cannot create {}", a.out_dir.display()))?;
    let chart = a.out_dir.join(format!("members_{}.png", largest.id));
    std::fs::write(
        &chart,
        crate::chart::members_png(&stats, crate::i18n::Lang::En)?,
    )
    .with_context(|| format!("cannot write {}", chart.display()))?;
    let compare_chart = a.out_dir.join("compare_top5.png");
    std::fs::write(
        &compare_chart,
        crate::chart::compare_png(&cmp, crate::i18n::Lang::En)?,
    )
    .with_context(|| format!("cannot write {}", compare_chart.display()))?;
    let parquet = a.out_dir.join("members_daily.parquet");
    let req = ExportRequest {
        relation: query::relation("members_daily").expect("known relation"),
        channel: None,
        from: None,
        to: None,
        format: ExportFormat::Parquet,
    };
    let exported = export::export(&engine, &req, &Destination::Replace(parquet.clone())).await?;
    println!("== outputs");
    println!("  chart    {}", chart.display());
    println!("  compare  {}", compare_chart.display());
    println!(
        "  parquet  {} ({} rows of members_daily)",
        parquet.display(),
        exported.rows
    );
    Ok(())
}
