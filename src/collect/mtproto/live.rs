//! The live MTProto source (cargo feature `mtproto`): a Telegram user account driven by
//! grammers. `contacts.resolveUsername` resolves handles, `channels.getFullChannel` reads
//! members and `messages.getHistory` reads post counters, forward headers and text entities;
//! the answers are converted into the recorded forms of the parent module and mapped to
//! samples and mentions there.
//!
//! The login (auth key, home data centre) lives in a JSON session file created by
//! [`login`] with mode 0600; a session file readable by others is refused. Every request goes
//! through the source's [`Limits`]; grammers itself never sleeps through a `FLOOD_WAIT`.

use std::collections::HashMap;
use std::fmt;
use std::fs;
use std::io::{self, Read, Write};
use std::num::NonZeroU32;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex as StdMutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use grammers_client::sender::{AutoSleep, ConnectionParams, InvocationError, SenderPool};
use grammers_client::session::types::{DcOption, PeerId, PeerInfo, UpdateState, UpdatesState};
use grammers_client::session::{BoxFuture, Session, SessionData};
use grammers_client::{Client, SignInError, tl};
use serde::{Deserialize, Serialize};
use tokio::sync::Mutex;

use super::{
    AnyMessage, ChannelFull, Message, MessageEntity, MessageFwdHeader, MessageReactions,
    MessageReplies, Peer, ReactionCount,
};
use crate::collect::{ChannelInfo, Limits, Poll, SourceError, Target};
use crate::config::Secret;
use crate::domain::{ChannelId, Handle};
use crate::ingest::{ChannelSeen, Record};

const LOGIN_HINT: &str = "run `tgpulse login`";
/// Messages per `messages.getHistory` page (the server's maximum).
const PAGE: i32 = 100;
/// History pages read per `posts` call at most (2,000 messages).
const MAX_PAGES: usize = 20;

/// The session: home data centre and data centres with their auth keys (hex in the file).
/// Peers and update state are not kept: requests name channels by access hash and updates
/// are never read.
#[derive(Serialize, Deserialize)]
struct Stored {
    home_dc: i32,
    dc_options: HashMap<i32, DcOption>,
}

/// A grammers session persisted as JSON; each change is written atomically (`<path>.tmp`,
/// created with mode 0600, then renamed over the file).
struct FileSession {
    path: PathBuf,
    data: StdMutex<Stored>,
}

impl fmt::Debug for FileSession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FileSession").finish_non_exhaustive()
    }
}

impl FileSession {
    /// Reads the session file; a missing file gives a fresh session unless `must_exist`.
    ///
    /// errors: `Unauthorized` if the file is missing (with `must_exist`), accessible to group
    /// or others, or not a session; `Unavailable` if it cannot be read.
    fn open(path: &Path, must_exist: bool) -> Result<Self, SourceError> {
        let unreadable = |e: io::Error| SourceError::Unavailable(format!("session file: {e}"));
        let data = match fs::File::open(path) {
            Ok(mut file) => {
                let mode = file.metadata().map_err(unreadable)?.permissions().mode();
                if mode & 0o077 != 0 {
                    let m = mode & 0o777;
                    let e = format!("the session file has mode {m:o}; run `chmod 600` on it");
                    return Err(SourceError::Unauthorized(e));
                }
                let mut bytes = Vec::new();
                file.read_to_end(&mut bytes).map_err(unreadable)?;
                serde_json::from_slice(&bytes).map_err(|e| {
                    SourceError::Unauthorized(format!("invalid session file ({e}); {LOGIN_HINT}"))
                })?
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound && !must_exist => {
                let d = SessionData::default();
                Stored {
                    home_dc: d.home_dc,
                    dc_options: d.dc_options,
                }
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                let e = format!("no MTProto session file; {LOGIN_HINT}");
                return Err(SourceError::Unauthorized(e));
            }
            Err(e) => return Err(unreadable(e)),
        };
        let path = path.to_owned();
        Ok(Self {
            path,
            data: StdMutex::new(data),
        })
    }

    fn lock(&self) -> io::Result<MutexGuard<'_, Stored>> {
        self.data
            .lock()
            .map_err(|_| io::Error::other("session lock poisoned"))
    }

