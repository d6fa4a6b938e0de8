//! [`Replica`]: one device, one group, one document, persisted. The API an application uses.
//!
//! A replica owns a [`Member`] (or, until its welcome arrives, a [`Joiner`]), a
//! [`Storage`], the application's [`StorageKey`] and a random number generator. It is
//! sans-IO: it never opens a socket. Bytes come in through [`Replica::receive`]; what must go
//! out waits in a durable [outbox](Replica::outbox) until the application reports it sent
//! ([`Replica::mark_sent`]). Every call that changes state writes one record to the store
//! before it returns, so a crash at any point loses no acknowledged change and applies none
//! twice (see [Persistence](#persistence)).
//!
//! ```
//! use sealdoc::group::{GroupPolicy, Role};
//! use sealdoc::replica::{Received, Recipient, Replica};
//! use sealdoc::store::MemoryStore;
//! use sealdoc::crypto::StorageKey;
//! use serde_json::json;
//!
//! let mut rng = rand_core::OsRng;
//! // Alice creates a group; Bob, on his device, waits for a welcome.
//! let mut alice = Replica::create(MemoryStore::new(), StorageKey::generate(&mut rng), GroupPolicy::default())?;
//! let mut bob = Replica::new_joiner(MemoryStore::new(), StorageKey::generate(&mut rng))?;
//!
//! // Bob's contact card reaches Alice out of band (a QR code, a chat message).
//! let added = alice.add_member(&bob.contact_card(), Role::Writer)?;
//! for m in &added.outgoing {
//!     if m.to == Recipient::Device(bob.device_id()) {
//!         bob.receive(&m.bytes)?; // the welcome
//!     }
//! }
//! assert!(bob.is_member());
//!
//! // Alice edits; the transport carries ciphertext only.
//! let update = alice.change(|tx| {
//!     tx.set("title", "Groceries")?;
//!     tx.set("items", json!([{"name": "milk", "done": false}]))?;
//!     Ok(())
//! })?;
//! for m in &update.outgoing {
//!     match bob.receive(&m.bytes)? {
//!         Received::Applied(patches) => assert!(!patches.is_empty()),
//!         other => panic!("unexpected {other:?}"),
//!     }
//! }
//! let sent: Vec<u64> = alice.outbox().iter().map(|m| m.id).collect();
//! alice.mark_sent(&sent)?;
//! assert_eq!(bob.doc().get("title"), Some(json!("Groceries")));
//! assert_eq!(bob.doc().to_json(), alice.doc().to_json());
//! # Ok::<(), sealdoc::replica::ReplicaError>(())
//! ```
//!
//! # Receiving
//!
//! [`Replica::receive`] takes any envelope (group or direct) and returns what happened:
//! [`Received::Applied`] with the document's patches, [`Received::Pending`] with the reason
//! (it waits, bounded, for dependencies, a key or more chunks, and applies by itself when they
//! arrive), [`Received::Duplicate`], [`Received::Reply`] (a peer asked to catch up: send the
//! answer), or [`Received::Joined`] when a waiting device's welcome completes. Refused input
//! is a [`ReplicaError::Group`] saying why; nothing changed. Input may also make messages
//! this device owes others, which go to the [outbox](Replica::outbox) in the same record (an
//! admin forwards to a member it added the key of an epoch made concurrently with the add;
//! see the [`group`](crate::group) module docs, "Forwarding").
//!
//! # Catch-up
//!
//! When something is [`Pending::MissingDeps`], or after
//! being offline, send [`Replica::sync_request`] to a member; its answer arrives as direct
//! envelopes that `receive` applies.
//!
//! # Observing
//!
//! [`Replica::subscribe`] returns a channel of [`Event`]s: the patches of every change,
//! local or remote, and membership changes, so a UI can update without polling.
//!
//! # Persistence
//!
//! The store holds, sealed under the [`StorageKey`] (XChaCha20-Poly1305, bound to the device
//! and to the kind of item):
//!
//! * a blob `device` with the device's signing and key-agreement secrets and what it was made
//!   for, written once when the replica is made (a `create` interrupted before its first
//!   snapshot leaves a store that opens as [`ReplicaError::Empty`] and may be created again);
//! * one record per state-changing call: the graph entries it added (signed nodes, verified
//!   on arrival), the epoch secrets it learned, input left waiting, messages added to the
//!   outbox, and outbox messages reported sent;
//! * a snapshot, written when a member is created or welcomed and then whenever the records
//!   since the last one outgrow it (at least [`Options::snapshot_after_bytes`]), so writing
//!   snapshots costs at most about twice the records' size, and reopening replays a bounded
//!   number of records.
//!
//! [`Replica::open`] rebuilds the member by replaying the snapshot's entries and then the
//! records through the same validation as any node, less the signature check (every entry was
//! verified before it was stored, and the store authenticates it). Input that was waiting is
//! fed again. The record is written before a call returns `Ok`, so a change the application
//! saw acknowledged is durable; a call whose record failed returned `Err` and handed nothing
//! out. Records are idempotent on replay (a node already applied is a duplicate), so a crash
//! between any two steps never applies anything twice. A [`FileStore`](crate::store::FileStore)
//! adds a crash-safe file format (see [`store`](crate::store)).
//!
//! A partial catch-up answer (some chunks of a bundle) survives a restart only until the next
//! snapshot: a repair answer can always be asked for again.

mod error;
mod format;
mod observe;
mod outbox;

use std::collections::{HashSet, VecDeque};
use std::fmt;
use std::sync::mpsc;

use rand_core::{CryptoRng, CryptoRngCore, RngCore};

