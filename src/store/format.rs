//! Byte layout of the files a [`FileStore`](super::FileStore) writes, and their strict decoders.
//!
//! Everything here is pure: bytes in, values or a [`Damage`] out. All integers are little
//! endian. The layouts are drawn in the module docs of [`store`](super).
//!
//! Decoding is hostile-input safe: every length is checked against a named limit and against
//! the bytes actually present before anything is allocated or sliced.

use std::collections::HashMap;

use super::{RecordId, RecordKind, TornTail, MAX_LOG_RECORDS, MAX_RECORD_LEN, MAX_SNAPSHOT_LEN};

/// First 8 bytes of a log file.
pub(crate) const LOG_MAGIC: [u8; 8] = *b"SEALDOCL";
/// First 8 bytes of a snapshot file.
pub(crate) const SNAP_MAGIC: [u8; 8] = *b"SEALDOCS";
/// First 8 bytes of a blob file.
pub(crate) const BLOB_MAGIC: [u8; 8] = *b"SEALDOCB";
/// Version of all three file formats. A reader refuses any other version rather than guess.
pub(crate) const FORMAT_VERSION: u32 = 1;

/// Log file header: magic 8, version 4, generation 8, first id 8, salt 16, checksum 16.
pub(crate) const LOG_HEADER_LEN: usize = 60;
/// Frame header: length 4, kind 1, id 8, header check 4, data check 8.
pub(crate) const FRAME_HEADER_LEN: usize = 25;
/// Snapshot header: magic 8, version 4, generation 8, covers 8, length 8, checksum 16.
pub(crate) const SNAP_HEADER_LEN: usize = 52;
/// Blob header: magic 8, version 4, length 8, checksum 16.
pub(crate) const BLOB_HEADER_LEN: usize = 36;

/// Largest frame: header plus the largest record.
pub(crate) const MAX_FRAME_LEN: usize = FRAME_HEADER_LEN + MAX_RECORD_LEN;

/// Bytes of random salt per log file, keying its frame checksums.
pub(crate) const SALT_LEN: usize = 16;

/// KDF context for the key of the 4-byte frame header check.
const HEADER_KEY_CONTEXT: &str = "sealdoc store v1 2024 frame header check";
/// KDF context for the key of the 8-byte frame data check.
const DATA_KEY_CONTEXT: &str = "sealdoc store v1 2024 frame data check";

/// Why bytes did not decode, and where. The caller adds the file name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Damage {
    /// The bytes are not what the format says.
    Corrupt {
        /// Byte offset in the file.
        offset: u64,
        /// What was wrong.
        reason: &'static str,
    },
    /// The magic matched but the version is not [`FORMAT_VERSION`].
    Version(u32),
}

fn corrupt(offset: usize, reason: &'static str) -> Damage {
    Damage::Corrupt {
        offset: offset as u64,
        reason,
    }
}

/// The kind byte of a frame. Promote and Discard settle a pending record; the public
/// [`RecordKind`] never shows them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FrameKind {
    /// An accepted record; data is the caller's bytes.
    Accepted = 1,
    /// A pending record; data is the caller's bytes.
    Pending = 2,
    /// The pending record whose id is the 8-byte data became accepted at this frame's id.
    Promote = 3,
    /// The pending record whose id is the 8-byte data was discarded.
    Discard = 4,
}

impl FrameKind {
    fn from_byte(b: u8) -> Option<Self> {
        match b {
            1 => Some(Self::Accepted),
            2 => Some(Self::Pending),
            3 => Some(Self::Promote),
            4 => Some(Self::Discard),
            _ => None,
        }
    }
}

impl From<RecordKind> for FrameKind {
    fn from(kind: RecordKind) -> Self {
        match kind {
            RecordKind::Accepted => Self::Accepted,
            RecordKind::Pending => Self::Pending,
        }
    }
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[at..at + 4]);
    u32::from_le_bytes(a)
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(a)
}

/// First `N` bytes of the BLAKE3 hash of `parts`, concatenated.
fn digest<const N: usize>(parts: &[&[u8]]) -> [u8; N] {
    let mut h = blake3::Hasher::new();
    for p in parts {
        h.update(p);
    }
    let mut out = [0u8; N];
    h.finalize_xof().fill(&mut out);
    out
}