    /// Applies `f` and, if it reports a change, writes the file (under the lock, so writes
    /// never interleave).
    fn update(&self, f: impl FnOnce(&mut Stored) -> bool) -> io::Result<()> {
        let mut d = self.lock()?;
        if !f(&mut d) {
            return Ok(());
        }
        let json = serde_json::to_vec(&*d).map_err(io::Error::other)?;
        let mut tmp = self.path.clone().into_os_string();
        tmp.push(".tmp");
        match fs::remove_file(&tmp) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
        let mut options = fs::OpenOptions::new();
        let mut file = options
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        file.write_all(&json)?;
        file.sync_all()?;
        fs::rename(&tmp, &self.path)
    }
}

impl Session for FileSession {
    type Error = io::Error;

    fn home_dc_id(&self) -> io::Result<i32> {
        Ok(self.lock()?.home_dc)
    }

    fn set_home_dc_id(&self, dc_id: i32) -> BoxFuture<'_, io::Result<()>> {
        Box::pin(async move { self.update(|d| std::mem::replace(&mut d.home_dc, dc_id) != dc_id) })
    }

    fn dc_option(&self, dc_id: i32) -> io::Result<Option<DcOption>> {
        Ok(self.lock()?.dc_options.get(&dc_id).cloned())
    }

    fn set_dc_option(&self, o: &DcOption) -> BoxFuture<'_, io::Result<()>> {
        let o = o.clone();
        Box::pin(async move { self.update(|d| d.dc_options.insert(o.id, o.clone()) != Some(o)) })
    }

    fn peer(&self, _: PeerId) -> BoxFuture<'_, io::Result<Option<PeerInfo>>> {
        Box::pin(async { Ok(None) })
    }

    fn cache_peer(&self, _: PeerInfo) -> BoxFuture<'_, io::Result<()>> {
        Box::pin(async { Ok(()) })
    }

    fn updates_state(&self) -> BoxFuture<'_, io::Result<UpdatesState>> {
        Box::pin(async { Ok(UpdatesState::default()) })
    }

    fn set_update_state(&self, _: UpdateState) -> BoxFuture<'_, io::Result<()>> {
        Box::pin(async { Ok(()) })
    }
}

/// Opens the session and starts a client on it (connections are made on the first request).
fn start(
    session: &Path,
    api_id: i32,
    must_exist: bool,
) -> Result<(Client, Arc<FileSession>), SourceError> {
    let store = Arc::new(FileSession::open(session, must_exist)?);
    // Every FLOOD_WAIT above 0 s reaches `Limits`; an I/O error gets one reconnect after 1 s.
    let retry_policy = Box::new(AutoSleep {
        tries: NonZeroU32::MIN,
        threshold: Duration::ZERO,
        io_errors_as_flood_of: Some(Duration::from_secs(1)),
    });
    let params = ConnectionParams {
        retry_policy,
        ..Default::default()
    };
    let pool = SenderPool::with_configuration(Arc::clone(&store), api_id, params);
    drop(pool.updates); // updates are never read
    tokio::spawn(pool.runner.run());
    Ok((Client::new(pool.handle), store))
}

/// Maps a grammers error of request `what` to a [`SourceError`].
fn classify(what: &str, e: &InvocationError) -> SourceError {
    use SourceError::{Malformed, NotFound, Rejected, Unauthorized, Unavailable};
    const GONE: [&str; 4] = [
        "USERNAME_NOT_OCCUPIED",
        "USERNAME_INVALID",
        "CHANNEL_PRIVATE",
        "CHANNEL_INVALID",
    ];
    match e {
        InvocationError::Rpc(r) => {
            let name = r.name.as_str();
            match r.code {
                _ if GONE.contains(&name) => NotFound(format!("{what}: {name}")),
                401 => Unauthorized(format!("{what}: {name}; {LOGIN_HINT}")),
                c if c >= 500 || c == -503 => Unavailable(format!("{what}: {c} {name}")),
                c => super::flood_wait(name, r.value)
                    .unwrap_or_else(|| Rejected(format!("{what}: {c} {name}"))),
            }
        }
        // Transport status 404: the server does not know the session's auth key.
        InvocationError::Transport(t) if t.to_string().ends_with("-404)") => Unauthorized(format!(
            "{what}: auth key unknown to Telegram; {LOGIN_HINT}"
        )),
        InvocationError::Session(s) => Unavailable(format!("{what}: session file: {s}")),
        InvocationError::Deserialize(_) => Malformed(format!("{what}: {e}")),
        InvocationError::Io(_)
        | InvocationError::Transport(_)
        | InvocationError::Dropped(_)
        | InvocationError::InvalidDc
        | InvocationError::Authentication(_) => Unavailable(format!("{what}: {e}")),
    }
}

