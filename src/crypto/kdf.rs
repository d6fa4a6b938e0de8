//! Every domain-separation label of the crypto layer, in one place, and the hashing helpers
//! that use them.
//!
//! Three families of labels:
//!
//! * `KDF_*`: BLAKE3 `derive_key` context strings. BLAKE3 hashes the context string in a
//!   separate mode from the key material, so two different contexts give independent keys
//!   even for the same input. Every context starts with `"sealdoc v1 "`; changing one is a
//!   wire-format break (the golden vectors in `tests/vectors/crypto/` catch it).
//! * `SIG_*`: prefixes of Ed25519-signed messages. Each ends in a NUL byte and contains no
//!   other NUL, so no label is a prefix of another and a signature made for one purpose can
//!   never verify for another. (The graph layer's op signatures use `"sealdoc/v1/op\0"`, of
//!   the same shape, owned by that layer.)
//! * `KEYED_*`: fixed inputs of BLAKE3 keyed hashes whose key is already purpose-specific.
//!
//! `lp(x)` below means `u32_le(len(x)) ‖ x` (security-design.md §4.3). Every multi-input KDF
//! length-prefixes each input, so inputs can never be shifted between fields. Lengths fit in a
//! `u32` because every input is bounded by [`MAX_ENVELOPE_CEILING`](super::MAX_ENVELOPE_CEILING).

use blake3::Hasher;
use zeroize::{Zeroize, Zeroizing};

