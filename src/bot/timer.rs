//! The timer every update carries through the handler tree: its count and reply time, and
//! the start of the bot engine's own time. A leaf: the schema creates it, handlers read it.

use std::sync::{Arc, OnceLock};
use std::time::Instant;

use teloxide::types::{Update, UpdateKind};

/// Counts an update (`tgpulse_bot_updates_total{kind}`, kind `message` or `callback`) and
/// times it from the moment the dispatcher hands it to the schema to the end of its
/// handling, replies sent: `tgpulse_bot_reply_seconds{command}` is recorded when the last
/// copy drops, under the label the schema gave it (a command's name, `callback`, `refused`,
/// `text` for plain messages, `help` for unreadable commands). Updates that got no label
/// (dropped, over the rate limit) are not recorded, so the label set stays small.
#[derive(Debug, Clone)]
pub(super) struct ReplyTimer(Arc<Timing>);

#[derive(Debug)]
struct Timing {
    start: Instant,
    label: OnceLock<&'static str>,
}

impl ReplyTimer {
    pub(super) fn start(update: Update) -> Self {
        let kind = match update.kind {
            UpdateKind::Message(_) => "message",
            UpdateKind::CallbackQuery(_) => "callback",
            _ => "other",
        };
        metrics::counter!("tgpulse_bot_updates_total", "kind" => kind).increment(1);
        Self(Arc::new(Timing {
            start: Instant::now(),
            label: OnceLock::new(),
        }))
    }

    pub(super) fn label(&self, name: &'static str) {
        let _ = self.0.label.set(name);
    }

    /// When the handler tree received the update: the start of the bot engine's own time
    /// (`send::EngineTime`).
    pub(super) fn started(&self) -> Instant {
        self.0.start
    }
}

impl Drop for Timing {
    fn drop(&mut self) {
        if let Some(command) = self.label.get() {
            metrics::histogram!("tgpulse_bot_reply_seconds", "command" => *command)
                .record(self.start.elapsed().as_secs_f64());
        }
    }
}
