//! Text armour for text-only transports (email bodies, chat messages, Matrix events).
//!
//! Envelopes are binary. A transport that carries only text gets them as
//!
//! * `sd1:` + base64url (no padding) of the envelope, when it fits in one message; or
//! * a set of chunks `sd1c:` + base64url(`msg_id[8] ‖ index u16 BE ‖ total u16 BE ‖ data`),
//!   when the transport caps message size (Matrix events carry about 45 KB of raw ciphertext
//!   each). `msg_id` is the first 8 bytes of BLAKE3 of the whole envelope, so chunks of one
//!   envelope find each other in any order, and the reassembled bytes are checked against it.
//!
//! ASCII whitespace anywhere is ignored on input (mail clients wrap long lines). The
//! [`Reassembler`] is bounded in the number of partial envelopes and in bytes it holds, evicts
//! the oldest partial envelope first, ignores exact duplicate chunks and rejects conflicting
//! ones. Armour is not security: the envelope inside authenticates itself.

use std::collections::{HashMap, VecDeque};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use thiserror::Error;

/// Prefix of a whole armoured envelope (version 1).
pub const PREFIX: &str = "sd1:";
/// Prefix of one chunk of an armoured envelope (version 1).
pub const CHUNK_PREFIX: &str = "sd1c:";

/// Chunk header: message id (8) + index (2) + total (2).
const CHUNK_HEADER: usize = 12;

/// Most chunks one envelope may be split into.
///
/// 256 chunks of 45 KB is over 11 MB, beyond any envelope size the library produces
/// (`MAX_ENVELOPE` is at most 1 MiB), so a larger count is garbage or an attack.
pub const MAX_CHUNKS: usize = 256;

/// Longest armoured text accepted, in bytes (about 1.4 MiB of binary).
///
/// Checked before decoding so that a huge message cannot make us allocate its decoded size.
pub const MAX_ARMOURED_LEN: usize = 2 * 1024 * 1024;

/// Most partial envelopes a [`Reassembler`] keeps by default.
pub const DEFAULT_MAX_PARTIAL: usize = 64;

/// Most bytes of chunk data a [`Reassembler`] holds by default (8 MiB).
pub const DEFAULT_MAX_BUFFERED: usize = 8 * 1024 * 1024;

/// Why armoured text was rejected.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ArmourError {
    /// The text does not start with `sd1:` or `sd1c:`.
    #[error("not sealdoc armour (expected prefix {PREFIX:?} or {CHUNK_PREFIX:?})")]
    NoPrefix,
    /// The text is longer than [`MAX_ARMOURED_LEN`].
    #[error("armoured text of {0} bytes exceeds the limit of {MAX_ARMOURED_LEN}")]
    TooLong(usize),
    /// The base64url body did not decode.
    #[error("invalid base64url: {0}")]
    Base64(String),
    /// A chunk was shorter than its header, or its index/total were out of range.
    #[error("malformed chunk: {0}")]
    BadChunk(&'static str),
    /// Two chunks with the same message id and index carried different data.
    #[error("conflicting duplicate of chunk {index} of message {msg_id:016x}")]
    ConflictingChunk {
        /// Message id of the envelope.
        msg_id: u64,
        /// Index of the chunk.
        index: u16,
    },
    /// Two chunks of one message disagreed on the chunk count.
    #[error("chunks of message {0:016x} disagree on the chunk count")]
    TotalMismatch(u64),
    /// All chunks arrived but the reassembled bytes do not hash to the message id.
    #[error("reassembled message {0:016x} does not match its id")]
    DigestMismatch(u64),
    /// `max_text_len` is too small to hold a chunk with any data.
    #[error("max_text_len {0} leaves no room for chunk data")]
    ChunkTooSmall(usize),
    /// The envelope needs more than [`MAX_CHUNKS`] chunks at this size.
    #[error("envelope needs more than {MAX_CHUNKS} chunks")]
    TooManyChunks,
}

/// Armours one envelope as a single text message.
pub fn armour(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(PREFIX.len() + bytes.len().div_ceil(3) * 4);
    s.push_str(PREFIX);
    URL_SAFE_NO_PAD.encode_string(bytes, &mut s);
    s
}

