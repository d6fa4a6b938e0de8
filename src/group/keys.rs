//! The history link of an epoch (rule K6 of security-design.md §4.4).
//!
//! The link wraps the superseded epochs' *secrets* (not roots) under the new epoch's history
//! key, which the crypto layer derives from the new epoch's secret and the op's sealing
//! context ([`EpochSecret::history_key`]: deriving it from the root would be circular, since
//! the root depends on the op hash, which covers the link). A member who joins later unwraps a
//! secret, derives that epoch's root and history key, and so walks the chain back to genesis.

use rand_core::CryptoRngCore;

use super::error::GroupError;
use super::wire::{encode_history, history_aad, WrappedSecret};
use crate::crypto::{EpochSecret, HistoryKey};
use crate::graph::{DeviceId, GroupId};

pub use crate::crypto::kdf::KDF_HISTORY_CONTEXT;

/// The context an epoch-creating op fixes before it is hashed.
#[derive(Clone, Copy, Debug)]
pub(crate) struct OpContext<'a> {
    /// The op's group field (all zeros for genesis).
    pub group_field: &'a GroupId,
    pub author: &'a DeviceId,
    pub salt: &'a [u8; 16],
    /// The group id.
    pub group: &'a GroupId,
}

/// The history key of the epoch created with `secret` in `ctx`.
pub(crate) fn history_key(secret: &EpochSecret, ctx: &OpContext<'_>) -> HistoryKey {
    secret.history_key(
        ctx.group_field.as_bytes(),
        ctx.author.as_bytes(),
        ctx.salt,
        ctx.group.as_bytes(),
    )
}

/// The history link of a new epoch: the superseded epochs' secrets under its history key.
pub(crate) fn seal_history(
    secret: &EpochSecret,
    ctx: &OpContext<'_>,
    superseded: &[WrappedSecret],
    rng: &mut impl CryptoRngCore,
) -> Result<Vec<u8>, GroupError> {
    let aad = history_aad(ctx.group_field, ctx.author, ctx.salt);
    let pt = encode_history(superseded);
    Ok(history_key(secret, ctx).seal(&aad, &pt, rng)?)
}
