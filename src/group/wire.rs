//! Wire formats of the group layer: control ops (inside
//! [`Payload::Group`](crate::graph::Payload::Group)), bundles and their chunks (inside direct
//! envelopes), sync requests, and history links.
//!
//! Every format is postcard-compatible (LEB128 varints for integers, counts and enum tags; a
//! varint length before byte strings; fixed arrays raw; `Option` as a 0/1 tag), decoded by a
//! strict hand-written reader that checks every count against its limit and against the bytes
//! left before allocating, refuses overlong varints and trailing bytes, and re-encodes to
//! compare.
//!
//! ```text
//! control   = version: u8 (= 1) ‖ kind: varint ‖ fields
//!   0 Genesis   = policy ‖ members ‖ key
//!   1 Add       = members ‖ key
//!   2 Remove    = targets: varint n (1..=256) ‖ n × device[32] (sorted, unique) ‖ key
//!   3 SetRole   = target: device[32] ‖ role
//!   4 KeyUpdate = key
//! policy    = history: varint (0 = Full, 1 = FutureOnly)
//! members   = varint n (1..=256) ‖ n × member          (sorted by device id, unique)
//! member    = role: varint (0 = Admin, 1 = Writer, 2 = Reader) ‖ card: varint len ‖ contact card
//! key       = salt[16] ‖ sealed: varint n (1..=256) ‖ n × sealed secret[90]
//!             ‖ history: 0 | 1 ‖ varint len ‖ history blob
//!
//! bundle    = version: u8 (= 1) ‖ kind: varint (0 = welcome, 1 = nodes) ‖ group[32]
//!             ‖ anchor[32] (welcome: the op that added the recipient; nodes: zeros)
//!             ‖ frontier: varint n (≤ 256) ‖ n × hash[32] (sorted)
//!             ‖ items: varint n ‖ n × item
//! item      = 0 ‖ varint len ‖ signed node  |  1 ‖ varint len ‖ skeleton
//! chunk     = version: u8 (= 1) ‖ bundle id[32] = BLAKE3(bundle) ‖ index: varint
//!             ‖ total: varint (1..=32768) ‖ data: varint len ‖ bytes
//! sync      = version: u8 (= 1) ‖ have: varint len ‖ graph `Have` ‖ want: varint len ‖ graph `Want`
//! forward   = version: u8 (= 1) ‖ epoch id[32] ‖ epoch secret[32]   (exactly 65 bytes)
//! history   = crypto blob (kind 1) under the new epoch's history key (see the `keys` module
//!             docs: derived from the new epoch's secret) of
//!             varint n (≤ 256) ‖ n × (epoch id[32] ‖ epoch secret[32])
//!             for the epochs the op supersedes; associated data =
//!             HISTORY_AAD_LABEL ‖ lp(group field) ‖ lp(author) ‖ lp(salt)
//! ```
//!
//! A sealed secret's `index` is its position in the list, which is the sorted list of the
//! devices expected to receive it (rule K2).

use zeroize::Zeroizing;

use super::error::{GroupError, PeerMisbehaved};
use super::limits::{MAX_HISTORY_LEN, MAX_HISTORY_ROOTS, MAX_MEMBERS_PER_OP};
use super::policy::{GroupPolicy, HistoryPolicy, Role};
use crate::crypto::{
    ContactCard, EpochId, SealedSecret, VerifiedContactCard, MAX_CARD_LEN, SEALED_SECRET_LEN,
};
use crate::graph::codec::Reader;
use crate::graph::{
    DecodeError, DeviceId, GroupId, NodeHash, Skeleton, MAX_HAVE_HEADS, MAX_NODE_SIZE,
    MAX_SKELETON_SIZE, MAX_SYNC_SIZE,
};

/// Format version of every structure in this module.
pub const GROUP_WIRE_VERSION: u8 = 1;

/// Direct-envelope content type of a bundle chunk (welcome or catch-up answer).
pub const CONTENT_BUNDLE: u8 = 1;

/// Direct-envelope content type of a sync request (`Have` and `Want`).
pub const CONTENT_SYNC: u8 = 2;

/// Direct-envelope content type of a forwarded epoch secret (DCGKA's forward): sent by the
/// adder of a member to that member, for an epoch concurrent with the op that added it.
pub const CONTENT_FORWARD: u8 = 3;

