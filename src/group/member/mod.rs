//! [`Member`]: one device in one group, with its document.

use std::collections::{BTreeSet, HashSet, VecDeque};
use std::fmt;
use std::sync::Arc;

use rand_core::CryptoRngCore;
use zeroize::Zeroizing;

use super::error::{ApiMisuse, GroupError, PeerMisbehaved};
use super::keys::{seal_history, OpContext};
use super::limits::{
    Config, CHUNK_OVERHEAD, MAX_GROUP_DEVICES, MAX_HELD_FORWARDS, MAX_RETRIES_PER_CALL,
    MAX_SEEN_ENVELOPES,
};
use super::park::{envelope_id, Assembled, Assembler, Park, Seen};
use super::policy::{Action, GroupPolicy, HistoryPolicy, Role};
use super::state::{Evidence, GroupApply, GroupState, Membership};
use super::wire::{
    decode_forward, decode_sync, encode_forward, encode_sync, Bundle, BundleKind, Chunk, ControlOp,
    Item, KeyUpdate, MemberEntry, WrappedSecret, CONTENT_BUNDLE, CONTENT_FORWARD, CONTENT_SYNC,
};
use crate::crypto::{
    open_direct, open_group, parse_group_header, seal_direct, seal_epoch_secret, seal_group,
    CryptoError, DeviceKemSecret, DirectContent, DirectRecipient, EnvelopeKind, EpochId,
    EpochIdPrefix, EpochSecret, GroupHeaderFields, GroupKeys, GroupKind, KemPublicKey, SealContext,
    SealRecipient, VerifiedContactCard, DIRECT_BODY_OVERHEAD, DIRECT_HEADER_LEN, LENGTH_PREFIX_LEN,
    TAG_LEN,
};
use crate::doc::{Doc, DocError, Patch, PatchAction, Transaction};
use crate::graph::wire::NODE_VERSION;

mod forward;
mod persist;
mod receive;
mod send;

pub(crate) use persist::{DeviceSecrets, Entry};

use crate::graph::{
    Device, DeviceId, GraphError, GroupId, Have, Log, NodeBody, NodeHash, Outcome, Payload,
    SignedDoc, SignedNode, Want,
};
pub(crate) use send::build_key;

/// What to send after a command: group envelopes for every member, and direct envelopes for
/// one device each. The transport sees nothing else.
#[derive(Debug, Default, PartialEq, Eq)]
#[must_use = "the envelopes must be sent"]
#[non_exhaustive]
pub struct Outbound {
    /// Group envelopes: send each to every member (and anyone else; only members can read
    /// them).
    pub broadcast: Vec<Vec<u8>>,
    /// Direct envelopes, each for one device (welcomes, catch-up answers, forwarded ops).
    pub direct: Vec<(DeviceId, Vec<u8>)>,
}

impl Outbound {
    /// True if there is nothing to send.
    pub fn is_empty(&self) -> bool {
        self.broadcast.is_empty() && self.direct.is_empty()
    }

    /// Appends `other`.
    pub fn append(&mut self, other: Outbound) {
        self.broadcast.extend(other.broadcast);
        self.direct.extend(other.direct);
    }
}

/// What a local command made.
#[derive(Debug)]
#[must_use = "the outbound envelopes must be sent"]
#[non_exhaustive]
pub struct Sent<T> {
    /// The closure's result (for [`Member::change`]).
    pub value: T,
    /// Visible effects on the local document, in order.
    pub patches: Vec<Patch>,
    /// Envelopes to send.
    pub outbound: Outbound,
    /// Hash of the node the command made (`None` if it made none).
    pub hash: Option<NodeHash>,
}

/// Result of [`Member::receive`]: outcomes, not errors (rejections are `Err`).
#[derive(Debug, PartialEq)]
#[must_use]
#[non_exhaustive]
pub enum Received {
    /// Applied, with the parked input it unblocked; the document's visible effects in order
    /// (empty for membership and key ops).
    Applied(Vec<Patch>),
    /// Kept for later; nothing lost.
    Pending(Pending),
    /// Already processed; nothing changed.
    Duplicate,
    /// A peer asked to catch up: send this answer.
    Reply(Outbound),
}