/// `message`, `messageService` or `messageEmpty` in the recorded form.
fn to_recorded_message(m: &tl::enums::Message) -> AnyMessage {
    use tl::enums::{MessageReactions as Reactions, MessageReplies as Replies};
    let m = match m {
        tl::enums::Message::Message(m) => m,
        tl::enums::Message::Service(s) => return AnyMessage::Service { id: s.id },
        tl::enums::Message::Empty(e) => return AnyMessage::Empty { id: e.id },
    };
    let count = |tl::enums::ReactionCount::Count(c): &_| ReactionCount { count: c.count };
    AnyMessage::Message(Message {
        id: m.id,
        date: m.date,
        views: m.views,
        forwards: m.forwards,
        replies: m
            .replies
            .as_ref()
            .map(|Replies::Replies(r)| MessageReplies { replies: r.replies }),
        reactions: m
            .reactions
            .as_ref()
            .map(|Reactions::Reactions(r)| MessageReactions {
                results: r.results.iter().map(count).collect(),
            }),
        message: m.message.clone(),
        fwd_from: m.fwd_from.as_ref().map(to_recorded_fwd),
        entities: m
            .entities
            .iter()
            .flatten()
            .filter_map(to_recorded_entity)
            .collect(),
    })
}

/// `messageFwdHeader` in the recorded form.
fn to_recorded_fwd(h: &tl::enums::MessageFwdHeader) -> MessageFwdHeader {
    let tl::enums::MessageFwdHeader::Header(h) = h;
    let peer = |p: &tl::enums::Peer| match p {
        tl::enums::Peer::Channel(c) => Peer::Channel {
            channel_id: c.channel_id,
        },
        tl::enums::Peer::User(u) => Peer::User { user_id: u.user_id },
        tl::enums::Peer::Chat(c) => Peer::Chat { chat_id: c.chat_id },
    };
    MessageFwdHeader {
        from_id: h.from_id.as_ref().map(peer),
        from_name: h.from_name.clone(),
        date: h.date,
        channel_post: h.channel_post,
    }
}

/// `messageEntityMention`, `messageEntityUrl` and `messageEntityTextUrl` in the recorded form;
/// `None` for the other kinds (the mapping reads no others).
fn to_recorded_entity(e: &tl::enums::MessageEntity) -> Option<MessageEntity> {
    use tl::enums::MessageEntity as E;
    Some(match e {
        E::Mention(x) => MessageEntity::Mention {
            offset: x.offset,
            length: x.length,
        },
        E::Url(x) => MessageEntity::Url {
            offset: x.offset,
            length: x.length,
        },
        E::TextUrl(x) => MessageEntity::TextUrl {
            offset: x.offset,
            length: x.length,
            url: x.url.clone(),
        },
        _ => return None,
    })
}

/// `channelFull` in the recorded form.
fn to_recorded_full(f: &tl::types::ChannelFull) -> ChannelFull {
    ChannelFull {
        id: f.id,
        participants_count: f.participants_count,
    }
}

/// The channel object with id `id` among `chats` (full objects only, not `min` ones).
fn find_channel(chats: Vec<tl::enums::Chat>, id: i64) -> Option<tl::types::Channel> {
    chats.into_iter().find_map(|c| match c {
        tl::enums::Chat::Channel(ch) if ch.id == id && !ch.min => Some(ch),
        _ => None,
    })
}

/// The channel's public handle: `username`, else its first active collectible username.
fn channel_handle(ch: &tl::types::Channel) -> Option<Handle> {
    let extra = ch
        .usernames
        .iter()
        .flatten()
        .filter_map(|tl::enums::Username::Username(u)| u.active.then_some(u.username.as_str()));
    let mut names = ch.username.as_deref().into_iter().chain(extra);
    names.find_map(|u| u.parse().ok())
}