/// Length of a forward's payload: version, epoch id, epoch secret.
pub(crate) const FORWARD_LEN: usize = 1 + 32 + 32;

/// Prefix of a history link's associated data.
pub const HISTORY_AAD_LABEL: &[u8] = b"sealdoc/v1/group-history\0";

/// Smallest encoding of one member entry: role, card length, and the shortest card.
const MIN_MEMBER_LEN: usize = 1 + 1 + MAX_CARD_LEN - 8;

/// A byte writer producing the postcard encodings above.
#[derive(Default)]
pub(crate) struct W(pub(crate) Vec<u8>);

impl W {
    pub(crate) fn u8(&mut self, b: u8) {
        self.0.push(b);
    }

    pub(crate) fn varint(&mut self, mut v: u64) {
        loop {
            let b = (v & 0x7f) as u8;
            v >>= 7;
            if v == 0 {
                self.0.push(b);
                return;
            }
            self.0.push(b | 0x80);
        }
    }

    pub(crate) fn raw(&mut self, b: &[u8]) {
        self.0.extend_from_slice(b);
    }

    pub(crate) fn bytes(&mut self, b: &[u8]) {
        self.varint(b.len() as u64);
        self.raw(b);
    }
}

/// A device to add, with its verified contact card.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemberEntry {
    /// The role it gets.
    pub role: Role,
    /// Its contact card (signed by the device: its signing key, KEM key and key id).
    pub card: VerifiedContactCard,
}

impl MemberEntry {
    /// The device id the card names.
    #[must_use]
    pub fn device(&self) -> DeviceId {
        DeviceId::from_bytes(self.card.device_key().to_bytes())
    }
}

/// The key material of an epoch-creating op: a fresh secret sealed to every expected device.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyUpdate {
    /// Fresh salt, bound into every sealed secret's context.
    pub salt: [u8; 16],
    /// One sealed secret per expected device, in device-id order; `index` = position.
    pub sealed: Vec<SealedSecret>,
    /// Under `Full`: the superseded epochs' roots, under this epoch's history key.
    pub history: Option<Vec<u8>>,
}

/// A membership or key operation: the payload of a [`Payload::Group`] node.
///
/// [`Payload::Group`]: crate::graph::Payload::Group
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ControlOp {
    /// Creates the group: its policy, first members (the creator an admin among them) and
    /// first epoch.
    Genesis {
        /// The policy, fixed for the group's life.
        policy: GroupPolicy,
        /// The first members, sorted by device id.
        members: Vec<MemberEntry>,
        /// The first epoch, sealed to every member.
        key: KeyUpdate,
    },
    /// Adds devices and rotates the key to the resulting membership.
    Add {
        /// The new members, sorted by device id.
        members: Vec<MemberEntry>,
        /// The new epoch, sealed to every member including the new ones.
        key: KeyUpdate,
    },
    /// Removes devices and rotates the key to the remaining membership, in one op.
    Remove {
        /// The devices removed, sorted.
        targets: Vec<DeviceId>,
        /// The new epoch, sealed to every remaining member.
        key: KeyUpdate,
    },
    /// Changes one member's role (no rotation: the member stays).
    SetRole {
        /// The member.
        target: DeviceId,
        /// Its new role.
        role: Role,
    },
    /// Rotates the key to the same membership (any member may).
    KeyUpdate {
        /// The new epoch, sealed to every member.
        key: KeyUpdate,
    },
}

impl ControlOp {
    /// The key update, for an epoch-creating op.
    #[must_use]
    pub fn key(&self) -> Option<&KeyUpdate> {
        match self {
            ControlOp::Genesis { key, .. }
            | ControlOp::Add { key, .. }
            | ControlOp::Remove { key, .. }
            | ControlOp::KeyUpdate { key } => Some(key),
            ControlOp::SetRole { .. } => None,
        }
    }