/// Why input was kept for later.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Pending {
    /// The node waits in the causal buffer for these dependencies; ask peers
    /// ([`Member::sync_request`]).
    MissingDeps(Vec<NodeHash>),
    /// The envelope names epochs this member does not know yet (the op creating them has not
    /// arrived); parked until it does. For a forwarded epoch secret: held (bounded) until the
    /// epoch is known.
    UnknownEpoch(Vec<EpochIdPrefix>),
    /// The envelope names known epochs whose key this member lacks, although it is a member
    /// (it was added concurrently); parked until the adder forwards the key (or a later
    /// epoch's history link gives it), and repaired by catch-up.
    MissingKey(Vec<EpochIdPrefix>),
    /// A chunk of a bundle; more are needed.
    Chunks {
        /// Chunks held.
        received: usize,
        /// Chunks in the bundle.
        total: usize,
    },
    /// A joiner parked a group envelope until its welcome is complete.
    WaitingForWelcome,
}

/// What to do with a content node.
enum Send {
    /// Encrypt under these keys (the merged key of every current head).
    Ready,
    /// Rotate first: some current head is unusable.
    Rotate,
}

/// One device in one group, with the group's document: the sans-IO core of the group layer.
///
/// # Call order
///
/// * Getters: [`Member::doc`], [`Member::members`], [`Member::role`],
///   [`Member::current_epochs`], [`Member::group`], [`Member::policy`], [`Member::heads`].
/// * Commands return an [`Outbound`] to send: [`Member::change`], [`Member::add`],
///   [`Member::remove`], [`Member::set_role`], [`Member::key_update`],
///   [`Member::sync_request`]. Any command may first rotate the key (a merging `KeyUpdate`)
///   if the current epochs are not safe to send under (see the module docs, rule K4).
/// * Input: [`Member::receive`] for every envelope (group or direct) that arrives; send any
///   [`Received::Reply`]. If [`Member::backlog`] is non-zero afterwards, call
///   [`Member::drain`] until it is zero.
/// * Catch-up: now and then, and whenever something is [`Pending::MissingDeps`], send
///   [`Member::sync_request`] to a member.
///
/// Randomness comes from the caller (`rng`); nothing reads a clock.
pub struct Member {
    inner: SignedDoc,
    kem: DeviceKemSecret,
    state: GroupState,
    config: Config,
    seen: Seen,
    park: Park,
    assembler: Assembler,
    /// The op that added this device, if it joined by welcome.
    joined_at: Option<NodeHash>,
    /// Envelopes of a rotation made by a command that then failed, and forwards made while
    /// receiving; sent with the next command (or taken with [`Member::take_unsent`]).
    unsent: Outbound,
    /// Forwards already made: (member, epoch index).
    forwarded: HashSet<(DeviceId, u32)>,
    /// Forwards received for epochs not known yet: (sender, epoch id, secret), oldest first.
    held_forwards: VecDeque<(DeviceId, WrappedSecret)>,
    /// The (resolution, root) generations the forwards were last computed for.
    forward_gen: Option<(u64, u64)>,
    danger_skip_local_checks: bool,
    /// The resolution the document's whiteout set was computed for.
    whiteout_gen: u64,
}

/// What an internal control command asks for.
enum Intent {
    Add(Vec<MemberEntry>),
    Remove(Vec<DeviceId>),
    SetRole(DeviceId, Role),
    KeyUpdate,
}

impl Member {
    // ---- Creating -------------------------------------------------------------------------

    /// Creates a group with this device as its only member (an admin), with default
    /// [`Config`].
    ///
    /// # Errors
    ///
    /// Only internal failures (encoding, sealing to its own key).
    pub fn create(
        device: Device,
        kem: DeviceKemSecret,
        policy: GroupPolicy,
        rng: &mut impl CryptoRngCore,
    ) -> Result<Member, GroupError> {
        let (m, out) = Self::create_with(device, kem, policy, &[], Config::default(), rng)?;
        debug_assert!(out.is_empty());
        Ok(m)
    }