/// The MTProto source: one logged-in user account. Disconnects when dropped.
pub(crate) struct Mtproto {
    client: Client,
    session: PathBuf,
    /// Resolved handles: handle → (bare channel id, access hash).
    peers: Mutex<HashMap<Handle, (i64, i64)>>,
    limits: Arc<Limits>,
}

impl fmt::Debug for Mtproto {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Mtproto");
        d.field("session", &self.session)
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

impl Drop for Mtproto {
    fn drop(&mut self) {
        self.client.disconnect();
    }
}

/// Opens the session written by [`login`] and checks that it is logged in (`updates.getState`).
/// `api_hash` is only needed to log in; it is accepted so both take the same settings.
///
/// errors: `Unauthorized` (with the hint to run `tgpulse login`) when the session file is
/// missing, accessible to others or not logged in; otherwise as [`Limits::call`] reports.
pub(crate) async fn connect(
    session: &Path,
    api_id: i32,
    _api_hash: &Secret,
    limits: Arc<Limits>,
) -> Result<Mtproto, SourceError> {
    let (client, _) = start(session, api_id, true)?;
    let what = "updates.getState";
    let authorized = limits.call(what, || async {
        client.is_authorized().await.map_err(|e| classify(what, &e))
    });
    let e = match authorized.await {
        Ok(true) => {
            let peers = Mutex::default();
            return Ok(Mtproto {
                client,
                session: session.to_owned(),
                peers,
                limits,
            });
        }
        Ok(false) => SourceError::Unauthorized(format!("the session is logged out; {LOGIN_HINT}")),
        Err(e) => e,
    };
    client.disconnect();
    Err(e)
}

impl Mtproto {
    /// Invokes `req` under the limits.
    async fn rpc<R>(&self, what: &'static str, req: &R) -> Result<R::Return, SourceError>
    where
        R: tl::RemoteCall + Sync,
        R::Return: Send,
    {
        let call = || async {
            self.client
                .invoke(req)
                .await
                .map_err(|e| classify(what, &e))
        };
        self.limits.call(what, call).await
    }

    /// `contacts.resolveUsername`: the channel and its access hash (now cached).
    ///
    /// errors: `NotFound` for an unknown handle, a user, a bot or a group.
    async fn resolve_channel(&self, handle: &Handle) -> Result<(ChannelInfo, i64), SourceError> {
        let (what, username) = ("contacts.resolveUsername", handle.as_str().to_owned());
        let req = tl::functions::contacts::ResolveUsername {
            username,
            referer: None,
        };
        let tl::enums::contacts::ResolvedPeer::Peer(rp) = self.rpc(what, &req).await?;
        let tl::enums::Peer::Channel(pc) = rp.peer else {
            return Err(SourceError::NotFound(format!(
                "{handle} is a user, not a channel"
            )));
        };
        let malformed = || SourceError::Malformed(format!("{what}: {handle}: no valid channel"));
        let ch = find_channel(rp.chats, pc.channel_id).ok_or_else(malformed)?;
        if !ch.broadcast {
            return Err(SourceError::NotFound(format!(
                "{handle} is a group, not a channel"
            )));
        }
        let access_hash = ch.access_hash.ok_or_else(malformed)?;
        let info = ChannelInfo {
            channel_id: ChannelId::new(ch.id).map_err(|_| malformed())?,
            handle: channel_handle(&ch).or_else(|| Some(handle.clone())),
            title: Some(ch.title),
        };
        let peer = (info.channel_id.get(), access_hash);
        self.peers.lock().await.insert(handle.clone(), peer);
        Ok((info, access_hash))
    }

    /// Channel id and access hash of `t`, resolved through its handle (once).
    ///
    /// errors: `NotFound` without a handle or when the handle now names another channel.
    async fn peer(&self, t: &Target) -> Result<(i64, i64), SourceError> {
        let handle = t.require_handle()?;
        let cached = self.peers.lock().await.get(handle).copied();
        let (id, hash) = match cached {
            Some(p) => p,
            None => self
                .resolve_channel(handle)
                .await
                .map(|(i, h)| (i.channel_id.get(), h))?,
        };
        if id != t.channel_id.get() {
            let e = format!("{handle} now names channel {id}, not {}", t.channel_id);
            return Err(SourceError::NotFound(e));
        }
        Ok((id, hash))
    }
}

#[async_trait]
impl Poll for Mtproto {
    fn name(&self) -> &str {
        "mtproto"
    }

