//! Matrix transport: envelopes as custom room events through a homeserver's client-server API.
//!
//! Each envelope is armoured ([`crate::armour`]) and sent as one event of type
//! [`EVENT_TYPE`] whose content is `{"armour": "sd1:..."}`; an envelope whose armour exceeds
//! the per-event budget goes as several `sd1c:` chunk events, reassembled on receipt. The
//! homeserver stores and relays only that armour: it never sees anything the envelope does
//! not already show (its length and timing).
//!
//! # Wire behaviour, and why
//!
//! * **Event size.** A Matrix event (the whole signed PDU) is capped at 65 536 bytes. About
//!   60 000 base64 characters of content were accepted by Synapse and 80 000 refused, so
//!   [`DEFAULT_MAX_ARMOUR_PER_EVENT`] keeps each event's armour at 48 000 characters, which
//!   leaves room for the PDU's own fields (auth and prev events, hashes, signatures).
//! * **Idempotent sends.** The transaction id of each event is derived from the envelope's
//!   hash and the chunk index, so retrying a failed [`MatrixRoom::send`] never duplicates an
//!   event: the homeserver answers a repeated transaction id with the original event. Synapse
//!   remembers transaction ids per device for about 30 minutes; a retry after that may
//!   duplicate, which the replica tolerates.
//! * **Receiving.** [`MatrixRoom::receive`] long-polls `/sync` with a filter for this room and
//!   this event type, chaining `next_batch`. An incremental sync is not a complete log: when
//!   more events arrived than the timeline limit (Synapse returns at most about 100), the sync
//!   says `limited` and gives only the newest ones. The room then walks back with `/messages`
//!   from the sync's `prev_batch` until it meets an event it has already seen (or the start of
//!   the room), and then pages forward over that gap, oldest first, before delivering the
//!   sync's own events. Envelopes are therefore returned in the room's order, and the memory
//!   used is one page at a time, whatever the size of the gap. A replica that joins late does
//!   the same from the start of the room and so receives the room's whole history (rooms are
//!   created with history visibility `shared`).
//! * **Duplicates.** Events are deduplicated by event id within a bounded window
//!   ([`SEEN_CAPACITY`]); anything older may come again, which the replica tolerates. Events
//!   this client sent itself (marked by the server with `unsigned.transaction_id`) are skipped.
//! * **Untrusted input.** Any room member can put anything in the room. Events that are not
//!   valid armour are counted in [`MatrixStats::rejected_events`] and skipped; they never stop
//!   the receiver. Response bodies are read up to [`MAX_RESPONSE_BYTES`].

use std::collections::{HashSet, VecDeque};
use std::fmt;
use std::time::Duration;

use hmac::{Hmac, Mac};
use serde::Deserialize;
use serde_json::{json, Value};
use sha1::Sha1;
use thiserror::Error;
use ureq::http::Response;
use ureq::{Agent, Body, RequestBuilder};

use crate::armour::{self, ArmourError, Reassembler};
use crate::crypto::MAX_ENVELOPE_CEILING;
use crate::transport::hex;

/// Event type of an envelope event (namespaced, versioned).
pub const EVENT_TYPE: &str = "org.sealdoc.v1.envelope";

/// Default most armour characters per event.
///
/// The Matrix limit is 65 536 bytes for the whole signed event; Synapse accepted 60 000
/// characters of content and refused 80 000. 48 000 leaves about 16 KiB for the event's other
/// fields and still carries a default-sized envelope (32 KiB, 43 700 characters) in one event.
pub const DEFAULT_MAX_ARMOUR_PER_EVENT: usize = 48_000;

/// Largest response body read from the homeserver, in bytes.
///
/// A sync or page holds at most 100 events of at most 64 KiB each (6.5 MiB) plus framing; 16
/// MiB covers that with room to spare and bounds what a misbehaving server can make us buffer.
pub const MAX_RESPONSE_BYTES: u64 = 16 * 1024 * 1024;

/// How many recent event ids a room remembers to drop duplicates and to find where a gap ends.
///
/// 16 384 ids of about 45 bytes is under 1 MiB. Far more than one gap's worth of overlap.
pub const SEEN_CAPACITY: usize = 16_384;

/// Events per `/messages` page (Synapse's own cap is 1000; 100 keeps one page under 6.5 MiB).
const PAGE_LIMIT: &str = "100";