    /// Creates a group whose genesis names this device (an admin) and `initial` members.
    /// Returns the member and the welcomes for the others.
    ///
    /// # Errors
    ///
    /// [`ApiMisuse::BadDeviceList`] if a device repeats (or is this one),
    /// [`ApiMisuse::TooManyDevices`], [`ApiMisuse::TooLarge`] if the genesis does not fit one
    /// envelope, [`GroupError::Envelope`] with [`CryptoError::NonContributory`] for a bad KEM
    /// key.
    pub fn create_with(
        device: Device,
        kem: DeviceKemSecret,
        policy: GroupPolicy,
        initial: &[(VerifiedContactCard, Role)],
        config: Config,
        rng: &mut impl CryptoRngCore,
    ) -> Result<(Member, Outbound), GroupError> {
        let me = device.id();
        let mut members = vec![MemberEntry {
            role: Role::Admin,
            card: kem.contact_card(device.signing_key(), None),
        }];
        members.extend(initial.iter().map(|(card, role)| MemberEntry {
            role: *role,
            card: card.clone(),
        }));
        members.sort_by_key(MemberEntry::device);
        if members.windows(2).any(|w| w[0].device() == w[1].device()) {
            return Err(ApiMisuse::BadDeviceList.into());
        }
        if members.len() > MAX_GROUP_DEVICES {
            return Err(ApiMisuse::TooManyDevices {
                count: members.len(),
                max: MAX_GROUP_DEVICES,
            }
            .into());
        }
        let expected: Vec<(DeviceId, KemPublicKey)> = members
            .iter()
            .map(|m| (m.device(), *m.card.kem_public()))
            .collect();
        let (key, _secret) = build_key(&expected, &GroupId::GENESIS, &me, None, rng)?;
        let op = ControlOp::Genesis {
            policy,
            members,
            key,
        };
        let body = NodeBody {
            version: NODE_VERSION,
            group: GroupId::GENESIS,
            author: me,
            seq: 1,
            lamport: 1,
            deps: Vec::new(),
            payload: Payload::Group(op.encode()),
        };
        let bytes = device.sign(&body)?;
        let hash = SignedNode::decode(&bytes)?.hash();
        let group = GroupId::from_genesis(hash);
        let limits = config.graph_limits();
        if bytes.len() > limits.local_node_limit() {
            return Err(ApiMisuse::TooLarge {
                len: bytes.len(),
                max: limits.local_node_limit(),
            }
            .into());
        }
        let mut member = Member::empty(device, kem, config, group, None);
        member.apply_own(&bytes)?;
        let mut out = Outbound::default();
        let welcome = member.welcome_bundle(hash)?;
        for (card, _) in initial {
            let d = DeviceId::from_bytes(card.device_key().to_bytes());
            out.direct
                .extend(member.send_bundle(d, card.kem_public(), &welcome, rng)?);
        }
        Ok((member, out))
    }

    /// A member built from a checked welcome (see [`Joiner`](super::Joiner)).
    pub(crate) fn from_parts(
        inner: SignedDoc,
        kem: DeviceKemSecret,
        state: GroupState,
        config: Config,
        park: Park,
        joined_at: NodeHash,
    ) -> Member {
        let mut m = Member {
            inner,
            kem,
            state,
            config,
            seen: Seen::new(MAX_SEEN_ENVELOPES),
            park,
            assembler: Assembler::default(),
            joined_at: Some(joined_at),
            unsent: Outbound::default(),
            forwarded: HashSet::new(),
            held_forwards: VecDeque::new(),
            forward_gen: None,
            danger_skip_local_checks: false,
            whiteout_gen: 0,
        };
        let _ = m.settle_whiteout();
        m
    }

    // ---- Getters --------------------------------------------------------------------------

    /// This device.
    pub fn device_id(&self) -> DeviceId {
        self.inner.device_id()
    }

    /// The group id: the hash of its genesis node.
    pub fn group(&self) -> GroupId {
        self.state.group
    }

    /// The group's policy.
    pub fn policy(&self) -> GroupPolicy {
        self.state.policy.unwrap_or_default()
    }

    /// The document. Edit it through [`Member::change`] only.
    pub fn doc(&self) -> &Doc {
        self.inner.doc()
    }

    /// The signed operation graph (read-only).
    pub fn log(&self) -> &Log {
        self.inner.log()
    }

    /// The graph's heads, sorted.
    pub fn heads(&self) -> Vec<NodeHash> {
        self.inner.heads()
    }

    /// This device's signed contact card (what an admin needs to add it elsewhere).
    pub fn contact_card(&self) -> VerifiedContactCard {
        self.kem.contact_card(self.inner.device.signing_key(), None)
    }