/// Checks magic and version of a file that starts with `magic ‖ version`.
fn check_magic(bytes: &[u8], magic: &[u8; 8], header_len: usize) -> Result<(), Damage> {
    if bytes.len() < header_len {
        // A short file that starts with the magic is a cut header; anything else is not ours.
        let n = bytes.len().min(8);
        return Err(if bytes[..n] == magic[..n] && n > 0 {
            corrupt(bytes.len(), "file ends inside its header")
        } else {
            corrupt(0, "not a sealdoc store file (bad magic or empty)")
        });
    }
    if bytes[..8] != magic[..] {
        return Err(corrupt(0, "not a sealdoc store file (bad magic)"));
    }
    let version = u32_at(bytes, 8);
    if version != FORMAT_VERSION {
        return Err(Damage::Version(version));
    }
    Ok(())
}

/// The fixed header of a log file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LogHeader {
    /// The generation this log belongs to (its file name says the same).
    pub generation: u64,
    /// The id the first record appended to this log gets; records carried over by compaction
    /// have smaller ids.
    pub first_id: u64,
    /// Random salt from which the frame checksum keys are derived.
    pub salt: [u8; SALT_LEN],
}

impl LogHeader {
    /// The header bytes.
    pub fn encode(&self) -> [u8; LOG_HEADER_LEN] {
        let mut b = [0u8; LOG_HEADER_LEN];
        b[..8].copy_from_slice(&LOG_MAGIC);
        b[8..12].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
        b[12..20].copy_from_slice(&self.generation.to_le_bytes());
        b[20..28].copy_from_slice(&self.first_id.to_le_bytes());
        b[28..44].copy_from_slice(&self.salt);
        let sum: [u8; 16] = digest(&[&b[..44]]);
        b[44..60].copy_from_slice(&sum);
        b
    }

    /// Decodes and checks the header at the start of `bytes`.
    pub fn decode(bytes: &[u8]) -> Result<Self, Damage> {
        check_magic(bytes, &LOG_MAGIC, LOG_HEADER_LEN)?;
        let sum: [u8; 16] = digest(&[&bytes[..44]]);
        if sum[..] != bytes[44..60] {
            return Err(corrupt(44, "log header checksum mismatch"));
        }
        let mut salt = [0u8; SALT_LEN];
        salt.copy_from_slice(&bytes[28..44]);
        Ok(Self {
            generation: u64_at(bytes, 12),
            first_id: u64_at(bytes, 20),
            salt,
        })
    }
}

/// Keys of the two frame checks of one log file, derived from its salt.
///
/// Keyed, so that bytes a remote peer chose (an envelope stored as a record) cannot contain
/// something that passes for a frame: the peer does not know the salt. That keeps the torn-tail
/// analysis below sound even when the last, torn record was written by an adversary.
#[derive(Clone)]
pub(crate) struct FrameKeys {
    header: [u8; 32],
    data: [u8; 32],
}

impl std::fmt::Debug for FrameKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let Self { header: _, data: _ } = self;
        f.write_str("FrameKeys(..)")
    }
}

impl FrameKeys {
    /// Derives the keys for a log whose header has `salt`.
    pub fn new(salt: &[u8; SALT_LEN]) -> Self {
        Self {
            header: blake3::derive_key(HEADER_KEY_CONTEXT, salt),
            data: blake3::derive_key(DATA_KEY_CONTEXT, salt),
        }
    }

    fn header_check(&self, head: &[u8]) -> [u8; 4] {
        let h = blake3::keyed_hash(&self.header, head);
        let mut out = [0u8; 4];
        out.copy_from_slice(&h.as_bytes()[..4]);
        out
    }

    fn data_check(&self, head: &[u8], data: &[u8]) -> [u8; 8] {
        let mut h = blake3::Hasher::new_keyed(&self.data);
        h.update(head);
        h.update(data);
        let mut out = [0u8; 8];
        out.copy_from_slice(&h.finalize().as_bytes()[..8]);
        out
    }

    /// Appends the frame for one record to `out`.
    ///
    /// The caller has checked `data.len() <= MAX_RECORD_LEN`, so the length fits in a `u32`.
    pub fn encode_frame(&self, kind: FrameKind, id: u64, data: &[u8], out: &mut Vec<u8>) {
        let len = u32::try_from(data.len()).unwrap_or(u32::MAX);
        let mut head = [0u8; 13];
        head[..4].copy_from_slice(&len.to_le_bytes());
        head[4] = kind as u8;
        head[5..13].copy_from_slice(&id.to_le_bytes());
        out.extend_from_slice(&head);
        out.extend_from_slice(&self.header_check(&head));
        out.extend_from_slice(&self.data_check(&head, data));
        out.extend_from_slice(data);
    }