/// Most `/messages` pages walked back to find the start of one gap (a million events).
///
/// Reaching it means the server keeps handing out tokens without ever reaching the start of
/// the room or a seen event: a broken or hostile server, not a real gap.
pub const MAX_GAP_PAGES: usize = 10_000;

/// Timeout of a request that is not a long poll, by default.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Timeout for opening a TCP connection, by default.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Why a Matrix request failed.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum MatrixError {
    /// The homeserver URL is not `http://...` or `https://...`.
    #[error("invalid homeserver URL {0:?}: expected http://host[:port] or https://...")]
    BadUrl(String),
    /// An `https://` homeserver was given but the `matrix-tls` feature is off.
    #[error("https homeserver {0:?} needs the `matrix-tls` feature")]
    TlsDisabled(String),
    /// The homeserver could not be reached (connection refused or reset, DNS failure).
    #[error("cannot reach the homeserver for {endpoint}: {reason}")]
    Unreachable {
        /// The API endpoint that was called.
        endpoint: &'static str,
        /// What the network layer said.
        reason: String,
    },
    /// The request did not complete within its timeout.
    #[error("request to {endpoint} timed out")]
    Timeout {
        /// The API endpoint that was called.
        endpoint: &'static str,
    },
    /// An HTTP-level failure other than the above (protocol error, broken response).
    #[error("HTTP failure calling {endpoint}: {reason}")]
    Http {
        /// The API endpoint that was called.
        endpoint: &'static str,
        /// What the HTTP client said.
        reason: String,
    },
    /// The homeserver answered with an error status.
    #[error("homeserver refused {endpoint}: HTTP {status} {errcode}: {message}")]
    Server {
        /// The API endpoint that was called.
        endpoint: &'static str,
        /// HTTP status code.
        status: u16,
        /// Matrix error code, e.g. `M_FORBIDDEN`, `M_TOO_LARGE`, `M_LIMIT_EXCEEDED`.
        errcode: String,
        /// The server's message.
        message: String,
        /// For `M_LIMIT_EXCEEDED`: how long the server asked us to wait.
        retry_after_ms: Option<u64>,
    },
    /// A success response that did not have the expected shape.
    #[error("unexpected response from {endpoint}: {reason}")]
    BadResponse {
        /// The API endpoint that was called.
        endpoint: &'static str,
        /// What was wrong with it.
        reason: String,
    },
    /// The envelope is larger than any envelope the library produces.
    #[error("envelope of {len} bytes exceeds the limit of {max}")]
    EnvelopeTooLarge {
        /// Its length.
        len: usize,
        /// [`MAX_ENVELOPE_CEILING`].
        max: usize,
    },
    /// The envelope could not be armoured at the configured event budget.
    #[error(transparent)]
    Armour(#[from] ArmourError),
    /// A gap in the timeline did not end within [`MAX_GAP_PAGES`] pages.
    #[error("gap in the room timeline did not end within {0} pages of /messages")]
    GapTooLong(usize),
}

impl MatrixError {
    /// Whether trying again later may succeed: the server was unreachable, timed out,
    /// rate-limited us or failed internally. Sends are idempotent, so retrying is safe.
    #[must_use]
    pub fn is_transient(&self) -> bool {
        match self {
            MatrixError::Unreachable { .. }
            | MatrixError::Timeout { .. }
            | MatrixError::Http { .. } => true,
            MatrixError::Server { status, .. } => *status == 429 || *status >= 500,
            _ => false,
        }
    }
}

/// Where the homeserver is and how to talk to it.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct MatrixConfig {
    /// Base URL, e.g. `http://127.0.0.1:18008` (no trailing path).
    pub homeserver: String,
    /// Timeout of every request that is not a long poll (a long poll gets its wait on top).
    pub request_timeout: Duration,
    /// Timeout for opening a connection.
    pub connect_timeout: Duration,
    /// Most armour characters per event; larger envelopes are chunked.
    pub max_armour_per_event: usize,
    /// Timeline limit asked of `/sync`; a burst larger than this makes the sync `limited`.
    pub sync_timeline_limit: u32,
    /// Skip events this client sent itself (the server marks them).
    pub skip_own_events: bool,
}

impl MatrixConfig {
    /// Defaults for the homeserver at `homeserver`.
    #[must_use]
    pub fn new(homeserver: impl Into<String>) -> Self {
        MatrixConfig {
            homeserver: homeserver.into().trim_end_matches('/').to_owned(),
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            max_armour_per_event: DEFAULT_MAX_ARMOUR_PER_EVENT,
            sync_timeline_limit: 100,
            skip_own_events: true,
        }
    }
}

