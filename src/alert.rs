//! Anomaly alerts: tgpulse watches the channels and tells the admins.
//!
//! - [`rules`] measures every rule over all watched channels, one DataFusion plan per rule
//!   (`queries/alert_*.sql`), for one evaluation instant (the service) or for every day of a
//!   range (the backtest).
//! - [`judge`] applies the thresholds (configured defaults, per-channel overrides from
//!   `alert_rules`) and turns a measurement into an [`Observation`]: fired or clear.
//! - [`lifecycle`] is the life of an alert, shared by the service and the backtest: an alert
//!   opens once for a (subject, rule), stays open while the condition holds, and resolves
//!   after the condition has been clear for [`RESOLVE_AFTER`] evaluations.
//! - [`store`] keeps that life in PostgreSQL (`alert_events`, with a unique key on the open
//!   alert, so a restart or a second process never opens one event twice) and queues one
//!   delivery per recipient in the same transaction; the bot sends them.
//! - [`backtest`] replays the rules day by day over the stored history.
//! - [`task`] is the supervised task of `serve` that evaluates every `--alert-every`.
//!
//! The formulas, windows and units are in the README's "Metrics" section.

pub mod backtest;
pub mod lifecycle;
pub mod rules;
pub mod store;
pub mod task;
pub mod wording;

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use chrono::NaiveDate;
use serde::Serialize;

use crate::domain::ChannelId;
pub use lifecycle::RESOLVE_AFTER;
pub use rules::Metric;

/// An alert rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Rule {
    /// Members of the latest local day differ from the previous day's by at least X %.
    MembersChange,
    /// The average 24 h reach of the last week is at least X % below the median of the 4
    /// weeks before.
    ViewsDrop,
    /// No post for longer than max(24 h, k × the channel's median gap between posts).
    NoPosts,
    /// The daily member delta's robust z-score is at least Z, with |delta| ≥ a minimum.
    UnusualChange,
    /// A source has not succeeded for 3 of its members intervals, or the writer keeps failing.
    SourceStale,
}

impl Rule {
    /// The rules measured per channel (all but `source_stale`).
    pub const CHANNEL_RULES: [Rule; 4] = [
        Rule::MembersChange,
        Rule::ViewsDrop,
        Rule::NoPosts,
        Rule::UnusualChange,
    ];

    /// The rule's name, as stored and as typed in `/alerts`.
    pub fn name(self) -> &'static str {
        match self {
            Self::MembersChange => "members_change",
            Self::ViewsDrop => "views_drop",
            Self::NoPosts => "no_posts",
            Self::UnusualChange => "unusual_change",
            Self::SourceStale => "source_stale",
        }
    }

    /// What the threshold means, for replies and help.
    pub fn threshold_unit(self) -> &'static str {
        match self {
            Self::MembersChange | Self::ViewsDrop => "%",
            Self::NoPosts => "× the median gap",
            Self::UnusualChange => "robust z",
            Self::SourceStale => "× the members interval",
        }
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Rule {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::CHANNEL_RULES
            .into_iter()
            .chain([Self::SourceStale])
            .find(|r| r.name() == s)
            .ok_or_else(|| {
                format!(
                    "unknown rule `{s}`; expected members_change, views_drop, no_posts, \
                 unusual_change or source_stale"
                )
            })
    }
}

