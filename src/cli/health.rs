//! `tgpulse health`: storage, sources and recent samples.

use anyhow::Result;

use super::{Cli, open};
use crate::catalog;
use crate::render::age;

/// `tgpulse health`: storage mode, each source's last success and lag, recent sample counts.
pub(super) async fn health_cmd(cli: &Cli) -> Result<()> {
    let db = open(cli).await?;
    let now = chrono::Utc::now();
    let h = catalog::health(&db, now).await?;
    println!(
        "storage: {} | watched channels: {} | samples in the last hour: {}, last day: {}",
        match h.storage {
            crate::db::Storage::Timescale => "TimescaleDB",
            crate::db::Storage::Plain => "plain PostgreSQL",
        },
        h.watched,
        h.samples_last_hour,
        h.samples_last_day
    );
    if h.sources.is_empty() {
        println!("no source has run yet");
    }
    for s in &h.sources {
        println!(
            "{:<10} last success {:<12} jobs ok {:>8} failed {:>6}{}",
            s.source,
            s.last_success
                .map_or_else(|| "never".to_owned(), |t| age(now - t)),
            s.jobs_ok,
            s.jobs_failed,
            s.last_error
                .as_ref()
                .map(|(t, e)| format!(" | last error {}: {e}", age(now - *t)))
                .unwrap_or_default()
        );
    }
    Ok(())
}