/// A logged-in Matrix user: creates, joins and invites to rooms.
pub struct MatrixClient {
    agent: Agent,
    config: MatrixConfig,
    access_token: String,
    user_id: String,
    device_id: String,
}

impl fmt::Debug for MatrixClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let MatrixClient {
            agent: _,
            config,
            access_token: _,
            user_id,
            device_id,
        } = self;
        f.debug_struct("MatrixClient")
            .field("homeserver", &config.homeserver)
            .field("user_id", user_id)
            .field("device_id", device_id)
            .finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
struct LoginResponse {
    access_token: String,
    user_id: String,
    #[serde(default)]
    device_id: String,
}

#[derive(Deserialize)]
struct NonceResponse {
    nonce: String,
}

#[derive(Deserialize)]
struct RoomIdResponse {
    room_id: String,
}

#[derive(Deserialize)]
struct ErrorBody {
    #[serde(default)]
    errcode: String,
    #[serde(default)]
    error: String,
    retry_after_ms: Option<u64>,
}

#[derive(Deserialize)]
struct SyncResponse {
    next_batch: String,
    #[serde(default)]
    rooms: Option<SyncRooms>,
}

#[derive(Deserialize)]
struct SyncRooms {
    #[serde(default)]
    join: std::collections::HashMap<String, JoinedRoom>,
}

#[derive(Deserialize)]
struct JoinedRoom {
    #[serde(default)]
    timeline: Option<Timeline>,
}

#[derive(Deserialize, Default)]
struct Timeline {
    #[serde(default)]
    events: Vec<RoomEvent>,
    #[serde(default)]
    limited: bool,
    prev_batch: Option<String>,
}

#[derive(Deserialize)]
struct MessagesResponse {
    #[serde(default)]
    chunk: Vec<RoomEvent>,
    end: Option<String>,
}

#[derive(Deserialize)]
struct RoomEvent {
    event_id: String,
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    content: Value,
    #[serde(default)]
    unsigned: Value,
}

impl RoomEvent {
    fn is_own(&self) -> bool {
        self.unsigned.get("transaction_id").is_some()
    }
}

/// HTTP method of a request.
#[derive(Clone, Copy)]
enum Method {
    Get,
    Post,
    Put,
}

/// One API request.
struct Req<'a> {
    method: Method,
    endpoint: &'static str,
    path: String,
    query: Vec<(&'static str, String)>,
    body: Option<Value>,
    auth: Option<&'a str>,
    timeout: Duration,
}

impl MatrixClient {
    /// Logs in with a password (`m.login.password`).
    ///
    /// # Errors
    ///
    /// [`MatrixError::BadUrl`] or [`MatrixError::TlsDisabled`] for the URL, the network and
    /// server errors of the login request (`M_FORBIDDEN` for a wrong password).
    pub fn login(config: MatrixConfig, user: &str, password: &str) -> Result<Self, MatrixError> {
        let agent = make_agent(&config)?;
        let body = json!({
            "type": "m.login.password",
            "identifier": {"type": "m.id.user", "user": user},
            "password": password,
            "initial_device_display_name": "sealdoc",
        });
        let r: LoginResponse = call(
            &agent,
            &config,
            Req {
                method: Method::Post,
                endpoint: "login",
                path: "/_matrix/client/v3/login".into(),
                query: vec![],
                body: Some(body),
                auth: None,
                timeout: config.request_timeout,
            },
        )?;
        Ok(MatrixClient {
            agent,
            config,
            access_token: r.access_token,
            user_id: r.user_id,
            device_id: r.device_id,
        })
    }