    /// The op's bytes.
    #[must_use]
    pub fn encode(&self) -> Vec<u8> {
        let mut w = W::default();
        w.u8(GROUP_WIRE_VERSION);
        match self {
            ControlOp::Genesis {
                policy,
                members,
                key,
            } => {
                w.varint(0);
                w.varint(u64::from(policy.history.to_tag()));
                write_members(&mut w, members);
                write_key(&mut w, key);
            }
            ControlOp::Add { members, key } => {
                w.varint(1);
                write_members(&mut w, members);
                write_key(&mut w, key);
            }
            ControlOp::Remove { targets, key } => {
                w.varint(2);
                w.varint(targets.len() as u64);
                for t in targets {
                    w.raw(t.as_bytes());
                }
                write_key(&mut w, key);
            }
            ControlOp::SetRole { target, role } => {
                w.varint(3);
                w.raw(target.as_bytes());
                w.varint(u64::from(role.to_tag()));
            }
            ControlOp::KeyUpdate { key } => {
                w.varint(4);
                write_key(&mut w, key);
            }
        }
        w.0
    }

    /// Strictly decodes an op: every count against its limit before allocating, device lists
    /// sorted and unique, sealed indexes equal to positions, every contact card verified;
    /// then re-encodes and compares.
    ///
    /// # Errors
    ///
    /// [`GroupError::Decode`] for malformed bytes, [`GroupError::Peer`] with
    /// [`PeerMisbehaved::BadContactCard`] or [`PeerMisbehaved::SealedIndex`].
    pub fn decode(bytes: &[u8]) -> Result<Self, GroupError> {
        if bytes.len() > MAX_NODE_SIZE {
            return Err(DecodeError::TooLarge {
                len: bytes.len(),
                max: MAX_NODE_SIZE,
            }
            .into());
        }
        let mut r = Reader::new(bytes);
        read_version(&mut r)?;
        let op = match r.tag(5, "control op")? {
            0 => {
                let history = HistoryPolicy::from_tag(r.tag(HistoryPolicy::TAGS, "history")?);
                let members = read_members(&mut r)?;
                let key = read_key(&mut r)?;
                ControlOp::Genesis {
                    policy: GroupPolicy { history },
                    members,
                    key,
                }
            }
            1 => {
                let members = read_members(&mut r)?;
                ControlOp::Add {
                    members,
                    key: read_key(&mut r)?,
                }
            }
            2 => {
                let targets = read_devices(&mut r, "targets")?;
                ControlOp::Remove {
                    targets,
                    key: read_key(&mut r)?,
                }
            }
            3 => {
                let target = DeviceId::from_bytes(r.array32()?);
                let role = Role::from_tag(r.tag(Role::TAGS, "role")?);
                ControlOp::SetRole { target, role }
            }
            _ => ControlOp::KeyUpdate {
                key: read_key(&mut r)?,
            },
        };
        r.finish()?;
        if op.encode() != bytes {
            return Err(DecodeError::NonCanonical.into());
        }
        Ok(op)
    }
}

/// The kind tag of a control op (0 Genesis, 1 Add, 2 Remove, 3 SetRole, 4 KeyUpdate), read
/// from its first two bytes without decoding the rest; `None` if they are not a known version
/// and kind (the full decoder then says what is wrong).
pub(crate) fn control_kind(bytes: &[u8]) -> Option<u32> {
    match bytes {
        [GROUP_WIRE_VERSION, k, ..] if *k < 5 => Some(u32::from(*k)),
        _ => None,
    }
}

fn read_version(r: &mut Reader<'_>) -> Result<(), DecodeError> {
    let v = r.u8()?;
    if v != GROUP_WIRE_VERSION {
        return Err(DecodeError::UnsupportedVersion {
            found: v,
            expected: GROUP_WIRE_VERSION,
        });
    }
    Ok(())
}

fn write_members(w: &mut W, members: &[MemberEntry]) {
    w.varint(members.len() as u64);
    for m in members {
        w.varint(u64::from(m.role.to_tag()));
        w.bytes(m.card.as_bytes());
    }
}

fn write_key(w: &mut W, key: &KeyUpdate) {
    w.raw(&key.salt);
    w.varint(key.sealed.len() as u64);
    for s in &key.sealed {
        w.raw(&s.to_bytes());
    }
    match &key.history {
        None => w.u8(0),
        Some(h) => {
            w.u8(1);
            w.bytes(h);
        }
    }
}

