//! A small in-memory cache of drawn charts, for crowds asking about the same channel: the
//! bot draws a picture once and sends the same PNG bytes to everyone who asks for it until the
//! channel's data changes.
//!
//! Bounded by entries and by bytes (by default 256 charts or 64 MiB, whichever comes first);
//! past either, the least recently used entries go. One `std::sync::Mutex` guards it: a
//! lookup or an insert is a hash-map operation (an eviction scans at most the few hundred
//! entries), never held across drawing or an await.
//!
//! Metrics: `tgpulse_chart_cache_hits_total{chart}` and
//! `tgpulse_chart_cache_misses_total{chart}`, one per [`ChartCache::get`].

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::{Mutex, MutexGuard, PoisonError};

use bytes::Bytes;
use chrono::{DateTime, NaiveDate, Utc};

use crate::i18n::Lang;
use crate::query::ChannelStats;

/// Charts kept by [`ChartCache::default`].
pub const DEFAULT_ENTRIES: usize = 256;
/// PNG bytes kept by [`ChartCache::default`]: 64 MiB.
pub const DEFAULT_BYTES: usize = 64 << 20;

/// What a cached chart is a picture of. Two keys are equal only when the pictures are the
/// same: the chart kind, the channel, the window, the language, the channel's newest sample
/// time, and a fingerprint of everything else drawn (the channel's label, the time zone and
/// the series), so a renamed channel or a back-filled day does not reuse an old picture.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ChartKey {
    /// Which chart (`members`); also the `chart` label of the cache's metrics.
    pub chart: &'static str,
    /// Telegram channel id.
    pub channel_id: i64,
    /// First local day of the window.
    pub first_day: NaiveDate,
    /// Last local day of the window.
    pub last_day: NaiveDate,
    /// The reader's language (titles, axes, numbers and month names follow it).
    pub lang: Lang,
    /// The channel's newest sample time (`ChannelStats::last_observed_at`).
    pub last_observed_at: Option<DateTime<Utc>>,
    /// A 64-bit hash of the rest of what the chart shows.
    pub fingerprint: u64,
}

impl ChartKey {
    /// The key of [`super::members_png`]`(s, lang)`. Hashes what `draw_members` reads
    /// besides the key's own fields: keep the two in step.
    pub fn members(s: &ChannelStats, lang: Lang) -> Self {
        let mut h = DefaultHasher::new();
        s.channel.label().hash(&mut h);
        s.timezone.hash(&mut h);
        s.series.len().hash(&mut h);
        for p in &s.series {
            (p.day, p.members, p.delta).hash(&mut h);
        }
        Self {
            chart: "members",
            channel_id: s.channel.id.get(),
            first_day: s.first_day,
            last_day: s.last_day,
            lang,
            last_observed_at: s.last_observed_at,
            fingerprint: h.finish(),
        }
    }
}

/// Drawn charts by [`ChartKey`], as PNG bytes (`Bytes`: a hit is a reference count, not a
/// copy), least recently used out first. Share it behind an `Arc` (or in a shared context).
pub struct ChartCache {
    inner: Mutex<Inner>,
    max_entries: usize,
    max_bytes: usize,
}

#[derive(Default)]
struct Inner {
    map: HashMap<ChartKey, Entry>,
    /// Sum of the entries' PNG sizes.
    bytes: usize,
    /// Incremented on every use; an entry's `used` is the tick of its last use.
    tick: u64,
}

struct Entry {
    png: Bytes,
    used: u64,
}

impl std::fmt::Debug for ChartCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let inner = self.lock();
        f.debug_struct("ChartCache")
            .field("entries", &inner.map.len())
            .field("bytes", &inner.bytes)
            .field("max_entries", &self.max_entries)
            .field("max_bytes", &self.max_bytes)
            .finish()
    }
}

