//! Encrypted groups: membership and roles, epochs and key rotation, welcomes, and the receive
//! pipeline (security-design.md §4.1–4.4, 4.6, 4.7, 4.9, 4.12).
//!
//! A [`Member`] is one device in one group, with the group's document. Everything it sends is
//! an envelope: a *group envelope* (any member can open it) carrying exactly one signed node
//! of the group's [graph](crate::graph), or a *direct envelope* sealed to one device (welcomes,
//! catch-up answers). A transport sees envelope sizes and timing, the per-epoch routing tag
//! and the epoch ids; authors, op kinds, dependencies and every membership change are inside
//! the ciphertext. A device that is being added waits as a [`Joiner`] until its welcome is
//! complete.
//!
//! ```
//! use sealdoc::crypto::DeviceKemSecret;
//! use sealdoc::graph::Device;
//! use sealdoc::group::{GroupError, GroupPolicy, Joiner, Member, Received, Role};
//! use serde_json::json;
//!
//! let mut rng = rand_core::OsRng;
//! let mut alice = Member::create(
//!     Device::generate(&mut rng),
//!     DeviceKemSecret::generate(&mut rng),
//!     GroupPolicy::full_history(),
//!     &mut rng,
//! )?;
//! // Bob gives Alice his contact card (out of band); Alice adds him and welcomes him.
//! let mut bob = Joiner::new(Device::generate(&mut rng), DeviceKemSecret::generate(&mut rng));
//! let card = bob.contact_card().expect("not welcomed yet");
//! let out = alice.add(&card, Role::Writer, &mut rng)?.outbound;
//! for (to, envelope) in &out.direct {
//!     if *to == bob.device_id() {
//!         let _ = bob.receive(envelope)?;
//!     }
//! }
//! let mut bob = bob.finish()?.member;
//!
//! // Edits travel as group envelopes: ciphertext only.
//! let out = alice.change(|tx| tx.set("title", "Groceries"), &mut rng)?.outbound;
//! for envelope in &out.broadcast {
//!     assert!(matches!(bob.receive(envelope, &mut rng)?, Received::Applied(_)));
//! }
//! assert_eq!(bob.doc().get("title"), Some(json!("Groceries")));
//!
//! // Removal rotates the key: what Alice sends afterwards, Bob cannot open.
//! let out = alice.remove(&[bob.device_id()], &mut rng)?.outbound;
//! for envelope in &out.broadcast {
//!     let _ = bob.receive(envelope, &mut rng)?; // Bob may learn of his removal
//! }
//! let out = alice.change(|tx| tx.set("title", "Secret"), &mut rng)?.outbound;
//! assert!(matches!(
//!     bob.receive(&out.broadcast[0], &mut rng),
//!     Err(GroupError::NotRecipient { .. })
//! ));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Ops: one graph for content and membership
//!
//! Membership and key ops are [`Payload::Group`](crate::graph::Payload::Group) nodes of the
//! same signed graph as document edits, so "which edits did the author of this Remove see?"
//! is answered by the graph, exactly. The graph layer signs, hashes and orders them as opaque
//! bytes; this layer decodes them strictly ([`ControlOp`], wire formats in [`wire`]):
//!
//! | op | who may | rotates |
//! |---|---|---|
//! | `Genesis { policy, members, key }` | the creator, an admin among `members` | first epoch |
//! | `Add { members, key }` | admin | yes: sealed to the membership after the op |
//! | `Remove { targets, key }` | admin, not removing itself | yes: sealed to the remaining members |
//! | `SetRole { target, role }` | admin | no |
//! | `KeyUpdate { key }` | any member (post-compromise security) | yes |
//!
//! A control node carries no document op and takes no Lamport counter (like a merge node).
//!
//! # Group id
//!
//! The group id is the hash of the genesis node. The genesis node cannot name its own hash,
//! so its group field is all zeros ([`GroupId::GENESIS`](crate::graph::GroupId::GENESIS)); a
//! [`Log`](crate::graph::Log) accepts a zero group field only on the node whose hash is its
//! group id, and every other node names the id. Sealed secrets in the genesis are bound to the
//! zero group field (their context is fixed before the node is hashed); the genesis epoch's
//! root binds the real id, since it is derived from the genesis node's hash. The genesis is
//! never sent in a group envelope: there is no epoch before it. Initial members get it in
//! their welcome.
//!
//! # Authorization: a pure function of the op and its causal past
//!
//! `membership(X)` is the fold of the effective control ops (see strong removal below) in
//! `X`'s causal past, in (Lamport counter, height, hash) order, where the height of a control op is one more than the greatest height
//! of the control ops in its past. That order is topological even though control nodes take
//! no counter, and it is the same on every replica. An op is valid if and only if its author
//! is a member of `membership(past(X))` with the role the op needs (edit: writer or admin;
//! membership ops: admin; key updates and empty merge nodes: any member), and the op's own
//! rules hold (targets are, or are not, members; rule K2 below; the history policy). No clock
//! is read; memberships are cached by the set of control ops in the past.
//!
//! # Concurrent membership changes: strong removal (§4.5)
//!
//! Whether an op is *effective* may depend on ops that arrive later (a removal arriving after
//! the removed admin's concurrent `Add`). The membership and the epoch heads are therefore the
//! resolution of the whole set of control ops, recomputed whenever a control op arrives; the
//! result is a pure function of that set, cached by set. The resolver takes the ops in fold
//! order:
//!
//! * An op is effective if it is not voided and its author has the role it needs in the fold
//!   of the *effective* ops of its causal past. So invalidation is transitive: a device added
//!   by a voided op is not a member, and its ops are not effective.
//! * An effective `Remove(d)` voids every control op of `d` concurrent with it (in neither's
//!   causal past); an effective `SetRole` that makes `d` less than an admin voids `d`'s
//!   concurrent `Add`, `Remove` and `SetRole`. Ops in the removal's causal past stay.
//! * An op that removes or demotes the author of the voiding op is exempt: mutual removals
//!   both apply. A re-added device's ops concurrent with its removal stay void.
//! * Voiding an op already taken as effective restarts the pass; voided ops stay voided (at
//!   most one pass per op).
//!
//! **Freeze:** once every admin is removed, nobody can change the membership any more; the
//! group still edits and rotates. A removal may itself be voided later; the device it removed
//! is then a member again and catches up.
//!
//! **Whiteout.** The document ops of a node by `d` have no effect if `d` may not edit in the
//! fold of the effective ops of the node's causal past, or if an effective op concurrent with
//! the node removes `d` or makes it a reader. A whited-out insert stays as an invisible anchor
//! (the element exists with no value, so honest concurrent inserts after it keep their place);
//! assigns and deletes are ignored; validity checks are the same in both modes. When a
//! control op changes the whiteout set of nodes already applied, the document is rebuilt by
//! replaying the graph with the new set, so it ends identical to a replica that had the
//! removal first. Backdating (writing on stale dependencies) gains nothing.
//!
//! # Epochs and keys (§4.4)
//!
//! Every epoch-creating op `X` (Genesis, Add, Remove, KeyUpdate) carries a fresh 32-byte
//! secret sealed to each device of `Expected(X)`, sorted by device id, a sealed secret's index
//! being its position. **K2**: `Expected(X)` is exactly the membership after `X` (minus the
//! targets of a Remove); a rotation that omits a member, or includes a removed or unknown
//! device, is invalid for everyone. Epoch id and root are the crypto layer's
//! [`EpochId::for_op`](crate::crypto::EpochId::for_op) and
//! [`EpochRoot::derive`](crate::crypto::EpochRoot::derive)(secret, hash(X), group). **K3**:
//! the current heads are the valid epoch ops not in the causal past of another.
//!
//! **K4, sending.** Content is encrypted under
//! [`GroupKeys::derive`](crate::crypto::GroupKeys::derive) of *all* current heads (the header
//! names them) when there are at most four, this device holds every head's root, no device
//! outside the current membership can derive the key (nobody else was sealed every head, and
//! every removed device is kept out by some head, see below), and every member either was
//! sealed every head or will be *forwarded* the heads it was not sealed: for every head `E`
//! and every member `M` not sealed `E`, the op that added `M` (its latest `Add`) is concurrent
//! with `E`'s op (neither in the other's causal past), and that op's author is a current
//! member that was sealed `E`. Otherwise the sender first issues a merging `KeyUpdate`
//! (dependencies: every head; sealed to every member). That op is sent once per usable head (a
//! head this device holds that no removed device can derive, enough of them to reach every
//! member they can), and in direct envelopes to members no usable head reaches, together with
//! the ops of the heads they were not sealed (a member added concurrently with them could not
//! read them). Only effective epochs are heads: a removed device's key update concurrent with
//! its removal is void, and never a head.
//!
//! **Forwarding** (DCGKA's forward of a missing secret). The author `X` of an effective `Add`
//! of a device `N` that is a current member in `X`'s view sends `N`, for every effective
//! epoch `E` concurrent with that `Add`, sealed to `X` and not to `N`, once per `(N, E)`: `E`'s
//! op (a bundle, so that `N` knows the epoch) and a direct envelope of content type
//! [`CONTENT_FORWARD`](wire::CONTENT_FORWARD) with `E`'s id and secret, signed by `X` and
//! sealed to `N`. It is made when `X` applies `E` or the `Add`: by [`Member::receive`] (into
//! [`Member::take_unsent`]), by the next command, or by [`Member::take_outgoing`] (which
//! also covers ops applied by [`Member::drain`]). `N` accepts a forward only from the author
//! of the op that added it ([`PeerMisbehaved::ForwardNotFromAdder`]: the adder is trusted as
//! for the welcome it signed), only for an epoch not in the causal past of that op
//! ([`PeerMisbehaved::BadForward`]). A forward for an epoch `N` does not know yet is held (at
//! most [`MAX_HELD_FORWARDS`], oldest dropped; [`Pending::UnknownEpoch`]) and applied when the
//! epoch's op arrives; then the envelopes parked for the key are retried. A joiner keeps
//! forwards that overtake its welcome (same bound). A forwarded secret is *provisional* until
//! an envelope opens under it (the key commitment confirms it): until then a sealed secret, a
//! history link or a later forward from the adder replaces it, so a wrong forward does not
//! block a correct one (envelopes it failed to open are dropped unacknowledged, and catch-up
//! brings their nodes). Forwarded secrets are stored like any other epoch secret.
//!
//! **No removed device derives a key this member encrypts under** after it processed the
//! removal: every removal creates an epoch that excludes the device, every later epoch
//! descends from it and excludes it too (K2), and a merged key needs every head. For each
//! device `d` that was sealed some epoch and is not a member, the heads used (all of them, or
//! the single head a merging rotation is sent under) must include one that descends from (or
//! is) an op that keeps `d` out (its effective removal, or the op that voided the op adding
//! it), was not sealed to `d`, and is concurrent with no op that adds `d`. The last two
//! conditions cover the ways besides sealing that a device learns an epoch secret: under
//! `Full`, a later epoch sealed to it wraps the earlier ones; and a forward only ever goes to
//! a device for an epoch concurrent with an op that adds it. An adder whose view is stale may
//! forward an epoch to a device it does not know was removed; such an epoch never passes the
//! test for that device, so it is never used alone, and the merged key of the heads still
//! needs a head the device cannot get.
//!
//! **Equivocating** key
//! updates (one author, one sequence number, two secrets) are two valid epochs: both become
//! heads, and the merged key needs both. Heads named by a header are bounded (four); any
//! member may rotate, and no per-author rotation rate limit is enforced yet.
//!
//! # History (rule K6) and welcomes
//!
//! The policy ([`GroupPolicy`]) is fixed at genesis; the default is
//! [`HistoryPolicy::FutureOnly`]. The welcome is a *bundle* in direct envelopes signed by the
//! adder and sealed to the new device (recipient-bound: it names the device and its KEM key),
//! chunked if it exceeds one envelope, each chunk naming the bundle's hash, its index and the
//! total. The joiner checks it as a whole: it replays every node through the same validation
//! as any member (verifying the membership chain from genesis itself), reaches the frontier
//! the bundle names, finds the op that added it, signed by the welcome's sender, and opens its
//! own sealed secret in that op. The welcome carries no secret: the new epoch's secret is in
//! the Add, sealed to the new device.
//!
//! * `Full`: the bundle holds every node. Each epoch op wraps, under a history key derived
//!   from its own secret, the secrets of the epochs it supersedes; the joiner unwraps them
//!   down to genesis and can open every earlier envelope.
//! * `FutureOnly`: the bundle holds the signed control ops and only *skeletons* of every other
//!   node ([`Skeleton`](crate::graph::Skeleton): hash, author, sequence number, Lamport
//!   counter, op count, dependencies), which the joiner inserts as opaque nodes trusting the
//!   adder. No history link exists, so the joiner can open no envelope sealed before its join,
//!   and catch-up never sends it a node in the causal past of the op that added it. Its
//!   document holds only what is written after the join, by this exact rule: a node whose
//!   document ops name an element of an opaque node, or of a node it skipped, is skipped
//!   (kept in the graph, valid, its ops not applied), and nodes that name elements of skipped
//!   nodes are skipped in turn. Writes that name no element (map keys, list heads, new
//!   containers) apply. Every replica that joined at the same point skips the same nodes; its
//!   document is a partial view of the group's document, not equal to it.
//!
//! A new member that receives group traffic before its welcome parks it, and applies it after
//! the welcome as far as its keys allow.
//!
//! # Receive pipeline (§4.7)
//!
//! [`Member::receive`], for a group envelope, in order; nothing changes before step 5 except
//! the bounded park of step 3:
//!
//! 0. Size limit, before anything else.
//! 1. Strict header decoding (magic, version, suite, kind, epoch list).
//! 2. Duplicate: the BLAKE3 hash of the envelope bytes was processed or is parked.
//! 3. Every header epoch known with its key, else parked (bounded in count and bytes, in total
//!    and per epoch, oldest evicted; [`Pending::UnknownEpoch`] or [`Pending::MissingKey`]) and
//!    retried, exactly once, when the op creating it, or its key, arrives. A device that is
//!    not a member, or that joined after those epochs, gets [`GroupError::NotRecipient`].
//! 4. Key commitment (constant time), 5. AEAD open with the header as associated data, 6. zero
//!    padding (the crypto layer).
//! 7. Strict decoding of exactly one signed node.
//! 8. The node names this group.
//! 9. Duplicate node (applied or in the causal buffer).
//! 10. The graph: signature (`verify_strict`), dependencies (missing: the node waits in the
//!     causal buffer, [`Pending::MissingDeps`]), sequence and Lamport rules.
//! 11. The group: membership and role in the node's causal past, the op's rules, then the
//!     envelope context: every header epoch was created in the node's causal past and sealed
//!     to its author. A node failing the context is not remembered as invalid: the envelope,
//!     which anyone holding the key can make, was at fault.
//! 12. Apply (membership, epochs, own sealed secret, history links, or the document), then
//!     the causal buffer and the parked envelopes it unblocked, with bounded work per call.
//!
//! Results are typed: [`Received::Applied`] (with patches), [`Received::Pending`] (and why),
//! [`Received::Duplicate`], or an error ([`GroupError`], with [`PeerMisbehaved`] for
//! authenticated input that breaks a rule).
//!
//! # Catch-up
//!
//! [`Member::sync_request`] sends this replica's heads and missing dependencies to a member in
//! a direct envelope; the peer answers ([`Received::Reply`]) with the nodes the requester lacks
//! as a bundle of signed nodes in direct envelopes, only if the requester is a member in its
//! view. This also repairs what group envelopes cannot deliver: a member added concurrently
//! with a rotation it was not sealed (it gets the nodes; the forward gives it the key). A
//! removed device is refused.
//!
//! # Limits
//!
//! Every limit is a named constant in this module (see [`MAX_GROUP_DEVICES`] and the others),
//! checked before the allocation or the cryptographic work it bounds; the budgets a caller
//! may tune are in [`Config`].