/// Epoch id from the epoch-creating op's hash:
/// `epoch_id = derive_key(KDF_EPOCH_ID, op_hash)`. Public, appears (as a 16-byte prefix) in
/// group envelope headers.
pub const KDF_EPOCH_ID: &str = "sealdoc v1 epoch-id";
/// Epoch root from the sealed epoch secret, the creating op and the group:
/// `epoch_root = derive_key(KDF_EPOCH_ROOT, lp(s) ‖ lp(op_hash) ‖ lp(group))`. Binding the
/// op hash means one secret can never serve two membership contexts (rule K1).
pub const KDF_EPOCH_ROOT: &str = "sealdoc v1 epoch";
/// Merged key over two or more concurrent epoch heads, sorted by epoch id:
/// `mk = derive_key(KDF_MERGE, lp(u32_le(k)) ‖ lp(id_1) ‖ lp(root_1) ‖ … ‖ lp(id_k) ‖
/// lp(root_k))`. Needs every head's root, so a device missing one head (a removed member)
/// cannot derive it (rule K4). With one head, `mk` is that head's root.
pub const KDF_MERGE: &str = "sealdoc v1 merge";
/// Content key of group envelopes: `k_aead = derive_key(KDF_AEAD, mk)`.
pub const KDF_AEAD: &str = "sealdoc v1 aead";
/// Nonce key of group envelopes (keys the hedged nonce hash):
/// `k_nonce = derive_key(KDF_NONCE, mk)`.
pub const KDF_NONCE: &str = "sealdoc v1 nonce";
/// Key-commitment key of group envelopes: `k_commit = derive_key(KDF_COMMIT, mk)`.
pub const KDF_COMMIT: &str = "sealdoc v1 commit";
/// Group-tag key: `k_tag = derive_key(KDF_TAG, mk)`; the per-epoch routing tag is
/// `BLAKE3_keyed(k_tag, "tag")[..16]`.
pub const KDF_TAG: &str = "sealdoc v1 tag";
/// History key of one epoch (wraps superseded epoch roots, policy `Full`):
/// `k_hist = derive_key(KDF_HISTORY, epoch_root)`.
pub const KDF_HISTORY: &str = "sealdoc v1 history";
/// Context of an epoch's history link (rule K6): `c = derive_key(KDF_HISTORY_CONTEXT,
/// lp(group field) ‖ lp(author) ‖ lp(salt))`, fixed before the creating op is hashed. It takes
/// the op hash's place in the root derivation behind
/// [`EpochSecret::history_key`](crate::crypto::EpochSecret::history_key), because the real root depends on the op hash,
/// which covers the history link itself (deriving the link's key from it would be circular).
pub const KDF_HISTORY_CONTEXT: &str = "sealdoc v1 group history context";
/// Snapshot key of one epoch (encrypts snapshot blobs):
/// `k_snap = derive_key(KDF_SNAPSHOT, epoch_root)`.
pub const KDF_SNAPSHOT: &str = "sealdoc v1 snapshot";
/// AEAD key of a symmetric blob under a history or snapshot key:
/// `derive_key(KDF_BLOB_AEAD, k_hist or k_snap)`.
pub const KDF_BLOB_AEAD: &str = "sealdoc v1 blob aead";
/// Nonce key of a symmetric blob: `derive_key(KDF_BLOB_NONCE, k_hist or k_snap)`.
pub const KDF_BLOB_NONCE: &str = "sealdoc v1 blob nonce";
/// Single-use key that seals an epoch secret to one device:
/// `k_seal = derive_key(KDF_SEAL, lp(ss) ‖ lp(eph_pub) ‖ lp(kem_pub) ‖ lp(ctx))`, where `ctx`
/// names group, author, salt, recipient index, recipient device and KEM key id.
pub const KDF_SEAL: &str = "sealdoc v1 seal";
/// Master key of one direct envelope (HPKE-like base mode):
/// `k = derive_key(KDF_DIRECT, lp(ss) ‖ lp(eph_pub) ‖ lp(kem_pub) ‖ lp(ctx))`, `ctx` = the
/// envelope's first five bytes (magic, version, suite, kind).
pub const KDF_DIRECT: &str = "sealdoc v1 direct";
/// AEAD key of one direct envelope: `derive_key(KDF_DIRECT_AEAD, k)`.
pub const KDF_DIRECT_AEAD: &str = "sealdoc v1 direct aead";
/// Nonce key of one direct envelope: `derive_key(KDF_DIRECT_NONCE, k)`.
pub const KDF_DIRECT_NONCE: &str = "sealdoc v1 direct nonce";
/// AEAD key that wraps secrets for local storage: `derive_key(KDF_STORAGE_AEAD, storage_key)`.
pub const KDF_STORAGE_AEAD: &str = "sealdoc v1 storage aead";
/// Nonce key of storage wrapping (the nonce is a PRF of the wrapped secret, SIV-style):
/// `derive_key(KDF_STORAGE_NONCE, storage_key)`.
pub const KDF_STORAGE_NONCE: &str = "sealdoc v1 storage nonce";
/// AEAD key of data sealed at rest ([`StorageKey::seal`](super::StorageKey::seal)):
/// `derive_key(KDF_STORAGE_DATA, storage_key)`.
pub const KDF_STORAGE_DATA: &str = "sealdoc v1 storage data";
/// Ed25519 signing key of a recovery device: `derive_key(KDF_RECOVERY_SIG, recovery_secret)`
/// (security-design.md §4.1).
pub const KDF_RECOVERY_SIG: &str = "sealdoc v1 recovery sig";
/// X25519 KEM key of a recovery device: `derive_key(KDF_RECOVERY_KEM, recovery_secret)`.
/// Independent of the signing key: X25519 keys are never derived from Ed25519 keys.
pub const KDF_RECOVERY_KEM: &str = "sealdoc v1 recovery kem";

/// Every `derive_key` context of this module, for tests that check they are distinct.
pub const ALL_KDF_LABELS: [&str; 19] = [
    KDF_EPOCH_ID,
    KDF_EPOCH_ROOT,
    KDF_MERGE,
    KDF_AEAD,
    KDF_NONCE,
    KDF_COMMIT,
    KDF_TAG,
    KDF_HISTORY,
    KDF_SNAPSHOT,
    KDF_BLOB_AEAD,
    KDF_BLOB_NONCE,
    KDF_SEAL,
    KDF_DIRECT,
    KDF_DIRECT_AEAD,
    KDF_DIRECT_NONCE,
    KDF_STORAGE_AEAD,
    KDF_STORAGE_NONCE,
    KDF_RECOVERY_SIG,
    KDF_RECOVERY_KEM,
];

