//! Integration tests: a real PostgreSQL (a fresh database per test), the real datasets in
//! ../shared/data, real files read back by another reader.

mod common;

mod alerts;
mod bot;
mod bot_guard;
mod catalog;
mod cli;
mod collect;
mod collect_robust;
mod daily;
mod dashboards;
mod export;
mod fake_telegram;
mod import_bad_input;
mod import_hostile;
mod import_real;
mod ingest;
mod lake;
mod lang;
mod locales;
mod post_curve;
mod posts;
mod posts_real;
mod properties;
mod query;
mod reports;
mod secrets;
mod serve;
mod timescale;