/// Armours one envelope as one or more text messages of at most `max_text_len` bytes each.
/// Returns a single `sd1:` message when the envelope fits, chunks otherwise.
///
/// # Errors
///
/// [`ArmourError::ChunkTooSmall`] if `max_text_len` cannot hold a chunk header and some data;
/// [`ArmourError::TooManyChunks`] if more than [`MAX_CHUNKS`] would be needed.
pub fn armour_chunked(bytes: &[u8], max_text_len: usize) -> Result<Vec<String>, ArmourError> {
    let whole = armour(bytes);
    if whole.len() <= max_text_len {
        return Ok(vec![whole]);
    }
    // base64 of n bytes takes ceil(4n/3) chars; keep chunk payloads a multiple of 3 bytes.
    let room = max_text_len.saturating_sub(CHUNK_PREFIX.len());
    let raw = (room / 4) * 3;
    let data_per_chunk = raw.saturating_sub(CHUNK_HEADER);
    if data_per_chunk == 0 {
        return Err(ArmourError::ChunkTooSmall(max_text_len));
    }
    let total = bytes.len().div_ceil(data_per_chunk);
    if total > MAX_CHUNKS {
        return Err(ArmourError::TooManyChunks);
    }
    let id = msg_id(bytes);
    let total16 = u16::try_from(total).map_err(|_| ArmourError::TooManyChunks)?;
    let mut out = Vec::with_capacity(total);
    for (i, data) in bytes.chunks(data_per_chunk).enumerate() {
        let index = u16::try_from(i).map_err(|_| ArmourError::TooManyChunks)?;
        let mut raw = Vec::with_capacity(CHUNK_HEADER + data.len());
        raw.extend_from_slice(&id.to_be_bytes());
        raw.extend_from_slice(&index.to_be_bytes());
        raw.extend_from_slice(&total16.to_be_bytes());
        raw.extend_from_slice(data);
        let mut s = String::from(CHUNK_PREFIX);
        URL_SAFE_NO_PAD.encode_string(&raw, &mut s);
        out.push(s);
    }
    Ok(out)
}

/// Decodes a single-message armour (`sd1:`).
///
/// # Errors
///
/// [`ArmourError::NoPrefix`] (including for a chunk: use a [`Reassembler`]),
/// [`ArmourError::TooLong`], [`ArmourError::Base64`].
pub fn dearmour(text: &str) -> Result<Vec<u8>, ArmourError> {
    match parse(text)? {
        Parsed::Whole(b) => Ok(b),
        Parsed::Chunk { .. } => Err(ArmourError::NoPrefix),
    }
}

fn msg_id(bytes: &[u8]) -> u64 {
    let h = blake3::hash(bytes);
    let mut id = [0u8; 8];
    id.copy_from_slice(&h.as_bytes()[..8]);
    u64::from_be_bytes(id)
}

enum Parsed {
    Whole(Vec<u8>),
    Chunk {
        msg_id: u64,
        index: u16,
        total: u16,
        data: Vec<u8>,
    },
}

fn decode_body(body: &str) -> Result<Vec<u8>, ArmourError> {
    let compact: String = body.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    URL_SAFE_NO_PAD
        .decode(compact.as_bytes())
        .map_err(|e| ArmourError::Base64(e.to_string()))
}

fn parse(text: &str) -> Result<Parsed, ArmourError> {
    if text.len() > MAX_ARMOURED_LEN {
        return Err(ArmourError::TooLong(text.len()));
    }
    let text = text.trim_start();
    if let Some(body) = text.strip_prefix(CHUNK_PREFIX) {
        let raw = decode_body(body)?;
        if raw.len() <= CHUNK_HEADER {
            return Err(ArmourError::BadChunk("shorter than its header"));
        }
        let (h, data) = raw.split_at(CHUNK_HEADER);
        let mut id = [0u8; 8];
        id.copy_from_slice(&h[..8]);
        let index = u16::from_be_bytes([h[8], h[9]]);
        let total = u16::from_be_bytes([h[10], h[11]]);
        if total == 0 || usize::from(total) > MAX_CHUNKS {
            return Err(ArmourError::BadChunk("chunk count out of range"));
        }
        if index >= total {
            return Err(ArmourError::BadChunk("index not below the chunk count"));
        }
        return Ok(Parsed::Chunk {
            msg_id: u64::from_be_bytes(id),
            index,
            total,
            data: data.to_vec(),
        });
    }
    if let Some(body) = text.strip_prefix(PREFIX) {
        return decode_body(body).map(Parsed::Whole);
    }
    Err(ArmourError::NoPrefix)
}