pub use error::ReplicaError;
pub use observe::{Event, Origin};
pub use outbox::{Outgoing, Recipient};

use self::format::{
    open, open_device, seal, seal_device, Image, Intent, Kind, MemberImage, RecordBody, Step,
    StoredEntry, StoredOutgoing, StoredSecret, DEVICE_BLOB,
};
use self::observe::Observers;
use self::outbox::Outbox;
use crate::crypto::{
    CryptoError, DeviceKemSecret, EnvelopeKind, EpochId, StorageKey, VerifiedContactCard,
};
use crate::doc::{ActorId, Doc, DocError, Patch, Transaction};
use crate::graph::{Device, DeviceId, GroupId, NodeHash};
use crate::group::{
    Config, GroupError, GroupPolicy, Joined, Joiner, Joining, Member, Outbound, Pending, Role,
    Sent, MAX_BUNDLE_CHUNKS,
};
use crate::store::{RecordId, RecordKind, Storage, StoreError, MAX_RECORD_LEN};

/// Tunable budgets of a replica.
#[derive(Clone, Copy, Debug)]
#[non_exhaustive]
pub struct Options {
    /// The group layer's budgets (envelope size, causal buffer, parking).
    pub config: Config,
    /// A snapshot is written once the records since the last one exceed this many bytes
    /// *and* the last snapshot's size. Default 1 MiB.
    pub snapshot_after_bytes: usize,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            config: Config::default(),
            snapshot_after_bytes: 1024 * 1024,
        }
    }
}

impl Options {
    /// These options with the group layer's budgets `config`.
    #[must_use]
    pub fn with_config(mut self, config: Config) -> Self {
        self.config = config;
        self
    }

    /// These options with another snapshot threshold.
    #[must_use]
    pub fn with_snapshot_after_bytes(mut self, bytes: usize) -> Self {
        self.snapshot_after_bytes = bytes;
        self
    }
}

/// What a command did: its value, its visible effects, and the messages it made. The messages
/// are also in the [outbox](Replica::outbox) until reported sent, so an application may send
/// from either place.
#[derive(Debug)]
#[non_exhaustive]
pub struct Update<T> {
    /// The closure's result (for [`Replica::change`]).
    pub value: T,
    /// The document's visible effects, in order.
    pub patches: Vec<Patch>,
    /// Messages this command made.
    pub outgoing: Vec<Outgoing>,
    /// The signed node that carries the command, if it made one.
    pub node: Option<NodeHash>,
}

/// What [`Replica::receive`] did with input.
#[derive(Debug, PartialEq)]
#[must_use]
#[non_exhaustive]
pub enum Received {
    /// Applied, with the waiting input it unblocked; the document's visible effects in order
    /// (empty for membership and key ops).
    Applied(Vec<Patch>),
    /// Kept for later, durably; nothing lost. It applies by itself when what it waits for
    /// arrives.
    Pending(Pending),
    /// Already processed; nothing changed.
    Duplicate,
    /// A peer asked to catch up: send these direct envelopes to the devices named (they are
    /// not kept in the outbox; the peer can ask again).
    Reply(Vec<(DeviceId, Vec<u8>)>),
    /// This device's welcome is complete: it is now a member. The patches of the group
    /// traffic it had kept while waiting.
    Joined(Vec<Patch>),
    /// A direct envelope this device cannot open: sealed to another device (normal on a
    /// shared channel such as a Matrix room, where every device sees every welcome), or bytes
    /// that only look like one. Direct envelopes name no recipient in clear, so the two cannot
    /// be told apart; nothing changed.
    NotForThisDevice,
}

/// The random number generator a replica owns.
struct Rng(Box<dyn CryptoRngCore + Send>);

impl RngCore for Rng {
    fn next_u32(&mut self) -> u32 {
        self.0.next_u32()
    }
    fn next_u64(&mut self) -> u64 {
        self.0.next_u64()
    }
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        self.0.fill_bytes(dest);
    }
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand_core::Error> {
        self.0.try_fill_bytes(dest)
    }
}

impl CryptoRng for Rng {}

enum Phase {
    /// Waiting for a welcome; `inputs` is what the joiner keeps (for its snapshot).
    Joining {
        joiner: Box<Joiner>,
        inputs: VecDeque<Vec<u8>>,
    },
    Member(Box<Member>),
    /// Only between a joiner and its member, inside one call.
    Moving,
}

/// One device in one group, with the group's document and its store. See the
/// [module docs](self).
///
/// `Send`: it can live in an application's sync task or worker thread (not `Sync`: one
/// owner at a time, like the device it stands for).
pub struct Replica {
    phase: Phase,
    store: Box<dyn Storage + Send>,
    key: StorageKey,
    rng: Rng,
    device: DeviceId,
    card: VerifiedContactCard,
    options: Options,
    outbox: Outbox,
    observers: Observers,
    /// Graph entries already in the store.
    persisted_entries: usize,
    /// Epoch secrets already in the store.
    /// The epoch secrets stored, as (epoch id, hash of the secret): a forwarded secret that a
    /// later one replaced is stored again.
    persisted_secrets: HashSet<(EpochId, [u8; 32])>,
    /// `Member::key_gen` when `persisted_secrets` was last brought up to date.
    persisted_key_gen: Option<u64>,
    /// Direct envelopes of unfinished bundles (for the next snapshot), newest last.
    chunk_inputs: VecDeque<Vec<u8>>,
    last_record: RecordId,
    record_bytes_since_snapshot: usize,
    records_since_snapshot: usize,
    last_snapshot_len: usize,
    poisoned: bool,
    /// The document shown until the welcome arrives.
    empty: Doc,
}