fn read_members(r: &mut Reader<'_>) -> Result<Vec<MemberEntry>, GroupError> {
    let n = r.count(MAX_MEMBERS_PER_OP, MIN_MEMBER_LEN, |count| {
        DecodeError::LimitExceeded {
            what: "members",
            count,
            max: MAX_MEMBERS_PER_OP,
        }
    })?;
    if n == 0 {
        return Err(DecodeError::Empty { what: "members" }.into());
    }
    let mut out: Vec<MemberEntry> = Vec::with_capacity(n);
    for _ in 0..n {
        let role = Role::from_tag(r.tag(Role::TAGS, "role")?);
        let card = r.bytes(MAX_CARD_LEN, |len| DecodeError::TooLarge {
            len: usize::try_from(len).unwrap_or(usize::MAX),
            max: MAX_CARD_LEN,
        })?;
        let card = ContactCard::verify(card).map_err(PeerMisbehaved::BadContactCard)?;
        let entry = MemberEntry { role, card };
        if let Some(prev) = out.last() {
            if prev.device() >= entry.device() {
                return Err(DecodeError::NotSorted { what: "members" }.into());
            }
        }
        out.push(entry);
    }
    Ok(out)
}

fn read_devices(r: &mut Reader<'_>, what: &'static str) -> Result<Vec<DeviceId>, GroupError> {
    let n = r.count(MAX_MEMBERS_PER_OP, 32, |count| DecodeError::LimitExceeded {
        what,
        count,
        max: MAX_MEMBERS_PER_OP,
    })?;
    if n == 0 {
        return Err(DecodeError::Empty { what }.into());
    }
    let mut out: Vec<DeviceId> = Vec::with_capacity(n);
    for _ in 0..n {
        let d = DeviceId::from_bytes(r.array32()?);
        if out.last().is_some_and(|p| *p >= d) {
            return Err(DecodeError::NotSorted { what }.into());
        }
        out.push(d);
    }
    Ok(out)
}

fn read_key(r: &mut Reader<'_>) -> Result<KeyUpdate, GroupError> {
    let mut salt = [0u8; 16];
    salt.copy_from_slice(r.take(16)?);
    let n = r.count(
        super::limits::MAX_GROUP_DEVICES,
        SEALED_SECRET_LEN,
        |count| DecodeError::LimitExceeded {
            what: "sealed secrets",
            count,
            max: super::limits::MAX_GROUP_DEVICES,
        },
    )?;
    if n == 0 {
        return Err(DecodeError::Empty {
            what: "sealed secrets",
        }
        .into());
    }
    let mut sealed = Vec::with_capacity(n);
    for position in 0..n {
        let s = SealedSecret::from_bytes(r.take(SEALED_SECRET_LEN)?)
            .map_err(|_| DecodeError::Truncated { at: r.pos() })?;
        if usize::from(s.index()) != position {
            return Err(PeerMisbehaved::SealedIndex {
                position,
                index: s.index(),
            }
            .into());
        }
        sealed.push(s);
    }
    let history = match r.tag(2, "option")? {
        0 => None,
        _ => Some(
            r.bytes(MAX_HISTORY_LEN, |len| DecodeError::TooLarge {
                len: usize::try_from(len).unwrap_or(usize::MAX),
                max: MAX_HISTORY_LEN,
            })?
            .to_vec(),
        ),
    };
    Ok(KeyUpdate {
        salt,
        sealed,
        history,
    })
}

/// What a bundle is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum BundleKind {
    /// The welcome of a new member.
    Welcome,
    /// Signed nodes (a catch-up answer, or an op forwarded to a member who cannot read it in
    /// a group envelope).
    Nodes,
}

/// One item of a bundle.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Item {
    /// A signed node, exactly as made.
    Node(Vec<u8>),
    /// The skeleton of a node the recipient may not read.
    Skeleton(Skeleton),
}

/// A bundle of nodes, sent in chunks of direct envelopes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Bundle {
    pub kind: BundleKind,
    pub group: GroupId,
    /// Welcome: the op that added the recipient. Nodes: zeros.
    pub anchor: NodeHash,
    /// Welcome: the heads the recipient must reach. Nodes: empty.
    pub frontier: Vec<NodeHash>,
    pub items: Vec<Item>,
}