#[derive(Debug)]
struct Partial {
    total: u16,
    chunks: Vec<Option<Vec<u8>>>,
    received: usize,
    bytes: usize,
}

/// Collects chunks in any order and yields each envelope once all its chunks are in.
///
/// Bounded: at most `max_partial` incomplete envelopes and `max_buffered` bytes of chunk data;
/// past either bound the oldest incomplete envelope is dropped (the replica's catch-up asks for
/// it again). A completed envelope is forgotten, so a late duplicate chunk starts a new
/// partial that ages out; the replica above treats a re-delivered envelope as a duplicate.
#[derive(Debug)]
pub struct Reassembler {
    partial: HashMap<u64, Partial>,
    order: VecDeque<u64>,
    buffered: usize,
    max_partial: usize,
    max_buffered: usize,
}

impl Default for Reassembler {
    fn default() -> Self {
        Self::new(DEFAULT_MAX_PARTIAL, DEFAULT_MAX_BUFFERED)
    }
}

impl Reassembler {
    /// A reassembler with explicit bounds.
    pub fn new(max_partial: usize, max_buffered: usize) -> Self {
        Reassembler {
            partial: HashMap::new(),
            order: VecDeque::new(),
            buffered: 0,
            max_partial: max_partial.max(1),
            max_buffered,
        }
    }

    /// Number of incomplete envelopes held.
    pub fn pending(&self) -> usize {
        self.partial.len()
    }

    /// Bytes of chunk data held.
    pub fn buffered_bytes(&self) -> usize {
        self.buffered
    }

    /// Takes one text message. Returns the envelope when this message completes one (a
    /// single `sd1:` message completes at once), `None` while chunks are missing.
    ///
    /// # Errors
    ///
    /// Any [`ArmourError`] for text that is not valid armour; the reassembler's state is then
    /// unchanged, except that a digest mismatch drops that message's chunks.
    pub fn push(&mut self, text: &str) -> Result<Option<Vec<u8>>, ArmourError> {
        let (msg_id, index, total, data) = match parse(text)? {
            Parsed::Whole(b) => return Ok(Some(b)),
            Parsed::Chunk {
                msg_id,
                index,
                total,
                data,
            } => (msg_id, index, total, data),
        };
        if let Some(p) = self.partial.get(&msg_id) {
            if p.total != total {
                return Err(ArmourError::TotalMismatch(msg_id));
            }
            match &p.chunks[usize::from(index)] {
                Some(existing) if *existing == data => return Ok(None),
                Some(_) => return Err(ArmourError::ConflictingChunk { msg_id, index }),
                None => {}
            }
        } else {
            self.partial.insert(
                msg_id,
                Partial {
                    total,
                    chunks: vec![None; usize::from(total)],
                    received: 0,
                    bytes: 0,
                },
            );
            self.order.push_back(msg_id);
        }
        let len = data.len();
        let complete = match self.partial.get_mut(&msg_id) {
            Some(p) => {
                p.chunks[usize::from(index)] = Some(data);
                p.received += 1;
                p.bytes += len;
                p.received == usize::from(p.total)
            }
            None => false,
        };
        self.buffered += len;
        if complete {
            let p = self.remove(msg_id);
            let bytes: Vec<u8> = p
                .map(|p| p.chunks.into_iter().flatten().flatten().collect())
                .unwrap_or_default();
            if self::msg_id(&bytes) != msg_id {
                return Err(ArmourError::DigestMismatch(msg_id));
            }
            return Ok(Some(bytes));
        }
        self.evict(msg_id);
        Ok(None)
    }

    fn remove(&mut self, msg_id: u64) -> Option<Partial> {
        let p = self.partial.remove(&msg_id)?;
        self.buffered = self.buffered.saturating_sub(p.bytes);
        self.order.retain(|m| *m != msg_id);
        Some(p)
    }

