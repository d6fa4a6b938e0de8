//! The history link's key (rule K6 of security-design.md §4.4), derived from an epoch's
//! secret rather than its root.
//!
//! security-design.md §4.4 derives `k_hist` from the new epoch's root and wraps the superseded
//! epochs' roots under it. That is circular: the root depends on the creating op's hash, which
//! covers the history link. So the link's key comes from the epoch *secret* and the op's
//! sealing context, which are fixed before the op is hashed:
//!
//! ```text
//! c_X    = derive_key(KDF_HISTORY_CONTEXT, lp(group field) ‖ lp(author) ‖ lp(salt))
//! k_hist = EpochRoot::derive(s_X, c_X, group).history_key()
//!        = derive_key("sealdoc v1 history", derive_key("sealdoc v1 epoch", lp(s_X) ‖ lp(c_X) ‖ lp(group)))
//! ```
//!
//! `c_X` takes the place of the op hash in the crypto layer's root derivation; it is the output
//! of its own `derive_key` context, so it never equals an op hash (which is a plain BLAKE3 hash
//! of a labelled body). And the link wraps the superseded epochs' *secrets*, not roots: a
//! member who joins later unwraps a secret, derives that epoch's root and its history key,
//! and so walks the whole chain back to genesis. (A crypto-layer `EpochSecret::history_key`
//! would say this more directly; see the closing notes of issue 4.)

use rand_core::CryptoRngCore;

use super::error::GroupError;
use super::wire::{encode_history, history_aad, WrappedSecret};
use crate::crypto::{EpochRoot, EpochSecret, HistoryKey};
use crate::graph::{DeviceId, GroupId};

/// `derive_key` context of the history link's key context `c_X`.
pub const KDF_HISTORY_CONTEXT: &str = "sealdoc v1 group history context";

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
    let mut h = blake3::Hasher::new_derive_key(KDF_HISTORY_CONTEXT);
    for part in [
        &ctx.group_field.as_bytes()[..],
        ctx.author.as_bytes(),
        ctx.salt,
    ] {
        // Each part is at most 32 bytes.
        h.update(&(part.len() as u32).to_le_bytes());
        h.update(part);
    }
    let c = *h.finalize().as_bytes();
    EpochRoot::derive(secret, &c, ctx.group.as_bytes()).history_key()
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
