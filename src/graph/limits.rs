//! Hard limits on everything a peer controls (security-design.md §4.9).
//!
//! Each one is checked before the allocation or the cryptographic work it bounds. The buffer
//! and drain budgets have defaults here and can be tuned per [`Log`](super::Log) through
//! [`Limits`].

/// Largest encoded signed node accepted, in bytes (body, length prefix and signature).
///
/// A node travels in one envelope, and the smallest common envelope ceiling is a Matrix event
/// (65,536 bytes). Checked before any decoding, so a peer can make a replica hold at most this
/// much per node it sends.
pub const MAX_NODE_SIZE: usize = 64 * 1024;

/// Most dependencies (parent hashes) one node may name.
///
/// Bounds the fan-out of the causal buffer and the work of validating a node. An honest node
/// names the heads its author had seen; a replica with more heads than this first emits merge
/// nodes (see [`SignedDoc::change`](super::SignedDoc::change)).
pub const MAX_DEPS: usize = 32;

/// Most document operations in one node.
///
/// Bounds the cost of applying one node (security-design.md §4.9 says 256). A local
/// transaction that makes more is refused before it commits; paste long text in pieces.
pub const MAX_OPS_PER_NODE: usize = 256;

/// Deepest cursor path on the wire: the document layer's own bound
/// ([`doc::MAX_PATH_DEPTH`](crate::doc::MAX_PATH_DEPTH)), checked while decoding.
pub const MAX_PATH_DEPTH: usize = crate::doc::MAX_PATH_DEPTH;

/// Longest map key on the wire: the document layer's
/// [`doc::MAX_KEY_LEN`](crate::doc::MAX_KEY_LEN), checked while decoding.
pub const MAX_KEY_LEN: usize = crate::doc::MAX_KEY_LEN;

/// Longest string value on the wire. A string cannot be longer than the node that carries it,
/// so this is [`MAX_NODE_SIZE`]; the document's own, larger bound never comes into play.
pub const MAX_STRING_LEN: usize = MAX_NODE_SIZE;

/// Most heads in one [`Have`](super::Have).
///
/// A replica with more heads sends a subset; the answer is then a superset of what it lacks
/// (some duplicates), never less, so the bound costs bandwidth, not correctness.
pub const MAX_HAVE_HEADS: usize = 256;

/// Most hashes in one [`Want`](super::Want); more missing nodes take more rounds.
pub const MAX_WANT: usize = 256;

/// Most nodes in one answer to a [`Have`](super::Have). The peer applies them, sends a new
/// `Have`, and gets the next batch: catch-up of a long history proceeds in bounded rounds.
pub const MAX_ANSWER_NODES: usize = 1024;

/// Most bytes of nodes in one answer (at least one node is always sent): 4 MiB.
pub const MAX_ANSWER_BYTES: usize = 4 * 1024 * 1024;

/// Default most nodes parked in the causal buffer (security-design.md §4.9, `BY_DEP`).
pub const DEFAULT_PENDING_NODES: usize = 4096;

/// Default most bytes of parked nodes: 32 MiB (security-design.md §4.9).
pub const DEFAULT_PENDING_BYTES: usize = 32 * 1024 * 1024;

/// Default most parked nodes per author (security-design.md §4.9), so one member cannot push
/// everyone else's nodes out of the buffer.
pub const DEFAULT_PENDING_PER_AUTHOR: usize = 256;

/// Default most nodes validated and applied by one call (security-design.md §4.9): a node that
/// unblocks a long backlog does not make one call run unboundedly long.
pub const DEFAULT_DRAIN_PER_CALL: usize = 1024;

/// How many rejected node hashes are remembered. Older ones are forgotten first; a forgotten
/// hash is validated again if it comes back, which costs one signature check and is safe.
/// 65,536 hashes are 2 MiB.
pub const MAX_REMEMBERED_INVALID: usize = 65_536;

/// Budgets of the causal buffer and the drain worklist of one [`Log`](super::Log).
///
/// The defaults are the constants of this module; tests and embedders with other memory
/// budgets may change them. A count budget of 0 is treated as 1, and a byte budget below
/// [`MAX_NODE_SIZE`] as [`MAX_NODE_SIZE`], so that any one node can always be parked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Limits {
    /// Most parked nodes in total.
    pub pending_nodes: usize,
    /// Most bytes of parked nodes in total.
    pub pending_bytes: usize,
    /// Most parked nodes per author.
    pub pending_per_author: usize,
    /// Most nodes validated and applied per call of `receive` or `drain`.
    pub drain_per_call: usize,
    /// Largest node this replica makes (signed bytes), at most [`MAX_NODE_SIZE`]. The group
    /// layer lowers it so that every node fits one envelope under the transport's limit;
    /// received nodes are still accepted up to [`MAX_NODE_SIZE`].
    pub max_local_node: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            pending_nodes: DEFAULT_PENDING_NODES,
            pending_bytes: DEFAULT_PENDING_BYTES,
            pending_per_author: DEFAULT_PENDING_PER_AUTHOR,
            drain_per_call: DEFAULT_DRAIN_PER_CALL,
            max_local_node: MAX_NODE_SIZE,
        }
    }
}

impl Limits {
    /// Sets [`Limits::pending_nodes`].
    #[must_use]
    pub fn with_pending_nodes(mut self, n: usize) -> Self {
        self.pending_nodes = n;
        self
    }

    /// Sets [`Limits::pending_bytes`].
    #[must_use]
    pub fn with_pending_bytes(mut self, n: usize) -> Self {
        self.pending_bytes = n;
        self
    }

    /// Sets [`Limits::pending_per_author`].
    #[must_use]
    pub fn with_pending_per_author(mut self, n: usize) -> Self {
        self.pending_per_author = n;
        self
    }

    /// Sets [`Limits::drain_per_call`].
    #[must_use]
    pub fn with_drain_per_call(mut self, n: usize) -> Self {
        self.drain_per_call = n;
        self
    }

    /// Sets [`Limits::max_local_node`] (clamped to [`MAX_NODE_SIZE`]).
    #[must_use]
    pub fn with_max_local_node(mut self, n: usize) -> Self {
        self.max_local_node = n.min(MAX_NODE_SIZE);
        self
    }

    /// The effective largest local node: [`Limits::max_local_node`], at most
    /// [`MAX_NODE_SIZE`].
    pub fn local_node_limit(&self) -> usize {
        self.max_local_node.min(MAX_NODE_SIZE)
    }
}