/// The configured defaults of the rules (`tgpulse serve`, `tgpulse alerts`). Per-channel
/// overrides live in `alert_rules` (`/alerts set`).
#[derive(Debug, Clone, clap::Args)]
pub struct AlertConfig {
    /// members_change: percent change of members from one day to the next that opens an alert.
    #[arg(
        long = "alert-members-change-pct",
        env = "TGPULSE_ALERT_MEMBERS_CHANGE_PCT",
        default_value_t = 20.0
    )]
    pub members_change_pct: f64,
    /// members_change: smallest change in members (absolute) that may open an alert; 0 = any.
    /// On the real data, 100 keeps 33 of 332 alerts: the rest are channels of a few dozen
    /// members doubling.
    #[arg(
        long = "alert-members-change-min",
        env = "TGPULSE_ALERT_MEMBERS_CHANGE_MIN",
        default_value_t = 0
    )]
    pub members_change_min: i64,
    /// views_drop: percent the last week's average 24 h reach must fall below the median of
    /// the 4 weeks before.
    #[arg(
        long = "alert-views-drop-pct",
        env = "TGPULSE_ALERT_VIEWS_DROP_PCT",
        default_value_t = 30.0
    )]
    pub views_drop_pct: f64,
    /// no_posts: k in max(24 h, k × median gap between posts).
    #[arg(
        long = "alert-no-posts-k",
        env = "TGPULSE_ALERT_NO_POSTS_K",
        default_value_t = 3.0
    )]
    pub no_posts_k: f64,
    /// unusual_change: robust z-score of the daily member delta that opens an alert.
    #[arg(
        long = "alert-unusual-z",
        env = "TGPULSE_ALERT_UNUSUAL_Z",
        default_value_t = 5.0
    )]
    pub unusual_z: f64,
    /// unusual_change: smallest |daily member delta| that may open an alert.
    #[arg(
        long = "alert-unusual-min",
        env = "TGPULSE_ALERT_UNUSUAL_MIN",
        default_value_t = 100
    )]
    pub unusual_min: i64,
    /// How often `serve` evaluates the rules (e.g. 30m, 1h).
    #[arg(long = "alert-every", env = "TGPULSE_ALERT_EVERY", default_value = "30m", value_parser = humantime::parse_duration)]
    pub every: Duration,
}

impl Default for AlertConfig {
    fn default() -> Self {
        Self {
            members_change_pct: 20.0,
            members_change_min: 0,
            views_drop_pct: 30.0,
            no_posts_k: 3.0,
            unusual_z: 5.0,
            unusual_min: 100,
            every: Duration::from_secs(30 * 60),
        }
    }
}

impl AlertConfig {
    /// The default threshold of a rule.
    pub fn default_threshold(&self, rule: Rule) -> f64 {
        match rule {
            Rule::MembersChange => self.members_change_pct,
            Rule::ViewsDrop => self.views_drop_pct,
            Rule::NoPosts => self.no_posts_k,
            Rule::UnusualChange => self.unusual_z,
            Rule::SourceStale => f64::from(crate::app::ops::STALE_INTERVALS),
        }
    }

    /// Refuses thresholds that cannot mean anything.
    ///
    /// errors: the flag and why.
    pub fn check(&self) -> Result<(), String> {
        for rule in Rule::CHANNEL_RULES {
            check_threshold(rule, self.default_threshold(rule))
                .map_err(|e| format!("--alert-{}: {e}", rule.name().replace('_', "-")))?;
        }
        if self.unusual_min < 0 || self.members_change_min < 0 {
            return Err(
                "--alert-unusual-min and --alert-members-change-min must be 0 or more".into(),
            );
        }
        if self.every < Duration::from_secs(10) || self.every > Duration::from_secs(7 * 86_400) {
            return Err("--alert-every must be between 10s and 7 days".into());
        }
        Ok(())
    }
}

/// Checks one threshold: positive and finite, and under 100 % for views_drop.
///
/// errors: why it is refused.
pub fn check_threshold(rule: Rule, t: f64) -> Result<(), String> {
    if !t.is_finite() || t <= 0.0 {
        return Err(format!("the threshold of {rule} must be a positive number"));
    }
    if rule == Rule::ViewsDrop && t >= 100.0 {
        return Err("the views_drop threshold is a percentage below 100".into());
    }
    if t > 1e6 {
        return Err(format!("the threshold of {rule} is too large"));
    }
    Ok(())
}

/// Thresholds in force: the defaults and the per-channel overrides.
#[derive(Debug, Clone, Default)]
pub struct Settings {
    /// The configured defaults.
    pub defaults: AlertConfig,
    /// Per (channel, rule): the overriding threshold (`None`: the default) and whether the
    /// rule is on for the channel.
    pub overrides: HashMap<(ChannelId, Rule), (Option<f64>, bool)>,
}

impl Settings {
    /// The threshold of `rule` for `channel`, or `None` if the rule is off for it.
    pub fn threshold(&self, channel: ChannelId, rule: Rule) -> Option<f64> {
        match self.overrides.get(&(channel, rule)) {
            Some((_, false)) => None,
            Some((Some(t), true)) => Some(*t),
            _ => Some(self.defaults.default_threshold(rule)),
        }
    }
}

