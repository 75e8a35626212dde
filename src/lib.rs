//! tgpulse: a time-series-first analytics engine for Telegram channels.
//!
//! Data flows one way: sources → [`ingest`] (bounded channel, binary COPY, idempotent
//! merge) → [`db`] (TimescaleDB hypertables and continuous aggregates, or plain PostgreSQL
//! with the same relation names) → [`query`] (DataFusion over PostgreSQL) → consumers
//! ([`cli`], [`export`], [`chart`]).

pub mod alert;
pub mod app;
pub mod bot;
pub mod catalog;
pub mod chart;
#[doc(hidden)]
pub mod checks;
pub mod cli;
pub mod clock;
pub mod collect;
pub mod config;
pub mod db;
pub mod domain;
pub mod export;
pub mod i18n;
pub mod import;
pub mod ingest;
pub mod lake;
pub mod query;
pub mod render;
pub mod report;
pub mod state;
pub mod telemetry;

/// An error and its causes on one line, `outer: inner: root`, for logs.
pub fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut src = e.source();
    while let Some(s) = src {
        out.push_str(": ");
        out.push_str(&s.to_string());
        src = s.source();
    }
    out
}

#[cfg(test)]
pub(crate) mod test_support {
    /// Sorted names of the `.sql` files in a folder of the repository.
    pub(crate) fn sql_files(folder: &str) -> Vec<String> {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(folder);
        let mut files: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".sql"))
            .collect();
        files.sort();
        files
    }
}
