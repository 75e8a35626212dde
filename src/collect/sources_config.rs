//! The sources file (TOML): one table per source, each with its credentials, call limits and
//! schedule. A source runs when its table is present (and not `enabled = false`).
//!
//! ```toml
//! [botapi]
//! token = "123456:ABC..."          # or TGPULSE_BOTAPI_TOKEN
//! [botapi.limits]
//! requests_per_second = 20
//!
//! [tgstat]
//! quota_reserve = 100
//! [tgstat.schedule]
//! members_every = "1h"
//! posts_fresh_every = "15m"
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use super::{Error, LimitsConfig, Schedule, Speed};
use crate::config::Secret;

/// Settings of one source.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SourceConfig {
    /// Run this source (default true when its table is present).
    pub enabled: bool,
    /// API base URL; default: the vendor's public endpoint. Tests point it at a local server.
    pub api_url: Option<String>,
    /// API token (Bot API token, TGStat token, Telemetr bearer token). Falls back to the
    /// environment variable `TGPULSE_<SOURCE>_TOKEN`.
    pub token: Option<Secret>,
    /// Token bucket, timeout, retries, circuit breaker.
    pub limits: LimitsConfig,
    /// When each job runs.
    pub schedule: Schedule,
    /// TGStat: stop when this many requests are left on the plan (0 = no quota check).
    pub quota_reserve: i64,
    /// TGStat: read fresh posts' counters one by one with `posts/stat` (one request per post).
    pub post_details: bool,
    /// MTProto: application id from my.telegram.org.
    pub api_id: Option<i32>,
    /// MTProto: application hash (or `TGPULSE_MTPROTO_API_HASH`).
    pub api_hash: Option<Secret>,
    /// MTProto: session file written by `tgpulse login` (mode 0600).
    pub session: Option<PathBuf>,
    /// Replay: the file to replay.
    pub file: Option<PathBuf>,
    /// Replay: `1x`, `3600x`, `max`.
    pub speed: Option<String>,
}

impl Default for SourceConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            api_url: None,
            token: None,
            limits: LimitsConfig::default(),
            schedule: Schedule::default(),
            quota_reserve: 100,
            post_details: false,
            api_id: None,
            api_hash: None,
            session: None,
            file: None,
            speed: None,
        }
    }
}

impl SourceConfig {
    /// The replay speed, default `max`.
    ///
    /// errors: `Error::Config` for an invalid speed.
    pub fn replay_speed(&self) -> Result<Speed, Error> {
        self.speed
            .as_deref()
            .map_or(Ok(Speed::Max), str::parse)
            .map_err(Error::Config)
    }

    /// `post_details` as the age below which a post's counters are read one by one.
    pub(super) fn details_for(&self) -> Option<Duration> {
        self.post_details.then_some(self.schedule.fresh_for)
    }
}

/// All configured sources, by registered name.
#[derive(Debug, Clone, Default)]
pub struct SourcesConfig {
    /// Source name → settings.
    pub sources: BTreeMap<String, SourceConfig>,
}

impl SourcesConfig {
    /// Parses a sources file. Tokens missing from the file are taken from
    /// `TGPULSE_<SOURCE>_TOKEN` through `env`.
    ///
    /// errors: `Error::Config` naming the file and the TOML error, or an unknown source name.
    pub fn parse(
        text: &str,
        origin: &Path,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, Error> {
        let mut sources: BTreeMap<String, SourceConfig> = toml::from_str(text)
            .map_err(|e| Error::Config(format!("{}: {e}", origin.display())))?;
        for (name, cfg) in &mut sources {
            if !super::SOURCE_NAMES.contains(&name.as_str()) {
                return Err(Error::UnknownSource(name.clone()));
            }
            if cfg.token.is_none() {
                cfg.token =
                    env(&format!("TGPULSE_{}_TOKEN", name.to_ascii_uppercase())).map(Secret::new);
            }
            if name == "mtproto" && cfg.api_hash.is_none() {
                cfg.api_hash = env("TGPULSE_MTPROTO_API_HASH").map(Secret::new);
            }
        }
        Ok(Self { sources })
    }

    /// Reads and parses a sources file; a missing file gives an empty configuration.
    ///
    /// errors: `Error::Config` if the file exists but cannot be read or parsed.
    pub fn load(path: &Path) -> Result<Self, Error> {
        match std::fs::read_to_string(path) {
            Ok(text) => Self::parse(&text, path, |k| std::env::var(k).ok()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Self::default()),
            Err(e) => Err(Error::Config(format!("{}: {e}", path.display()))),
        }
    }

    /// The enabled sources, by name.
    pub fn enabled(&self) -> impl Iterator<Item = (&str, &SourceConfig)> {
        self.sources
            .iter()
            .filter(|(_, c)| c.enabled)
            .map(|(n, c)| (n.as_str(), c))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_tables_durations_and_env_tokens() {
        let text = r#"
            [botapi]
            api_url = "http://127.0.0.1:9"
            [botapi.limits]
            requests_per_second = 30
            timeout = "2s"
            [tgstat]
            token = "t"
            [tgstat.schedule]
            posts_fresh_every = "15m"
            jitter = 0.2
        "#;
        let env = |k: &str| (k == "TGPULSE_BOTAPI_TOKEN").then(|| "123:abc".to_owned());
        let c = SourcesConfig::parse(text, Path::new("x.toml"), env).unwrap();
        let bot = &c.sources["botapi"];
        assert_eq!(bot.token.as_ref().unwrap().expose(), "123:abc");
        assert_eq!(bot.limits.timeout, Duration::from_secs(2));
        assert_eq!(bot.limits.requests_per_second, 30.0);
        let tg = &c.sources["tgstat"];
        assert_eq!(tg.schedule.posts_fresh_every, Duration::from_secs(900));
        assert_eq!(tg.schedule.members_every, Duration::from_secs(3600));
        assert_eq!(format!("{:?}", tg.token), "Some([redacted])");
    }

    #[test]
    fn unknown_sources_and_fields_are_refused() {
        let e = SourcesConfig::parse("[tgstatt]\n", Path::new("x"), |_| None).unwrap_err();
        assert!(e.to_string().contains("unknown source \"tgstatt\""), "{e}");
        let e = SourcesConfig::parse("[tgstat]\ntokn = 1\n", Path::new("x"), |_| None).unwrap_err();
        assert!(e.to_string().contains("tokn"), "{e}");
    }
}
