//! The forward/mention network around one channel: who forwards, mentions or links it, whom
//! it forwards, mentions or links, with counts and the reach of those posts, and the members
//! change on the day after each day with mentions (correlation, not cause).

use chrono::NaiveDate;
use serde::Serialize;

use super::Channel;
use crate::domain::ChannelId;

/// Another channel on one side of the network, with what passed between them.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Peer {
    /// Its channel id, when known.
    pub channel_id: Option<ChannelId>,
    /// Its handle (without `@`) or title as known to tgpulse or the source, when known.
    pub name: Option<String>,
    /// Posts that are forwards.
    pub forwards: i64,
    /// Posts that mention by @handle.
    pub mentions: i64,
    /// Posts that link by t.me address.
    pub links: i64,
    /// Distinct posts of any kind (a post that forwards and mentions counts once).
    pub posts: i64,
    /// Σ post reach (highest views seen) of those posts, over the ones tgpulse sampled;
    /// `None` if it sampled none of them.
    pub reach: Option<i64>,
}

impl Peer {
    /// `@handle`, the title, or the id.
    pub fn label(&self) -> String {
        match (&self.name, self.channel_id) {
            (Some(n), _) if n.parse::<crate::domain::Handle>().is_ok() => format!("@{n}"),
            (Some(n), _) => n.clone(),
            (None, Some(id)) => id.to_string(),
            (None, None) => "?".into(),
        }
    }
}

/// A local day on which other channels' posts forwarded, mentioned or linked the channel,
/// next to the channel's members change on the following day. Correlation, not cause.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MentionDay {
    /// Local day of the mentioning posts.
    pub day: NaiveDate,
    /// Posts of other channels that day forwarding, mentioning or linking the channel.
    pub posts: i64,
    /// Σ reach of those posts (sampled ones), views.
    pub reach: Option<i64>,
    /// Members change of the channel on the next local day (its delta in `members_daily`).
    pub members_change_next_day: Option<i64>,
}

/// The network of one channel over a window.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MentionReport {
    /// The channel.
    pub channel: Channel,
    /// First local day of the window.
    pub first_day: NaiveDate,
    /// Last local day of the window.
    pub last_day: NaiveDate,
    /// Reporting time zone.
    pub timezone: String,
    /// Channels whose posts forward, mention or link this one, most posts first.
    pub incoming: Vec<Peer>,
    /// Channels this one's posts forward, mention or link, most posts first.
    pub outgoing: Vec<Peer>,
    /// Days with incoming posts and the members change the day after.
    pub days: Vec<MentionDay>,
}