    /// The members in this replica's view (every control op applied so far), sorted by
    /// device id.
    pub fn members(&self) -> Vec<(DeviceId, Role)> {
        self.state
            .current()
            .members
            .iter()
            .map(|(d, i)| (*d, i.role))
            .collect()
    }

    /// A device's role in this replica's view.
    pub fn role(&self, device: &DeviceId) -> Option<Role> {
        self.state.current().role(device)
    }

    /// True if this device is a member in its own view.
    pub fn is_member(&self) -> bool {
        let me = self.device_id();
        self.role(&me).is_some()
    }

    /// The current epoch heads (rule K3), sorted by id.
    pub fn current_epochs(&self) -> Vec<EpochId> {
        let mut v: Vec<EpochId> = self
            .state
            .heads
            .iter()
            .filter_map(|&e| self.state.epoch(e).map(|r| r.id))
            .collect();
        v.sort();
        v
    }

    /// Every epoch this member knows of, in the order their ops were applied, with whether it
    /// holds the key.
    pub fn epochs(&self) -> Vec<(EpochId, bool)> {
        self.state
            .epochs
            .iter()
            .enumerate()
            .map(|(i, r)| (r.id, self.state.has_root(i as u32)))
            .collect()
    }

    /// Envelopes of a key rotation that a command made before it failed; they are sent with
    /// the next command's outbound, or can be taken here.
    pub fn take_unsent(&mut self) -> Outbound {
        std::mem::take(&mut self.unsent)
    }

    /// Makes the forwards due (see the module docs, rule K4: this device forwards epoch
    /// secrets to the members it added concurrently with those epochs), then takes every
    /// unsent envelope ([`Member::take_unsent`]). Call it after [`Member::receive`] and
    /// [`Member::drain`].
    ///
    /// # Errors
    ///
    /// Only internal failures (sealing); the unsent envelopes are then left in place.
    pub fn take_outgoing(&mut self, rng: &mut impl CryptoRngCore) -> Result<Outbound, GroupError> {
        let fwd = self.make_forwards(rng)?;
        let mut out = self.take_unsent();
        out.append(fwd);
        Ok(out)
    }

    /// Suspicious behaviour of other members that could not invalidate their ops.
    pub fn evidence(&self) -> &[Evidence] {
        &self.state.evidence
    }

    /// Envelopes parked for an epoch key: count and bytes.
    pub fn parked(&self) -> (usize, usize) {
        (self.park.len(), self.park.bytes())
    }

    /// Nodes waiting in the causal buffer.
    pub fn pending_nodes(&self) -> usize {
        self.inner.log().pending_len()
    }

    /// Work left for [`Member::drain`]: ready nodes in the causal buffer.
    pub fn backlog(&self) -> usize {
        self.inner.ready_len()
    }

    /// The op that added this device, if it joined by welcome.
    pub fn joined_at(&self) -> Option<NodeHash> {
        self.joined_at
    }

    // ---- Commands -------------------------------------------------------------------------