    /// Creates a user with Synapse's shared-secret admin API and logs it in. For tests and
    /// self-hosted setups: whoever holds the secret can create any user.
    ///
    /// # Errors
    ///
    /// As [`login`](Self::login); `M_USER_IN_USE` if the user exists.
    pub fn register_with_shared_secret(
        config: MatrixConfig,
        shared_secret: &str,
        user: &str,
        password: &str,
    ) -> Result<Self, MatrixError> {
        let agent = make_agent(&config)?;
        let path = "/_synapse/admin/v1/register".to_owned();
        let nonce: NonceResponse = call(
            &agent,
            &config,
            Req {
                method: Method::Get,
                endpoint: "admin register (nonce)",
                path: path.clone(),
                query: vec![],
                body: None,
                auth: None,
                timeout: config.request_timeout,
            },
        )?;
        // mac = HMAC-SHA1(secret, nonce \0 user \0 password \0 "notadmin"), as Synapse's
        // register_new_matrix_user computes it.
        let mut mac =
            <Hmac<Sha1> as Mac>::new_from_slice(shared_secret.as_bytes()).map_err(|_| {
                MatrixError::BadResponse {
                    endpoint: "admin register",
                    reason: "HMAC key rejected".into(),
                }
            })?;
        for (i, part) in [nonce.nonce.as_str(), user, password, "notadmin"]
            .iter()
            .enumerate()
        {
            if i > 0 {
                mac.update(b"\0");
            }
            mac.update(part.as_bytes());
        }
        let mac = hex(&mac.finalize().into_bytes());
        let body = json!({
            "nonce": nonce.nonce,
            "username": user,
            "password": password,
            "admin": false,
            "mac": mac,
        });
        let r: LoginResponse = call(
            &agent,
            &config,
            Req {
                method: Method::Post,
                endpoint: "admin register",
                path,
                query: vec![],
                body: Some(body),
                auth: None,
                timeout: config.request_timeout,
            },
        )?;
        Ok(MatrixClient {
            agent,
            config,
            access_token: r.access_token,
            user_id: r.user_id,
            device_id: r.device_id,
        })
    }

    /// The full user id, e.g. `@alice:localhost`.
    #[must_use]
    pub fn user_id(&self) -> &str {
        &self.user_id
    }

    /// The device id the server gave this login.
    #[must_use]
    pub fn device_id(&self) -> &str {
        &self.device_id
    }

    /// Creates a private room (history visible to members, including ones who join later)
    /// and invites `invite` (full user ids). Returns the room id.
    ///
    /// # Errors
    ///
    /// Network and server errors.
    pub fn create_room(&self, invite: &[&str]) -> Result<String, MatrixError> {
        let r: RoomIdResponse = self.call(Req {
            method: Method::Post,
            endpoint: "createRoom",
            path: "/_matrix/client/v3/createRoom".into(),
            query: vec![],
            body: Some(json!({
                "preset": "private_chat",
                "invite": invite,
                "initial_state": [{
                    "type": "m.room.history_visibility",
                    "state_key": "",
                    "content": {"history_visibility": "shared"},
                }],
            })),
            auth: Some(&self.access_token),
            timeout: self.config.request_timeout,
        })?;
        Ok(r.room_id)
    }

    /// Invites `user_id` to `room_id`.
    ///
    /// # Errors
    ///
    /// Network and server errors (`M_FORBIDDEN` if we may not invite).
    pub fn invite(&self, room_id: &str, user_id: &str) -> Result<(), MatrixError> {
        let _: Value = self.call(Req {
            method: Method::Post,
            endpoint: "invite",
            path: format!("/_matrix/client/v3/rooms/{}/invite", enc(room_id)),
            query: vec![],
            body: Some(json!({ "user_id": user_id })),
            auth: Some(&self.access_token),
            timeout: self.config.request_timeout,
        })?;
        Ok(())
    }

    /// Joins a room by id or alias; returns the room id.
    ///
    /// # Errors
    ///
    /// Network and server errors (`M_FORBIDDEN` without an invite to a private room).
    pub fn join(&self, room_id_or_alias: &str) -> Result<String, MatrixError> {
        let r: RoomIdResponse = self.call(Req {
            method: Method::Post,
            endpoint: "join",
            path: format!("/_matrix/client/v3/join/{}", enc(room_id_or_alias)),
            query: vec![],
            body: Some(json!({})),
            auth: Some(&self.access_token),
            timeout: self.config.request_timeout,
        })?;
        Ok(r.room_id)
    }

    /// The transport for one room this user has joined.
    #[must_use]
    pub fn into_room(self, room_id: impl Into<String>) -> MatrixRoom {
        MatrixRoom {
            client: self,
            room_id: room_id.into(),
            since: None,
            seen: SeenIds::new(SEEN_CAPACITY),
            gap: None,
            reassembler: Reassembler::default(),
            stats: MatrixStats::default(),
        }
    }

    fn call<T: serde::de::DeserializeOwned>(&self, req: Req<'_>) -> Result<T, MatrixError> {
        call(&self.agent, &self.config, req)
    }
}