    /// Parses the frame header at `at` if the header check passes.
    fn header_at(&self, bytes: &[u8], at: usize) -> Option<(usize, u8, u64)> {
        let head = bytes.get(at..at.checked_add(FRAME_HEADER_LEN)?)?;
        if self.header_check(&head[..13]) != head[13..17] {
            return None;
        }
        Some((u32_at(head, 0) as usize, head[4], u64_at(head, 5)))
    }

    /// True if a whole frame with a valid header and data check and an id above `after`
    /// starts at `at`.
    fn valid_frame_at(&self, bytes: &[u8], at: usize, after: u64) -> bool {
        let Some((len, kind, id)) = self.header_at(bytes, at) else {
            return false;
        };
        let start = at + FRAME_HEADER_LEN;
        if len > MAX_RECORD_LEN || FrameKind::from_byte(kind).is_none() || id <= after {
            return false;
        }
        match bytes.get(start..start.saturating_add(len)) {
            Some(data) => self.data_check(&bytes[at..at + 13], data) == bytes[at + 17..start],
            None => false,
        }
    }
}

/// One decoded frame, borrowing its data from the file bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Frame<'a> {
    /// Record id.
    pub id: u64,
    /// Frame kind.
    pub kind: FrameKind,
    /// Record data (for Promote and Discard: the 8-byte id of the pending record).
    pub data: &'a [u8],
}

/// The result of reading a log file.
#[derive(Debug)]
pub(crate) struct LogScan<'a> {
    /// The header.
    pub header: LogHeader,
    /// Every valid frame, in file order (ids strictly increasing).
    pub frames: Vec<Frame<'a>>,
    /// Length of the valid prefix: header plus `frames`.
    pub good_len: usize,
    /// What was cut off after `good_len`, if anything.
    pub torn: Option<TornTail>,
}

/// Reads a log file. A damaged *final* frame is a torn tail (reported in
/// [`LogScan::torn`]); any other damage is an error. See the module docs of
/// [`store`](super) for the exact rule and why it is sound.
pub(crate) fn scan_log(bytes: &[u8]) -> Result<LogScan<'_>, Damage> {
    let header = LogHeader::decode(bytes)?;
    let keys = FrameKeys::new(&header.salt);
    let mut frames = Vec::new();
    let mut at = LOG_HEADER_LEN;
    let mut last_id = 0u64;
    let torn = loop {
        if at == bytes.len() {
            break None;
        }
        let rest = bytes.len() - at;
        let tail = |reason| TornTail {
            offset: at as u64,
            discarded_bytes: rest as u64,
            reason,
        };
        if rest < FRAME_HEADER_LEN {
            break Some(tail("the last frame's header is incomplete"));
        }
        let Some((len, kind, id)) = keys.header_at(bytes, at) else {
            // A header that fails its check is either the unsynced final write, or damage to
            // an acknowledged frame. Only the former can be the whole rest of the file and
            // be followed by no valid frame.
            if rest > MAX_FRAME_LEN {
                return Err(corrupt(at, "damaged frame header followed by more data"));
            }
            if (at + 1..bytes.len()).any(|p| keys.valid_frame_at(bytes, p, last_id)) {
                return Err(corrupt(at, "damaged frame header followed by valid frames"));
            }
            break Some(tail("the last frame's header is unreadable"));
        };
        // From here on the header is authentic: we wrote these length, kind and id.
        if len > MAX_RECORD_LEN {
            return Err(corrupt(at, "record length exceeds MAX_RECORD_LEN"));
        }
        let Some(kind) = FrameKind::from_byte(kind) else {
            return Err(corrupt(at, "unknown frame kind"));
        };
        if id <= last_id {
            return Err(corrupt(at, "record ids not strictly increasing"));
        }
        let start = at + FRAME_HEADER_LEN;
        if rest - FRAME_HEADER_LEN < len {
            break Some(tail("the last record is cut short"));
        }
        let end = start + len;
        let data = &bytes[start..end];
        if keys.data_check(&bytes[at..at + 13], data) != bytes[at + 17..start] {
            if end == bytes.len() {
                break Some(tail("the last record fails its checksum"));
            }
            return Err(corrupt(at, "record checksum mismatch"));
        }
        if matches!(kind, FrameKind::Promote | FrameKind::Discard) && len != 8 {
            return Err(corrupt(at, "settle frame without an 8-byte record id"));
        }
        if frames.len() >= MAX_LOG_RECORDS {
            return Err(corrupt(at, "more frames than MAX_LOG_RECORDS"));
        }
        frames.push(Frame { id, kind, data });
        last_id = id;
        at = end;
    };
    Ok(LogScan {
        header,
        frames,
        good_len: at,
        torn,
    })
}