    /// Drops the oldest partial envelopes (never `keep`) until within bounds.
    fn evict(&mut self, keep: u64) {
        while self.partial.len() > self.max_partial || self.buffered > self.max_buffered {
            let Some(oldest) = self.order.iter().copied().find(|m| *m != keep) else {
                break;
            };
            self.remove(oldest);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sample(n: usize) -> Vec<u8> {
        (0..n).map(|i| (i * 7 + 3) as u8).collect()
    }

    #[test]
    fn single_message_round_trips_and_tolerates_line_wrapping() {
        let b = sample(1000);
        let a = armour(&b);
        assert!(a.starts_with("sd1:"));
        assert_eq!(dearmour(&a).unwrap(), b);
        let wrapped: String = a
            .as_bytes()
            .chunks(76)
            .map(|c| std::str::from_utf8(c).unwrap().to_owned() + "\r\n")
            .collect();
        assert_eq!(dearmour(&wrapped).unwrap(), b);
    }

    #[test]
    fn small_envelope_is_not_chunked() {
        let b = sample(10);
        let parts = armour_chunked(&b, 1000).unwrap();
        assert_eq!(parts, vec![armour(&b)]);
    }

    #[test]
    fn chunks_reassemble_in_any_order_with_duplicates() {
        let b = sample(10_000);
        let mut parts = armour_chunked(&b, 1024).unwrap();
        assert!(parts.len() > 10);
        assert!(parts.iter().all(|p| p.len() <= 1024));
        parts.reverse();
        let dup = parts[3].clone();
        parts.insert(5, dup);
        let mut r = Reassembler::default();
        let mut out = None;
        for p in &parts {
            if let Some(done) = r.push(p).unwrap() {
                assert!(out.is_none(), "completed twice");
                out = Some(done);
            }
        }
        assert_eq!(out.unwrap(), b);
        assert_eq!(r.pending(), 0);
        assert_eq!(r.buffered_bytes(), 0);
    }

    #[test]
    fn missing_chunk_keeps_the_envelope_pending() {
        let b = sample(5000);
        let parts = armour_chunked(&b, 600).unwrap();
        let mut r = Reassembler::default();
        for p in parts.iter().skip(1) {
            assert_eq!(r.push(p).unwrap(), None);
        }
        assert_eq!(r.pending(), 1);
        assert_eq!(r.push(&parts[0]).unwrap(), Some(b));
    }

    #[test]
    fn conflicting_duplicate_chunk_is_rejected() {
        let b = sample(3000);
        let parts = armour_chunked(&b, 600).unwrap();
        let mut r = Reassembler::default();
        r.push(&parts[0]).unwrap();
        // Same header, different data.
        let mut raw = URL_SAFE_NO_PAD
            .decode(&parts[0][CHUNK_PREFIX.len()..])
            .unwrap();
        let last = raw.len() - 1;
        raw[last] ^= 1;
        let forged = format!("{CHUNK_PREFIX}{}", URL_SAFE_NO_PAD.encode(&raw));
        assert!(matches!(
            r.push(&forged),
            Err(ArmourError::ConflictingChunk { index: 0, .. })
        ));
    }

    #[test]
    fn corrupted_chunk_data_fails_the_digest() {
        let b = sample(1500);
        let mut parts = armour_chunked(&b, 600).unwrap();
        let mut raw = URL_SAFE_NO_PAD
            .decode(&parts[1][CHUNK_PREFIX.len()..])
            .unwrap();
        raw[CHUNK_HEADER] ^= 0xff;
        parts[1] = format!("{CHUNK_PREFIX}{}", URL_SAFE_NO_PAD.encode(&raw));
        let mut r = Reassembler::default();
        let mut err = None;
        for p in &parts {
            if let Err(e) = r.push(p) {
                err = Some(e);
            }
        }
        assert!(matches!(err, Some(ArmourError::DigestMismatch(_))));
        assert_eq!(r.pending(), 0);
    }

    #[test]
    fn garbage_is_rejected_with_a_typed_error() {
        assert_eq!(dearmour("hello"), Err(ArmourError::NoPrefix));
        assert!(matches!(dearmour("sd1:***"), Err(ArmourError::Base64(_))));
        let mut r = Reassembler::default();
        assert!(matches!(r.push("sd1c:AAAA"), Err(ArmourError::BadChunk(_))));
        // index >= total
        let raw = [0u8, 0, 0, 0, 0, 0, 0, 1, 0, 5, 0, 2, 9];
        let t = format!("{CHUNK_PREFIX}{}", URL_SAFE_NO_PAD.encode(raw));
        assert!(matches!(r.push(&t), Err(ArmourError::BadChunk(_))));
        let long = "sd1:".to_owned() + &"A".repeat(MAX_ARMOURED_LEN);
        assert!(matches!(dearmour(&long), Err(ArmourError::TooLong(_))));
        assert!(matches!(
            armour_chunked(&sample(100), 10),
            Err(ArmourError::ChunkTooSmall(10))
        ));
    }

    #[test]
    fn reassembler_evicts_oldest_partial_when_full() {
        let mut r = Reassembler::new(2, usize::MAX);
        let msgs: Vec<Vec<String>> = (0..3)
            .map(|i| armour_chunked(&sample(2000 + i), 600).unwrap())
            .collect();
        for m in &msgs {
            r.push(&m[0]).unwrap();
        }
        assert_eq!(r.pending(), 2);
        // The first message was evicted: completing it now needs all chunks again.
        for p in msgs[0].iter().skip(1) {
            assert_eq!(r.push(p).unwrap(), None);
        }
        assert!(r.pending() <= 2);
    }

    /// Truncated, extended, bit-flipped and oversized chunks: each gets a typed error or is
    /// held as an incomplete message, and a rejected chunk leaves the reassembler unchanged.
    #[test]
    fn damaged_chunks_are_rejected_without_changing_state() {
        let b = sample(3000);
        let parts = armour_chunked(&b, 600).unwrap();
        let mut r = Reassembler::default();
        r.push(&parts[0]).unwrap();
        let state = |r: &Reassembler| (r.pending(), r.buffered_bytes());
        let before = state(&r);
        let raw = URL_SAFE_NO_PAD
            .decode(&parts[1][CHUNK_PREFIX.len()..])
            .unwrap();
        let enc = |raw: &[u8]| format!("{CHUNK_PREFIX}{}", URL_SAFE_NO_PAD.encode(raw));

        // Truncated into the header.
        assert!(matches!(
            r.push(&enc(&raw[..CHUNK_HEADER])),
            Err(ArmourError::BadChunk(_))
        ));
        assert_eq!(state(&r), before);
        // Bit flip in the chunk count of a chunk whose message is already partial.
        let mut flipped = raw.clone();
        flipped[11] ^= 1;
        assert!(matches!(
            r.push(&enc(&flipped)),
            Err(ArmourError::TotalMismatch(_))
        ));
        // Oversized text, before any decoding.
        let huge = format!("{CHUNK_PREFIX}{}", "A".repeat(MAX_ARMOURED_LEN));
        assert!(matches!(r.push(&huge), Err(ArmourError::TooLong(_))));
        assert_eq!(
            r.push(&parts[0]).unwrap(),
            None,
            "exact duplicate is ignored"
        );

        // A fresh reassembler: the damaged chunks change nothing there either.
        let mut fresh = Reassembler::default();
        for bad in [
            enc(&raw[..CHUNK_HEADER]),
            huge.clone(),
            "sd1c:!!".to_owned(),
        ] {
            assert!(fresh.push(&bad).is_err());
            assert_eq!(state(&fresh), (0, 0));
        }
        // Extended chunk data (a byte appended): completes with the wrong digest and is
        // dropped, never returned as an envelope.
        let mut longer = raw.clone();
        longer.push(0);
        let mut r2 = Reassembler::default();
        let mut results = Vec::new();
        for (i, p) in parts.iter().enumerate() {
            results.push(if i == 1 {
                r2.push(&enc(&longer))
            } else {
                r2.push(p)
            });
        }
        assert!(results
            .iter()
            .any(|x| matches!(x, Err(ArmourError::DigestMismatch(_)))));
        assert!(results.iter().all(|x| !matches!(x, Ok(Some(_)))));
        assert_eq!(state(&r2), (0, 0));
    }

    proptest! {
        #[test]
        fn arbitrary_text_never_panics(s in ".{0,200}") {
            let mut r = Reassembler::default();
            let _ = r.push(&s);
            let _ = dearmour(&s);
            let _ = r.push(&format!("sd1c:{s}"));
        }

        #[test]
        fn chunked_round_trip(len in 0usize..5000, max in 200usize..2000) {
            let b = sample(len);
            let parts = armour_chunked(&b, max).unwrap();
            prop_assert!(parts.iter().all(|p| p.len() <= max || parts.len() == 1));
            let mut r = Reassembler::default();
            let mut got = None;
            for p in parts.iter().rev() {
                if let Some(x) = r.push(p).unwrap() { got = Some(x); }
            }
            prop_assert_eq!(got, Some(b));
        }
    }
}