impl Bundle {
    pub(crate) fn encode(&self) -> Result<Vec<u8>, GroupError> {
        let mut w = W::default();
        w.u8(GROUP_WIRE_VERSION);
        w.varint(match self.kind {
            BundleKind::Welcome => 0,
            BundleKind::Nodes => 1,
        });
        w.raw(self.group.as_bytes());
        w.raw(self.anchor.as_bytes());
        w.varint(self.frontier.len() as u64);
        for h in &self.frontier {
            w.raw(h.as_bytes());
        }
        w.varint(self.items.len() as u64);
        for item in &self.items {
            match item {
                Item::Node(b) => {
                    w.u8(0);
                    w.bytes(b);
                }
                Item::Skeleton(s) => {
                    w.u8(1);
                    w.bytes(&s.encode()?);
                }
            }
        }
        Ok(w.0)
    }

    /// Strict decoding; the caller checked the length against
    /// [`MAX_BUNDLE_BYTES`](super::MAX_BUNDLE_BYTES) while reassembling.
    pub(crate) fn decode(bytes: &[u8]) -> Result<Self, GroupError> {
        let mut r = Reader::new(bytes);
        read_version(&mut r)?;
        let kind = match r.tag(2, "bundle kind")? {
            0 => BundleKind::Welcome,
            _ => BundleKind::Nodes,
        };
        let group = GroupId::from_bytes(r.array32()?);
        let anchor = NodeHash::from_bytes(r.array32()?);
        let frontier = crate::graph::wire::read_hashes(
            &mut r,
            MAX_HAVE_HEADS,
            |count| DecodeError::TooManyHashes {
                count,
                max: MAX_HAVE_HEADS,
            },
            |_, _| DecodeError::HashesNotSorted,
        )?;
        // The smallest item is a tag and a length byte.
        let n = r.count(usize::MAX, 2, |count| DecodeError::LimitExceeded {
            what: "bundle items",
            count,
            max: usize::MAX,
        })?;
        let mut items = Vec::with_capacity(n);
        for _ in 0..n {
            let item = match r.tag(2, "bundle item")? {
                0 => Item::Node(
                    r.bytes(MAX_NODE_SIZE, |len| DecodeError::TooLarge {
                        len: usize::try_from(len).unwrap_or(usize::MAX),
                        max: MAX_NODE_SIZE,
                    })?
                    .to_vec(),
                ),
                _ => Item::Skeleton(Skeleton::decode(r.bytes(MAX_SKELETON_SIZE, |len| {
                    DecodeError::TooLarge {
                        len: usize::try_from(len).unwrap_or(usize::MAX),
                        max: MAX_SKELETON_SIZE,
                    }
                })?)?),
            };
            items.push(item);
        }
        r.finish()?;
        let b = Bundle {
            kind,
            group,
            anchor,
            frontier,
            items,
        };
        if b.encode()? != bytes {
            return Err(DecodeError::NonCanonical.into());
        }
        Ok(b)
    }
}

/// One chunk of a bundle.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Chunk {
    pub bundle: [u8; 32],
    pub index: u32,
    pub total: u32,
    pub data: Vec<u8>,
}

impl Chunk {
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut w = W::default();
        w.u8(GROUP_WIRE_VERSION);
        w.raw(&self.bundle);
        w.varint(u64::from(self.index));
        w.varint(u64::from(self.total));
        w.bytes(&self.data);
        w.0
    }

    pub(crate) fn decode(bytes: &[u8]) -> Result<Self, GroupError> {
        let mut r = Reader::new(bytes);
        read_version(&mut r)?;
        let bundle = r.array32()?;
        let index = r.u32()?;
        let total = r.u32()?;
        let max = super::limits::MAX_BUNDLE_CHUNKS;
        if total == 0 || total as usize > max {
            return Err(DecodeError::LimitExceeded {
                what: "chunks",
                count: u64::from(total),
                max,
            }
            .into());
        }
        if index >= total {
            return Err(PeerMisbehaved::BadChunks("index past the total").into());
        }
        let data = r.bytes(usize::MAX, |len| DecodeError::TooLarge {
            len: usize::try_from(len).unwrap_or(usize::MAX),
            max: bytes.len(),
        })?;
        r.finish()?;
        Ok(Chunk {
            bundle,
            index,
            total,
            data: data.to_vec(),
        })
    }
}

