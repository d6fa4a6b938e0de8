//! The group key schedule (security-design.md §4.4).
//!
//! ```text
//! epoch-creating op X (Genesis / KeyUpdate / Remove), op hash h, group g:
//!   s          = EpochSecret (32 random bytes, sealed to every member: see `seal`)
//!   epoch_id   = derive_key(KDF_EPOCH_ID,   h)
//!   epoch_root = derive_key(KDF_EPOCH_ROOT, lp(s) ‖ lp(h) ‖ lp(g))
//!   k_hist     = derive_key(KDF_HISTORY,  epoch_root)
//!   k_snap     = derive_key(KDF_SNAPSHOT, epoch_root)
//!
//! group keys for the current heads {e_1 < … < e_k} (sorted by epoch id, 1 <= k <= 4):
//!   mk       = k == 1 ? epoch_root(e_1)
//!                     : derive_key(KDF_MERGE, lp(u32_le(k)) ‖ lp(id_1) ‖ lp(root_1) ‖ …)
//!   k_aead   = derive_key(KDF_AEAD,   mk)
//!   k_nonce  = derive_key(KDF_NONCE,  mk)
//!   k_commit = derive_key(KDF_COMMIT, mk)
//!   k_tag    = derive_key(KDF_TAG,    mk);   group_tag = BLAKE3_keyed(k_tag, "tag")[..16]
//! ```
//!
//! The merge KDF binds the epoch ids next to the roots (§4.4 lists only the roots); the ids are
//! public and already determined by the roots' creating ops, so this costs nothing and makes
//! the sorted order part of the input explicitly.

use std::fmt;

use rand_core::CryptoRngCore;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use super::codec::{read_preamble, Hex, Reader};
use super::kdf::{
    self, KDF_AEAD, KDF_BLOB_AEAD, KDF_BLOB_NONCE, KDF_COMMIT, KDF_EPOCH_ID, KDF_EPOCH_ROOT,
    KDF_HISTORY, KDF_MERGE, KDF_NONCE, KDF_SNAPSHOT, KDF_TAG, KEYED_TAG,
};
use super::keys::Secret32;
use super::limits::{
    EPOCH_PREFIX_LEN, GROUP_TAG_LEN, MAX_ENVELOPE_CEILING, MAX_HEADER_EPOCHS, NONCE_LEN, TAG_LEN,
};
use super::{aead, CryptoError};

/// The 32-byte secret an epoch-creating op seals to every member. Secret: boxed, wiped on
/// drop, never printed, not `Clone`.
pub struct EpochSecret(pub(crate) Secret32);

impl EpochSecret {
    /// A fresh secret from the caller's RNG. Never reuse one for two ops.
    pub fn generate(rng: &mut impl CryptoRngCore) -> Self {
        Self(Secret32::random(rng))
    }

    /// Takes ownership of 32 secret bytes (received in a forward, or from storage).
    #[must_use]
    pub fn from_bytes(bytes: Zeroizing<[u8; 32]>) -> Self {
        Self(Secret32::new(bytes))
    }

    /// The history key of the epoch this secret creates (rule K6, policy `Full`), bound to the
    /// creating op's sealing context (`group_field`, `author`, `salt`) and the group id:
    ///
    /// ```text
    /// c      = derive_key(KDF_HISTORY_CONTEXT, lp(group_field) ‖ lp(author) ‖ lp(salt))
    /// k_hist = derive_key(KDF_HISTORY, derive_key(KDF_EPOCH_ROOT, lp(secret) ‖ lp(c) ‖ lp(group)))
    /// ```
    ///
    /// Derived from the secret, not from the epoch root, because the root depends on the op
    /// hash, which covers the history link this key encrypts. `c` is a `derive_key` output of
    /// its own context, so it never equals an op hash.
    #[must_use]
    pub fn history_key(
        &self,
        group_field: &[u8; 32],
        author: &[u8; 32],
        salt: &[u8; 16],
        group: &[u8; 32],
    ) -> HistoryKey {
        let c = kdf::derive_lp(kdf::KDF_HISTORY_CONTEXT, &[group_field, author, salt]);
        EpochRoot::derive(self, &c, group).history_key()
    }

    /// A copy of the secret bytes, e.g. to forward it in a direct envelope (rule K4). The copy
    /// is wiped when the returned value drops; anything copied out of it is not.
    #[must_use]
    pub fn to_bytes(&self) -> Zeroizing<[u8; 32]> {
        Zeroizing::new(*self.0.as_bytes())
    }
}

