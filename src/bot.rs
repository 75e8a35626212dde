//! The admin bot (teloxide): stats, comparisons, charts, exports and the watched list in
//! Telegram. It calls the same service functions as the CLI ([`crate::query`],
//! [`crate::chart`], [`crate::export`], [`crate::catalog`]) and keeps its state in PostgreSQL
//! ([`crate::state`]); it holds no SQL of its own and never imports `collect` or `db`
//! internals (only the [`Db`] handle it passes on).
//!
//! Shaped like teloxide's examples: `schema.rs` is the dptree every update goes through, one
//! file per feature holds its handlers (`stats`, `posts`, `mentions`, `compare`, `export`,
//! `watch`, `access`, `health`, `help`), and the leaves `send.rs` (say, edit, send a chart)
//! and `button.rs` (keyboards and presses) are shared by all of them.
//!
//! - Access is part of the schema: admins from `TGPULSE_ADMIN_IDS`, viewers granted by an
//!   admin (read-only); anyone else gets [`reply::refusal`] and the attempt is logged. Private
//!   chats only. Read-only handlers take an `access::Member` and changing ones an
//!   `access::Admin`, which only the schema's role filters produce.
//! - Limits: outgoing messages go through teloxide's `Throttle` (1/s per chat, 20/min per
//!   group, 30/s overall); each user has a token bucket (governor); at most `max_queries`
//!   stats, compare, export, post-analytics and mentions computations run at once; each user
//!   runs one export at a time (in the background, so the chat stays responsive) and a viewer
//!   receives at most `--bot-export-quota` export bytes a day.
//! - Metrics: `tgpulse_bot_updates_total{kind}` per update received and
//!   `tgpulse_bot_reply_seconds{command}` from an update's arrival to its reply;
//!   `tgpulse_bot_engine_seconds{command}` from its arrival to the reply's send call (the
//!   bot's own time, before the throttle queue; `stats` so far) and, for `/stats`,
//!   `tgpulse_bot_stats_query_seconds`; the charts' `tgpulse_chart_draw_seconds{chart}`,
//!   `tgpulse_chart_encode_seconds{chart}` and `tgpulse_chart_cache_{hits,misses}_total{chart}`.
//! - Charts: a crowd asking for the same picture gets it drawn once ([`ChartCache`]).
//! - Updates: long polling, or a webhook when `--bot-webhook-url` is set.

mod access;
pub mod alerts;
pub mod args;
mod button;
mod compare;
mod export;
mod guard;
mod health;
mod help;
mod lang;
mod mentions;
mod posts;
pub mod reply;
mod reports;
mod schema;
mod send;
mod stats;
mod timer;
mod watch;

use std::collections::{HashMap, HashSet};
use std::num::NonZeroU32;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use teloxide::adaptors::throttle::Limits;
use teloxide::adaptors::{CacheMe, Throttle};
use teloxide::dispatching::{Dispatcher, UpdateHandler};
use teloxide::error_handlers::LoggingErrorHandler;
use teloxide::prelude::*;
use teloxide::types::{BotCommand, BotCommandScope, ChatId, Recipient};
use teloxide::update_listeners::{Polling, webhooks};
use teloxide::utils::command::BotCommands;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use access::Role;
pub use args::{DEFAULT_DAYS, MAX_COMPARE};

use crate::catalog::Resolver;
use crate::chart::cache::ChartCache;
use crate::clock::SharedClock;
use crate::config::BotConfig;
use crate::db::Db;
use crate::i18n::Lang;
use crate::query::Engine;
use crate::t;

pub use crate::config::MIN_UPLOAD;

/// The Bot API client as the handlers see it: `getMe` cached, sends throttled.
pub(crate) type TgBot = Throttle<CacheMe<Bot>>;
/// The error type of every bot handler.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;
type HandlerResult = Result<(), BoxError>;