/// What an alert is about: a channel, or a part of the service (source_stale). Serialised
/// as its [`Subject::key`].
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Subject {
    /// A channel.
    Channel(ChannelId),
    /// A source (`source:<name>`) or the ingest writer (`writer`).
    Service(String),
}

impl Subject {
    /// The key stored in `alert_events.subject`.
    pub fn key(&self) -> String {
        match self {
            Self::Channel(c) => c.get().to_string(),
            Self::Service(s) => s.clone(),
        }
    }

    /// The channel, if the subject is one.
    pub fn channel(&self) -> Option<ChannelId> {
        match self {
            Self::Channel(c) => Some(*c),
            Self::Service(_) => None,
        }
    }
}

impl Serialize for Subject {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.key())
    }
}

/// A rule judged for one subject at one evaluation.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Observation {
    /// What it is about.
    pub subject: Subject,
    /// The rule.
    pub rule: Rule,
    /// Local day of the measurement.
    pub day: NaiveDate,
    /// The measured value: members (members_change), average 24 h reach in views per post
    /// (views_drop), hours since the last post (no_posts), the day's member delta
    /// (unusual_change), hours since the last success (source_stale).
    pub value: Option<f64>,
    /// What it is compared with: the previous day's members, the median weekly reach, the
    /// median gap between posts in hours, the median delta of 28 days, the allowed hours.
    pub baseline: Option<f64>,
    /// Percent change against the baseline, where it means something.
    pub change_pct: Option<f64>,
    /// The robust z-score (unusual_change) or the silence limit in hours (no_posts).
    pub score: Option<f64>,
    /// The threshold applied.
    pub threshold: f64,
    /// Whether the condition holds.
    pub fired: bool,
    /// One line for people.
    pub detail: String,
}

/// Lowest number of trailing deltas behind an unusual_change z-score.
pub const MIN_HISTORY: i64 = 14;
/// Lowest number of gaps behind a no_posts cadence.
pub const MIN_GAPS: i64 = 2;
/// Lowest number of posts with a 24 h reach in the current week (views_drop).
pub const MIN_WEEK_POSTS: i64 = 3;
/// Lowest number of earlier weeks with posts behind the views_drop baseline.
pub const MIN_WEEKS: i64 = 2;

/// Applies a rule's threshold to a measurement; `None` when the rule is off for the channel
/// or the measurement has too little behind it to judge.
pub fn judge(m: &Metric, settings: &Settings) -> Option<Observation> {
    let threshold = settings.threshold(m.channel, m.rule)?;
    let (fired, score, detail) = match m.rule {
        Rule::MembersChange => {
            let pct = m.change_pct?;
            let min = settings.defaults.members_change_min as f64;
            (
                pct.abs() >= threshold && (m.value? - m.baseline?).abs() >= min,
                None,
                format!(
                    "members {} → {} ({pct:+.1} %)",
                    fmt_num(m.baseline?),
                    fmt_num(m.value?)
                ),
            )
        }
        Rule::UnusualChange => {
            if m.support < MIN_HISTORY {
                return None;
            }
            let (delta, med) = (m.value?, m.baseline?);
            let scale = (1.4826 * m.aux.unwrap_or(0.0)).max(1.0);
            let z = (delta - med) / scale;
            let min = settings.defaults.unusual_min as f64;
            (
                z.abs() >= threshold && delta.abs() >= min,
                Some(z),
                format!(
                    "daily change {:+} against a typical {:+} (robust z {z:+.1})",
                    delta as i64, med as i64
                ),
            )
        }
        Rule::NoPosts => {
            if m.support < MIN_GAPS {
                return None;
            }
            let (silent, gap) = (m.value?, m.baseline?);
            let limit = (threshold * gap).max(24.0);
            (
                silent > limit,
                Some(limit),
                format!(
                    "no post for {silent:.0} h; it usually posts every {gap:.1} h (limit {limit:.0} h)"
                ),
            )
        }
        Rule::ViewsDrop => {
            if m.support < MIN_WEEK_POSTS || m.aux.unwrap_or(0.0) < MIN_WEEKS as f64 {
                return None;
            }
            let pct = m.change_pct?;
            (
                pct <= -threshold,
                None,
                format!(
                    "average 24 h reach {} against {} in the weeks before ({pct:+.1} %)",
                    fmt_num(m.value?),
                    fmt_num(m.baseline?)
                ),
            )
        }
        Rule::SourceStale => return None,
    };
    Some(Observation {
        subject: Subject::Channel(m.channel),
        rule: m.rule,
        day: m.day,
        value: m.value,
        baseline: m.baseline,
        change_pct: m.change_pct,
        score,
        threshold,
        fired,
        detail,
    })
}

