//! The dptree every update goes through, as in teloxide's examples. Read top to bottom:
//!
//! 1. Every update is counted and timed ([`ReplyTimer`]).
//! 2. Messages and button presses pass the same gate: the per-user rate check, then the role.
//!    Strangers end in a refusal; members over the rate limit in one notice.
//! 3. Members go on as an `access::Member`; the admin commands and the removal confirmation
//!    sit behind a filter that makes an `access::Admin`, which their handlers require. A
//!    viewer's admin command falls through to `access::admins_only`.
//!
//! Nothing else routes updates: a handler is reachable only where this tree puts it.

use std::sync::Arc;

use dptree::case;
use teloxide::dispatching::{UpdateFilterExt, UpdateHandler};
use teloxide::prelude::*;

use super::access::{self, Admin, Caller, Member, Rate, Role};
use super::button::{self, Press, Pressed};
use super::help::{self, Parsed};
use super::timer::ReplyTimer;
use super::{
    BoxError, Command, Ctx, alerts, compare, export, health, lang, mentions, posts, reports, stats,
    watch,
};
use crate::state::{self, Action};

/// The bot's handler tree.
pub(super) fn schema() -> UpdateHandler<BoxError> {
    dptree::entry()
        .map(ReplyTimer::start)
        .branch(messages())
        .branch(buttons())
}

fn messages() -> UpdateHandler<BoxError> {
    let commands = dptree::entry()
        .branch(case![Command::Start].endpoint(help::help))
        .branch(case![Command::Help].endpoint(help::help))
        .branch(case![Command::List].endpoint(watch::list))
        .branch(case![Command::Stats(args)].endpoint(stats::command))
        .branch(case![Command::Compare(args)].endpoint(compare::command))
        .branch(case![Command::Mentions(args)].endpoint(mentions::command))
        .branch(case![Command::Export(args)].endpoint(export::command))
        .branch(case![Command::Health].endpoint(health::command))
        .branch(case![Command::Alerts(args)].endpoint(alerts::command))
        .branch(case![Command::Reports(args)].endpoint(reports::command))
        .branch(case![Command::Lang(args)].endpoint(lang::command))
        .branch(
            dptree::filter_map(Admin::of)
                .branch(case![Command::Add(args)].endpoint(watch::add))
                .branch(case![Command::Remove(args)].endpoint(watch::remove))
                .branch(case![Command::Grant(args)].endpoint(access::grant))
                .branch(case![Command::Revoke(args)].endpoint(access::revoke))
                .branch(case![Command::Viewers].endpoint(access::viewers)),
        )
        .endpoint(access::admins_only);
    Update::filter_message()
        .filter_map(Caller::of_message)
        .map(access::rate)
        .branch(case![Rate::Silent].endpoint(access::ignore))
        .filter_map_async(access::role)
        .map_async(access::language)
        .branch(
            dptree::filter(|r: Role| r.is_stranger())
                .inspect(label("refused"))
                .endpoint(access::refuse_message),
        )
        .branch(case![Rate::Warn(wait)].endpoint(access::slow_down))
        .filter_map(Member::of)
        .branch(
            dptree::filter(|m: Message| !is_command(&m))
                .inspect(label("text"))
                .endpoint(compare::on_text),
        )
        .inspect_async(end_conversation)
        .map(Parsed::of)
        .branch(
            dptree::filter_map(Parsed::command)
                .inspect(|t: ReplyTimer, c: Command| t.label(c.name()))
                .chain(commands),
        )
        .inspect(label("help"))
        .endpoint(help::not_a_command)
}