impl fmt::Debug for EpochSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Self(_) = self;
        f.debug_struct("EpochSecret").finish_non_exhaustive()
    }
}

/// Identifies an epoch: `derive_key(KDF_EPOCH_ID, op_hash)` of the op that created it.
/// Public data; the group layer's op bodies carry it (`OpBody::epoch`).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct EpochId([u8; 32]);

impl EpochId {
    /// The id of the epoch created by the op with hash `op_hash`.
    #[must_use]
    pub fn for_op(op_hash: &[u8; 32]) -> Self {
        Self(*kdf::derive(KDF_EPOCH_ID, op_hash))
    }

    /// Wraps 32 bytes read from the wire.
    #[must_use]
    pub const fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// The 32 bytes.
    #[must_use]
    pub const fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// The first 16 bytes, as carried in group envelope headers.
    #[must_use]
    pub fn prefix(&self) -> EpochIdPrefix {
        let mut p = [0u8; EPOCH_PREFIX_LEN];
        p.copy_from_slice(&self.0[..EPOCH_PREFIX_LEN]);
        EpochIdPrefix(p)
    }
}

impl fmt::Debug for EpochId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("EpochId").field(&Hex(&self.0)).finish()
    }
}

/// The first 16 bytes of an [`EpochId`], as named in a group envelope header. Public data.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct EpochIdPrefix([u8; EPOCH_PREFIX_LEN]);

impl EpochIdPrefix {
    /// Wraps 16 bytes read from the wire.
    #[must_use]
    pub const fn from_bytes(bytes: [u8; EPOCH_PREFIX_LEN]) -> Self {
        Self(bytes)
    }

    /// The 16 bytes.
    #[must_use]
    pub const fn as_bytes(&self) -> &[u8; EPOCH_PREFIX_LEN] {
        &self.0
    }

    /// Whether this is the prefix of `id`.
    #[must_use]
    pub fn matches(&self, id: &EpochId) -> bool {
        id.prefix() == *self
    }
}

impl fmt::Debug for EpochIdPrefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("EpochIdPrefix").field(&Hex(&self.0)).finish()
    }
}

/// The 16-byte routing tag in a group envelope header. Public data.
///
/// [`GroupKeys::epoch_tag`] gives the per-epoch tag of §4.3, which the transport cannot link
/// across epochs; an application whose transport already routes per group may use any static
/// tag instead. The tag is authenticated (it is part of the AEAD's associated data) but this
/// layer gives it no other meaning.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct GroupTag([u8; GROUP_TAG_LEN]);

impl GroupTag {
    /// Wraps 16 bytes.
    #[must_use]
    pub const fn from_bytes(bytes: [u8; GROUP_TAG_LEN]) -> Self {
        Self(bytes)
    }

    /// The 16 bytes.
    #[must_use]
    pub const fn as_bytes(&self) -> &[u8; GROUP_TAG_LEN] {
        &self.0
    }
}

impl fmt::Debug for GroupTag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("GroupTag").field(&Hex(&self.0)).finish()
    }
}

/// The root key of one epoch, with the epoch's id. Secret: boxed, wiped on drop, never
/// printed (only the id shows), not `Clone`.
pub struct EpochRoot {
    id: EpochId,
    root: Secret32,
}

impl EpochRoot {
    /// Derives the root of the epoch created by the op with hash `op_hash` in group `group`
    /// from the epoch secret that op sealed.
    #[must_use]
    pub fn derive(secret: &EpochSecret, op_hash: &[u8; 32], group: &[u8; 32]) -> Self {
        let root = kdf::derive_lp(KDF_EPOCH_ROOT, &[secret.0.as_bytes(), op_hash, group]);
        Self {
            id: EpochId::for_op(op_hash),
            root: Secret32::new(root),
        }
    }

    /// Rebuilds a root received in a welcome or a history link.
    #[must_use]
    pub fn from_bytes(id: EpochId, root: Zeroizing<[u8; 32]>) -> Self {
        Self {
            id,
            root: Secret32::new(root),
        }
    }

    /// The epoch's id.
    #[must_use]
    pub fn id(&self) -> &EpochId {
        &self.id
    }

