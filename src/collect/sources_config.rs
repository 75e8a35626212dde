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

    /// Checks every value of the source's table `name`, so that a bad value is refused at load
    /// time, naming its key, instead of failing (or panicking) when the source runs.
    ///
    /// errors (as text): the first bad key, e.g. `botapi.limits.requests_per_second = 0 is out
    /// of range: ...`.
    pub fn check(&self, name: &str) -> Result<(), String> {
        self.limits.check(&format!("{name}.limits"))?;
        self.schedule.check(&format!("{name}.schedule"))?;
        if let Some(speed) = &self.speed {
            speed
                .parse::<Speed>()
                .map_err(|e| format!("{name}.speed: {e}"))?;
        }
        Ok(())
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
        let mut sources: BTreeMap<String, SourceConfig> = toml::from_str(text).map_err(|e| {
            Error::Config(format!("{}: {}", origin.display(), toml_error(&e, text)))
        })?;
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
            cfg.check(name)
                .map_err(|e| Error::Config(format!("{}: {e}", origin.display())))?;
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

/// Keys whose values are secrets: an error on their line never quotes the value.
const SECRET_KEYS: [&str; 2] = ["token", "api_hash"];

/// A TOML error as `line L, column C: message`, without the quoted source line that the `toml`
/// crate's `Display` adds (it may be a `token =` line). An error on a secret key's line says
/// only which key is wrong.
fn toml_error(e: &toml::de::Error, text: &str) -> String {
    let Some(span) = e.span() else {
        return e.message().to_owned();
    };
    let start = span.start.min(text.len());
    let before = &text[..start];
    let line_no = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before[line_start..].chars().count() + 1;
    let line = text[line_start..].lines().next().unwrap_or("");
    let key = line
        .split('=')
        .next()
        .unwrap_or("")
        .trim()
        .trim_matches('"')
        .rsplit('.')
        .next()
        .unwrap_or("");
    if SECRET_KEYS.contains(&key) {
        return format!(
            "line {line_no}, column {column}: invalid value for `{key}` (not shown: it is a \
             secret); expected a quoted string"
        );
    }
    format!(
        "line {line_no}, column {column}: {}",
        redact_quoted(e.message().trim_end())
    )
}

/// The message with every double-quoted value shown as `"…"`: a token pasted into the wrong key
/// (or a misspelt `token` key) would otherwise be quoted as "invalid value: string \"…\"".
/// Keys and expected types, which serde quotes with backticks, stay.
fn redact_quoted(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let mut quoted = false;
    for c in message.chars() {
        if c == '"' {
            if !quoted {
                out.push_str("\"…\"");
            }
            quoted = !quoted;
        } else if !quoted {
            out.push(c);
        }
    }
    out
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
    fn toml_errors_name_the_line_but_never_quote_a_secret() {
        const CANARY: &str = "CANARY-5ecret-9f1e";
        for text in [
            format!("[botapi]\ntoken = \"{CANARY}\nx = 1\n"),
            format!("[tgstat]\ntoken = {CANARY}\n"),
            format!("[mtproto]\napi_id = 1\napi_hash = [\"{CANARY}\"]\n"),
            format!("[botapi]\ntoken = \"{CANARY}\"\n[botapi.limits]\nburst = \"x\"\n"),
        ] {
            let e = SourcesConfig::parse(&text, Path::new("s.toml"), |_| None).unwrap_err();
            let shown = e.to_string();
            assert!(!shown.contains(CANARY), "{shown}");
            assert!(shown.contains("s.toml: line "), "{shown}");
        }
    }

    #[test]
    fn bad_settings_are_refused_at_load_naming_the_key() {
        for (text, key) in [
            (
                "[botapi.limits]\nrequests_per_second = 1e-300\n",
                "botapi.limits.requests_per_second",
            ),
            (
                "[tgstat.schedule]\njitter = nan\n",
                "tgstat.schedule.jitter",
            ),
            (
                "[tgstat.schedule]\nmembers_every = \"0s\"\n",
                "tgstat.schedule.members_every",
            ),
            (
                "[replay]\nfile = \"x\"\nspeed = \"1e-300x\"\n",
                "replay.speed",
            ),
            (
                "[telemetr.limits]\ntimeout = \"100000y\"\n",
                "telemetr.limits.timeout",
            ),
        ] {
            let e = SourcesConfig::parse(text, Path::new("s.toml"), |_| None).unwrap_err();
            assert!(e.to_string().contains(key), "{key}: {e}");
        }
    }

    #[test]
    fn unknown_sources_and_fields_are_refused() {
        let e = SourcesConfig::parse("[tgstatt]\n", Path::new("x"), |_| None).unwrap_err();
        assert!(e.to_string().contains("unknown source \"tgstatt\""), "{e}");
        let e = SourcesConfig::parse("[tgstat]\ntokn = 1\n", Path::new("x"), |_| None).unwrap_err();
        assert!(e.to_string().contains("tokn"), "{e}");
    }
}