fn buttons() -> UpdateHandler<BoxError> {
    let is = |kind: fn(&Action) -> bool| dptree::filter(move |a: Action| kind(&a));
    let actions = dptree::entry()
        .branch(
            case![Action::Remove { channel }]
                .branch(dptree::filter_map(Admin::of).endpoint(watch::confirm_remove))
                .endpoint(watch::remove_refused),
        )
        .branch(case![Action::Cancel].endpoint(watch::cancel))
        .branch(case![Action::ListPage { page }].endpoint(watch::list_pressed))
        .branch(is(|a| matches!(a, Action::Stats { .. })).endpoint(stats::pressed))
        .branch(is(|a| matches!(a, Action::CompareWith { .. })).endpoint(compare::pressed))
        .branch(
            is(|a| {
                matches!(
                    a,
                    Action::Views { .. } | Action::BestTime { .. } | Action::TopPosts { .. }
                )
            })
            .endpoint(posts::pressed),
        )
        .branch(is(|a| matches!(a, Action::Export { .. })).endpoint(export::pressed))
        .branch(is(|a| matches!(a, Action::Mute { .. })).endpoint(alerts::mute_pressed));
    Update::filter_callback_query()
        .filter_map(Caller::of_button)
        .map(access::rate)
        .branch(case![Rate::Silent].endpoint(access::quiet_button))
        .filter_map_async(access::role)
        .map_async(access::language)
        .branch(
            dptree::filter(|r: Role| r.is_stranger())
                .inspect(label("refused"))
                .endpoint(access::refuse_button),
        )
        .branch(case![Rate::Warn(wait)].endpoint(access::slow_down_button))
        .filter_map(Member::of)
        .inspect(label("callback"))
        .branch(
            dptree::filter_map(Pressed::of)
                .map_async(button::take)
                .branch(case![Press::Action(action)].chain(actions))
                .branch(case![Press::Failed].endpoint(button::failed)),
        )
        .endpoint(button::expired)
}

fn is_command(msg: &Message) -> bool {
    msg.text().is_some_and(|t| t.starts_with('/'))
}

/// A new command ends any conversation waiting for a reply ("Compare with…"). A failure is
/// logged and the command goes on: it does not depend on the conversation.
async fn end_conversation(ctx: Arc<Ctx>, msg: Message, member: Member) {
    let user = member.user.0 as i64;
    if let Err(e) = state::take_awaiting(&ctx.db, msg.chat.id.0, user, ctx.now()).await {
        tracing::warn!(user_id = user, error = %crate::error_chain(&e), "cannot end a conversation");
    }
}

/// Labels the update's reply time (see [`ReplyTimer`]).
fn label(name: &'static str) -> impl Fn(ReplyTimer) + Clone + Send + Sync + 'static {
    move |t: ReplyTimer| t.label(name)
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;
    use teloxide::types::UpdateKind;

    use metrics::{
        Counter, Gauge, Histogram, Key, KeyName, Metadata, Recorder, SharedString, Unit,
    };

    use super::*;

    /// Remembers the name and labels of every metric registered.
    #[derive(Debug, Default)]
    struct Keys(Mutex<Vec<String>>);

    impl Keys {
        fn push(&self, key: &Key) {
            let labels: Vec<String> = key
                .labels()
                .map(|l| format!("{}={}", l.key(), l.value()))
                .collect();
            let line = format!("{}{{{}}}", key.name(), labels.join(","));
            self.0.lock().unwrap().push(line);
        }
    }

    impl Recorder for Keys {
        fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
        fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
        fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
        fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
            self.push(key);
            Counter::noop()
        }
        fn register_gauge(&self, key: &Key, _: &Metadata<'_>) -> Gauge {
            self.push(key);
            Gauge::noop()
        }
        fn register_histogram(&self, key: &Key, _: &Metadata<'_>) -> Histogram {
            self.push(key);
            Histogram::noop()
        }
    }

    #[test]
    fn every_update_is_counted_and_labelled_ones_are_timed_when_handled() {
        // From text, as the Bot API sends it (teloxide reads update kinds from borrowed keys).
        let json = serde_json::json!({
            "update_id": 1,
            "message": {
                "message_id": 5, "date": 0, "text": "/stats @durov",
                "chat": {"id": 7, "type": "private", "first_name": "a"},
                "from": {"id": 7, "is_bot": false, "first_name": "a"}
            }
        });
        let update: Update = serde_json::from_str(&json.to_string()).unwrap();
        assert!(matches!(update.kind, UpdateKind::Message(_)), "{update:?}");
        let keys = Keys::default();
        metrics::with_local_recorder(&keys, || {
            let timer = ReplyTimer::start(update.clone());
            timer.clone().label("stats");
            drop(timer);
            drop(ReplyTimer::start(update)); // dropped without a label: counted, not timed
        });
        assert_eq!(
            *keys.0.lock().unwrap(),
            [
                "tgpulse_bot_updates_total{kind=message}",
                "tgpulse_bot_reply_seconds{command=stats}",
                "tgpulse_bot_updates_total{kind=message}",
            ]
        );
    }
}
