//! Errors of the group layer.
//!
//! One enum, [`GroupError`], with the failures of the layers below wrapped by cause, and two
//! reason enums kept apart as rustls keeps `PeerMisbehaved` apart from `ApiMisuse`:
//!
//! * [`PeerMisbehaved`]: authenticated input that breaks a rule of the group (an op by a
//!   non-member, a rotation that leaves someone out, a welcome from the wrong device). When
//!   the input is a signed node, the node is invalid: its hash is remembered and it is never
//!   validated again ([`GroupError::is_invalid_node`]).
//! * [`ApiMisuse`]: a caller's mistake, never caused by the values of untrusted data.
//!
//! Every rejection leaves the member as it was, except that an invalid node's hash is
//! remembered and an envelope naming an unknown epoch is parked (which is an outcome,
//! [`Pending`](super::Pending), not an error).

use thiserror::Error;

use super::policy::{Action, Role};
use crate::crypto::{CryptoError, EpochIdPrefix};
use crate::graph::{DecodeError, DeviceId, GraphError, GroupId, NodeHash};

/// Why the group layer rejected input or refused a command.
#[derive(Debug, Error, Clone)]
#[non_exhaustive]
pub enum GroupError {
    /// The envelope is too large, malformed, or does not authenticate (one opaque
    /// [`CryptoError::AuthenticationFailed`] for every failed commitment or tag). Nothing
    /// changed.
    #[error("envelope: {0}")]
    Envelope(#[from] CryptoError),
    /// The graph layer refused the node: malformed, bad signature, wrong group, or invalid
    /// against its causal past (see [`GraphError`]).
    #[error("graph: {0}")]
    Graph(#[from] GraphError),
    /// An authenticated group payload (control op, bundle, sync request) is malformed.
    #[error("malformed group payload: {0}")]
    Decode(#[from] DecodeError),
    /// Authenticated input broke a rule of the group.
    #[error("peer misbehaved: {0}")]
    Peer(#[from] PeerMisbehaved),
    /// The caller asked for something it may not or cannot do.
    #[error("API misuse: {0}")]
    Misuse(#[from] ApiMisuse),
    /// The envelope is sealed under epochs this device has no key for, and it is not a
    /// member: it was removed, or was never sealed these epochs. Nothing changed.
    #[error("not a recipient of epochs {epochs:?}")]
    NotRecipient {
        /// The header's epochs this device has no key for.
        epochs: Vec<EpochIdPrefix>,
    },
    /// A kind of envelope or content this version does not handle (ephemeral envelopes).
    #[error("unsupported: {0}")]
    Unsupported(&'static str),
}

impl GroupError {
    /// True if the input was a correctly signed node that is invalid: its hash is now
    /// remembered and it will never be validated again.
    #[must_use]
    pub fn is_invalid_node(&self) -> bool {
        match self {
            GroupError::Graph(g) => g.is_invalid_node(),
            GroupError::Peer(p) => p.invalidates_node(),
            _ => false,
        }
    }
}

/// A rule of the group broken by authenticated input.
#[derive(Debug, Error, Clone)]
#[non_exhaustive]
pub enum PeerMisbehaved {
    /// The author is not a member in the op's causal past (never added, or removed before).
    #[error("author {author:?} is not a member in the op's causal past")]
    NotAMember {
        /// The author.
        author: DeviceId,
    },
    /// The author's role in the op's causal past does not allow the op.
    #[error("author {author:?} is a {role}, which may not {action}")]
    RoleTooLow {
        /// The author.
        author: DeviceId,
        /// Its role.
        role: Role,
        /// What it tried.
        action: Action,
    },
    /// An `Add` names a device that is already a member.
    #[error("device {device:?} is already a member")]
    AlreadyMember {
        /// The device.
        device: DeviceId,
    },
    /// A `Remove` or `SetRole` names a device that is not a member.
    #[error("device {device:?} is not a member")]
    TargetNotAMember {
        /// The device.
        device: DeviceId,
    },
    /// A `Remove` removes its own author (who would know the new secret).
    #[error("a remove op may not remove its own author")]
    RemovesItself,
    /// A genesis payload outside the group's first node, or a first node without one.
    #[error("genesis payload outside the genesis node, or a genesis node without one")]
    GenesisMisplaced,
    /// The genesis op breaks a rule.
    #[error("invalid genesis: {0}")]
    BadGenesis(&'static str),
    /// Rule K2: the sealed secrets do not cover exactly the expected devices.
    #[error("key update seals to {found} devices, expected exactly {expected}")]
    SealedCount {
        /// Devices expected (the membership after the op).
        expected: usize,
        /// Sealed secrets found.
        found: usize,
    },
    /// Rule K2: sealed secret `index` is not sealed to the KEM key of the device at that
    /// position of the sorted expected list.
    #[error("sealed secret {index} is not for device {device:?}'s key")]
    SealedRecipient {
        /// Position in the list.
        index: usize,
        /// The device expected there.
        device: DeviceId,
    },
    /// A sealed secret's index is not its position in the list.
    #[error("sealed secret at position {position} claims index {index}")]
    SealedIndex {
        /// Its position.
        position: usize,
        /// The index it claims.
        index: u16,
    },
    /// The history link does not follow the group's history policy (present under `Full`
    /// except at genesis, absent otherwise).
    #[error("history link {}", if *.present { "present where the policy forbids it" } else { "missing where the policy requires it" })]
    HistoryPolicy {
        /// Whether the link was present.
        present: bool,
    },
    /// The op would make the group larger than [`MAX_GROUP_DEVICES`](super::MAX_GROUP_DEVICES).
    #[error("{count} devices, at most {max} allowed")]
    TooManyDevices {
        /// Devices after the op.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// A contact card in an `Add` or genesis does not verify.
    #[error("contact card: {0}")]
    BadContactCard(CryptoError),
    /// The node carries a payload kind the group layer does not know.
    #[error("unknown payload kind")]
    UnknownPayload,
    /// A signed control op does not decode.
    #[error("malformed control op: {0}")]
    MalformedControl(DecodeError),
    /// Envelope context: a header epoch's creating op is not in the node's causal past (the
    /// node was re-wrapped under an epoch its author cannot have used). The node is not
    /// remembered as invalid: the envelope was at fault.
    #[error("epoch {epoch:?} of the envelope is not in the node's causal past")]
    EpochNotInPast {
        /// The epoch.
        epoch: EpochIdPrefix,
    },
    /// Envelope context: the node's author was not sealed a header epoch.
    #[error("the node's author is not a recipient of epoch {epoch:?}")]
    AuthorNotRecipient {
        /// The epoch.
        epoch: EpochIdPrefix,
    },
    /// The decrypted node belongs to another group.
    #[error("node of group {found:?} in an envelope of group {expected:?}")]
    WrongGroup {
        /// This group.
        expected: GroupId,
        /// The group the node names.
        found: GroupId,
    },
    /// A direct envelope names another group than this member's.
    #[error("direct message for group {found:?}, this is group {expected:?}")]
    WrongDirectGroup {
        /// This group.
        expected: GroupId,
        /// The group named.
        found: GroupId,
    },
    /// A direct message from a device that is not a member (in this replica's view).
    #[error("direct message from non-member {sender:?}")]
    SenderNotAMember {
        /// The sender.
        sender: DeviceId,
    },
    /// A direct message of an unknown content type.
    #[error("unknown direct content type {0}")]
    UnknownContent(u8),
    /// A bundle's chunks disagree with each other or with the bundle id.
    #[error("bundle chunks do not match: {0}")]
    BadChunks(&'static str),
    /// A bundle that may carry only signed nodes carries a skeleton (only a welcome under
    /// `FutureOnly` may), or a node that does not apply in order.
    #[error("bundle: {0}")]
    BadBundle(&'static str),
    /// A welcome does not check out: not from the device that added this one, does not add
    /// this device, or does not reach the frontier it names.
    #[error("welcome: {0}")]
    BadWelcome(&'static str),
    /// The welcome's sender is not the author of the op that added this device.
    #[error("welcome sent by {sender:?}, but the adding op is by {adder:?}")]
    WelcomeNotFromAdder {
        /// Who sent the welcome.
        sender: DeviceId,
        /// Who signed the adding op.
        adder: DeviceId,
    },
    /// A forwarded epoch secret from a device other than the one that authored the op that
    /// added this device (only the adder is trusted to forward, as for the welcome).
    #[error("forward sent by {sender:?}, but this device was added by {adder:?}")]
    ForwardNotFromAdder {
        /// Who sent the forward.
        sender: DeviceId,
        /// Who signed the op that added this device (`None` if this device is not a member).
        adder: Option<DeviceId>,
    },
    /// A forwarded epoch secret breaks a rule (for an epoch in the causal past of the op that
    /// added this device).
    #[error("forward: {0}")]
    BadForward(&'static str),
    /// A node named by a bundle is unknown.
    #[error("bundle names unknown node {0:?}")]
    UnknownNode(NodeHash),
}

impl PeerMisbehaved {
    /// True for reasons that make a signed node invalid (remembered), false for reasons about
    /// how it was delivered.
    #[must_use]
    pub fn invalidates_node(&self) -> bool {
        matches!(
            self,
            PeerMisbehaved::NotAMember { .. }
                | PeerMisbehaved::RoleTooLow { .. }
                | PeerMisbehaved::AlreadyMember { .. }
                | PeerMisbehaved::TargetNotAMember { .. }
                | PeerMisbehaved::RemovesItself
                | PeerMisbehaved::GenesisMisplaced
                | PeerMisbehaved::BadGenesis(_)
                | PeerMisbehaved::SealedCount { .. }
                | PeerMisbehaved::SealedRecipient { .. }
                | PeerMisbehaved::SealedIndex { .. }
                | PeerMisbehaved::HistoryPolicy { .. }
                | PeerMisbehaved::TooManyDevices { .. }
                | PeerMisbehaved::BadContactCard(_)
                | PeerMisbehaved::UnknownPayload
                | PeerMisbehaved::MalformedControl(_)
        )
    }

    /// A short name, for the graph layer's [`GraphError::Refused`].
    pub(crate) fn short(&self) -> &'static str {
        match self {
            PeerMisbehaved::NotAMember { .. } => "author is not a member",
            PeerMisbehaved::RoleTooLow { .. } => "author's role does not allow it",
            PeerMisbehaved::AlreadyMember { .. } => "adds a member",
            PeerMisbehaved::TargetNotAMember { .. } => "names a non-member",
            PeerMisbehaved::RemovesItself => "removes its author",
            PeerMisbehaved::GenesisMisplaced => "misplaced genesis",
            PeerMisbehaved::BadGenesis(_) => "invalid genesis",
            PeerMisbehaved::SealedCount { .. }
            | PeerMisbehaved::SealedRecipient { .. }
            | PeerMisbehaved::SealedIndex { .. } => "sealed secrets do not match the members",
            PeerMisbehaved::HistoryPolicy { .. } => "history link against the policy",
            PeerMisbehaved::TooManyDevices { .. } => "too many devices",
            PeerMisbehaved::BadContactCard(_) => "invalid contact card",
            PeerMisbehaved::UnknownPayload => "unknown payload",
            PeerMisbehaved::MalformedControl(_) => "malformed control op",
            PeerMisbehaved::EpochNotInPast { .. } => "envelope epoch not in the node's past",
            PeerMisbehaved::AuthorNotRecipient { .. } => "author not a recipient of the epoch",
            _ => "group rule broken",
        }
    }
}

/// A caller's mistake: never caused by untrusted data.
#[derive(Debug, Error, Clone)]
#[non_exhaustive]
pub enum ApiMisuse {
    /// This device's role does not allow the command.
    #[error("this device is a {role}, which may not {action}")]
    NotPermitted {
        /// This device's role.
        role: Role,
        /// The command.
        action: Action,
    },
    /// This device is not (or no longer) a member.
    #[error("this device is not a member of the group")]
    NotAMember,
    /// The device to add is already a member.
    #[error("device {device:?} is already a member")]
    AlreadyMember {
        /// The device.
        device: DeviceId,
    },
    /// The device named is not a member.
    #[error("device {device:?} is not a member")]
    UnknownMember {
        /// The device.
        device: DeviceId,
    },
    /// A device cannot remove itself (it would know the new secret).
    #[error("a device cannot remove itself")]
    RemoveSelf,
    /// The command names no device, or the same device twice.
    #[error("the list of devices is empty or repeats a device")]
    BadDeviceList,
    /// The command would make the group larger than the limit.
    #[error("{count} devices, at most {max} allowed")]
    TooManyDevices {
        /// Devices after the command.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// The op does not fit one envelope under the configured limit.
    #[error("the op encodes to {len} bytes, at most {max} fit one envelope")]
    TooLarge {
        /// Encoded node length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// This device holds no key for any current epoch: catch up first.
    #[error("no key for any current epoch")]
    NoKey,
    /// The welcome is not complete yet.
    #[error("the welcome is not complete")]
    NotWelcomed,
}