    /// Runs `f` as one transaction on the document and sends it as one signed node (merge
    /// nodes first if there are more heads than a node may name). Rotates the key first if
    /// the current epochs are unusable (rule K4).
    ///
    /// # Errors
    ///
    /// [`ApiMisuse::NotAMember`] or [`ApiMisuse::NotPermitted`] (readers may not edit);
    /// [`GroupError::Graph`] with the document's error from `f`, or a change too large for
    /// one envelope; [`ApiMisuse::NoKey`]. Nothing changes on error.
    pub fn change<T>(
        &mut self,
        f: impl FnOnce(&mut Transaction<'_>) -> Result<T, DocError>,
        rng: &mut impl CryptoRngCore,
    ) -> Result<Sent<T>, GroupError> {
        if !self.danger_skip_local_checks {
            let role = self.my_role()?;
            if !role.may_edit() {
                return Err(ApiMisuse::NotPermitted {
                    role,
                    action: Action::Edit,
                }
                .into());
            }
        }
        let mut outbound = std::mem::take(&mut self.unsent);
        let lc: Result<_, GroupError> = match self.ensure_sendable(rng) {
            Ok(o) => {
                outbound.append(o);
                self.inner.change(f).map_err(GroupError::from)
            }
            Err(e) => Err(e),
        };
        let lc = match lc {
            Ok(lc) => lc,
            Err(e) => {
                // A rotation made first is in the graph already: it goes out with the next
                // command.
                self.unsent = outbound;
                return Err(e);
            }
        };
        let prefixes = self.head_prefixes();
        for n in &lc.nodes {
            outbound.broadcast.push(self.seal_under(&prefixes, n, rng)?);
        }
        outbound.append(self.make_forwards(rng)?);
        Ok(Sent {
            value: lc.value,
            patches: lc.patches,
            outbound,
            hash: lc.hash,
        })
    }

    /// Adds a device (by its verified contact card) with `role`, rotating the key to the new
    /// membership in the same op. The outbound holds the op for the members and the welcome
    /// for the new device.
    ///
    /// # Errors
    ///
    /// [`ApiMisuse::NotPermitted`] unless this device is an admin;
    /// [`ApiMisuse::AlreadyMember`]; [`ApiMisuse::TooManyDevices`]; [`ApiMisuse::TooLarge`].
    pub fn add(
        &mut self,
        card: &VerifiedContactCard,
        role: Role,
        rng: &mut impl CryptoRngCore,
    ) -> Result<Sent<()>, GroupError> {
        self.add_many(&[(card.clone(), role)], rng)
    }

    /// Adds several devices in one op (see [`Member::add`]).
    ///
    /// # Errors
    ///
    /// As [`Member::add`], and [`ApiMisuse::BadDeviceList`] for an empty list or a repeat.
    pub fn add_many(
        &mut self,
        cards: &[(VerifiedContactCard, Role)],
        rng: &mut impl CryptoRngCore,
    ) -> Result<Sent<()>, GroupError> {
        let mut entries: Vec<MemberEntry> = cards
            .iter()
            .map(|(card, role)| MemberEntry {
                role: *role,
                card: card.clone(),
            })
            .collect();
        entries.sort_by_key(MemberEntry::device);
        if entries.is_empty() || entries.windows(2).any(|w| w[0].device() == w[1].device()) {
            return Err(ApiMisuse::BadDeviceList.into());
        }
        self.command(Intent::Add(entries), rng)
    }

    /// Removes devices and rotates the key in the same op: the new epoch is sealed to the
    /// remaining members only, and this member sends nothing the removed devices can read
    /// from then on. The op itself is encrypted under the current epoch (which the removed
    /// devices still hold: they may learn of their removal, nothing more).
    ///
    /// # Errors
    ///
    /// [`ApiMisuse::NotPermitted`] unless an admin; [`ApiMisuse::UnknownMember`];
    /// [`ApiMisuse::RemoveSelf`]; [`ApiMisuse::BadDeviceList`].
    pub fn remove(
        &mut self,
        devices: &[DeviceId],
        rng: &mut impl CryptoRngCore,
    ) -> Result<Sent<()>, GroupError> {
        let mut targets = devices.to_vec();
        targets.sort();
        if targets.is_empty() || targets.windows(2).any(|w| w[0] == w[1]) {
            return Err(ApiMisuse::BadDeviceList.into());
        }
        self.command(Intent::Remove(targets), rng)
    }

    /// Changes a member's role (no rotation: the member keeps reading).
    ///
    /// # Errors
    ///
    /// [`ApiMisuse::NotPermitted`] unless an admin; [`ApiMisuse::UnknownMember`].
    pub fn set_role(
        &mut self,
        device: &DeviceId,
        role: Role,
        rng: &mut impl CryptoRngCore,
    ) -> Result<Sent<()>, GroupError> {
        self.command(Intent::SetRole(*device, role), rng)
    }

    /// Rotates the group key to the same membership (any member may; rule K5).
    ///
    /// # Errors
    ///
    /// [`ApiMisuse::NotAMember`]; [`ApiMisuse::NoKey`].
    pub fn key_update(&mut self, rng: &mut impl CryptoRngCore) -> Result<Sent<()>, GroupError> {
        self.command(Intent::KeyUpdate, rng)
    }

    /// A catch-up request to `peer` (a member): this replica's heads and the dependencies it
    /// misses, in a direct envelope for `peer`. The peer answers ([`Received::Reply`]) with
    /// the nodes this replica lacks, in direct envelopes.
    ///
    /// # Errors
    ///
    /// [`ApiMisuse::UnknownMember`] if `peer` is not a member in this replica's view.
    pub fn sync_request(
        &mut self,
        peer: &DeviceId,
        rng: &mut impl CryptoRngCore,
    ) -> Result<Outbound, GroupError> {
        let m = self.state.current();
        let info = m
            .members
            .get(peer)
            .ok_or(ApiMisuse::UnknownMember { device: *peer })?;
        let have = self.inner.have().encode()?;
        let want = self.inner.want().encode()?;
        let payload = encode_sync(&have, &want);
        let env = seal_direct(
            self.inner.device.signing_key(),
            &DirectRecipient {
                device: *peer.as_bytes(),
                kem_public: &info.kem,
            },
            &DirectContent {
                group: *self.group().as_bytes(),
                content_type: CONTENT_SYNC,
                payload: &payload,
            },
            &self.config.envelope,
            rng,
        )?;
        Ok(Outbound {
            broadcast: Vec::new(),
            direct: vec![(*peer, env)],
        })
    }

    // ---- Low level (tests and tools) ------------------------------------------------------

    /// Skips this member's own checks before it makes an op (role, membership, targets), and
    /// stops it applying its own membership ops, so that tests and tools can play a member
    /// that breaks the rules. Receivers still validate everything: this lets a device send
    /// only what a modified copy of this library could send with the same keys.
    pub fn danger_skip_local_checks(&mut self, on: bool) {
        self.danger_skip_local_checks = on;
    }

    /// Decrypts a group envelope without processing it (no state changes): the plaintext,
    /// normally one signed node. For tests and tools.
    ///
    /// # Errors
    ///
    /// As the first steps of [`Member::receive`]; [`GroupError::NotRecipient`] if any header
    /// epoch's key is unknown to this member.
    pub fn open_envelope(&mut self, bytes: &[u8]) -> Result<Zeroizing<Vec<u8>>, GroupError> {
        let header = parse_group_header(bytes, &self.config.envelope)?;
        let missing: Vec<EpochIdPrefix> = header
            .epochs()
            .iter()
            .filter(|p| {
                self.state
                    .epoch_by_prefix(p)
                    .is_none_or(|e| !self.state.has_root(e))
            })
            .copied()
            .collect();
        if !missing.is_empty() {
            return Err(GroupError::NotRecipient { epochs: missing });
        }
        let keys = self
            .state
            .keys_for(header.epochs())
            .ok_or(CryptoError::AuthenticationFailed)?;
        Ok(open_group(&header, keys)?)
    }

    /// Encrypts arbitrary bytes in a group envelope under the given epochs (any this member
    /// holds the key of; all current heads if `epochs` is empty), with no check at all. For
    /// tests and tools that craft hostile traffic; receivers validate everything.
    ///
    /// # Errors
    ///
    /// [`ApiMisuse::NoKey`] if this member lacks a key; [`GroupError::Envelope`] if the
    /// plaintext does not fit.
    pub fn seal_envelope(
        &mut self,
        plaintext: &[u8],
        epochs: &[EpochId],
        rng: &mut impl CryptoRngCore,
    ) -> Result<Vec<u8>, GroupError> {
        let mut prefixes: Vec<EpochIdPrefix> = if epochs.is_empty() {
            self.head_prefixes()
        } else {
            epochs.iter().map(EpochId::prefix).collect()
        };
        prefixes.sort();
        self.seal_under(&prefixes, plaintext, rng)
    }

    /// Signs an arbitrary node body as this device. For tests and tools; receivers validate
    /// everything.
    ///
    /// # Errors
    ///
    /// Only internal encoding failures.
    pub fn sign_node(&self, body: &NodeBody) -> Result<Vec<u8>, GroupError> {
        Ok(self.inner.device.sign(body)?)
    }
}

impl fmt::Debug for Member {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Self {
            inner,
            kem,
            state,
            config: _,
            seen: _,
            park,
            assembler: _,
            joined_at,
            unsent: _,
            forwarded: _,
            held_forwards: _,
            forward_gen: _,
            danger_skip_local_checks,
            whiteout_gen: _,
        } = self;
        f.debug_struct("Member")
            .field("device", &inner.device_id())
            .field("kem", kem)
            .field("group", &state.group)
            .field("nodes", &inner.log().len())
            .field("epochs", &state.epochs.len())
            .field("heads", &state.heads.len())
            .field("parked", &park.len())
            .field("joined_at", joined_at)
            .field("danger_skip_local_checks", danger_skip_local_checks)
            .finish_non_exhaustive()
    }
}
