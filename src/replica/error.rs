//! [`ReplicaError`]: why a replica call failed.

use thiserror::Error;

use crate::crypto::CryptoError;
use crate::doc::DocError;
use crate::graph::GraphError;
use crate::group::GroupError;
use crate::store::StoreError;

/// Why a [`Replica`](super::Replica) call failed.
///
/// Input from the network that is refused ([`ReplicaError::Group`]) changes nothing: the
/// replica stays usable. A storage failure ([`ReplicaError::Store`]) leaves the replica
/// *poisoned*: its memory may be ahead of its store, so every later call returns
/// [`ReplicaError::Poisoned`] until it is opened again ([`Replica::open`](super::Replica::open)),
/// which rebuilds it from what the store holds. The call that failed was not acknowledged:
/// its messages were not handed out, and input it was given must be delivered again.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ReplicaError {
    /// The group layer refused input or a command (see [`GroupError`]).
    #[error(transparent)]
    Group(#[from] GroupError),
    /// The document refused an edit made in a change closure.
    #[error("document: {0}")]
    Doc(#[from] DocError),
    /// The store failed; the replica is poisoned (reopen it).
    #[error("store: {0}")]
    Store(#[from] StoreError),
    /// An earlier storage failure poisoned this replica: open it again from its store.
    #[error("an earlier storage failure poisoned this replica; open it again")]
    Poisoned,
    /// The storage key does not open this store's device secrets.
    #[error("the storage key does not open this store")]
    WrongKey,
    /// The store holds no replica ([`Replica::open`](super::Replica::open) on an empty store).
    #[error("the store holds no replica")]
    Empty,
    /// The store already holds a replica (creating one there would orphan it).
    #[error("the store already holds a replica")]
    NotEmpty,
    /// What the store holds does not decode or does not apply: it was not written by this
    /// replica, or was damaged in a way the store's own checks did not catch.
    #[error("stored {what} is damaged: {detail}")]
    Corrupt {
        /// Which part.
        what: &'static str,
        /// What was wrong.
        detail: String,
    },
    /// The store was written by a newer format version.
    #[error("unsupported stored format version {found}")]
    UnsupportedFormat {
        /// The version found.
        found: u8,
    },
    /// The call needs a member, and this device is still waiting for its welcome.
    #[error("this device has not been welcomed into a group yet")]
    NotWelcomed,
    /// Sealing data for the store failed.
    #[error("sealing for storage: {0}")]
    Crypto(#[from] CryptoError),
    /// A bug: an invariant of this crate did not hold.
    #[error("internal error: {0}")]
    Internal(&'static str),
}

impl From<GraphError> for ReplicaError {
    fn from(e: GraphError) -> Self {
        ReplicaError::Group(GroupError::Graph(e))
    }
}
