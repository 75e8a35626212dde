//! A small fake Telegram Bot API on 127.0.0.1 (axum), speaking the documented protocol:
//! `POST /bot<token>/<Method>` with JSON or multipart bodies, `{"ok": true, "result": ..}`
//! replies. It feeds updates through `getUpdates` (long polling with `offset` confirmation,
//! as Telegram does), records every other call with its parameters and uploaded files, and
//! answers `getChat`/`getChatMemberCount` for the botapi source that resolves `/add`.
//!
//! Shared by the integration tests and `benches/bot.rs`.

#![allow(dead_code)]

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{FromRequest, Multipart, Path, Request, State};
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Json};
use serde_json::{Value, json};

/// One recorded Bot API call.
#[derive(Debug, Clone)]
pub(crate) struct Call {
    /// Method name, lower-case (`sendmessage`, `sendphoto`, ...).
    pub(crate) method: String,
    /// Parameters: JSON body, query string or multipart text fields (as strings).
    pub(crate) params: Value,
    /// Uploaded files: (field, file name, bytes).
    pub(crate) files: Vec<(String, String, Vec<u8>)>,
    /// When the call arrived.
    pub(crate) at: Instant,
    /// The message id the fake assigned, for sends.
    pub(crate) message_id: Option<i64>,
    /// Entries in the folder given to [`FakeTelegram::watch_dir`] when the call arrived.
    pub(crate) dir_entries: Option<usize>,
}

impl Call {
    /// The target chat id.
    pub(crate) fn chat(&self) -> Option<i64> {
        match &self.params["chat_id"] {
            Value::Number(n) => n.as_i64(),
            Value::String(s) => s.parse().ok(),
            _ => None,
        }
    }

    /// `text` or `caption`, whichever the call has.
    pub(crate) fn text(&self) -> String {
        self.params["text"]
            .as_str()
            .or_else(|| self.params["caption"].as_str())
            .unwrap_or("")
            .to_owned()
    }

    /// The inline keyboard's buttons as (text, callback data), row by row flattened.
    pub(crate) fn buttons(&self) -> Vec<(String, String)> {
        let markup = match &self.params["reply_markup"] {
            Value::String(s) => serde_json::from_str(s).unwrap_or(Value::Null),
            v => v.clone(),
        };
        markup["inline_keyboard"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|row| row.as_array().cloned().unwrap_or_default())
            .map(|b| {
                (
                    b["text"].as_str().unwrap_or("").to_owned(),
                    b["callback_data"].as_str().unwrap_or("").to_owned(),
                )
            })
            .collect()
    }

    /// The callback data of the button whose text starts with `prefix`.
    pub(crate) fn button(&self, prefix: &str) -> String {
        self.buttons()
            .into_iter()
            .find(|(t, _)| t.starts_with(prefix))
            .unwrap_or_else(|| panic!("no button {prefix:?} in {:?}", self.buttons()))
            .1
    }

    /// The first uploaded file's bytes.
    pub(crate) fn file(&self) -> &[u8] {
        &self.files.first().expect("an uploaded file").2
    }
}

#[derive(Default)]
struct Inner {
    pending: Mutex<Vec<(i64, Value)>>,
    handed: Mutex<HashMap<i64, Instant>>,
    calls: Mutex<Vec<Call>>,
    chats: Mutex<HashMap<String, (i64, String, i64)>>,
    notify: tokio::sync::Notify,
    next_update: AtomicI64,
    next_message: AtomicI64,
    max_poll: Mutex<Duration>,
    watch_dir: Mutex<Option<std::path::PathBuf>>,
}

/// The running fake server.
#[derive(Clone)]
pub(crate) struct FakeTelegram {
    /// Base URL, e.g. `http://127.0.0.1:41234`.
    pub(crate) url: String,
    inner: Arc<Inner>,
}

/// The bot token the tests use.
pub(crate) const TOKEN: &str = "123456:TEST-token";