/// Counters of what a [`MatrixRoom`] did, for tests and monitoring.
#[derive(Debug, Default, Clone)]
#[non_exhaustive]
pub struct MatrixStats {
    /// Events sent (chunks count one each), including idempotent retries.
    pub events_sent: u64,
    /// Envelope events received from others (after deduplication).
    pub events_received: u64,
    /// `/sync` calls that returned.
    pub syncs: u64,
    /// Syncs that came back `limited`, i.e. with a gap before their events.
    pub limited_syncs: u64,
    /// `/messages` pages fetched (both the walk back and the pages forward over a gap).
    pub gap_pages: u64,
    /// New envelope events that arrived through gap filling rather than `/sync`.
    pub backfilled_events: u64,
    /// Envelope events skipped because they were not valid armour or too large.
    pub rejected_events: u64,
}

/// The transport for one room: send envelopes, receive everyone else's.
pub struct MatrixRoom {
    client: MatrixClient,
    room_id: String,
    /// `next_batch` of the last sync, `None` before the first one.
    since: Option<String>,
    seen: SeenIds,
    /// A gap being filled, oldest page first.
    gap: Option<Gap>,
    reassembler: Reassembler,
    stats: MatrixStats,
}

impl fmt::Debug for MatrixRoom {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MatrixRoom")
            .field("client", &self.client)
            .field("room_id", &self.room_id)
            .field("filling_gap", &self.gap.is_some())
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

/// A gap in the timeline found by a `limited` sync, filled page by page, oldest first.
struct Gap {
    /// Where the next forward page starts; `None` means the start of the room.
    from: Option<String>,
    /// Where the gap ends: the `prev_batch` of the limited sync.
    to: String,
    /// The limited sync's own events, delivered once the gap is filled.
    tail: Vec<RoomEvent>,
    /// Forward pages fetched so far.
    pages: usize,
}

impl MatrixRoom {
    /// The room id.
    #[must_use]
    pub fn room_id(&self) -> &str {
        &self.room_id
    }

    /// The logged-in client (to invite others, for instance).
    #[must_use]
    pub fn client(&self) -> &MatrixClient {
        &self.client
    }

    /// What this room has done so far.
    #[must_use]
    pub fn stats(&self) -> &MatrixStats {
        &self.stats
    }

    /// Sends one envelope as one event, or as chunk events when its armour exceeds the event
    /// budget. Returns the number of events used. Safe to retry after an error: transaction
    /// ids are derived from the envelope, so events that did go through are not duplicated.
    ///
    /// # Errors
    ///
    /// [`MatrixError::EnvelopeTooLarge`], [`MatrixError::Armour`] for an envelope that cannot
    /// be chunked at this budget, and network and server errors (check
    /// [`MatrixError::is_transient`]).
    pub fn send(&mut self, envelope: &[u8]) -> Result<usize, MatrixError> {
        if envelope.len() > MAX_ENVELOPE_CEILING {
            return Err(MatrixError::EnvelopeTooLarge {
                len: envelope.len(),
                max: MAX_ENVELOPE_CEILING,
            });
        }
        let parts = armour::armour_chunked(envelope, self.client.config.max_armour_per_event)?;
        let digest = blake3::hash(envelope);
        let id = hex(&digest.as_bytes()[..16]);
        let total = parts.len();
        for (i, text) in parts.into_iter().enumerate() {
            let txn = format!("sd1-{id}-{i}-{total}");
            let _: Value = self.client.call(Req {
                method: Method::Put,
                endpoint: "send",
                path: format!(
                    "/_matrix/client/v3/rooms/{}/send/{}/{}",
                    enc(&self.room_id),
                    EVENT_TYPE,
                    txn
                ),
                query: vec![],
                body: Some(json!({ "armour": text })),
                auth: Some(&self.client.access_token),
                timeout: self.client.config.request_timeout,
            })?;
            self.stats.events_sent += 1;
        }
        Ok(total)
    }