impl Default for ChartCache {
    /// [`DEFAULT_ENTRIES`] charts or [`DEFAULT_BYTES`], whichever is reached first.
    fn default() -> Self {
        Self::new(DEFAULT_ENTRIES, DEFAULT_BYTES)
    }
}

impl ChartCache {
    /// An empty cache keeping at most `max_entries` charts and `max_bytes` bytes of PNG.
    /// Zero for either keeps nothing.
    pub fn new(max_entries: usize, max_bytes: usize) -> Self {
        Self {
            inner: Mutex::default(),
            max_entries,
            max_bytes,
        }
    }

    /// A poisoned lock is taken over: the map is consistent after every statement that can
    /// panic under it (none of them hold it half-updated).
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The chart stored under `key`, marked as just used; counted as a hit or a miss.
    pub fn get(&self, key: &ChartKey) -> Option<Bytes> {
        let found = {
            let mut inner = self.lock();
            inner.tick += 1;
            let tick = inner.tick;
            inner.map.get_mut(key).map(|e| {
                e.used = tick;
                e.png.clone()
            })
        };
        if found.is_some() {
            metrics::counter!("tgpulse_chart_cache_hits_total", "chart" => key.chart).increment(1);
        } else {
            metrics::counter!("tgpulse_chart_cache_misses_total", "chart" => key.chart)
                .increment(1);
        }
        found
    }

    /// Stores `png` under `key` (replacing what was there), then removes the least recently
    /// used entries until the cache is within its bounds. A chart larger than `max_bytes` is
    /// not stored.
    pub fn insert(&self, key: ChartKey, png: Bytes) {
        if png.len() > self.max_bytes || self.max_entries == 0 {
            return;
        }
        let mut inner = self.lock();
        inner.tick += 1;
        let (tick, size) = (inner.tick, png.len());
        if let Some(old) = inner.map.insert(key, Entry { png, used: tick }) {
            inner.bytes -= old.png.len();
        }
        inner.bytes += size;
        while inner.map.len() > self.max_entries || inner.bytes > self.max_bytes {
            let Some(oldest) = inner
                .map
                .iter()
                .min_by_key(|(_, e)| e.used)
                .map(|(k, _)| k.clone())
            else {
                break;
            };
            if let Some(gone) = inner.map.remove(&oldest) {
                inner.bytes -= gone.png.len();
            }
        }
    }

    /// Charts stored.
    pub fn len(&self) -> usize {
        self.lock().map.len()
    }