impl FakeTelegram {
    /// Starts the server on an ephemeral loopback port.
    pub(crate) async fn start() -> Self {
        let inner = Arc::new(Inner {
            next_update: AtomicI64::new(1),
            next_message: AtomicI64::new(1000),
            max_poll: Mutex::new(Duration::from_millis(500)),
            ..Inner::default()
        });
        let app = Router::new()
            .route("/{token}/{method}", axum::routing::any(handle))
            .with_state(Arc::clone(&inner));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self { url, inner }
    }

    /// Queues an update (its `update_id` is assigned) and returns the id.
    pub(crate) fn push(&self, mut update: Value) -> i64 {
        let id = self.inner.next_update.fetch_add(1, Ordering::SeqCst);
        update["update_id"] = json!(id);
        self.inner.pending.lock().unwrap().push((id, update));
        self.inner.notify.notify_waiters();
        id
    }

    /// A private-chat text message from `user`.
    pub(crate) fn message(&self, user: i64, text: &str) -> i64 {
        self.message_in(user, text, None)
    }

    /// A private-chat text message from `user` whose Telegram is in `language_code` (the
    /// `from.language_code` of the update; none when `None`).
    pub(crate) fn message_in(&self, user: i64, text: &str, language_code: Option<&str>) -> i64 {
        let mid = self.inner.next_message.fetch_add(1, Ordering::SeqCst);
        let command_len = text.split_whitespace().next().unwrap_or("").len();
        let mut msg = json!({
            "message_id": mid,
            "date": chrono::Utc::now().timestamp(),
            "chat": {"id": user, "type": "private", "first_name": format!("user{user}")},
            "from": {"id": user, "is_bot": false, "first_name": format!("user{user}")},
            "text": text,
        });
        if let Some(code) = language_code {
            msg["from"]["language_code"] = json!(code);
        }
        if text.starts_with('/') {
            msg["entities"] = json!([{"type": "bot_command", "offset": 0, "length": command_len}]);
        }
        self.push(json!({ "message": msg }))
    }

    /// `user` pressing a button with `data` under the bot's message `message_id`.
    pub(crate) fn press(&self, user: i64, message_id: i64, data: &str) -> i64 {
        let id = format!(
            "cb{}",
            self.inner.next_message.fetch_add(1, Ordering::SeqCst)
        );
        self.push(json!({ "callback_query": {
            "id": id,
            "from": {"id": user, "is_bot": false, "first_name": format!("user{user}")},
            "chat_instance": "ci",
            "data": data,
            "message": {
                "message_id": message_id,
                "date": chrono::Utc::now().timestamp(),
                "chat": {"id": user, "type": "private", "first_name": format!("user{user}")},
                "from": bot_user(),
                "text": "…",
            }
        }}))
    }

    /// A channel `getChat` and `getChatMemberCount` know, by handle without `@`.
    pub(crate) fn add_chat(&self, handle: &str, id: i64, title: &str, members: i64) {
        self.inner
            .chats
            .lock()
            .unwrap()
            .insert(handle.to_ascii_lowercase(), (id, title.to_owned(), members));
    }

    /// Every call so far (not `getUpdates`).
    pub(crate) fn calls(&self) -> Vec<Call> {
        self.inner.calls.lock().unwrap().clone()
    }

    /// Calls of `method` (lower-case) to `chat`.
    pub(crate) fn to_chat(&self, method: &str, chat: i64) -> Vec<Call> {
        self.calls()
            .into_iter()
            .filter(|c| c.method == method && c.chat() == Some(chat))
            .collect()
    }