/// Errors that stop the bot.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Something in the configuration is missing or wrong.
    #[error("{0}")]
    Config(String),
    /// A Bot API call needed to start failed (`getMe`, `setWebhook`).
    #[error("the Bot API refused to start the bot")]
    Telegram(#[source] teloxide::RequestError),
    /// The webhook server could not listen.
    #[error("cannot listen for webhooks on {0}")]
    Listen(std::net::SocketAddr, #[source] std::io::Error),
}

/// The bot's commands. `/help` and Telegram's command menu take their descriptions from
/// [`menu`] (localised); the doc comments here are for readers of the code.
#[derive(BotCommands, Clone, Debug, PartialEq, Eq)]
#[command(rename_rule = "lowercase")]
pub enum Command {
    /// what this bot does
    Start,
    /// the commands
    Help,
    /// @channel: start collecting a channel (admins)
    Add(String),
    /// @channel: stop collecting a channel, after confirmation (admins)
    Remove(String),
    /// the watched channels: members, the day's change, last sample
    List,
    /// @channel [days]: summary and chart (default 30 days)
    Stats(String),
    /// @a @b .. [days]: 2 to 10 channels side by side, indexed growth
    Compare(String),
    /// @channel [days]: who forwards and mentions the channel, whom it does (default 30 days)
    Mentions(String),
    /// @channel [parquet|csv] [days] [members|views|posts|samples]: a file
    Export(String),
    /// storage, sources' last success and lag, recent samples
    Health,
    /// user_id: give a user the read-only viewer role (admins)
    Grant(String),
    /// user_id: take the viewer role back (admins)
    Revoke(String),
    /// who has the viewer role (admins)
    Viewers,
    /// open alerts; on|off for yourself; set, mute, on|off per channel (admins)
    Alerts(String),
    /// on|off: the weekly and monthly reports
    Reports(String),
    /// en|ru|auto: the bot's language
    Lang(String),
}

impl Command {
    /// The command's name, as the `command` label of `tgpulse_bot_reply_seconds`.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Start => "start",
            Self::Help => "help",
            Self::Add(_) => "add",
            Self::Remove(_) => "remove",
            Self::List => "list",
            Self::Stats(_) => "stats",
            Self::Compare(_) => "compare",
            Self::Mentions(_) => "mentions",
            Self::Export(_) => "export",
            Self::Health => "health",
            Self::Grant(_) => "grant",
            Self::Revoke(_) => "revoke",
            Self::Viewers => "viewers",
            Self::Alerts(_) => "alerts",
            Self::Reports(_) => "reports",
            Self::Lang(_) => "lang",
        }
    }
}

/// The command menu and `/help` list in `lang`: (command, description), in the order of
/// [`Command`]. Published to Telegram per language (`setMyCommands` with `language_code`).
pub fn menu(lang: Lang) -> Vec<(&'static str, String)> {
    vec![
        ("start", t!(lang, "cmd-start")),
        ("help", t!(lang, "cmd-help")),
        ("add", t!(lang, "cmd-add")),
        ("remove", t!(lang, "cmd-remove")),
        ("list", t!(lang, "cmd-list")),
        ("stats", t!(lang, "cmd-stats")),
        ("compare", t!(lang, "cmd-compare")),
        ("mentions", t!(lang, "cmd-mentions")),
        ("export", t!(lang, "cmd-export")),
        ("health", t!(lang, "cmd-health")),
        ("grant", t!(lang, "cmd-grant")),
        ("revoke", t!(lang, "cmd-revoke")),
        ("viewers", t!(lang, "cmd-viewers")),
        ("alerts", t!(lang, "cmd-alerts")),
        ("reports", t!(lang, "cmd-reports")),
        ("lang", t!(lang, "cmd-lang")),
    ]
}

fn bot_commands(lang: Lang) -> Vec<BotCommand> {
    menu(lang)
        .into_iter()
        .map(|(name, description)| BotCommand::new(name, description))
        .collect()
}