/// How many inputs a device waiting for its welcome keeps, and how many chunk envelopes a
/// member keeps across snapshots.
fn kept_inputs(config: &Config) -> usize {
    config.parked_envelopes + MAX_BUNDLE_CHUNKS
}

impl Replica {
    // ---- Making and opening ---------------------------------------------------------------

    /// Creates a group with a new device as its only member (an admin), in an empty store,
    /// with the operating system's RNG and default [`Options`].
    ///
    /// # Errors
    ///
    /// [`ReplicaError::NotEmpty`] if the store holds a replica; store errors.
    pub fn create(
        store: impl Storage + Send + 'static,
        key: StorageKey,
        policy: GroupPolicy,
    ) -> Result<Replica, ReplicaError> {
        let mut rng = rand_core::OsRng;
        let device = Device::generate(&mut rng);
        let kem = DeviceKemSecret::generate(&mut rng);
        Self::create_with(
            Box::new(store),
            key,
            device,
            kem,
            policy,
            Options::default(),
            Box::new(rng),
        )
    }

    /// [`Replica::create`] with a given device, options and RNG (tests use a seeded one).
    ///
    /// # Errors
    ///
    /// As for [`Replica::create`].
    pub fn create_with(
        store: Box<dyn Storage + Send>,
        key: StorageKey,
        device: Device,
        kem: DeviceKemSecret,
        policy: GroupPolicy,
        options: Options,
        rng: Box<dyn CryptoRngCore + Send>,
    ) -> Result<Replica, ReplicaError> {
        let mut rng = Rng(rng);
        let (member, out) =
            Member::create_with(device, kem, policy, &[], options.config, &mut rng)?;
        debug_assert!(out.is_empty());
        let mut r = Self::fresh(store, key, Phase::Member(Box::new(member)), options, rng)?;
        r.snapshot()?;
        Ok(r)
    }

    /// A new device that waits for a welcome into a group, in an empty store, with the
    /// operating system's RNG and default [`Options`]. Give [`Replica::contact_card`] to an
    /// admin of the group; [`Replica::receive`] the welcome.
    ///
    /// # Errors
    ///
    /// [`ReplicaError::NotEmpty`] if the store holds a replica; store errors.
    pub fn new_joiner(
        store: impl Storage + Send + 'static,
        key: StorageKey,
    ) -> Result<Replica, ReplicaError> {
        let mut rng = rand_core::OsRng;
        let device = Device::generate(&mut rng);
        let kem = DeviceKemSecret::generate(&mut rng);
        Self::new_joiner_with(
            Box::new(store),
            key,
            device,
            kem,
            Options::default(),
            Box::new(rng),
        )
    }

    /// [`Replica::new_joiner`] with a given device, options and RNG.
    ///
    /// # Errors
    ///
    /// As for [`Replica::new_joiner`].
    pub fn new_joiner_with(
        store: Box<dyn Storage + Send>,
        key: StorageKey,
        device: Device,
        kem: DeviceKemSecret,
        options: Options,
        rng: Box<dyn CryptoRngCore + Send>,
    ) -> Result<Replica, ReplicaError> {
        let joiner = Joiner::with_config(device, kem, options.config);
        let phase = Phase::Joining {
            joiner: Box::new(joiner),
            inputs: VecDeque::new(),
        };
        Self::fresh(store, key, phase, options, Rng(rng))
    }

    /// Opens the replica kept in `store`, with the operating system's RNG and default
    /// [`Options`].
    ///
    /// # Errors
    ///
    /// [`ReplicaError::Empty`] for an empty store, [`ReplicaError::WrongKey`],
    /// [`ReplicaError::Corrupt`] if what the store holds does not decode or apply, store
    /// errors.
    pub fn open(
        store: impl Storage + Send + 'static,
        key: StorageKey,
    ) -> Result<Replica, ReplicaError> {
        Self::open_with(
            Box::new(store),
            key,
            Options::default(),
            Box::new(rand_core::OsRng),
        )
    }