/// A measured figure as a whole number with thousands separators (82,781).
fn fmt_num(v: f64) -> String {
    crate::render::thousands(v.round() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metric(
        rule: Rule,
        value: f64,
        baseline: f64,
        pct: Option<f64>,
        aux: f64,
        support: i64,
    ) -> Metric {
        Metric {
            channel: ChannelId::new(1).unwrap(),
            rule,
            day: NaiveDate::from_ymd_opt(2026, 1, 1).unwrap(),
            value: Some(value),
            baseline: Some(baseline),
            change_pct: pct,
            aux: Some(aux),
            support,
        }
    }

    #[test]
    fn thresholds_apply_per_rule_and_channel_overrides_win() {
        let mut s = Settings::default();
        let up = metric(Rule::MembersChange, 120.0, 100.0, Some(20.0), 0.0, 1);
        assert!(
            judge(&up, &s).unwrap().fired,
            "+20 % meets the 20 % default"
        );
        let small = metric(Rule::MembersChange, 119.0, 100.0, Some(19.0), 0.0, 1);
        assert!(!judge(&small, &s).unwrap().fired);
        s.overrides
            .insert((up.channel, Rule::MembersChange), (Some(25.0), true));
        assert!(
            !judge(&up, &s).unwrap().fired,
            "the override raises the bar"
        );
        s.defaults.members_change_min = 100;
        let tiny = metric(Rule::MembersChange, 35.0, 3.0, Some(1066.7), 0.0, 1);
        assert!(
            !judge(&tiny, &s).unwrap().fired,
            "3 -> 35 members is under the minimum"
        );
        s.overrides
            .insert((up.channel, Rule::MembersChange), (None, false));
        assert!(judge(&up, &s).is_none(), "a rule turned off judges nothing");
    }

    #[test]
    fn unusual_change_needs_both_the_z_score_and_the_minimum() {
        let s = Settings::default();
        // median +10, MAD 2 -> scale 2.97; +200 is z = 64.
        let jump = metric(Rule::UnusualChange, 200.0, 10.0, None, 2.0, 28);
        let o = judge(&jump, &s).unwrap();
        assert!(o.fired);
        assert!((o.score.unwrap() - 190.0 / (1.4826 * 2.0)).abs() < 1e-9);
        // z = 20 but only 60 members: under the minimum of 100.
        let small = metric(Rule::UnusualChange, 60.0, 0.0, None, 2.0, 28);
        assert!(!judge(&small, &s).unwrap().fired);
        // Too little history: not judged at all.
        let young = metric(Rule::UnusualChange, 200.0, 10.0, None, 2.0, 5);
        assert!(judge(&young, &s).is_none());
    }

    #[test]
    fn no_posts_follows_the_cadence_with_a_floor_of_a_day() {
        let s = Settings::default();
        // Daily poster silent for 73 h: limit max(24, 3 * 24) = 72 h.
        assert!(
            judge(&metric(Rule::NoPosts, 73.0, 24.0, None, 0.0, 29), &s)
                .unwrap()
                .fired
        );
        // Weekly poster silent for 73 h: limit 504 h.
        assert!(
            !judge(&metric(Rule::NoPosts, 73.0, 168.0, None, 0.0, 4), &s)
                .unwrap()
                .fired
        );
        // Hourly poster silent for 20 h: under the 24 h floor.
        assert!(
            !judge(&metric(Rule::NoPosts, 20.0, 1.0, None, 0.0, 300), &s)
                .unwrap()
                .fired
        );
    }
}