    fn reads_posts(&self) -> bool {
        true
    }

    async fn resolve(&self, handle: &Handle) -> Result<ChannelInfo, SourceError> {
        Ok(self.resolve_channel(handle).await?.0)
    }

    async fn members(&self, t: &Target) -> Result<Vec<Record>, SourceError> {
        let (channel_id, access_hash) = self.peer(t).await?;
        let channel = tl::types::InputChannel {
            channel_id,
            access_hash,
        }
        .into();
        let req = tl::functions::channels::GetFullChannel { channel };
        let what = "channels.getFullChannel";
        let tl::enums::messages::ChatFull::Full(full) = self.rpc(what, &req).await?;
        let observed_at = Utc::now();
        let tl::enums::ChatFull::ChannelFull(cf) = &full.full_chat else {
            return Err(SourceError::Malformed(format!("{what}: not a channelFull")));
        };
        let full_form = to_recorded_full(cf);
        let mut out = vec![super::member_sample(t.channel_id, &full_form, observed_at)?];
        if let Some(ch) = find_channel(full.chats, channel_id) {
            out.push(Record::Channel(ChannelSeen {
                channel_id: t.channel_id,
                handle: channel_handle(&ch),
                title: Some(ch.title),
                seen_at: observed_at,
            }));
        }
        Ok(out)
    }