    /// A copy of the root key, e.g. to put into a welcome. Wiped when the returned value drops;
    /// anything copied out of it is not.
    #[must_use]
    pub fn to_bytes(&self) -> Zeroizing<[u8; 32]> {
        Zeroizing::new(*self.root.as_bytes())
    }

    /// The epoch's history key (wraps superseded epoch roots under policy `Full`).
    #[must_use]
    pub fn history_key(&self) -> HistoryKey {
        HistoryKey(BlobKey::new(&kdf::derive(
            KDF_HISTORY,
            self.root.as_bytes(),
        )))
    }

    /// The epoch's snapshot key (encrypts snapshot blobs).
    #[must_use]
    pub fn snapshot_key(&self) -> SnapshotKey {
        SnapshotKey(BlobKey::new(&kdf::derive(
            KDF_SNAPSHOT,
            self.root.as_bytes(),
        )))
    }
}

impl fmt::Debug for EpochRoot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Self { id, root: _ } = self;
        f.debug_struct("EpochRoot")
            .field("id", id)
            .finish_non_exhaustive()
    }
}

/// The sorted epoch id prefixes of a head set, stored inline (no allocation).
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) struct EpochList {
    prefixes: [EpochIdPrefix; MAX_HEADER_EPOCHS],
    len: usize,
}

impl EpochList {
    pub(crate) const EMPTY: Self = Self {
        prefixes: [EpochIdPrefix([0; EPOCH_PREFIX_LEN]); MAX_HEADER_EPOCHS],
        len: 0,
    };

    /// Appends a prefix; fails if full or not strictly greater than the last one.
    pub(crate) fn push(&mut self, p: EpochIdPrefix) -> Result<(), ()> {
        if self.len >= MAX_HEADER_EPOCHS {
            return Err(());
        }
        if let Some(last) = self.as_slice().last() {
            if *last >= p {
                return Err(());
            }
        }
        if let Some(slot) = self.prefixes.get_mut(self.len) {
            *slot = p;
        }
        self.len += 1;
        Ok(())
    }

    pub(crate) fn as_slice(&self) -> &[EpochIdPrefix] {
        self.prefixes.get(..self.len).unwrap_or_default()
    }
}

/// The keys that seal and open group envelopes for one set of current epoch heads.
///
/// Derive once per head set and cache; deriving costs one merge KDF plus four subkey KDFs.
/// Secret: each key boxed and wiped on drop; `Debug` shows only the epoch prefixes.
pub struct GroupKeys {
    epochs: EpochList,
    aead: Secret32,
    nonce: Secret32,
    commit: Secret32,
    tag: Secret32,
}

impl GroupKeys {
    /// Derives the group keys for the current epoch heads (any order; they are sorted by id).
    ///
    /// # Errors
    ///
    /// [`CryptoError::EpochHeadCount`] for zero or more than [`MAX_HEADER_EPOCHS`] heads,
    /// [`CryptoError::DuplicateEpoch`] if two heads share an id prefix.
    pub fn derive(heads: &[&EpochRoot]) -> Result<Self, CryptoError> {
        if heads.is_empty() || heads.len() > MAX_HEADER_EPOCHS {
            return Err(CryptoError::EpochHeadCount {
                found: heads.len(),
                max: MAX_HEADER_EPOCHS,
            });
        }
        let mut sorted: Vec<&EpochRoot> = heads.to_vec();
        sorted.sort_by_key(|head| head.id);
        let mut epochs = EpochList::EMPTY;
        for head in &sorted {
            epochs
                .push(head.id.prefix())
                .map_err(|()| CryptoError::DuplicateEpoch)?;
        }
        let mk = match sorted.as_slice() {
            [only] => Zeroizing::new(*only.root.as_bytes()),
            many => {
                // k <= MAX_HEADER_EPOCHS, so the count fits in a u32.
                let count = (many.len() as u32).to_le_bytes();
                let mut parts: Vec<&[u8]> = Vec::with_capacity(1 + 2 * many.len());
                parts.push(&count);
                for head in many {
                    parts.push(head.id.as_bytes());
                    parts.push(head.root.as_bytes());
                }
                kdf::derive_lp(KDF_MERGE, &parts)
            }
        };
        Ok(Self::from_merged(epochs, &mk))
    }