/// Signature prefix of contact cards: `sig = Ed25519(SIG_CONTACT_CARD ‖ card_body)`.
pub const SIG_CONTACT_CARD: &[u8] = b"sealdoc/v1/contact-card\0";
/// Signature prefix of direct-envelope bodies: `sig = Ed25519(SIG_DIRECT ‖ body)`.
pub const SIG_DIRECT: &[u8] = b"sealdoc/v1/direct\0";

/// Keyed-hash input of the key commitment: `BLAKE3_keyed(k_commit, "commit" ‖ nonce)`.
pub const KEYED_COMMIT: &[u8] = b"commit";
/// Keyed-hash input of the per-epoch group tag: `BLAKE3_keyed(k_tag, "tag")[..16]`.
pub const KEYED_TAG: &[u8] = b"tag";

/// Appends `lp(data)` to a hasher.
fn update_lp(hasher: &mut Hasher, data: &[u8]) {
    // Every input is bounded by MAX_ENVELOPE_CEILING (1 MiB), far below u32::MAX; saturate
    // rather than panic if that invariant were ever broken (the hash would still differ).
    let len = u32::try_from(data.len()).unwrap_or(u32::MAX);
    hasher.update(&len.to_le_bytes());
    hasher.update(data);
}

/// Finalizes a hasher that was fed secrets into a zeroizing key, and wipes the hasher.
fn finish(mut hasher: Hasher) -> Zeroizing<[u8; 32]> {
    let out = Zeroizing::new(*hasher.finalize().as_bytes());
    hasher.zeroize();
    out
}

/// `derive_key(label, material)`, with the material fed as is.
pub(crate) fn derive(label: &str, material: &[u8]) -> Zeroizing<[u8; 32]> {
    let mut hasher = Hasher::new_derive_key(label);
    hasher.update(material);
    finish(hasher)
}

/// `derive_key(label, lp(parts[0]) ‖ lp(parts[1]) ‖ …)`.
pub(crate) fn derive_lp(label: &str, parts: &[&[u8]]) -> Zeroizing<[u8; 32]> {
    let mut hasher = Hasher::new_derive_key(label);
    for part in parts {
        update_lp(&mut hasher, part);
    }
    finish(hasher)
}

/// `BLAKE3_keyed(key, lp(parts[0]) ‖ lp(parts[1]) ‖ …)`.
pub(crate) fn keyed_lp(key: &[u8; 32], parts: &[&[u8]]) -> Zeroizing<[u8; 32]> {
    let mut hasher = Hasher::new_keyed(key);
    for part in parts {
        update_lp(&mut hasher, part);
    }
    finish(hasher)
}

/// `BLAKE3_keyed(key, a ‖ b)`, without length prefixes (for the fixed-shape commitment and tag
/// inputs of §4.3).
pub(crate) fn keyed(key: &[u8; 32], a: &[u8], b: &[u8]) -> Zeroizing<[u8; 32]> {
    let mut hasher = Hasher::new_keyed(key);
    hasher.update(a);
    hasher.update(b);
    finish(hasher)
}

/// Plain BLAKE3 hash.
pub(crate) fn hash(data: &[u8]) -> [u8; 32] {
    *blake3::hash(data).as_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kdf_labels_are_distinct_and_versioned() {
        let mut seen = std::collections::BTreeSet::new();
        for label in ALL_KDF_LABELS {
            assert!(label.starts_with("sealdoc v1 "), "{label}");
            assert!(seen.insert(label), "duplicate label {label}");
        }
    }

    #[test]
    fn signature_labels_are_prefix_free() {
        for label in [SIG_CONTACT_CARD, SIG_DIRECT, b"sealdoc/v1/op\0".as_slice()] {
            assert_eq!(label.iter().filter(|&&b| b == 0).count(), 1);
            assert_eq!(label.last(), Some(&0));
        }
        assert!(!SIG_CONTACT_CARD.starts_with(SIG_DIRECT));
        assert!(!SIG_DIRECT.starts_with(SIG_CONTACT_CARD));
    }

    #[test]
    fn length_prefixes_separate_fields() {
        let a = derive_lp(KDF_SEAL, &[b"ab", b"c"]);
        let b = derive_lp(KDF_SEAL, &[b"a", b"bc"]);
        assert_ne!(*a, *b);
    }
}
