//! Fixed-size identifiers: devices, nodes and groups.
//!
//! Each is a newtype over 32 bytes rather than a type alias, so that a node hash can never be
//! passed where a device id is expected. `Debug` prints a short hex prefix (enough to tell ids
//! apart in logs); `Display` prints all 64 hex digits.

use std::fmt;

use serde::Serialize;

macro_rules! id32 {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
        #[cfg_attr(test, derive(serde::Deserialize))]
        pub struct $name([u8; 32]);

        impl $name {
            /// Wraps raw bytes.
            pub const fn from_bytes(bytes: [u8; 32]) -> Self {
                Self(bytes)
            }

            /// The raw bytes.
            pub const fn as_bytes(&self) -> &[u8; 32] {
                &self.0
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}(", stringify!($name))?;
                for b in &self.0[..4] {
                    write!(f, "{b:02x}")?;
                }
                write!(f, "…)")
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                for b in &self.0 {
                    write!(f, "{b:02x}")?;
                }
                Ok(())
            }
        }
    };
}

id32! {
    /// A device's identity: its Ed25519 verifying key (security-design.md §4.1). It is the
    /// author id of every node the device signs.
    DeviceId
}

id32! {
    /// A node's identity: `BLAKE3("sealdoc/v1/op\0" ‖ body bytes)` over the exact bytes
    /// received. The signature is not hashed, so two signatures over one body are one node,
    /// and two bodies with the same author and sequence number are two nodes (equivocation).
    NodeHash
}

id32! {
    /// A group's identity: the hash ([`NodeHash`]) of the group's genesis node, so that a
    /// group id is self-certifying. The genesis node itself names [`GroupId::GENESIS`] (it
    /// cannot name its own hash); every other node names the group id. This layer checks that
    /// every node names the group of the log it enters, or is that group's genesis.
    GroupId
}

impl GroupId {
    /// The group field of a genesis node: all zeros. A log accepts a node with this group
    /// field only if the node's hash is the log's group id.
    pub const GENESIS: GroupId = GroupId([0; 32]);

    /// The group whose genesis node has hash `genesis`.
    pub const fn from_genesis(genesis: NodeHash) -> Self {
        GroupId(genesis.0)
    }

    /// True if `node` is this group's genesis node.
    pub fn is_genesis(&self, node: &NodeHash) -> bool {
        self.0 == node.0
    }
}