    fn from_merged(epochs: EpochList, mk: &[u8; 32]) -> Self {
        Self {
            epochs,
            aead: Secret32::new(kdf::derive(KDF_AEAD, mk)),
            nonce: Secret32::new(kdf::derive(KDF_NONCE, mk)),
            commit: Secret32::new(kdf::derive(KDF_COMMIT, mk)),
            tag: Secret32::new(kdf::derive(KDF_TAG, mk)),
        }
    }

    /// The sorted epoch id prefixes these keys were derived for; exactly what a group envelope
    /// sealed under them names in its header.
    #[must_use]
    pub fn epochs(&self) -> &[EpochIdPrefix] {
        self.epochs.as_slice()
    }

    /// The per-epoch-set routing tag `BLAKE3_keyed(k_tag, "tag")[..16]` (§4.3).
    #[must_use]
    pub fn epoch_tag(&self) -> GroupTag {
        let full = kdf::keyed(self.tag.as_bytes(), KEYED_TAG, &[]);
        let mut t = [0u8; GROUP_TAG_LEN];
        t.copy_from_slice(&full[..GROUP_TAG_LEN]);
        GroupTag(t)
    }

    pub(crate) fn aead_key(&self) -> &[u8; 32] {
        self.aead.as_bytes()
    }

    pub(crate) fn nonce_key(&self) -> &[u8; 32] {
        self.nonce.as_bytes()
    }

    pub(crate) fn commit_key(&self) -> &[u8; 32] {
        self.commit.as_bytes()
    }

    #[cfg(test)]
    pub(crate) fn tag_key(&self) -> &[u8; 32] {
        self.tag.as_bytes()
    }
}

impl fmt::Debug for GroupKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Self {
            epochs,
            aead: _,
            nonce: _,
            commit: _,
            tag: _,
        } = self;
        f.debug_struct("GroupKeys")
            .field("epochs", &epochs.as_slice())
            .finish_non_exhaustive()
    }
}

/// Magic of a symmetric blob under a history or snapshot key ("encrypted blob").
pub const BLOB_MAGIC: [u8; 2] = *b"EB";
/// Blob kind: superseded epoch roots under a [`HistoryKey`].
pub const BLOB_KIND_HISTORY: u8 = 1;
/// Blob kind: a snapshot chunk under a [`SnapshotKey`].
pub const BLOB_KIND_SNAPSHOT: u8 = 2;
/// Bytes of a blob header: magic, version, suite, kind, nonce.
pub const BLOB_HEADER_LEN: usize = 2 + 1 + 1 + 1 + NONCE_LEN;

/// AEAD and nonce keys of a symmetric blob, derived from a history or snapshot key.
struct BlobKey {
    aead: Secret32,
    nonce: Secret32,
}

impl BlobKey {
    fn new(key: &[u8; 32]) -> Self {
        Self {
            aead: Secret32::new(kdf::derive(KDF_BLOB_AEAD, key)),
            nonce: Secret32::new(kdf::derive(KDF_BLOB_NONCE, key)),
        }
    }

    /// `"EB" | version | suite | kind | nonce[24] | ciphertext | tag[16]`, associated data =
    /// `header ‖ aad`; hedged nonce `BLAKE3_keyed(k_nonce, lp(r) ‖ lp(header prefix) ‖ lp(aad) ‖
    /// lp(plaintext))[..24]`.
    fn seal(
        &self,
        kind: u8,
        aad: &[u8],
        plaintext: &[u8],
        rng: &mut impl CryptoRngCore,
    ) -> Result<Vec<u8>, CryptoError> {
        let max = MAX_ENVELOPE_CEILING - BLOB_HEADER_LEN - TAG_LEN;
        if plaintext.len() > max {
            return Err(CryptoError::PlaintextTooLarge {
                len: plaintext.len(),
                max,
            });
        }
        let mut out = Vec::with_capacity(BLOB_HEADER_LEN + plaintext.len() + TAG_LEN);
        out.extend_from_slice(&BLOB_MAGIC);
        out.extend_from_slice(&[super::VERSION, super::SUITE, kind]);
        let mut r = Zeroizing::new([0u8; 32]);
        rng.fill_bytes(r.as_mut());
        let full = kdf::keyed_lp(self.nonce.as_bytes(), &[r.as_ref(), &out, aad, plaintext]);
        let mut nonce = [0u8; NONCE_LEN];
        nonce.copy_from_slice(&full[..NONCE_LEN]);
        out.extend_from_slice(&nonce);
        let mut full_aad = Vec::with_capacity(BLOB_HEADER_LEN + aad.len());
        full_aad.extend_from_slice(&out);
        full_aad.extend_from_slice(aad);
        out.extend_from_slice(plaintext);
        let body = out.get_mut(BLOB_HEADER_LEN..).unwrap_or_default();
        let tag = aead::encrypt(self.aead.as_bytes(), &nonce, &full_aad, body)?;
        out.extend_from_slice(&tag);
        Ok(out)
    }