    /// Receives what others sent since the last call, in the room's order: one `/sync`
    /// (long-polling up to `wait` when nothing is new), or, while a gap is being filled, one
    /// page of it. Call it in a loop. Envelopes may repeat; none is skipped.
    ///
    /// # Errors
    ///
    /// Network and server errors (check [`MatrixError::is_transient`]); the position in the
    /// room is kept, so the next call resumes where this one failed.
    /// [`MatrixError::GapTooLong`] if a gap never ends; the rest of that gap is then given up.
    pub fn receive(&mut self, wait: Duration) -> Result<Vec<Vec<u8>>, MatrixError> {
        let mut out = Vec::new();
        if self.gap.is_some() {
            self.fill_gap_page(&mut out)?;
            return Ok(out);
        }
        let sync = self.sync(wait)?;
        self.stats.syncs += 1;
        let timeline = sync
            .rooms
            .and_then(|mut r| r.join.remove(&self.room_id))
            .and_then(|r| r.timeline)
            .unwrap_or_default();
        match timeline.prev_batch {
            Some(prev) if timeline.limited => {
                self.stats.limited_syncs += 1;
                // Only tokens are kept while walking back, so a failure here leaves `since`
                // unchanged and the next call repeats this sync.
                let from = self.find_gap_start(&prev)?;
                self.gap = Some(Gap {
                    from,
                    to: prev,
                    tail: timeline.events,
                    pages: 0,
                });
                self.since = Some(sync.next_batch);
                self.fill_gap_page(&mut out)?;
            }
            _ => {
                self.since = Some(sync.next_batch);
                self.deliver(timeline.events, false, &mut out);
            }
        }
        Ok(out)
    }

    /// Whether a gap is still being filled (the next [`receive`](Self::receive) continues it
    /// without waiting).
    #[must_use]
    pub fn filling_gap(&self) -> bool {
        self.gap.is_some()
    }

    fn filter(&self) -> String {
        json!({
            "room": {
                "rooms": [self.room_id],
                "timeline": {
                    "types": [EVENT_TYPE],
                    "limit": self.client.config.sync_timeline_limit,
                },
                "state": {"types": []},
                "ephemeral": {"types": []},
                "account_data": {"types": []},
            },
            "presence": {"types": []},
            "account_data": {"types": []},
        })
        .to_string()
    }

    fn sync(&self, wait: Duration) -> Result<SyncResponse, MatrixError> {
        let mut query = vec![("filter", self.filter())];
        match &self.since {
            Some(since) => {
                query.push(("since", since.clone()));
                query.push(("timeout", wait.as_millis().to_string()));
            }
            // The first sync is a full one and returns at once.
            None => query.push(("timeout", "0".into())),
        }
        self.client.call(Req {
            method: Method::Get,
            endpoint: "sync",
            path: "/_matrix/client/v3/sync".into(),
            query,
            body: None,
            auth: Some(&self.client.access_token),
            timeout: self.client.config.request_timeout.saturating_add(wait),
        })
    }

    fn messages(
        &mut self,
        dir: &str,
        from: Option<&str>,
        to: Option<&str>,
    ) -> Result<MessagesResponse, MatrixError> {
        let mut query = vec![
            ("dir", dir.to_owned()),
            ("limit", PAGE_LIMIT.to_owned()),
            ("filter", json!({ "types": [EVENT_TYPE] }).to_string()),
        ];
        if let Some(from) = from {
            query.push(("from", from.to_owned()));
        }
        if let Some(to) = to {
            query.push(("to", to.to_owned()));
        }
        let r = self.client.call(Req {
            method: Method::Get,
            endpoint: "messages",
            path: format!("/_matrix/client/v3/rooms/{}/messages", enc(&self.room_id)),
            query,
            body: None,
            auth: Some(&self.client.access_token),
            timeout: self.client.config.request_timeout,
        })?;
        self.stats.gap_pages += 1;
        Ok(r)
    }

    /// Walks back from `prev_batch` until a page holds an event already seen, or the start of
    /// the room. Returns the token to page forward from (`None`: the start of the room).
    fn find_gap_start(&mut self, prev_batch: &str) -> Result<Option<String>, MatrixError> {
        let mut from = prev_batch.to_owned();
        for _ in 0..MAX_GAP_PAGES {
            let page = self.messages("b", Some(&from), None)?;
            let reached_seen = page.chunk.iter().any(|e| self.seen.contains(&e.event_id));
            match page.end {
                // The page's `end` lies before its oldest event: paging forward from it
                // covers this page's unseen events too (the seen ones are skipped).
                Some(end) if reached_seen => return Ok(Some(end)),
                // An empty chunk with an `end` does not mean the start of the room (the server
                // may have filtered a page away); only a missing or repeated `end` does.
                Some(end) if end != from => from = end,
                // No more events: the gap reaches back to the start of the room.
                _ => return Ok(None),
            }
        }
        Err(MatrixError::GapTooLong(MAX_GAP_PAGES))
    }

