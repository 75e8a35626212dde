//! tgpulse: a time-series-first analytics engine for Telegram channels.
//!
//! Data flows one way: sources → [`ingest`] (bounded channel, binary COPY, idempotent
//! merge) → [`db`] (TimescaleDB hypertables and continuous aggregates, or plain PostgreSQL
//! with the same relation names) → [`query`] (DataFusion over PostgreSQL) → consumers
//! ([`cli`], [`export`], [`chart`]).

pub mod chart;
pub mod cli;
pub mod config;
pub mod db;
pub mod domain;
pub mod export;
pub mod import;
pub mod ingest;
pub mod query;
