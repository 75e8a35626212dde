//! No panic is fatal to the bot. teloxide runs each chat's updates on a worker task; a handler
//! that panics kills that worker, and the dispatcher's next send to it (the same chat's next
//! update) panics in turn and stops the whole bot. [`guarded`] wraps the handler tree so that a
//! panic ends only the update that caused it: it is logged with the update id, counted, and the
//! user is told that the request failed.

use std::any::Any;
use std::ops::ControlFlow;
use std::panic::AssertUnwindSafe;

use futures::FutureExt;
use teloxide::dispatching::UpdateHandler;
use teloxide::prelude::*;

use super::{BoxError, TgBot, reply};
use crate::i18n::Lang;

/// `inner` with panics caught: a panicking update ends as handled (`Break(Ok(()))`), after a
/// log line (`error`, with the update id and the panic message), a count in
/// `tgpulse_bot_panics_total`, and a short apology to the chat it came from.
pub(super) fn guarded(inner: UpdateHandler<BoxError>) -> UpdateHandler<BoxError> {
    let description = inner.description().clone();
    let sig = inner.sig().clone();
    dptree::from_fn_with_description(
        description,
        move |deps: DependencyMap, cont| {
            let inner = inner.clone();
            async move {
                let update = deps.try_get::<Update>();
                let bot = deps.try_get::<TgBot>();
                match AssertUnwindSafe(inner.execute(deps, cont))
                    .catch_unwind()
                    .await
                {
                    Ok(flow) => flow,
                    Err(panic) => {
                        let id = update.as_ref().map(|u| u.id.0);
                        tracing::error!(update_id = ?id, panic = %message(panic.as_ref()), "a bot handler panicked; the update is dropped and the bot goes on");
                        metrics::counter!("tgpulse_bot_panics_total").increment(1);
                        if let (Some(bot), Some(chat)) =
                            (bot, update.as_ref().and_then(|u| u.chat()))
                        {
                            // Only in private chats, as every other notice.
                            if chat.is_private() {
                                let code = update
                                    .as_ref()
                                    .and_then(|u| u.from())
                                    .and_then(|u| u.language_code.as_deref());
                                let text = reply::internal_error(Lang::from_telegram(code));
                                let _ = bot.send_message(chat.id, text).await;
                            }
                        }
                        ControlFlow::Break(Ok(()))
                    }
                }
            }
        },
        sig,
    )
}

/// The text of a panic payload (`panic!("...")` gives a `&str` or a `String`).
fn message(payload: &(dyn Any + Send)) -> &str {
    payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("(no message)")
}