mod error;
mod joiner;
mod keys;
mod limits;
mod member;
mod park;
mod policy;
mod state;
pub mod wire;

pub use error::{ApiMisuse, GroupError, PeerMisbehaved};
pub use joiner::{Joined, Joiner, Joining};
pub use keys::KDF_HISTORY_CONTEXT;
pub use limits::{
    max_node_len, Config, DEFAULT_PARKED_BYTES, DEFAULT_PARKED_ENVELOPES, DEFAULT_PARKED_PER_EPOCH,
    MAX_ASSEMBLIES, MAX_ASSEMBLY_BYTES, MAX_BUNDLE_BYTES, MAX_BUNDLE_CHUNKS, MAX_ENVELOPE_CONTEXTS,
    MAX_GROUP_DEVICES, MAX_HELD_FORWARDS, MAX_HISTORY_LEN, MAX_HISTORY_ROOTS, MAX_MEMBERSHIP_CACHE,
    MAX_MEMBERS_PER_OP, MAX_RETRIES_PER_CALL, MAX_SEEN_ENVELOPES,
};
pub(crate) use member::{DeviceSecrets, Entry};
pub use member::{Member, Outbound, Pending, Received, Sent};
pub use policy::{Action, GroupPolicy, HistoryPolicy, Role};
pub use state::Evidence;
pub use wire::{ControlOp, KeyUpdate, MemberEntry};