/// Publishes the command menu: English as the default, Russian for every Telegram language
/// that gets Russian replies (`ru`, `uk`, `be`, `kk`). A failure is logged; the bot works
/// without a menu.
async fn publish_menu(bot: &TgBot) {
    if let Err(e) = bot.set_my_commands(bot_commands(Lang::default())).await {
        tracing::warn!(error = %e, "could not publish the command menu");
    }
    for lang in Lang::ALL {
        for code in lang.telegram_codes() {
            let req = bot.set_my_commands(bot_commands(lang)).language_code(*code);
            if let Err(e) = req.await {
                tracing::warn!(language = code, error = %e, "could not publish the command menu");
            }
        }
    }
}

/// The menu of one private chat after `/lang`: `Some(lang)` pins that language's menu to the
/// chat; `None` (`/lang auto`) removes the pin, so the per-language menus apply again. A
/// failure is logged.
pub(crate) async fn pin_menu(bot: &TgBot, chat: ChatId, lang: Option<Lang>) {
    let scope = BotCommandScope::Chat {
        chat_id: Recipient::Id(chat),
    };
    let result = match lang {
        Some(l) => bot.set_my_commands(bot_commands(l)).scope(scope).await,
        None => bot.delete_my_commands().scope(scope).await,
    };
    if let Err(e) = result {
        tracing::warn!(chat = chat.0, error = %e, "could not set the chat's command menu");
    }
}

/// Shared state of the handlers.
pub(crate) struct Ctx {
    db: Db,
    engine: Engine,
    /// The engine of `/export` (no statement timeout).
    export_engine: Engine,
    clock: SharedClock,
    admins: HashSet<u64>,
    resolver: Option<Arc<dyn Resolver>>,
    resolver_name: String,
    limiter: DefaultKeyedRateLimiter<u64>,
    warned: Mutex<HashMap<u64, Instant>>,
    queries: Semaphore,
    work_dir: PathBuf,
    max_upload: u64,
    /// Users with an export running (at most one each).
    exporting: Mutex<HashSet<u64>>,
    /// Bytes of exports a viewer may receive per UTC day.
    export_quota: u64,
    /// The exports running in the background; awaited at shutdown.
    tasks: TaskTracker,
    /// Cancelled at shutdown: running exports stop.
    stop: CancellationToken,
    /// Drawn charts, for the next reader of the same picture.
    charts: ChartCache,
}

impl std::fmt::Debug for Ctx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ctx")
            .field("admins", &self.admins.len())
            .field("resolver", &self.resolver_name)
            .finish_non_exhaustive()
    }
}

impl Ctx {
    /// The service clock's time: captions, ages and button expiry use it.
    fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }
}

/// Runs the bot until `shutdown` is cancelled. `db` runs the commands' queries and the bot's
/// state (give it a pool with a `statement_timeout`); `exports` streams `/export` files, which
/// can take minutes and pause while a part uploads (give it a pool without one). `resolver`
/// resolves `/add @handle`; `clock` dates captions and decides when buttons expire.
///
/// errors: `Error::Config` without a token or admins; `Error::Telegram` if `getMe` (or
/// `setWebhook`) fails; `Error::Listen` if the webhook address is taken.
pub async fn run(
    db: Db,
    exports: Db,
    cfg: &BotConfig,
    resolver: Option<Arc<dyn Resolver>>,
    clock: SharedClock,
    shutdown: CancellationToken,
) -> Result<(), Error> {
    run_with_first(db, exports, cfg, resolver, clock, shutdown, None).await
}