/// A sync request: the requester's `Have` and `Want`, as graph sync messages.
pub(crate) fn encode_sync(have: &[u8], want: &[u8]) -> Vec<u8> {
    let mut w = W::default();
    w.u8(GROUP_WIRE_VERSION);
    w.bytes(have);
    w.bytes(want);
    w.0
}

/// Splits a sync request into its `Have` and `Want` bytes.
pub(crate) fn decode_sync(bytes: &[u8]) -> Result<(&[u8], &[u8]), GroupError> {
    let mut r = Reader::new(bytes);
    read_version(&mut r)?;
    let over = |len: u64| DecodeError::TooLarge {
        len: usize::try_from(len).unwrap_or(usize::MAX),
        max: MAX_SYNC_SIZE,
    };
    let have = r.bytes(MAX_SYNC_SIZE, over)?;
    let want = r.bytes(MAX_SYNC_SIZE, over)?;
    r.finish()?;
    Ok((have, want))
}

/// A forward: an epoch's id and secret.
pub(crate) fn encode_forward(id: &EpochId, secret: &[u8; 32]) -> Zeroizing<Vec<u8>> {
    let mut w = W(Vec::with_capacity(FORWARD_LEN));
    w.u8(GROUP_WIRE_VERSION);
    w.raw(id.as_bytes());
    w.raw(secret);
    Zeroizing::new(w.0)
}

/// Decodes a forward strictly: the version, exactly one id and one secret, nothing after.
pub(crate) fn decode_forward(bytes: &[u8]) -> Result<WrappedSecret, GroupError> {
    let mut r = Reader::new(bytes);
    read_version(&mut r)?;
    let id = EpochId::from_bytes(r.array32()?);
    let secret = Zeroizing::new(r.array32()?);
    r.finish()?;
    Ok((id, secret))
}

/// The associated data of a history link: label, then the op's group field, author and salt.
pub(crate) fn history_aad(group_field: &GroupId, author: &DeviceId, salt: &[u8; 16]) -> Vec<u8> {
    let mut out = HISTORY_AAD_LABEL.to_vec();
    for part in [&group_field.as_bytes()[..], author.as_bytes(), salt] {
        // Each part is at most 32 bytes.
        out.extend_from_slice(&(part.len() as u32).to_le_bytes());
        out.extend_from_slice(part);
    }
    out
}

/// An epoch's id and secret, as wrapped in a history link.
pub(crate) type WrappedSecret = (EpochId, Zeroizing<[u8; 32]>);

/// The plaintext of a history link: pairs of epoch id and secret.
pub(crate) fn encode_history(roots: &[WrappedSecret]) -> Zeroizing<Vec<u8>> {
    let mut w = W(Vec::with_capacity(3 + 64 * roots.len()));
    w.varint(roots.len() as u64);
    for (id, root) in roots {
        w.raw(id.as_bytes());
        w.raw(root.as_ref());
    }
    Zeroizing::new(w.0)
}

/// Decodes a history link's plaintext.
pub(crate) fn decode_history(bytes: &[u8]) -> Result<Vec<WrappedSecret>, DecodeError> {
    let mut r = Reader::new(bytes);
    let n = r.count(MAX_HISTORY_ROOTS, 64, |count| DecodeError::LimitExceeded {
        what: "history roots",
        count,
        max: MAX_HISTORY_ROOTS,
    })?;
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let id = EpochId::from_bytes(r.array32()?);
        let root = Zeroizing::new(r.array32()?);
        out.push((id, root));
    }
    r.finish()?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forwards_decode_strictly() {
        let id = EpochId::from_bytes([3; 32]);
        let bytes = encode_forward(&id, &[9; 32]);
        assert_eq!(bytes.len(), FORWARD_LEN);
        let (i, s) = decode_forward(&bytes).unwrap();
        assert_eq!((i, *s), (id, [9; 32]));
        // Short, long, wrong version: typed decode errors.
        for bad in [
            bytes[..FORWARD_LEN - 1].to_vec(),
            [&bytes[..], &[0]].concat(),
            [&[2u8][..], &bytes[1..]].concat(),
            Vec::new(),
        ] {
            assert!(matches!(decode_forward(&bad), Err(GroupError::Decode(_))));
        }
    }
}
