//! sealdoc: end-to-end encrypted, local-first collaboration on a JSON CRDT.
//!
//! Layers, lowest first (each a module with one job; data flows down on send, up on receive):
//!
//! * [`doc`]: the JSON CRDT of Kleppmann & Beresford (2017), pure and deterministic.
//! * [`graph`]: signed operations in a hash-linked DAG: authenticity, causal delivery,
//!   equivocation evidence and catch-up.
//! * [`crypto`]: device keys, the group key schedule, sealing secrets to devices, and the
//!   strict envelope codecs (XChaCha20-Poly1305, key commitment, padding, size limits).
//! * [`group`]: encrypted groups: membership and roles validated against each op's causal
//!   past, epochs and key rotation, welcomes, and the envelope receive pipeline.
//! * [`armour`]: text armour and chunking of envelopes for text-only transports.
//! * [`store`]: persistence for a replica: a crash-safe log, snapshots and blobs.
//! * `transport` (features `matrix`, `email`): ready-made Matrix and email transports for
//!   envelopes, tested against real servers on loopback.
#![forbid(unsafe_code)]
#![deny(rustdoc::broken_intra_doc_links)]

pub mod armour;
pub mod crypto;
pub mod doc;
pub mod graph;
pub mod group;
pub mod replica;
pub mod store;
#[cfg(any(feature = "matrix", feature = "email"))]
pub mod transport;

/// The README's examples, compiled and run as doc tests.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