    fn open(&self, kind: u8, aad: &[u8], blob: &[u8]) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        if blob.len() > MAX_ENVELOPE_CEILING {
            return Err(CryptoError::TooLarge {
                len: blob.len(),
                max: MAX_ENVELOPE_CEILING,
            });
        }
        let mut r = Reader::new(blob);
        read_preamble(&mut r, "blob", BLOB_MAGIC)?;
        let found = r.u8("kind")?;
        if found != kind {
            return Err(CryptoError::UnexpectedKind { found });
        }
        let nonce = r.array::<NONCE_LEN>("nonce")?;
        let body = r.rest();
        let (ct, tag) = aead::split_tag(body).ok_or(CryptoError::CiphertextTooShort {
            len: body.len(),
            min: TAG_LEN,
        })?;
        let mut full_aad = Vec::with_capacity(BLOB_HEADER_LEN + aad.len());
        full_aad.extend_from_slice(blob.get(..BLOB_HEADER_LEN).unwrap_or_default());
        full_aad.extend_from_slice(aad);
        let mut out = Zeroizing::new(ct.to_vec());
        aead::decrypt(self.aead.as_bytes(), &nonce, &full_aad, &mut out, tag)?;
        Ok(out)
    }
}

/// Key that wraps superseded epoch roots for members who join later (rule K6, policy `Full`).
/// Secret: boxed, wiped on drop, never printed.
pub struct HistoryKey(BlobKey);

impl HistoryKey {
    /// Encrypts `plaintext`, binding `aad` (e.g. the epoch ids the blob covers).
    ///
    /// # Errors
    ///
    /// [`CryptoError::PlaintextTooLarge`] beyond 1 MiB.
    pub fn seal(
        &self,
        aad: &[u8],
        plaintext: &[u8],
        rng: &mut impl CryptoRngCore,
    ) -> Result<Vec<u8>, CryptoError> {
        self.0.seal(BLOB_KIND_HISTORY, aad, plaintext, rng)
    }

    /// Decrypts a blob made by [`HistoryKey::seal`] with the same `aad`.
    ///
    /// # Errors
    ///
    /// Decoding errors, or the opaque [`CryptoError::AuthenticationFailed`].
    pub fn open(&self, aad: &[u8], blob: &[u8]) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        self.0.open(BLOB_KIND_HISTORY, aad, blob)
    }
}

impl fmt::Debug for HistoryKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Self(_) = self;
        f.debug_struct("HistoryKey").finish_non_exhaustive()
    }
}

/// Key that encrypts snapshot blobs of one epoch (§4.8). Secret: boxed, wiped on drop, never
/// printed.
pub struct SnapshotKey(BlobKey);

impl SnapshotKey {
    /// Encrypts one snapshot chunk, binding `aad` (e.g. frontier hash and chunk index).
    ///
    /// # Errors
    ///
    /// [`CryptoError::PlaintextTooLarge`] beyond 1 MiB.
    pub fn seal(
        &self,
        aad: &[u8],
        plaintext: &[u8],
        rng: &mut impl CryptoRngCore,
    ) -> Result<Vec<u8>, CryptoError> {
        self.0.seal(BLOB_KIND_SNAPSHOT, aad, plaintext, rng)
    }

    /// Decrypts a blob made by [`SnapshotKey::seal`] with the same `aad`.
    ///
    /// # Errors
    ///
    /// Decoding errors, or the opaque [`CryptoError::AuthenticationFailed`].
    pub fn open(&self, aad: &[u8], blob: &[u8]) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        self.0.open(BLOB_KIND_SNAPSHOT, aad, blob)
    }
}

