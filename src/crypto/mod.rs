//! The cryptographic core: device keys, the key schedule, sealing secrets to devices, and the
//! envelope codecs (security-design.md §4.1, §4.3, §4.4, §4.9, §4.12).
//!
//! This is a lower layer: pure cryptography and byte codecs, no knowledge of ops, the DAG or
//! membership. Identities from the layers above arrive as plain bytes or dalek keys: a group
//! id, an op hash and a device id are `[u8; 32]` (the graph layer's newtypes unwrap to them),
//! and a device's signing key is an [`ed25519_dalek::SigningKey`]. Time, randomness and I/O
//! come from the caller: every randomized function takes `&mut impl CryptoRngCore`.
//!
//! # Pieces
//!
//! * [`DeviceKemSecret`]: a device's X25519 key-agreement key (never derived from its Ed25519
//!   key), named by a [`KemKeyId`]; persisted only encrypted under a [`StorageKey`].
//! * [`ContactCard`] → [`VerifiedContactCard`]: a device's signed public keys.
//! * [`EpochSecret`] → [`EpochRoot`] → [`GroupKeys`]: the key schedule of §4.4, including the
//!   merged key over concurrent epoch heads; [`HistoryKey`] and [`SnapshotKey`] per epoch.
//! * [`seal_epoch_secret`] / [`DeviceKemSecret::open_epoch_secret`]: a [`SealedSecret`] per
//!   recipient of a `KeyUpdate`.
//! * [`seal_group`] / [`parse_group_header`] / [`open_group`]: group and ephemeral envelopes.
//! * [`seal_direct`] / [`open_direct`]: signed messages sealed to one device (welcome,
//!   forward).
//! * [`kdf`]: every domain-separation label, documented where it is defined.
//!
//! # Wire format summary
//!
//! All integers are little-endian; `lp(x)` is `u32_le(len(x)) ‖ x`.
//!
//! | structure | layout | size |
//! |---|---|---|
//! | group envelope | `"EC" 1 1 kind tag[16] n epochs[16n] nonce[24] commit[32] ct` | 78+16n+body |
//! | direct envelope | `"EC" 1 1 2 eph_pub[32] nonce[24] ct` | 61 + body |
//! | padded body | `AEAD(u32_le(len) ‖ pt ‖ 0…) ‖ tag[16]`, length = Padmé bucket ≥ 256 | ≥ 256 |
//! | sealed secret | `u16_le(index) kem_key_id[8] eph_pub[32] ct[48]` | 90 |
//! | contact card | `"CC" 1 1 sig_pk[32] kem_pub[32] key_id[8] flag [expiry] sig[64]` | 141 / 149 |
//! | encrypted KEM secret | `"EK" 1 1 1 kem_key_id[8] nonce[24] ct[32] tag[16]` | 85 |
//! | history / snapshot blob | `"EB" 1 1 kind nonce[24] ct tag[16]` | 45 + pt |
//!
//! # Errors
//!
//! One enum, [`CryptoError`]. Every malformed input has its own variant; every failed key
//! commitment or AEAD tag is the single opaque [`CryptoError::AuthenticationFailed`].
//!
//! # Secrets
//!
//! Every secret type ([`DeviceKemSecret`], [`StorageKey`], [`RecoverySecret`],
//! [`EpochSecret`], [`EpochRoot`], [`GroupKeys`], [`HistoryKey`], [`SnapshotKey`]) keeps its
//! bytes in a `Box`, wipes them on drop, is not `Clone` or `Serialize`, and prints no secret
//! in `Debug` (each impl destructures `self`, so a new field forces a decision). Accessors
//! that copy a secret out (`to_bytes`) return `Zeroizing` and say so. Decrypted plaintexts are
//! returned as `Zeroizing<Vec<u8>>`. Moves of the unboxed dalek values during construction
//! may leave stack copies that Rust cannot wipe; that is the usual limit of safe Rust.

mod aead;
mod card;
mod codec;
mod direct;
mod epoch;
mod error;
mod group;
pub mod kdf;
mod keys;
mod limits;
mod padding;
mod seal;

pub use card::{ContactCard, VerifiedContactCard, CARD_MAGIC, MAX_CARD_LEN};
pub use direct::{
    open_direct, seal_direct, DirectContent, DirectMessage, DirectRecipient, DIRECT_BODY_OVERHEAD,
    DIRECT_BODY_VERSION,
};
pub use epoch::{
    EpochId, EpochIdPrefix, EpochRoot, EpochSecret, GroupKeys, GroupTag, HistoryKey, SnapshotKey,
    BLOB_HEADER_LEN, BLOB_KIND_HISTORY, BLOB_KIND_SNAPSHOT, BLOB_MAGIC,
};
pub use error::CryptoError;
pub use group::{
    open_group, parse_group_header, seal_group, EnvelopeKind, GroupHeader, GroupHeaderFields,
    GroupKind, ENVELOPE_MAGIC,
};
pub use keys::{
    DeviceKemSecret, KemKeyId, KemPublicKey, RecoverySecret, StorageKey, ENCRYPTED_KEM_SECRET_LEN,
    STORAGE_DATA_OVERHEAD, STORAGE_KIND_DATA, STORAGE_KIND_KEM, STORAGE_MAGIC,
};
pub use limits::{
    EnvelopeLimits, COMMITMENT_LEN, DEFAULT_MAX_ENVELOPE, DIRECT_HEADER_LEN, EPOCH_PREFIX_LEN,
    GROUP_TAG_LEN, LENGTH_PREFIX_LEN, MAX_ENVELOPE_CEILING, MAX_GROUP_HEADER_LEN,
    MAX_HEADER_EPOCHS, MIN_MAX_ENVELOPE, MIN_PADDED_BODY, NONCE_LEN, TAG_LEN,
};
pub use padding::{padded_body_len, padme};
pub use seal::{
    seal_epoch_secret, SealContext, SealRecipient, SealedSecret, SEALED_CT_LEN, SEALED_SECRET_LEN,
};

/// Wire format version of every structure in this module.
pub const VERSION: u8 = 1;

/// Cipher suite 1: Ed25519 / X25519 / XChaCha20-Poly1305 / BLAKE3.
pub const SUITE: u8 = 1;