    /// Whether no chart is stored.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// PNG bytes stored, summed over the charts.
    pub fn bytes(&self) -> usize {
        self.lock().bytes
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeDelta;

    use super::*;
    use crate::domain::ChannelId;
    use crate::query::{Channel, DayPoint, PostMetrics};

    fn stats(id: i64, days: i64) -> ChannelStats {
        let first = NaiveDate::from_ymd_opt(2026, 8, 1).unwrap();
        let series: Vec<DayPoint> = (0..days)
            .map(|i| DayPoint {
                day: first + TimeDelta::days(i),
                members: 1_000 + 10 * i,
                delta: (i > 0).then_some(10),
                index: None,
            })
            .collect();
        ChannelStats {
            channel: Channel {
                id: ChannelId::new(id).unwrap(),
                handle: Some("demo".into()),
                title: Some("Demo".into()),
            },
            first_day: first,
            last_day: first + TimeDelta::days(days - 1),
            timezone: "UTC".into(),
            members: series.last().map(|p| p.members),
            baseline: None,
            delta: None,
            growth_pct: None,
            mean_daily_growth: None,
            best_day: None,
            worst_day: None,
            days_with_data: days,
            missing_days: vec![],
            posts: None,
            avg_post_reach: None,
            err_pct: None,
            post: PostMetrics::none(),
            last_observed_at: DateTime::from_timestamp(1_785_000_000, 0),
            series,
        }
    }

    fn fake_png(n: usize) -> Bytes {
        Bytes::from(vec![7u8; n])
    }

    #[test]
    fn keys_are_equal_only_for_the_same_picture() {
        let key = |s: &ChannelStats, lang| ChartKey::members(s, lang);
        let s = stats(1, 30);
        assert_eq!(key(&s, Lang::En), key(&s.clone(), Lang::En));
        assert_ne!(key(&s, Lang::En), key(&s, Lang::Ru));
        assert_ne!(key(&s, Lang::En), key(&stats(2, 30), Lang::En));
        assert_ne!(key(&s, Lang::En), key(&stats(1, 31), Lang::En));
        let mut newer = s.clone();
        newer.last_observed_at = newer.last_observed_at.map(|t| t + TimeDelta::hours(1));
        assert_ne!(key(&s, Lang::En), key(&newer, Lang::En));
        // The same newest sample, but a back-filled day or a new handle: another picture.
        let mut backfilled = s.clone();
        backfilled.series[3].members += 1;
        assert_ne!(key(&s, Lang::En), key(&backfilled, Lang::En));
        let mut renamed = s.clone();
        renamed.channel.handle = Some("renamed".into());
        assert_ne!(key(&s, Lang::En), key(&renamed, Lang::En));
        // What the members chart does not draw does not matter.
        let mut other = s.clone();
        other.posts = Some(5);
        other.series[3].index = Some(101.0);
        assert_eq!(key(&s, Lang::En), key(&other, Lang::En));
    }

    #[test]
    fn a_chart_is_a_hit_after_insert() {
        let cache = ChartCache::default();
        let key = ChartKey::members(&stats(1, 30), Lang::En);
        assert!(cache.is_empty());
        assert_eq!(cache.get(&key), None);
        cache.insert(key.clone(), fake_png(100));
        assert_eq!(cache.get(&key), Some(fake_png(100)));
        assert_eq!(cache.get(&ChartKey::members(&stats(1, 30), Lang::Ru)), None);
        // Replacing an entry keeps the byte count right.
        cache.insert(key.clone(), fake_png(40));
        assert_eq!((cache.len(), cache.bytes()), (1, 40));
    }

    #[test]
    fn the_least_recently_used_chart_goes_first() {
        let cache = ChartCache::new(3, 1 << 20);
        let keys: Vec<ChartKey> = (1..=4)
            .map(|id| ChartKey::members(&stats(id, 10), Lang::En))
            .collect();
        for k in &keys[..3] {
            cache.insert(k.clone(), fake_png(10));
        }
        assert!(cache.get(&keys[0]).is_some()); // now the most recently used
        cache.insert(keys[3].clone(), fake_png(10));
        assert_eq!((cache.len(), cache.bytes()), (3, 30));
        assert!(cache.get(&keys[1]).is_none(), "the oldest unused one went");
        for k in [&keys[0], &keys[2], &keys[3]] {
            assert!(cache.get(k).is_some());
        }
    }

    #[test]
    fn bytes_are_bounded_too() {
        let cache = ChartCache::new(100, 250);
        let keys: Vec<ChartKey> = (1..=3)
            .map(|id| ChartKey::members(&stats(id, 10), Lang::En))
            .collect();
        cache.insert(keys[0].clone(), fake_png(100));
        cache.insert(keys[1].clone(), fake_png(100));
        cache.insert(keys[2].clone(), fake_png(100));
        assert_eq!((cache.len(), cache.bytes()), (2, 200));
        assert!(cache.get(&keys[0]).is_none());
        // Larger than the whole cache: not stored, nothing else evicted.
        cache.insert(keys[0].clone(), fake_png(251));
        assert_eq!((cache.len(), cache.bytes()), (2, 200));
        assert!(cache.get(&keys[0]).is_none());
        // A cache of no entries keeps nothing.
        let none = ChartCache::new(0, 1 << 20);
        none.insert(keys[0].clone(), fake_png(1));
        assert!(none.is_empty());
    }
}