impl fmt::Debug for SnapshotKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Self(_) = self;
        f.debug_struct("SnapshotKey").finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use rand_chacha::rand_core::SeedableRng;
    use rand_chacha::ChaCha20Rng;

    use super::*;

    fn root(n: u8) -> EpochRoot {
        let s = EpochSecret::from_bytes(Zeroizing::new([n; 32]));
        EpochRoot::derive(&s, &[n.wrapping_add(100); 32], &[9; 32])
    }

    #[test]
    fn head_order_does_not_matter_but_head_set_does() {
        let (a, b, c) = (root(1), root(2), root(3));
        let ab = GroupKeys::derive(&[&a, &b]).ok();
        let ba = GroupKeys::derive(&[&b, &a]).ok();
        let abc = GroupKeys::derive(&[&a, &b, &c]).ok();
        let (Some(ab), Some(ba), Some(abc)) = (ab, ba, abc) else {
            panic!("derive failed");
        };
        assert_eq!(ab.aead_key(), ba.aead_key());
        assert_ne!(ab.aead_key(), abc.aead_key());
        assert!(ab.epochs().windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn bad_head_sets_are_rejected() {
        let (a, b, c, d, e) = (root(1), root(2), root(3), root(4), root(5));
        assert!(matches!(
            GroupKeys::derive(&[]),
            Err(CryptoError::EpochHeadCount { found: 0, .. })
        ));
        assert!(matches!(
            GroupKeys::derive(&[&a, &b, &c, &d, &e]),
            Err(CryptoError::EpochHeadCount { found: 5, .. })
        ));
        assert!(matches!(
            GroupKeys::derive(&[&a, &a]),
            Err(CryptoError::DuplicateEpoch)
        ));
    }

    #[test]
    fn single_head_keys_come_from_the_root_directly() {
        let a = root(1);
        let Ok(keys) = GroupKeys::derive(&[&a]) else {
            panic!("derive failed");
        };
        assert_eq!(
            *keys.aead_key(),
            *kdf::derive(KDF_AEAD, a.to_bytes().as_ref())
        );
        assert_ne!(keys.aead_key(), keys.nonce_key());
        assert_ne!(keys.commit_key(), keys.tag_key());
    }

    /// The library's internal subkeys equal the golden KDF outputs of
    /// `tests/vectors/crypto/kdf.json` (written by the independent reference implementation in
    /// `tests/crypto.rs`).
    #[test]
    fn internal_keys_match_golden_kdf_vectors() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/vectors/crypto/kdf.json");
        let text = std::fs::read_to_string(path).unwrap_or_default();
        let v: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
        let out = &v["outputs"];
        let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
        let first = EpochRoot::derive(
            &EpochSecret::from_bytes(Zeroizing::new([0x01; 32])),
            &[0x02; 32],
            &[0xa0; 32],
        );
        let second = EpochRoot::derive(
            &EpochSecret::from_bytes(Zeroizing::new([0x11; 32])),
            &[0x12; 32],
            &[0xa0; 32],
        );
        let (Ok(single), Ok(merged)) = (
            GroupKeys::derive(&[&first]),
            GroupKeys::derive(&[&second, &first]),
        ) else {
            panic!("derive failed");
        };
        for (keys, suffix) in [(&single, ""), (&merged, " (merged)")] {
            let pairs = [
                ("aead", keys.aead_key()),
                ("nonce", keys.nonce_key()),
                ("commit", keys.commit_key()),
                ("tag", keys.tag_key()),
            ];
            for (name, key) in pairs {
                let label = format!("sealdoc v1 {name}{suffix}");
                assert_eq!(out[&label].as_str(), Some(hex(key).as_str()), "{label}");
            }
        }
        assert_eq!(
            out["sealdoc v1 history"].as_str(),
            Some(hex(kdf::derive(KDF_HISTORY, first.root.as_bytes()).as_ref()).as_str())
        );
    }

    #[test]
    fn blobs_round_trip_and_bind_kind_and_aad() {
        let mut rng = ChaCha20Rng::from_seed([3; 32]);
        let a = root(1);
        let hist = a.history_key();
        let blob = hist
            .seal(b"ids", b"old roots", &mut rng)
            .unwrap_or_default();
        assert_eq!(blob.len(), BLOB_HEADER_LEN + 9 + TAG_LEN);
        assert_eq!(
            hist.open(b"ids", &blob).ok().as_deref().map(Vec::as_slice),
            Some(&b"old roots"[..])
        );
        assert!(matches!(
            hist.open(b"idz", &blob),
            Err(CryptoError::AuthenticationFailed)
        ));
        assert!(matches!(
            a.snapshot_key().open(b"ids", &blob),
            Err(CryptoError::UnexpectedKind { found: 1 })
        ));
    }
}