/// The records a log stands for once promotions and discards are applied: live pending
/// records and accepted ones, in id order, each with its data.
#[derive(Debug, Default)]
pub(crate) struct Resolved<'a> {
    /// `(id, kind, data)` in strictly increasing id order.
    pub records: Vec<(u64, RecordKind, &'a [u8])>,
}

/// Applies the settle frames of `frames`.
///
/// A promotion moves the pending record's data to the promotion's id (its place in the
/// replay order, after everything accepted before it). Fails on a settle frame that names no
/// live pending record, which the writer never produces.
pub(crate) fn resolve<'a>(frames: &[Frame<'a>]) -> Result<Resolved<'a>, &'static str> {
    let mut slots: Vec<Option<(u64, RecordKind, &'a [u8])>> = Vec::with_capacity(frames.len());
    let mut pending: HashMap<u64, usize> = HashMap::new();
    for f in frames {
        match f.kind {
            FrameKind::Accepted => slots.push(Some((f.id, RecordKind::Accepted, f.data))),
            FrameKind::Pending => {
                pending.insert(f.id, slots.len());
                slots.push(Some((f.id, RecordKind::Pending, f.data)));
            }
            FrameKind::Promote | FrameKind::Discard => {
                let target = if f.data.len() == 8 {
                    u64_at(f.data, 0)
                } else {
                    return Err("settle frame without an 8-byte record id");
                };
                let slot = pending
                    .remove(&target)
                    .and_then(|i| slots.get_mut(i))
                    .and_then(Option::take)
                    .ok_or("settle frame names no live pending record")?;
                if f.kind == FrameKind::Promote {
                    slots.push(Some((f.id, RecordKind::Accepted, slot.2)));
                }
            }
        }
    }
    Ok(Resolved {
        records: slots.into_iter().flatten().collect(),
    })
}

/// A decoded snapshot file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SnapFile<'a> {
    /// Generation the snapshot starts.
    pub generation: u64,
    /// Last record id the snapshot covers.
    pub covers_through: u64,
    /// The caller's state bytes.
    pub data: &'a [u8],
}

impl SnapFile<'_> {
    /// The file bytes. The caller has checked `data.len() <= MAX_SNAPSHOT_LEN`.
    pub fn encode(&self) -> Vec<u8> {
        let mut b = Vec::with_capacity(SNAP_HEADER_LEN + self.data.len());
        b.extend_from_slice(&SNAP_MAGIC);
        b.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
        b.extend_from_slice(&self.generation.to_le_bytes());
        b.extend_from_slice(&self.covers_through.to_le_bytes());
        b.extend_from_slice(&(self.data.len() as u64).to_le_bytes());
        let sum: [u8; 16] = digest(&[&b, self.data]);
        b.extend_from_slice(&sum);
        b.extend_from_slice(self.data);
        b
    }
}

/// Decodes a snapshot file.
pub(crate) fn decode_snapshot(bytes: &[u8]) -> Result<SnapFile<'_>, Damage> {
    check_magic(bytes, &SNAP_MAGIC, SNAP_HEADER_LEN)?;
    let len = u64_at(bytes, 28);
    if len > MAX_SNAPSHOT_LEN as u64 {
        return Err(corrupt(28, "snapshot length exceeds MAX_SNAPSHOT_LEN"));
    }
    if len != (bytes.len() - SNAP_HEADER_LEN) as u64 {
        return Err(corrupt(28, "snapshot length does not match the file size"));
    }
    let data = &bytes[SNAP_HEADER_LEN..];
    let sum: [u8; 16] = digest(&[&bytes[..36], data]);
    if sum[..] != bytes[36..52] {
        return Err(corrupt(36, "snapshot checksum mismatch"));
    }
    Ok(SnapFile {
        generation: u64_at(bytes, 12),
        covers_through: u64_at(bytes, 20),
        data,
    })
}