    /// [`Replica::open`] with options and an RNG.
    ///
    /// # Errors
    ///
    /// As for [`Replica::open`].
    pub fn open_with(
        mut store: Box<dyn Storage + Send>,
        key: StorageKey,
        options: Options,
        rng: Box<dyn CryptoRngCore + Send>,
    ) -> Result<Replica, ReplicaError> {
        let loaded = store.load()?;
        let Some(blob) = store.blob(DEVICE_BLOB)? else {
            if loaded.snapshot.is_none() && loaded.records.is_empty() {
                return Err(ReplicaError::Empty);
            }
            return Err(ReplicaError::Corrupt {
                what: "store",
                detail: "records without a device blob".to_owned(),
            });
        };
        let (intent, (seed, kem)) = open_device(&key, &blob)?;
        if intent == Intent::Create && loaded.snapshot.is_none() && loaded.records.is_empty() {
            // `create` stopped between the device blob and the member's first snapshot: it
            // returned an error, and no replica exists here yet (`create` may run again).
            return Err(ReplicaError::Empty);
        }
        let device = Device::from_seed(&seed);
        let kem = DeviceKemSecret::from_secret_bytes(&kem);
        let id = device.id();
        let mut rng = Rng(rng);

        let image: Option<Image> = match &loaded.snapshot {
            Some(s) => Some(open(&key, Kind::Snapshot, &id, &s.state, "snapshot")?),
            None => None,
        };
        let last_snapshot_len = loaded.snapshot.as_ref().map_or(0, |s| s.state.len());
        let mut last_record = loaded
            .snapshot
            .as_ref()
            .map_or(RecordId::BEGIN, |s| s.covers_through);
        let mut outbox = Outbox::default();
        let mut waiting_nodes = Vec::new();
        let mut waiting_envelopes = Vec::new();
        let mut phase = match image {
            Some(Image::Member(mut img)) => {
                let mut m =
                    Member::empty(device, kem, options.config, img.group(), img.joined_at());
                let entries = std::mem::take(&mut img.entries);
                restore_step(&mut m, entries, &img.secrets)?;
                waiting_nodes = std::mem::take(&mut img.waiting_nodes);
                waiting_envelopes = img.waiting_envelopes;
                outbox.add(
                    &img.outbox
                        .into_iter()
                        .map(Outgoing::from)
                        .collect::<Vec<_>>(),
                );
                outbox.next_id = outbox.next_id.max(img.next_outgoing);
                Phase::Member(Box::new(m))
            }
            Some(Image::Joining { inputs }) => {
                let mut p = Phase::Joining {
                    joiner: Box::new(Joiner::with_config(device, kem, options.config)),
                    inputs: VecDeque::new(),
                };
                for b in inputs {
                    feed_joiner(&mut p, b)?;
                }
                p
            }
            None => Phase::Joining {
                joiner: Box::new(Joiner::with_config(device, kem, options.config)),
                inputs: VecDeque::new(),
            },
        };
        let mut bytes_since = 0;
        let records_since = loaded.records.len();
        let mut joined_on_open = false;
        for rec in &loaded.records {
            last_record = last_record.max(rec.id);
            bytes_since += rec.data.len();
            let body: RecordBody = open(&key, Kind::Record, &id, &rec.data, "record")?;
            match body {
                RecordBody::JoinerInput(b) => {
                    if matches!(phase, Phase::Member(_)) {
                        // Input kept while joining, after the welcome that the member snapshot
                        // below it already reflects: feed it to the member.
                        waiting_envelopes.push(b);
                    } else {
                        joined_on_open |= feed_joiner(&mut phase, b)?;
                    }
                }
                RecordBody::Step(step) => {
                    let Phase::Member(m) = &mut phase else {
                        return Err(ReplicaError::Corrupt {
                            what: "record",
                            detail: "a member's record before the member".to_owned(),
                        });
                    };
                    let entries = step.entries;
                    restore_step(m, entries, &step.secrets)?;
                    outbox.add(
                        &step
                            .outgoing
                            .into_iter()
                            .map(Outgoing::from)
                            .collect::<Vec<_>>(),
                    );
                    outbox.remove(&step.sent);
                    waiting_envelopes.extend(step.waiting);
                }
            }
        }
        let card = match &phase {
            Phase::Member(m) => m.contact_card(),
            Phase::Joining { joiner, .. } => joiner.contact_card().ok_or(
                ReplicaError::Internal("a waiting device without a contact card"),
            )?,
            Phase::Moving => return Err(ReplicaError::Internal("replica between phases")),
        };
        let mut chunk_inputs = VecDeque::new();
        let (persisted_entries, persisted_secrets) = match &mut phase {
            Phase::Member(m) => {
                let counts = (
                    m.entry_count(),
                    m.epoch_secrets()
                        .iter()
                        .map(|(e, s)| secret_tag(e, s))
                        .collect(),
                );
                m.restore_waiting(&waiting_nodes);
                for b in waiting_envelopes {
                    if let Ok(crate::group::Received::Pending(Pending::Chunks { .. })) =
                        m.receive(&b, &mut rng)
                    {
                        chunk_inputs.push_back(b);
                    }
                    while m.backlog() > 0 {
                        let _ = m.drain();
                    }
                }
                counts
            }
            Phase::Joining { .. } | Phase::Moving => (0, HashSet::new()),
        };
        let mut r = Replica {
            phase,
            store,
            key,
            rng,
            device: id,
            card,
            options,
            outbox,
            observers: Observers::default(),
            persisted_entries,
            persisted_secrets,
            persisted_key_gen: None,
            chunk_inputs,
            last_record,
            record_bytes_since_snapshot: bytes_since,
            records_since_snapshot: records_since,
            last_snapshot_len,
            poisoned: false,
            empty: Doc::new(ActorId::from_u64(0)),
        };
        if joined_on_open {
            r.snapshot()?;
        } else if matches!(r.phase, Phase::Member(_)) {
            // Waiting input that applied now (it had been evicted from a bounded buffer, or
            // its dependency arrived in a later record) is recorded like any other. (A device
            // still waiting for its welcome has no member to commit.)
            r.commit(Step::default())?;
        }
        Ok(r)
    }

    fn fresh(
        mut store: Box<dyn Storage + Send>,
        key: StorageKey,
        phase: Phase,
        options: Options,
        mut rng: Rng,
    ) -> Result<Replica, ReplicaError> {
        let loaded = store.load()?;
        if loaded.snapshot.is_some() || !loaded.records.is_empty() {
            return Err(ReplicaError::NotEmpty);
        }
        if let Some(blob) = store.blob(DEVICE_BLOB)? {
            // Only the blob of a `create` that never wrote its first snapshot (it returned an
            // error) may be replaced; a joiner's blob is a device waiting for its welcome.
            let unfinished = matches!(open_device(&key, &blob), Ok((Intent::Create, _)));
            if !unfinished {
                return Err(ReplicaError::NotEmpty);
            }
        }
        let (device, card, blob) = match &phase {
            Phase::Member(m) => {
                let (seed, kem) = m.device_secrets();
                (
                    m.device_id(),
                    m.contact_card(),
                    seal_device(&key, Intent::Create, &seed, &kem, &mut rng)?,
                )
            }
            Phase::Joining { joiner, .. } => {
                let (seed, kem) = joiner
                    .device_secrets()
                    .ok_or(ReplicaError::Internal("a new joiner without its keys"))?;
                let card = joiner.contact_card().ok_or(ReplicaError::Internal(
                    "a new joiner without a contact card",
                ))?;
                (
                    joiner.device_id(),
                    card,
                    seal_device(&key, Intent::Join, &seed, &kem, &mut rng)?,
                )
            }
            Phase::Moving => return Err(ReplicaError::Internal("replica between phases")),
        };
        store.put_blob(DEVICE_BLOB, &blob)?;
        Ok(Replica {
            phase,
            store,
            key,
            rng,
            device,
            card,
            options,
            outbox: Outbox::default(),
            observers: Observers::default(),
            persisted_entries: 0,
            persisted_secrets: HashSet::new(),
            persisted_key_gen: None,
            chunk_inputs: VecDeque::new(),
            last_record: RecordId::BEGIN,
            record_bytes_since_snapshot: 0,
            records_since_snapshot: 0,
            last_snapshot_len: 0,
            poisoned: false,
            empty: Doc::new(ActorId::from_u64(0)),
        })
    }