    /// Delivers one forward page of the gap; when the gap is done, the limited sync's events.
    fn fill_gap_page(&mut self, out: &mut Vec<Vec<u8>>) -> Result<(), MatrixError> {
        let Some(gap) = self.gap.as_ref() else {
            return Ok(());
        };
        let (from, to, pages) = (gap.from.clone(), gap.to.clone(), gap.pages);
        if pages >= MAX_GAP_PAGES {
            if let Some(gap) = self.gap.take() {
                self.deliver(gap.tail, false, out);
            }
            return Err(MatrixError::GapTooLong(MAX_GAP_PAGES));
        }
        let page = self.messages("f", from.as_deref(), Some(&to))?;
        // Done when the server has nothing further (no `end`) or the page reached the sync's
        // `prev_batch`; an empty chunk alone is not the end (see `find_gap_start`).
        let done = match &page.end {
            None => true,
            Some(end) => *end == to || from.as_deref() == Some(end.as_str()),
        };
        self.deliver(page.chunk, true, out);
        if done {
            if let Some(gap) = self.gap.take() {
                self.deliver(gap.tail, false, out);
            }
        } else if let Some(gap) = self.gap.as_mut() {
            gap.from = page.end;
            gap.pages += 1;
        }
        Ok(())
    }

    fn deliver(&mut self, events: Vec<RoomEvent>, backfill: bool, out: &mut Vec<Vec<u8>>) {
        for ev in events {
            if ev.kind != EVENT_TYPE || !self.seen.insert(&ev.event_id) {
                continue;
            }
            if self.client.config.skip_own_events && ev.is_own() {
                continue;
            }
            self.stats.events_received += 1;
            if backfill {
                self.stats.backfilled_events += 1;
            }
            let Some(text) = ev.content.get("armour").and_then(Value::as_str) else {
                self.stats.rejected_events += 1;
                continue;
            };
            match self.reassembler.push(text) {
                Ok(Some(bytes)) if bytes.len() <= MAX_ENVELOPE_CEILING => out.push(bytes),
                Ok(None) => {}
                Ok(Some(_)) | Err(_) => self.stats.rejected_events += 1,
            }
        }
    }
}

/// A bounded set of recent event ids, oldest evicted first.
struct SeenIds {
    set: HashSet<String>,
    order: VecDeque<String>,
    capacity: usize,
}

impl SeenIds {
    fn new(capacity: usize) -> Self {
        SeenIds {
            set: HashSet::new(),
            order: VecDeque::new(),
            capacity: capacity.max(1),
        }
    }

    fn contains(&self, id: &str) -> bool {
        self.set.contains(id)
    }

    /// Adds `id`; false if it was already there.
    fn insert(&mut self, id: &str) -> bool {
        if self.set.contains(id) {
            return false;
        }
        if self.order.len() >= self.capacity {
            if let Some(old) = self.order.pop_front() {
                self.set.remove(&old);
            }
        }
        self.set.insert(id.to_owned());
        self.order.push_back(id.to_owned());
        true
    }
}

fn make_agent(config: &MatrixConfig) -> Result<Agent, MatrixError> {
    let url = config.homeserver.as_str();
    if url.starts_with("https://") {
        if !cfg!(feature = "matrix-tls") {
            return Err(MatrixError::TlsDisabled(url.to_owned()));
        }
    } else if !url.starts_with("http://") || url.len() <= "http://".len() {
        return Err(MatrixError::BadUrl(url.to_owned()));
    }
    let agent_config = Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(config.request_timeout))
        .timeout_connect(Some(config.connect_timeout))
        .user_agent(concat!("sealdoc/", env!("CARGO_PKG_VERSION")))
        .build();
    Ok(Agent::new_with_config(agent_config))
}

fn prepare<B>(mut rb: RequestBuilder<B>, req: &Req<'_>) -> RequestBuilder<B> {
    if let Some(token) = req.auth {
        rb = rb.header("Authorization", format!("Bearer {token}"));
    }
    for (k, v) in &req.query {
        rb = rb.query(*k, v);
    }
    rb.config().timeout_global(Some(req.timeout)).build()
}

fn call<T: serde::de::DeserializeOwned>(
    agent: &Agent,
    config: &MatrixConfig,
    req: Req<'_>,
) -> Result<T, MatrixError> {
    let url = format!("{}{}", config.homeserver, req.path);
    let endpoint = req.endpoint;
    let body = req.body.as_ref().map(Value::to_string);
    let result = match (req.method, body) {
        (Method::Get, _) => prepare(agent.get(&url), &req).call(),
        (Method::Post, body) => prepare(agent.post(&url), &req)
            .header("Content-Type", "application/json")
            .send(body.unwrap_or_else(|| "{}".into())),
        (Method::Put, body) => prepare(agent.put(&url), &req)
            .header("Content-Type", "application/json")
            .send(body.unwrap_or_else(|| "{}".into())),
    };
    let response = result.map_err(|e| map_ureq(endpoint, e))?;
    read_response(endpoint, response)
}