/// [`run`], with `first` tried before the bot's own handler tree, inside the same panic guard.
/// For tests that need a handler the bot does not have (one that panics, say).
#[doc(hidden)]
pub async fn run_with_first(
    db: Db,
    exports: Db,
    cfg: &BotConfig,
    resolver: Option<Arc<dyn Resolver>>,
    clock: SharedClock,
    shutdown: CancellationToken,
    first: Option<UpdateHandler<BoxError>>,
) -> Result<(), Error> {
    let token = cfg.check().map_err(Error::Config)?;
    let bot: TgBot = Bot::new(token.expose())
        .set_api_url(cfg.api_url.clone())
        .cache_me()
        .throttle(Limits {
            // teloxide's default of 20/min is Telegram's limit for groups (kept below); a
            // private chat may take one message a second.
            messages_per_min_chat: 60,
            ..Limits::default()
        });
    let me = bot.get_me().await.map_err(Error::Telegram)?;
    publish_menu(&bot).await;
    let per_minute = NonZeroU32::new(cfg.user_per_minute.max(1)).unwrap_or(NonZeroU32::MIN);
    let burst = NonZeroU32::new(cfg.user_burst.max(1)).unwrap_or(NonZeroU32::MIN);
    let ctx = Arc::new(Ctx {
        engine: Engine::new(db.clone()),
        export_engine: Engine::new(exports),
        db,
        clock,
        admins: cfg.admin_ids.iter().copied().collect(),
        resolver_name: cfg.resolve_via.clone(),
        resolver,
        limiter: RateLimiter::keyed(Quota::per_minute(per_minute).allow_burst(burst)),
        warned: Mutex::default(),
        queries: Semaphore::new(cfg.max_queries.max(1)),
        work_dir: cfg.work_dir.clone().unwrap_or_else(std::env::temp_dir),
        max_upload: cfg.max_upload,
        exporting: Mutex::default(),
        export_quota: cfg.export_quota,
        tasks: TaskTracker::new(),
        stop: shutdown.child_token(),
        charts: ChartCache::default(),
    });
    std::fs::create_dir_all(&ctx.work_dir)
        .map_err(|e| Error::Config(format!("bot work folder {}: {e}", ctx.work_dir.display())))?;
    let tree = match first {
        Some(first) => dptree::entry().branch(first).branch(schema::schema()),
        None => schema::schema(),
    };
    let mut dispatcher = Dispatcher::builder(bot.clone(), guard::guarded(tree))
        .dependencies(dptree::deps![Arc::clone(&ctx)])
        .default_handler(|_| async {})
        .error_handler(LoggingErrorHandler::with_custom_text(
            "a bot handler failed",
        ))
        .build();
    // Alerts queued by the evaluations go out through the same throttle as every reply.
    ctx.tasks
        .spawn(alerts::delivery_loop(bot.clone(), Arc::clone(&ctx)));
    let stopper = tokio::spawn({
        let token = dispatcher.shutdown_token();
        async move {
            shutdown.cancelled().await;
            // The dispatcher refuses to shut down before it has started; retry until it has.
            loop {
                match token.shutdown() {
                    Ok(done) => break done.await,
                    Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
                }
            }
        }
    });
    tracing::info!(
        bot = %me.username(),
        mode = if cfg.webhook_url.is_some() { "webhook" } else { "long polling" },
        "bot started"
    );
    let errors = LoggingErrorHandler::with_custom_text("the update listener failed");
    match &cfg.webhook_url {
        None => {
            let listener = Polling::builder(bot.clone())
                .timeout(Duration::from_secs(25))
                .delete_webhook()
                .await
                .build();
            dispatcher.dispatch_with_listener(listener, errors).await;
        }
        Some(url) => {
            let mut options = webhooks::Options::new(cfg.webhook_listen, url.clone());
            if let Some(secret) = &cfg.webhook_secret {
                options = options.secret_token(secret.expose().to_owned());
            }
            let tcp = tokio::net::TcpListener::bind(cfg.webhook_listen)
                .await
                .map_err(|e| Error::Listen(cfg.webhook_listen, e))?;
            let (listener, stop, router) = webhooks::axum_to_router(bot.clone(), options)
                .await
                .map_err(Error::Telegram)?;
            let server = tokio::spawn(async move {
                if let Err(e) = axum::serve(tcp, router).with_graceful_shutdown(stop).await {
                    tracing::error!(error = %e, "the webhook server stopped");
                }
            });
            dispatcher.dispatch_with_listener(listener, errors).await;
            let _ = server.await;
        }
    }
    stopper.abort();
    // Exports still running stop (their files are deleted) before the bot reports stopped.
    ctx.stop.cancel();
    ctx.tasks.close();
    ctx.tasks.wait().await;
    tracing::info!("bot stopped");
    Ok(())
}