    // ---- Reading --------------------------------------------------------------------------

    /// This device.
    pub fn device_id(&self) -> DeviceId {
        self.device
    }

    /// This device's contact card, for an admin to add it to a group.
    pub fn contact_card(&self) -> VerifiedContactCard {
        self.card.clone()
    }

    /// The group, once a member.
    pub fn group(&self) -> Option<GroupId> {
        self.member().map(Member::group)
    }

    /// True once this device is a member of its group (it may since have been removed: see
    /// [`Replica::is_current_member`]).
    pub fn is_member(&self) -> bool {
        matches!(self.phase, Phase::Member(_))
    }

    /// True if this device is a member in its own current view of the group.
    pub fn is_current_member(&self) -> bool {
        self.member().is_some_and(Member::is_member)
    }

    /// The document (empty until the welcome arrives).
    pub fn doc(&self) -> &Doc {
        match &self.phase {
            Phase::Member(m) => m.doc(),
            Phase::Joining { .. } | Phase::Moving => &self.empty,
        }
    }

    /// The members and their roles, by device id (empty until the welcome arrives).
    pub fn members(&self) -> Vec<(DeviceId, Role)> {
        self.member().map(Member::members).unwrap_or_default()
    }

    /// A device's role, if it is a member.
    pub fn role(&self, device: &DeviceId) -> Option<Role> {
        self.member().and_then(|m| m.role(device))
    }

    /// The group layer's member, for what this facade does not show (epochs, evidence of
    /// misbehaviour, the graph).
    pub fn member(&self) -> Option<&Member> {
        match &self.phase {
            Phase::Member(m) => Some(m),
            Phase::Joining { .. } | Phase::Moving => None,
        }
    }

    /// Messages made and not yet reported sent, oldest first. Send them (group messages to
    /// every member, device messages to that device), then call [`Replica::mark_sent`].
    pub fn outbox(&self) -> &[Outgoing] {
        &self.outbox.items
    }

    /// Input waiting for dependencies, keys or chunks: `(nodes in the causal buffer, parked
    /// envelopes)`. Non-zero for long means something is missing: ask a member to catch up
    /// ([`Replica::sync_request`]).
    pub fn waiting(&self) -> (usize, usize) {
        match &self.phase {
            Phase::Member(m) => (m.pending_nodes(), m.parked().0),
            Phase::Joining { inputs, .. } => (0, inputs.len()),
            Phase::Moving => (0, 0),
        }
    }

    /// A channel of [`Event`]s from now on: the patches of every change, local or remote, and
    /// membership changes. Dropping the receiver unsubscribes.
    pub fn subscribe(&mut self) -> mpsc::Receiver<Event> {
        let gen = self.member().map_or(0, Member::membership_gen);
        let members = self.members();
        self.observers.subscribe(gen, members)
    }

    // ---- Commands -------------------------------------------------------------------------