fn read_response<T: serde::de::DeserializeOwned>(
    endpoint: &'static str,
    mut response: Response<Body>,
) -> Result<T, MatrixError> {
    let status = response.status().as_u16();
    let text = response
        .body_mut()
        .with_config()
        .limit(MAX_RESPONSE_BYTES)
        .read_to_string()
        .map_err(|e| map_ureq(endpoint, e))?;
    if !(200..300).contains(&status) {
        let body: Option<ErrorBody> = serde_json::from_str(&text).ok();
        return Err(match body {
            Some(b) => MatrixError::Server {
                endpoint,
                status,
                errcode: b.errcode,
                message: b.error,
                retry_after_ms: b.retry_after_ms,
            },
            None => MatrixError::Server {
                endpoint,
                status,
                errcode: String::new(),
                message: text.chars().take(200).collect(),
                retry_after_ms: None,
            },
        });
    }
    serde_json::from_str(&text).map_err(|e| MatrixError::BadResponse {
        endpoint,
        reason: e.to_string(),
    })
}

fn map_ureq(endpoint: &'static str, e: ureq::Error) -> MatrixError {
    match e {
        ureq::Error::Timeout(_) => MatrixError::Timeout { endpoint },
        ureq::Error::Io(io)
            if matches!(
                io.kind(),
                std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock
            ) =>
        {
            MatrixError::Timeout { endpoint }
        }
        ureq::Error::Io(io) => MatrixError::Unreachable {
            endpoint,
            reason: io.to_string(),
        },
        ureq::Error::ConnectionFailed | ureq::Error::HostNotFound => MatrixError::Unreachable {
            endpoint,
            reason: e.to_string(),
        },
        ureq::Error::BodyExceedsLimit(n) => MatrixError::BadResponse {
            endpoint,
            reason: format!("response body exceeds {n} bytes"),
        },
        other => MatrixError::Http {
            endpoint,
            reason: other.to_string(),
        },
    }
}

/// Percent-encodes a path segment (room ids contain `!` and `:`, aliases `#`).
fn enc(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push('%');
            out.push_str(&hex(&[b]).to_ascii_uppercase());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn room_ids_are_percent_encoded_in_paths() {
        assert_eq!(enc("!abc:localhost"), "%21abc%3Alocalhost");
        assert_eq!(enc("#room/x"), "%23room%2Fx");
    }

    #[test]
    fn seen_ids_forget_the_oldest_beyond_capacity() {
        let mut s = SeenIds::new(2);
        assert!(s.insert("a"));
        assert!(!s.insert("a"));
        assert!(s.insert("b"));
        assert!(s.insert("c"));
        assert!(!s.contains("a"));
        assert!(s.contains("b") && s.contains("c"));
    }

    #[test]
    fn urls_are_checked_before_any_request() {
        assert!(matches!(
            MatrixClient::login(MatrixConfig::new("ftp://x"), "a", "b"),
            Err(MatrixError::BadUrl(_))
        ));
        if !cfg!(feature = "matrix-tls") {
            assert!(matches!(
                MatrixClient::login(MatrixConfig::new("https://x"), "a", "b"),
                Err(MatrixError::TlsDisabled(_))
            ));
        }
    }

    #[test]
    fn unreachable_server_is_a_transient_typed_error() {
        // Port 9 (discard) on loopback: nothing listens there in tests.
        let mut config = MatrixConfig::new("http://127.0.0.1:9");
        config.connect_timeout = Duration::from_secs(2);
        let err = MatrixClient::login(config, "a", "b").unwrap_err();
        assert!(err.is_transient(), "{err:?}");
    }

    #[test]
    fn server_errors_are_transient_only_for_rate_limits_and_5xx() {
        let e = |status| MatrixError::Server {
            endpoint: "send",
            status,
            errcode: String::new(),
            message: String::new(),
            retry_after_ms: None,
        };
        assert!(e(429).is_transient());
        assert!(e(502).is_transient());
        assert!(!e(403).is_transient());
        assert!(!e(413).is_transient());
    }
}
