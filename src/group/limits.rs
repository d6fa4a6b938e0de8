//! Hard limits of the group layer (security-design.md §4.9), and the per-member [`Config`].
//!
//! Every limit on what a peer controls is checked before the allocation or the cryptographic
//! work it bounds.

use crate::crypto::{EnvelopeLimits, LENGTH_PREFIX_LEN, MAX_GROUP_HEADER_LEN, TAG_LEN};
use crate::graph::{Limits, MAX_NODE_SIZE};

/// Most devices in a group, and so most sealed secrets in one key update.
///
/// Every epoch-creating op seals the new secret to each member device: 90 bytes each, so 256
/// devices take 23 KiB, which still fits the default 32 KiB envelope (security-design.md §4.9).
/// Larger groups need a tree-based key agreement (roadmap, §4.10).
pub const MAX_GROUP_DEVICES: usize = 256;

/// Most devices one `Add` or `Genesis` names, or one `Remove` removes.
///
/// Bounds the contact cards verified per op (one Ed25519 verification each). An `Add` also
/// has to fit one envelope: at the default 32 KiB, adding more than about 60 devices at once to
/// a large group does not, and is refused before anything is signed.
pub const MAX_MEMBERS_PER_OP: usize = 256;

/// Most epoch roots in one history link (policy `Full`): the superseded epoch heads of one
/// epoch-creating op. An honest op supersedes at most the heads its author knew.
pub const MAX_HISTORY_ROOTS: usize = 256;

/// Largest history link: blob header, a count, [`MAX_HISTORY_ROOTS`] pairs of epoch id and
/// root, and the tag.
pub const MAX_HISTORY_LEN: usize = 5 + 24 + 3 + MAX_HISTORY_ROOTS * 64 + 16;

/// Default most group envelopes parked because they name an epoch this member does not know
/// yet (security-design.md §4.9, `BY_EPOCH`).
pub const DEFAULT_PARKED_ENVELOPES: usize = 1024;

/// Default most bytes of parked envelopes: 8 MiB (security-design.md §4.9).
pub const DEFAULT_PARKED_BYTES: usize = 8 * 1024 * 1024;

/// Default most parked envelopes per unknown epoch (security-design.md §4.9), so that junk
/// naming one made-up epoch cannot push out envelopes waiting for a real one.
pub const DEFAULT_PARKED_PER_EPOCH: usize = 64;

/// How many envelope hashes are remembered to answer `Duplicate` cheaply. Older ones are
/// forgotten first; a forgotten envelope that comes back is decrypted again and found to be a
/// duplicate by its node hash, which costs one AEAD open.
pub const MAX_SEEN_ENVELOPES: usize = 65_536;

/// Most parked envelopes retried per call after a key arrives (bounded work per call; the
/// rest are retried by [`Member::drain`](super::Member::drain)).
pub const MAX_RETRIES_PER_CALL: usize = 1024;

/// Most forwarded epoch secrets a member holds for epochs it does not know yet (the op
/// creating the epoch has not arrived); the oldest is dropped first.
pub const MAX_HELD_FORWARDS: usize = 64;

/// Largest bundle (welcome or catch-up answer) reassembled from direct envelopes: 16 MiB.
/// Longer histories need snapshots (security-design.md §4.8).
pub const MAX_BUNDLE_BYTES: usize = 16 * 1024 * 1024;

/// Most chunks of one bundle: enough for [`MAX_BUNDLE_BYTES`] in the smallest envelopes.
pub const MAX_BUNDLE_CHUNKS: usize = 32_768;

/// Most bundles reassembled at once; the oldest is dropped first.
pub const MAX_ASSEMBLIES: usize = 8;

/// Most bytes held by all bundles being reassembled: 32 MiB.
pub const MAX_ASSEMBLY_BYTES: usize = 32 * 1024 * 1024;

/// How many memberships (one per distinct set of control ops in a causal past) are cached.
/// A cache miss costs one fold over the group's control ops.
pub const MAX_MEMBERSHIP_CACHE: usize = 256;

/// How many delivery contexts (the epochs of the envelope a parked node came in) are kept.
/// A node whose context was forgotten is applied without the context check, which is a
/// consistency check, not an authorization (see the module docs).
pub const MAX_ENVELOPE_CONTEXTS: usize = 4096;

/// Bytes a direct bundle chunk adds around its data: version, bundle id, index, total (varints
/// of at most 5 bytes each), and the data's length prefix.
pub(crate) const CHUNK_OVERHEAD: usize = 1 + 32 + 5 + 5 + 5;

/// The largest node that fits one group envelope under `envelope`, whatever the number of
/// epochs named in its header.
#[must_use]
pub fn max_node_len(envelope: &EnvelopeLimits) -> usize {
    envelope
        .max_envelope()
        .saturating_sub(MAX_GROUP_HEADER_LEN + LENGTH_PREFIX_LEN + TAG_LEN)
        .min(MAX_NODE_SIZE)
}

/// Budgets of one member (or joiner). The defaults are the constants of this module and the
/// graph layer's; all members of a group should use the same envelope limit, since it is a
/// property of the transport.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Config {
    /// Envelope size limit (default 32 KiB).
    pub envelope: EnvelopeLimits,
    /// Causal buffer and drain budgets of the graph. Its largest local node is lowered to
    /// what fits one envelope ([`max_node_len`]).
    pub graph: Limits,
    /// Most envelopes parked for unknown epochs.
    pub parked_envelopes: usize,
    /// Most bytes of parked envelopes.
    pub parked_bytes: usize,
    /// Most parked envelopes per unknown epoch.
    pub parked_per_epoch: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            envelope: EnvelopeLimits::default(),
            graph: Limits::default(),
            parked_envelopes: DEFAULT_PARKED_ENVELOPES,
            parked_bytes: DEFAULT_PARKED_BYTES,
            parked_per_epoch: DEFAULT_PARKED_PER_EPOCH,
        }
    }
}

impl Config {
    /// Sets the envelope limit.
    #[must_use]
    pub fn with_envelope(mut self, envelope: EnvelopeLimits) -> Self {
        self.envelope = envelope;
        self
    }

    /// Sets the graph budgets.
    #[must_use]
    pub fn with_graph(mut self, graph: Limits) -> Self {
        self.graph = graph;
        self
    }

    /// Sets the parking budgets: total envelopes, total bytes, envelopes per unknown epoch.
    #[must_use]
    pub fn with_parking(mut self, envelopes: usize, bytes: usize, per_epoch: usize) -> Self {
        self.parked_envelopes = envelopes;
        self.parked_bytes = bytes;
        self.parked_per_epoch = per_epoch;
        self
    }

    /// The graph budgets with the local node limit this config's envelopes need.
    pub(crate) fn graph_limits(&self) -> Limits {
        let max = max_node_len(&self.envelope).min(self.graph.local_node_limit());
        self.graph.with_max_local_node(max)
    }
}