    /// Runs `f` as one transaction on the document and makes it a signed, encrypted change
    /// for the group. Nothing changes if `f` returns `Err`.
    ///
    /// # Errors
    ///
    /// [`ReplicaError::NotWelcomed`]; [`ReplicaError::Group`] (a reader may not edit; the
    /// change does not fit one envelope; `f`'s document error); store errors.
    pub fn change<T>(
        &mut self,
        f: impl FnOnce(&mut Transaction<'_>) -> Result<T, DocError>,
    ) -> Result<Update<T>, ReplicaError> {
        self.command(|m, rng| m.change(f, rng))
    }

    /// Adds a device (from its contact card) with `role`, rotating the group key; the outgoing
    /// messages include the welcome for the device. Admins only.
    ///
    /// # Errors
    ///
    /// As for [`Member::add`]; store errors.
    pub fn add_member(
        &mut self,
        card: &VerifiedContactCard,
        role: Role,
    ) -> Result<Update<()>, ReplicaError> {
        self.command(|m, rng| m.add(card, role, rng))
    }

    /// Adds several devices in one op. Admins only.
    ///
    /// # Errors
    ///
    /// As for [`Member::add_many`]; store errors.
    pub fn add_members(
        &mut self,
        cards: &[(VerifiedContactCard, Role)],
    ) -> Result<Update<()>, ReplicaError> {
        self.command(|m, rng| m.add_many(cards, rng))
    }

    /// Removes devices, rotating the group key so they cannot read what follows. Admins only.
    ///
    /// # Errors
    ///
    /// As for [`Member::remove`]; store errors.
    pub fn remove_members(&mut self, devices: &[DeviceId]) -> Result<Update<()>, ReplicaError> {
        self.command(|m, rng| m.remove(devices, rng))
    }

    /// Changes a member's role. Admins only.
    ///
    /// # Errors
    ///
    /// As for [`Member::set_role`]; store errors.
    pub fn set_role(&mut self, device: &DeviceId, role: Role) -> Result<Update<()>, ReplicaError> {
        self.command(|m, rng| m.set_role(device, role, rng))
    }

    /// Rotates the group key (post-compromise security). Any member.
    ///
    /// # Errors
    ///
    /// As for [`Member::key_update`]; store errors.
    pub fn rotate_key(&mut self) -> Result<Update<()>, ReplicaError> {
        self.command(|m, rng| m.key_update(rng))
    }

    /// A catch-up request for `peer` (a member): direct envelopes to send it. Its answer comes
    /// back through [`Replica::receive`]. Not kept in the outbox.
    ///
    /// # Errors
    ///
    /// [`ReplicaError::NotWelcomed`]; [`ReplicaError::Group`] if `peer` is not a member.
    pub fn sync_request(
        &mut self,
        peer: &DeviceId,
    ) -> Result<Vec<(DeviceId, Vec<u8>)>, ReplicaError> {
        self.usable()?;
        let Phase::Member(m) = &mut self.phase else {
            return Err(ReplicaError::NotWelcomed);
        };
        Ok(m.sync_request(peer, &mut self.rng)?.direct)
    }

    /// Reports outbox messages as sent: they leave the outbox, durably. Unknown ids are
    /// ignored.
    ///
    /// # Errors
    ///
    /// Store errors.
    pub fn mark_sent(&mut self, ids: &[u64]) -> Result<(), ReplicaError> {
        self.usable()?;
        let ids: Vec<u64> = ids
            .iter()
            .copied()
            .filter(|id| self.outbox.contains(*id))
            .collect();
        if ids.is_empty() {
            return Ok(());
        }
        self.outbox.remove(&ids);
        self.commit(Step {
            sent: ids,
            ..Step::default()
        })
    }

    /// Writes a snapshot now (compacting the store's log).
    ///
    /// # Errors
    ///
    /// Store errors.
    pub fn compact(&mut self) -> Result<(), ReplicaError> {
        self.usable()?;
        self.snapshot()
    }

    // ---- Receiving ------------------------------------------------------------------------

    /// Handles one envelope from the transport (untrusted bytes). See the
    /// [module docs](self#receiving).
    ///
    /// # Errors
    ///
    /// [`ReplicaError::Group`] for refused input (nothing changed); store errors (the input
    /// was not acknowledged: deliver it again after reopening).
    pub fn receive(&mut self, bytes: &[u8]) -> Result<Received, ReplicaError> {
        self.usable()?;
        let r = match &mut self.phase {
            Phase::Joining { .. } => self.receive_joining(bytes),
            Phase::Member(_) => self.receive_member(bytes),
            Phase::Moving => Err(ReplicaError::Internal("replica between phases")),
        };
        // The group layer reports the precise error (a direct envelope that does not open);
        // the facade classifies it, because on a shared channel it is ordinary traffic, and
        // the classification is policy, not cryptography.
        match r {
            Err(ReplicaError::Group(GroupError::Envelope(CryptoError::AuthenticationFailed)))
                if EnvelopeKind::peek(bytes, &self.options.config.envelope)
                    .is_ok_and(|k| k == EnvelopeKind::Direct) =>
            {
                Ok(Received::NotForThisDevice)
            }
            other => other,
        }
    }

    fn receive_joining(&mut self, bytes: &[u8]) -> Result<Received, ReplicaError> {
        let Phase::Joining { joiner, inputs, .. } = &mut self.phase else {
            return Err(ReplicaError::Internal("not joining"));
        };
        match joiner.receive(bytes)? {
            Joining::Duplicate => Ok(Received::Duplicate),
            Joining::Pending(p) => {
                inputs.push_back(bytes.to_vec());
                let max = kept_inputs(&self.options.config);
                while inputs.len() > max {
                    inputs.pop_front();
                }
                let record = RecordBody::JoinerInput(bytes.to_vec());
                self.append(&record)?;
                if self.records_since_snapshot > max {
                    self.snapshot()?;
                }
                Ok(Received::Pending(p))
            }
            Joining::Welcomed => {
                let Phase::Joining { joiner, .. } =
                    std::mem::replace(&mut self.phase, Phase::Moving)
                else {
                    return Err(ReplicaError::Internal("not joining"));
                };
                let Joined {
                    mut member,
                    patches,
                } = joiner.finish()?;
                let mut patches = patches;
                while member.backlog() > 0 {
                    patches.extend(member.drain());
                }
                self.phase = Phase::Member(member.into());
                self.snapshot()?;
                if let Phase::Member(m) = &self.phase {
                    self.observers
                        .joined(m.membership_gen(), || m.members(), &patches);
                }
                Ok(Received::Joined(patches))
            }
        }
    }

    fn receive_member(&mut self, bytes: &[u8]) -> Result<Received, ReplicaError> {
        let Phase::Member(m) = &mut self.phase else {
            return Err(ReplicaError::Internal("not a member"));
        };
        let buffered_before = m.pending_nodes();
        let result = m.receive(bytes, &mut self.rng);
        let mut extra = Vec::new();
        while m.backlog() > 0 {
            extra.extend(m.drain());
        }
        let buffer_grew = m.pending_nodes() > buffered_before;
        // Forwards this device owes the members it added (and anything a failed command left
        // unsent) go to the durable outbox in the same record.
        let unsent = match m.take_outgoing(&mut self.rng) {
            Ok(o) => o,
            Err(_) => m.take_unsent(),
        };
        let outgoing = self.outbox.number(messages(unsent));
        self.outbox.add(&outgoing);
        let outgoing: Vec<StoredOutgoing> = outgoing.iter().map(StoredOutgoing::from).collect();
        let out = match result {
            Err(e) => {
                // The input was refused, but a bundle may have applied part of its nodes,
                // and the drain may have applied buffered ones.
                self.commit(Step {
                    outgoing,
                    ..Step::default()
                })?;
                self.notify(Origin::Remote, &extra);
                return Err(e.into());
            }
            Ok(r) => r,
        };
        let keep = matches!(out, crate::group::Received::Pending(_)) || buffer_grew;
        // Chunks come only in direct envelopes: those of unfinished bundles are kept across
        // snapshots.
        if matches!(out, crate::group::Received::Pending(Pending::Chunks { .. })) {
            self.chunk_inputs.push_back(bytes.to_vec());
            let max = kept_inputs(&self.options.config);
            while self.chunk_inputs.len() > max {
                self.chunk_inputs.pop_front();
            }
        }
        self.commit(Step {
            waiting: if keep {
                vec![bytes.to_vec()]
            } else {
                Vec::new()
            },
            outgoing,
            ..Step::default()
        })?;
        let received = match out {
            crate::group::Received::Applied(mut p) => {
                p.extend(extra);
                Received::Applied(p)
            }
            crate::group::Received::Pending(p) if extra.is_empty() => Received::Pending(p),
            crate::group::Received::Pending(_) => Received::Applied(extra),
            crate::group::Received::Duplicate if extra.is_empty() => Received::Duplicate,
            crate::group::Received::Duplicate => Received::Applied(extra),
            crate::group::Received::Reply(o) => Received::Reply(o.direct),
        };
        if let Received::Applied(p) = &received {
            self.notify(Origin::Remote, p);
        } else {
            self.notify(Origin::Remote, &[]);
        }
        Ok(received)
    }

    // ---- Internals ------------------------------------------------------------------------

    /// Tells observers about `patches` and about a membership that changed.
    fn notify(&mut self, origin: Origin, patches: &[Patch]) {
        if !self.observers.active() {
            return;
        }
        self.observers.changed(origin, patches);
        if let Phase::Member(m) = &self.phase {
            self.observers.members(m.membership_gen(), || m.members());
        }
    }

    fn usable(&self) -> Result<(), ReplicaError> {
        if self.poisoned {
            Err(ReplicaError::Poisoned)
        } else {
            Ok(())
        }
    }

    /// Runs a member command and persists what it changed, even when it failed (a command
    /// may have rotated the key before failing).
    fn command<T>(
        &mut self,
        f: impl FnOnce(&mut Member, &mut Rng) -> Result<Sent<T>, GroupError>,
    ) -> Result<Update<T>, ReplicaError> {
        self.usable()?;
        let Phase::Member(m) = &mut self.phase else {
            return Err(ReplicaError::NotWelcomed);
        };
        match f(m, &mut self.rng) {
            Ok(sent) => {
                let outgoing = self.outbox.number(messages(sent.outbound));
                self.outbox.add(&outgoing);
                self.commit(Step {
                    outgoing: outgoing.iter().map(StoredOutgoing::from).collect(),
                    ..Step::default()
                })?;
                self.notify(Origin::Local, &sent.patches);
                Ok(Update {
                    value: sent.value,
                    patches: sent.patches,
                    outgoing,
                    node: sent.hash,
                })
            }
            Err(e) => {
                let unsent = m.take_unsent();
                let outgoing = self.outbox.number(messages(unsent));
                self.outbox.add(&outgoing);
                self.commit(Step {
                    outgoing: outgoing.iter().map(StoredOutgoing::from).collect(),
                    ..Step::default()
                })?;
                Err(e.into())
            }
        }
    }

    /// Appends one record with what the member changed since the last one (plus `step`'s
    /// waiting input and outbox changes). Writes a snapshot instead if the record is too
    /// large, and after it if the records outgrew the last snapshot.
    fn commit(&mut self, mut step: Step) -> Result<(), ReplicaError> {
        let Phase::Member(m) = &self.phase else {
            return Err(ReplicaError::Internal("commit without a member"));
        };
        step.entries = m
            .entries_from(self.persisted_entries)?
            .iter()
            .map(StoredEntry::from_entry)
            .collect::<Result<_, _>>()?;
        // Secrets are listed only when one was learned or replaced since the last record.
        let key_gen = m.key_gen();
        let secrets = if self.persisted_key_gen == Some(key_gen) {
            Vec::new()
        } else {
            m.epoch_secrets()
        };
        step.secrets = secrets
            .iter()
            .filter(|(e, s)| !self.persisted_secrets.contains(&secret_tag(e, s)))
            .map(|(e, s)| StoredSecret::new(e, s))
            .collect();
        if step.is_empty() {
            self.persisted_key_gen = Some(key_gen);
            return Ok(());
        }
        let entry_count = m.entry_count();
        let sealed = seal(
            &self.key,
            Kind::Record,
            &self.device,
            &RecordBody::Step(step),
            &mut self.rng,
        )?;
        if sealed.len() > MAX_RECORD_LEN {
            return self.snapshot();
        }
        self.append_sealed(&sealed)?;
        self.persisted_entries = entry_count;
        self.persisted_secrets
            .extend(secrets.iter().map(|(e, s)| secret_tag(e, s)));
        self.persisted_key_gen = Some(key_gen);
        if self.record_bytes_since_snapshot
            > self
                .options
                .snapshot_after_bytes
                .max(self.last_snapshot_len)
        {
            self.snapshot()?;
        }
        Ok(())
    }

    fn append(&mut self, body: &RecordBody) -> Result<(), ReplicaError> {
        let sealed = seal(&self.key, Kind::Record, &self.device, body, &mut self.rng)?;
        self.append_sealed(&sealed)
    }

    fn append_sealed(&mut self, sealed: &[u8]) -> Result<(), ReplicaError> {
        let id = self
            .store
            .append(RecordKind::Accepted, sealed)
            .map_err(|e| self.poison(e))?;
        self.last_record = id;
        self.record_bytes_since_snapshot += sealed.len();
        self.records_since_snapshot += 1;
        Ok(())
    }

    fn poison(&mut self, e: StoreError) -> ReplicaError {
        self.poisoned = true;
        ReplicaError::Store(e)
    }

    /// Writes a snapshot of the whole state, covering every record so far.
    fn snapshot(&mut self) -> Result<(), ReplicaError> {
        let (image, entry_count, secret_ids) = match &self.phase {
            Phase::Moving => return Err(ReplicaError::Internal("replica between phases")),
            Phase::Joining { inputs, .. } => (
                Image::Joining {
                    inputs: inputs.iter().cloned().collect(),
                },
                0,
                HashSet::new(),
            ),
            Phase::Member(m) => {
                let entries = m
                    .entries_from(0)?
                    .iter()
                    .map(StoredEntry::from_entry)
                    .collect::<Result<_, _>>()?;
                let secrets = m.epoch_secrets();
                let waiting = m.waiting();
                let mut envelopes = waiting.envelopes;
                envelopes.extend(self.chunk_inputs.iter().cloned());
                let image = MemberImage {
                    group: *m.group().as_bytes(),
                    joined_at: m.joined_at().map(|h| *h.as_bytes()),
                    entries,
                    secrets: secrets
                        .iter()
                        .map(|(e, s)| StoredSecret::new(e, s))
                        .collect(),
                    waiting_nodes: waiting.nodes,
                    waiting_envelopes: envelopes,
                    outbox: self.outbox.items.iter().map(StoredOutgoing::from).collect(),
                    next_outgoing: self.outbox.next_id,
                };
                (
                    Image::Member(image),
                    m.entry_count(),
                    secrets.iter().map(|(e, s)| secret_tag(e, s)).collect(),
                )
            }
        };
        let sealed = seal(
            &self.key,
            Kind::Snapshot,
            &self.device,
            &image,
            &mut self.rng,
        )?;
        self.store
            .write_snapshot(&sealed, self.last_record)
            .map_err(|e| self.poison(e))?;
        self.last_snapshot_len = sealed.len();
        self.record_bytes_since_snapshot = 0;
        self.records_since_snapshot = 0;
        self.persisted_entries = entry_count;
        self.persisted_secrets = secret_ids;
        self.persisted_key_gen = self.member().map(Member::key_gen);
        Ok(())
    }
}

/// Applies a stored step's entries and secrets to a member being restored.
fn restore_step(
    m: &mut Member,
    entries: Vec<StoredEntry>,
    secrets: &[StoredSecret],
) -> Result<(), ReplicaError> {
    let entries = entries
        .into_iter()
        .map(StoredEntry::into_entry)
        .collect::<Result<Vec<_>, _>>()?;
    m.restore_entries(&entries)
        .map_err(|e| ReplicaError::Corrupt {
            what: "stored graph entry",
            detail: e.to_string(),
        })?;
    m.restore_secrets(secrets.iter().map(StoredSecret::take).collect());
    Ok(())
}

/// What the replica remembers of a stored epoch secret: its epoch and a hash of it (so that a
/// replaced forwarded secret is stored again).
fn secret_tag(e: &EpochId, s: &[u8; 32]) -> (EpochId, [u8; 32]) {
    (*e, *blake3::hash(s).as_bytes())
}

/// Feeds one kept input to a waiting device on reopen; true if it completed the welcome
/// (the phase is then the member).
fn feed_joiner(phase: &mut Phase, bytes: Vec<u8>) -> Result<bool, ReplicaError> {
    let Phase::Joining { joiner, inputs, .. } = phase else {
        return Err(ReplicaError::Internal("not joining"));
    };
    let welcomed = matches!(joiner.receive(&bytes), Ok(Joining::Welcomed));
    inputs.push_back(bytes);
    if !welcomed {
        return Ok(false);
    }
    let Phase::Joining { joiner, .. } = std::mem::replace(phase, Phase::Moving) else {
        return Err(ReplicaError::Internal("not joining"));
    };
    let Joined { mut member, .. } = joiner.finish()?;
    while member.backlog() > 0 {
        let _ = member.drain();
    }
    *phase = Phase::Member(Box::new(member));
    Ok(true)
}

/// A replica can move to another thread.
#[allow(dead_code)]
fn replica_is_send() {
    fn send<T: std::marker::Send>() {}
    send::<Replica>();
}

fn messages(out: Outbound) -> Vec<(Recipient, Vec<u8>)> {
    let Outbound {
        broadcast, direct, ..
    } = out;
    broadcast
        .into_iter()
        .map(|b| (Recipient::Group, b))
        .chain(direct.into_iter().map(|(d, b)| (Recipient::Device(d), b)))
        .collect()
}

impl fmt::Debug for Replica {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Replica")
            .field("device", &self.device)
            .field("group", &self.group())
            .field("member", &self.is_member())
            .field("outbox", &self.outbox.items.len())
            .field("poisoned", &self.poisoned)
            .finish_non_exhaustive()
    }
}