    /// Reads history pages of 100 messages, newest first, until a page reaches before `since`,
    /// the history ends or 20 pages (2,000 messages) were read.
    async fn posts(&self, t: &Target, since: DateTime<Utc>) -> Result<Vec<Record>, SourceError> {
        use tl::enums::messages::Messages as M;
        let (channel_id, access_hash) = self.peer(t).await?;
        let peer: tl::enums::InputPeer = tl::types::InputPeerChannel {
            channel_id,
            access_hash,
        }
        .into();
        let (mut out, mut offset_id) = (Vec::new(), 0);
        for _ in 0..MAX_PAGES {
            let req = tl::functions::messages::GetHistory {
                peer: peer.clone(),
                offset_id,
                offset_date: 0,
                add_offset: 0,
                limit: PAGE,
                max_id: 0,
                min_id: 0,
                hash: 0,
            };
            let (messages, whole) = match self.rpc("messages.getHistory", &req).await? {
                M::Messages(m) => (m.messages, true),
                M::Slice(m) => (m.messages, false),
                M::ChannelMessages(m) => (m.messages, false),
                M::NotModified(_) => (Vec::new(), true),
            };
            let observed_at = Utc::now();
            let page: Vec<AnyMessage> = messages.iter().map(to_recorded_message).collect();
            out.extend(super::post_samples(
                t.channel_id,
                &page,
                since,
                observed_at,
            )?);
            out.extend(super::mentions(
                t.channel_id,
                t.handle.as_ref(),
                &page,
                since,
            )?);
            let before_since =
                super::oldest_date(&page).is_some_and(|d| i64::from(d) < since.timestamp());
            let oldest_id = page.iter().map(|m| match m {
                AnyMessage::Message(Message { id, .. })
                | AnyMessage::Service { id }
                | AnyMessage::Empty { id } => *id,
            });
            match oldest_id.min() {
                Some(id) if !whole && !before_since && id > 1 => offset_id = id,
                _ => break,
            }
        }
        Ok(out)
    }
}

/// Logs the account in (phone, login code, then the 2FA password if the account has one) and
/// saves the session file with mode 0600 (its folder is created with mode 0700 if missing);
/// a session that is already logged in is kept. `read_code` and `read_password` (given the
/// password hint) block while the user types. Neither the session nor the inputs are logged.
///
/// errors: `Rejected` for an unknown phone number, a wrong code or a refused request;
/// `Unauthorized` after three wrong passwords; `RateLimited` when Telegram asks to wait;
/// `Unavailable` when Telegram or the session file cannot be reached.
pub(crate) async fn login(
    session: &Path,
    api_id: i32,
    api_hash: &Secret,
    phone: &str,
    read_code: impl Fn() -> String,
    read_password: impl Fn(Option<String>) -> String,
) -> Result<(), SourceError> {
    let unavailable = |e: io::Error| SourceError::Unavailable(format!("session file: {e}"));
    if let Some(dir) = session.parent().filter(|d| !d.as_os_str().is_empty()) {
        let mut builder = fs::DirBuilder::new();
        builder
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(unavailable)?;
    }
    // grammers writes the session (mode 0600) as soon as it creates the auth key.
    let (client, store) = start(session, api_id, false)?;
    let result = sign_in(&client, api_hash, phone, read_code, read_password).await;
    client.disconnect();
    result?;
    store.update(|_| true).map_err(unavailable)
}

async fn sign_in(
    client: &Client,
    api_hash: &Secret,
    phone: &str,
    read_code: impl Fn() -> String,
    read_password: impl Fn(Option<String>) -> String,
) -> Result<(), SourceError> {
    let refused = |what: &str, e: SignInError| match e {
        SignInError::SignUpRequired => SourceError::Rejected("no account uses this number".into()),
        SignInError::InvalidCode => SourceError::Rejected("the login code is wrong".into()),
        SignInError::InvalidPassword(_) => SourceError::Unauthorized("wrong password".into()),
        SignInError::PasswordRequired(_) => SourceError::Rejected("a password is needed".into()),
        SignInError::Other(e) => classify(what, &e),
    };
    let what = "updates.getState";
    if client
        .is_authorized()
        .await
        .map_err(|e| classify(what, &e))?
    {
        return Ok(());
    }
    let token = client.request_login_code(phone, api_hash.expose()).await;
    let token = token.map_err(|e| classify("auth.sendCode", &e))?;
    let mut password = match client.sign_in(&token, read_code().trim()).await {
        Ok(_) => return Ok(()),
        Err(SignInError::PasswordRequired(p)) => p,
        Err(e) => return Err(refused("auth.signIn", e)),
    };
    for attempt in 1.. {
        let typed = read_password(password.hint().map(str::to_owned));
        match client
            .check_password(password, typed.trim_end_matches(['\r', '\n']))
            .await
        {
            Ok(_) => break,
            Err(SignInError::InvalidPassword(again)) if attempt < 3 => password = again,
            Err(e) => return Err(refused("auth.checkPassword", e)),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_map_to_source_errors() {
        let rpc = |code, name: &str, value| {
            let (name, caused_by) = (name.to_owned(), None);
            let e = grammers_client::sender::RpcError {
                code,
                name,
                value,
                caused_by,
            };
            classify("x", &InvocationError::Rpc(e))
        };
        let wait = SourceError::RateLimited(Duration::from_secs(31));
        assert_eq!(rpc(420, "FLOOD_WAIT", Some(31)), wait);
        assert!(matches!(
            rpc(400, "USERNAME_NOT_OCCUPIED", None),
            SourceError::NotFound(_)
        ));
        assert!(matches!(
            rpc(400, "CHANNEL_PRIVATE", None),
            SourceError::NotFound(_)
        ));
        assert!(matches!(
            rpc(401, "SESSION_REVOKED", None),
            SourceError::Unauthorized(_)
        ));
        assert!(matches!(
            rpc(500, "INTERDC_CALL_ERROR", Some(2)),
            SourceError::Unavailable(_)
        ));
        assert!(matches!(
            rpc(400, "PEER_ID_INVALID", None),
            SourceError::Rejected(_)
        ));
        let io = InvocationError::Io(io::ErrorKind::ConnectionReset.into());
        assert!(matches!(classify("x", &io), SourceError::Unavailable(_)));
    }

    #[test]
    fn session_file_is_private_and_round_trips() {
        let dir = std::env::temp_dir().join(format!("tgpulse-live-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let path = dir.join("session.json");
        let s = FileSession::open(&path, false).unwrap();
        s.update(|d| std::mem::replace(&mut d.home_dc, 4) != 4)
            .unwrap();
        assert_eq!(
            fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert_eq!(
            FileSession::open(&path, true)
                .unwrap()
                .home_dc_id()
                .unwrap(),
            4
        );
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        assert!(matches!(
            FileSession::open(&path, true),
            Err(SourceError::Unauthorized(_))
        ));
        let missing = FileSession::open(&dir.join("none"), true);
        assert!(matches!(missing, Err(SourceError::Unauthorized(_))));
        fs::remove_dir_all(&dir).unwrap();
    }
}