/// The bytes of the blob file for `name`. The checksum covers the name, so a blob file
/// renamed by hand is detected. The caller has checked the length limit.
pub(crate) fn encode_blob(name: &str, data: &[u8]) -> Vec<u8> {
    let mut b = Vec::with_capacity(BLOB_HEADER_LEN + data.len());
    b.extend_from_slice(&BLOB_MAGIC);
    b.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    b.extend_from_slice(&(data.len() as u64).to_le_bytes());
    let sum: [u8; 16] = digest(&[&b, name.as_bytes(), data]);
    b.extend_from_slice(&sum);
    b.extend_from_slice(data);
    b
}

/// Decodes the blob file of `name`, returning the data.
pub(crate) fn decode_blob<'a>(name: &str, bytes: &'a [u8]) -> Result<&'a [u8], Damage> {
    check_magic(bytes, &BLOB_MAGIC, BLOB_HEADER_LEN)?;
    let len = u64_at(bytes, 12);
    if len != (bytes.len() - BLOB_HEADER_LEN) as u64 {
        return Err(corrupt(12, "blob length does not match the file size"));
    }
    let data = &bytes[BLOB_HEADER_LEN..];
    let sum: [u8; 16] = digest(&[&bytes[..20], name.as_bytes(), data]);
    if sum[..] != bytes[20..36] {
        return Err(corrupt(20, "blob checksum mismatch"));
    }
    Ok(data)
}