    /// Waits until at least `n` calls match `pred`, and returns the matching calls.
    ///
    /// Panics after `timeout` with what was received.
    pub(crate) async fn wait(
        &self,
        n: usize,
        timeout: Duration,
        pred: impl Fn(&Call) -> bool,
    ) -> Vec<Call> {
        let deadline = Instant::now() + timeout;
        loop {
            let hits: Vec<Call> = self.calls().into_iter().filter(|c| pred(c)).collect();
            if hits.len() >= n {
                return hits;
            }
            if Instant::now() > deadline {
                let seen: Vec<(String, Option<i64>, String)> = self
                    .calls()
                    .iter()
                    .map(|c| {
                        (
                            c.method.clone(),
                            c.chat(),
                            c.text().chars().take(120).collect(),
                        )
                    })
                    .collect();
                panic!(
                    "waited {timeout:?} for {n} calls, got {}; calls: {seen:#?}",
                    hits.len()
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits for `n` calls of `method` to `chat`.
    pub(crate) async fn wait_chat(&self, method: &str, chat: i64, n: usize) -> Vec<Call> {
        let m = method.to_owned();
        self.wait(n, Duration::from_secs(60), move |c| {
            c.method == m && c.chat() == Some(chat)
        })
        .await
    }

    /// When `getUpdates` first handed update `id` out.
    pub(crate) fn handed_at(&self, id: i64) -> Option<Instant> {
        self.inner.handed.lock().unwrap().get(&id).copied()
    }

    /// Counts the entries of `dir` at every call from now on ([`Call::dir_entries`]): what
    /// is on disk while, say, a document is being uploaded.
    pub(crate) fn watch_dir(&self, dir: &std::path::Path) {
        *self.inner.watch_dir.lock().unwrap() = Some(dir.to_path_buf());
    }

    /// Updates not yet confirmed by the bot.
    pub(crate) fn pending(&self) -> usize {
        self.inner.pending.lock().unwrap().len()
    }
}

fn bot_user() -> Value {
    json!({
        "id": 123456, "is_bot": true, "first_name": "tgpulse", "username": "tgpulse_test_bot",
        "can_join_groups": true, "can_read_all_group_messages": false,
        "supports_inline_queries": false, "can_connect_to_business": false,
        "has_main_web_app": false
    })
}

fn ok(result: Value) -> axum::response::Response {
    Json(json!({"ok": true, "result": result})).into_response()
}

fn err(code: u16, description: &str) -> axum::response::Response {
    (
        axum::http::StatusCode::from_u16(code).unwrap(),
        Json(json!({"ok": false, "error_code": code, "description": description})),
    )
        .into_response()
}

async fn params_of(req: Request) -> (Value, Vec<(String, String, Vec<u8>)>) {
    let query: HashMap<String, String> = req
        .uri()
        .query()
        .map(|q| {
            url::form_urlencoded::parse(q.as_bytes())
                .into_owned()
                .collect()
        })
        .unwrap_or_default();
    let mut params = serde_json::to_value(query).unwrap();
    let mut files = Vec::new();
    let ct = req
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    if ct.starts_with("multipart/form-data") {
        let mut mp = Multipart::from_request(req, &()).await.unwrap();
        while let Some(field) = mp.next_field().await.unwrap() {
            let name = field.name().unwrap_or("").to_owned();
            match field.file_name().map(str::to_owned) {
                Some(file) => files.push((name, file, field.bytes().await.unwrap().to_vec())),
                None => params[name] = json!(field.text().await.unwrap()),
            }
        }
    } else {
        let body = axum::body::to_bytes(req.into_body(), usize::MAX)
            .await
            .unwrap_or_else(|_| Bytes::new());
        if let Ok(Value::Object(m)) = serde_json::from_slice::<Value>(&body) {
            for (k, v) in m {
                params[k] = v;
            }
        }
    }
    (params, files)
}

async fn handle(
    State(inner): State<Arc<Inner>>,
    Path((_token, method)): Path<(String, String)>,
    req: Request,
) -> axum::response::Response {
    let method = method.to_ascii_lowercase();
    let (params, files) = params_of(req).await;
    if method == "getupdates" {
        return get_updates(&inner, &params).await;
    }
    let message_id = method
        .starts_with("send")
        .then(|| inner.next_message.fetch_add(1, Ordering::SeqCst));
    let dir_entries = inner
        .watch_dir
        .lock()
        .unwrap()
        .as_ref()
        .map(|d| std::fs::read_dir(d).map_or(0, Iterator::count));
    let call = Call {
        method: method.clone(),
        params: params.clone(),
        files,
        at: Instant::now(),
        message_id,
        dir_entries,
    };
    let chat_id = call.chat().unwrap_or(0);
    let text = call.text();
    let file_name = call.files.first().map(|f| f.1.clone()).unwrap_or_default();
    inner.calls.lock().unwrap().push(call);
    let message = |mid: i64| {
        json!({
            "message_id": mid,
            "date": chrono::Utc::now().timestamp(),
            "chat": {"id": chat_id, "type": "private", "first_name": "admin"},
            "from": bot_user(),
        })
    };
    match method.as_str() {
        "getme" => ok(bot_user()),
        "getwebhookinfo" => {
            ok(json!({"url": "", "has_custom_certificate": false, "pending_update_count": 0}))
        }
        "sendmessage" | "editmessagetext" => {
            let mid = message_id
                .or_else(|| params["message_id"].as_i64())
                .unwrap_or(1);
            let mut m = message(mid);
            m["text"] = json!(text);
            ok(m)
        }
        "sendphoto" => {
            let mut m = message(message_id.unwrap_or(1));
            m["photo"] =
                json!([{"file_id": "p", "file_unique_id": "pu", "width": 1280, "height": 760}]);
            m["caption"] = json!(text);
            ok(m)
        }
        "senddocument" => {
            let mut m = message(message_id.unwrap_or(1));
            m["document"] = json!({"file_id": "d", "file_unique_id": "du", "file_name": file_name});
            ok(m)
        }
        "getchat" | "getchatmembercount" => {
            let handle = params["chat_id"]
                .as_str()
                .unwrap_or("")
                .trim_start_matches('@')
                .to_ascii_lowercase();
            let Some((id, title, members)) = inner.chats.lock().unwrap().get(&handle).cloned()
            else {
                return err(400, "Bad Request: chat not found");
            };
            if method == "getchat" {
                ok(
                    json!({"id": -1_000_000_000_000i64 - id, "type": "channel", "title": title, "username": handle}),
                )
            } else {
                ok(json!(members))
            }
        }
        _ => ok(json!(true)),
    }
}

async fn get_updates(inner: &Inner, params: &Value) -> axum::response::Response {
    let num = |k: &str| {
        params[k]
            .as_i64()
            .or_else(|| params[k].as_str().and_then(|s| s.parse().ok()))
    };
    let offset = num("offset").unwrap_or(0);
    let limit = num("limit").unwrap_or(100).clamp(1, 100) as usize;
    let timeout = Duration::from_secs(num("timeout").unwrap_or(0).max(0) as u64);
    let max_poll = *inner.max_poll.lock().unwrap();
    let deadline = Instant::now() + timeout.min(max_poll);
    loop {
        let notified = inner.notify.notified();
        {
            let mut pending = inner.pending.lock().unwrap();
            if offset > 0 {
                pending.retain(|(id, _)| *id >= offset); // confirmed
            }
            let out: Vec<Value> = pending.iter().take(limit).map(|(_, u)| u.clone()).collect();
            if !out.is_empty() || Instant::now() >= deadline {
                let now = Instant::now();
                let mut handed = inner.handed.lock().unwrap();
                for (id, _) in pending.iter().take(limit) {
                    handed.entry(*id).or_insert(now);
                }
                return ok(Value::Array(out));
            }
        }
        tokio::select! {
            _ = notified => {}
            _ = tokio::time::sleep_until(deadline.into()) => {}
        }
    }
}