/// The data of a settle frame: the id of the pending record it settles.
pub(crate) fn settle_data(target: RecordId) -> [u8; 8] {
    target.as_u64().to_le_bytes()
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn header() -> LogHeader {
        LogHeader {
            generation: 3,
            first_id: 10,
            salt: [7; SALT_LEN],
        }
    }

    /// A log with frames of the given data lengths, ids 10, 11, ...
    fn log_with(lens: &[usize]) -> (Vec<u8>, Vec<usize>) {
        let h = header();
        let keys = FrameKeys::new(&h.salt);
        let mut b = h.encode().to_vec();
        let mut offsets = Vec::new();
        for (i, &len) in lens.iter().enumerate() {
            offsets.push(b.len());
            let data: Vec<u8> = (0..len).map(|j| (i * 31 + j) as u8).collect();
            keys.encode_frame(FrameKind::Accepted, 10 + i as u64, &data, &mut b);
        }
        (b, offsets)
    }

    #[test]
    fn log_round_trips() {
        let (b, _) = log_with(&[0, 5, 300]);
        let scan = scan_log(&b).unwrap();
        assert_eq!(scan.header, header());
        assert_eq!(scan.frames.len(), 3);
        assert_eq!(scan.frames[2].data.len(), 300);
        assert_eq!(scan.good_len, b.len());
        assert!(scan.torn.is_none());
    }

    #[test]
    fn every_cut_of_the_last_frame_is_a_torn_tail() {
        let (b, offsets) = log_with(&[4, 9, 40]);
        let last = offsets[2];
        for cut in last..b.len() {
            let scan = scan_log(&b[..cut]).unwrap();
            assert_eq!(scan.frames.len(), 2, "cut at {cut}");
            assert_eq!(scan.good_len, last);
            assert_eq!(scan.torn.is_some(), cut > last);
        }
    }

    #[test]
    fn a_flipped_bit_in_the_last_frame_is_a_torn_tail() {
        let (b, offsets) = log_with(&[4, 9, 40]);
        for at in offsets[2]..b.len() {
            let mut bad = b.clone();
            bad[at] ^= 0x10;
            let scan = scan_log(&bad).unwrap();
            assert_eq!(scan.frames.len(), 2, "flip at {at}");
            assert!(scan.torn.is_some());
        }
    }

    #[test]
    fn a_flipped_bit_in_a_middle_frame_is_corruption() {
        let (b, offsets) = log_with(&[4, 9, 40]);
        for at in offsets[1]..offsets[2] {
            let mut bad = b.clone();
            bad[at] ^= 0x01;
            assert!(
                matches!(scan_log(&bad), Err(Damage::Corrupt { .. })),
                "flip at {at}"
            );
        }
    }

    #[test]
    fn an_authentic_header_with_a_huge_length_is_corruption_without_allocating() {
        let h = header();
        let keys = FrameKeys::new(&h.salt);
        let mut b = h.encode().to_vec();
        let mut head = [0u8; 13];
        head[..4].copy_from_slice(&u32::MAX.to_le_bytes());
        head[4] = 1;
        head[5..13].copy_from_slice(&10u64.to_le_bytes());
        b.extend_from_slice(&head);
        b.extend_from_slice(&keys.header_check(&head));
        b.extend_from_slice(&[0; 8]);
        assert!(matches!(
            scan_log(&b),
            Err(Damage::Corrupt { offset: 60, .. })
        ));
    }

    #[test]
    fn garbage_after_more_than_one_frame_is_corruption() {
        let (mut b, _) = log_with(&[4]);
        b.extend(std::iter::repeat_n(0xAB, MAX_FRAME_LEN + 1));
        assert!(matches!(scan_log(&b), Err(Damage::Corrupt { .. })));
    }

    #[test]
    fn headers_reject_wrong_magic_version_and_checksum() {
        let good = header().encode();
        assert!(matches!(
            LogHeader::decode(&[]),
            Err(Damage::Corrupt { .. })
        ));
        assert!(matches!(
            LogHeader::decode(&good[..30]),
            Err(Damage::Corrupt { offset: 30, .. })
        ));
        let mut v = good;
        v[8] = 2;
        assert!(matches!(LogHeader::decode(&v), Err(Damage::Version(2))));
        let mut c = good;
        c[30] ^= 1;
        assert!(matches!(LogHeader::decode(&c), Err(Damage::Corrupt { .. })));
        let mut m = good;
        m[0] = b'X';
        assert!(matches!(
            LogHeader::decode(&m),
            Err(Damage::Corrupt { offset: 0, .. })
        ));
    }

    #[test]
    fn snapshot_and_blob_round_trip_and_detect_damage() {
        let s = SnapFile {
            generation: 2,
            covers_through: 9,
            data: b"state",
        };
        let b = s.encode();
        assert_eq!(decode_snapshot(&b).unwrap(), s);
        for at in 0..b.len() {
            let mut bad = b.clone();
            bad[at] ^= 4;
            assert!(decode_snapshot(&bad).is_err(), "flip at {at}");
            assert!(decode_snapshot(&b[..at]).is_err(), "cut at {at}");
        }
        let blob = encode_blob("k", b"secret");
        assert_eq!(decode_blob("k", &blob).unwrap(), b"secret");
        assert!(decode_blob("other", &blob).is_err());
    }

    #[test]
    fn resolve_promotes_in_place_of_the_promotion() {
        let f = |id, kind, data| Frame { id, kind, data };
        let p = settle_data(RecordId(1));
        let frames = [
            f(1, FrameKind::Pending, &b"p"[..]),
            f(2, FrameKind::Accepted, b"a"),
            f(3, FrameKind::Pending, b"q"),
            f(4, FrameKind::Promote, &p),
        ];
        let r = resolve(&frames).unwrap();
        assert_eq!(
            r.records,
            vec![
                (2, RecordKind::Accepted, &b"a"[..]),
                (3, RecordKind::Pending, b"q"),
                (4, RecordKind::Accepted, b"p"),
            ]
        );
        let twice = [frames[0], frames[3], f(5, FrameKind::Discard, &p)];
        assert!(resolve(&twice).is_err());
    }

    proptest! {
        #[test]
        fn scanning_arbitrary_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
            let _ = scan_log(&bytes);
            let mut with_header = header().encode().to_vec();
            with_header.extend_from_slice(&bytes);
            let _ = scan_log(&with_header);
            let _ = decode_snapshot(&bytes);
            let _ = decode_blob("x", &bytes);
        }

        #[test]
        fn mutated_logs_scan_to_a_prefix_or_an_error(
            lens in proptest::collection::vec(0usize..50, 1..6),
            flips in proptest::collection::vec((any::<prop::sample::Index>(), 1u8..=255), 0..3),
            cut in any::<prop::sample::Index>(),
        ) {
            let (mut b, _) = log_with(&lens);
            let n = b.len();
            for (i, x) in flips {
                b[i.index(n)] ^= x;
            }
            b.truncate(LOG_HEADER_LEN + cut.index(n - LOG_HEADER_LEN + 1));
            if let Ok(scan) = scan_log(&b) {
                let (orig, _) = log_with(&lens);
                let orig = scan_log(&orig).unwrap();
                // Whatever survives is exactly a prefix of what was written.
                prop_assert!(scan.frames.len() <= orig.frames.len());
                for (a, o) in scan.frames.iter().zip(&orig.frames) {
                    prop_assert_eq!(a, o);
                }
            }
        }
    }
}
