//! A strict reader for the postcard wire format.
//!
//! Encoding goes through postcard's serializer (serde derives on the wire types). Decoding is
//! done by hand here, for three reasons:
//!
//! 1. Every rejection must be its own typed error. postcard reports any error raised inside a
//!    custom `Deserialize` as `SerdeDeCustom`, with no detail, so a bounded-`Vec` visitor
//!    could not say *which* limit was broken.
//! 2. Every count is checked against its limit and against the bytes left *before* anything
//!    is allocated: an element takes at least one byte, so a prefix claiming more elements
//!    than bytes remain is an error, never an allocation.
//! 3. One value, one encoding. postcard accepts overlong varints (`0x80 0x00` for 0); this
//!    reader refuses them, and callers still re-encode and compare as a second line of
//!    defence.
//!
//! The formats: unsigned integers are LEB128 varints, `i64` is zig-zag then varint, `u8` and
//! `bool` are one byte, `f64` is 8 bytes little-endian, strings and byte strings are a varint
//! length then the bytes, sequences a varint count then the elements, enums a varint tag
//! then the fields, fixed arrays their bytes. This is exactly what postcard produces.

use serde::ser::{Serialize, SerializeTuple, Serializer};

use super::error::DecodeError;

/// Cursor over untrusted bytes.
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }

    /// Current offset.
    pub(crate) fn pos(&self) -> usize {
        self.pos
    }

    /// Bytes not yet read.
    pub(crate) fn remaining(&self) -> usize {
        self.buf.len().saturating_sub(self.pos)
    }

    /// Succeeds only if every byte was read.
    pub(crate) fn finish(&self) -> Result<(), DecodeError> {
        match self.remaining() {
            0 => Ok(()),
            extra => Err(DecodeError::TrailingBytes { extra }),
        }
    }

    pub(crate) fn u8(&mut self) -> Result<u8, DecodeError> {
        let b = *self
            .buf
            .get(self.pos)
            .ok_or(DecodeError::Truncated { at: self.pos })?;
        self.pos += 1;
        Ok(b)
    }

    /// `n` raw bytes; `n` must already be known to fit (otherwise `Truncated`).
    pub(crate) fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        let end = self
            .pos
            .checked_add(n)
            .ok_or(DecodeError::Truncated { at: self.pos })?;
        let s = self
            .buf
            .get(self.pos..end)
            .ok_or(DecodeError::Truncated { at: self.pos })?;
        self.pos = end;
        Ok(s)
    }

    pub(crate) fn array32(&mut self) -> Result<[u8; 32], DecodeError> {
        let s = self.take(32)?;
        let mut out = [0u8; 32];
        out.copy_from_slice(s);
        Ok(out)
    }

    pub(crate) fn array64(&mut self) -> Result<[u8; 64], DecodeError> {
        let s = self.take(64)?;
        let mut out = [0u8; 64];
        out.copy_from_slice(s);
        Ok(out)
    }

    /// An unsigned LEB128 varint of at most `max_bytes` bytes whose value fits `bits` bits,
    /// in its shortest form.
    fn varint(&mut self, max_bytes: usize, bits: u32) -> Result<u64, DecodeError> {
        let at = self.pos;
        let mut out: u64 = 0;
        for i in 0..max_bytes {
            let b = self.u8()?;
            let chunk = u64::from(b & 0x7f);
            let shift = 7 * i as u32;
            // Bits of this chunk that land beyond `bits` make the value too large.
            if shift + 7 > bits && (chunk >> (bits - shift)) != 0 {
                return Err(DecodeError::VarintOverflow { at });
            }
            out |= chunk << shift;
            if b & 0x80 == 0 {
                // A final zero byte after the first adds nothing: an overlong encoding.
                if i > 0 && b == 0 {
                    return Err(DecodeError::OverlongVarint { at });
                }
                return Ok(out);
            }
        }
        Err(DecodeError::VarintOverflow { at })
    }

    pub(crate) fn u64(&mut self) -> Result<u64, DecodeError> {
        self.varint(10, 64)
    }

    pub(crate) fn u32(&mut self) -> Result<u32, DecodeError> {
        let at = self.pos;
        let v = self.varint(5, 32)?;
        u32::try_from(v).map_err(|_| DecodeError::VarintOverflow { at })
    }

    pub(crate) fn i64(&mut self) -> Result<i64, DecodeError> {
        let z = self.u64()?;
        // Zig-zag: 0, -1, 1, -2, ... ↦ 0, 1, 2, 3, ...
        Ok(((z >> 1) as i64) ^ -((z & 1) as i64))
    }

    pub(crate) fn bool(&mut self) -> Result<bool, DecodeError> {
        let at = self.pos;
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(DecodeError::InvalidBool { at }),
        }
    }

    pub(crate) fn f64(&mut self) -> Result<f64, DecodeError> {
        let s = self.take(8)?;
        let mut b = [0u8; 8];
        b.copy_from_slice(s);
        Ok(f64::from_le_bytes(b))
    }

    /// An enum tag below `count`.
    pub(crate) fn tag(&mut self, count: u32, what: &'static str) -> Result<u32, DecodeError> {
        let tag = self.u32()?;
        if tag >= count {
            return Err(DecodeError::UnknownVariant { what, tag });
        }
        Ok(tag)
    }

    /// A sequence count: at most `max` (else `over(count)`), and at most the bytes left
    /// divided by `min_size`, the smallest encoding of one element (else `LengthOverrun`).
    /// Checked before the caller allocates anything.
    pub(crate) fn count(
        &mut self,
        max: usize,
        min_size: usize,
        over: impl FnOnce(u64) -> DecodeError,
    ) -> Result<usize, DecodeError> {
        let n = self.u64()?;
        if n > max as u64 {
            return Err(over(n));
        }
        let need = n.saturating_mul(min_size.max(1) as u64);
        if need > self.remaining() as u64 {
            return Err(DecodeError::LengthOverrun {
                claimed: n,
                available: self.remaining(),
            });
        }
        // n <= max, a usize.
        Ok(n as usize)
    }

    /// Length-prefixed raw bytes of at most `max` bytes.
    pub(crate) fn bytes(
        &mut self,
        max: usize,
        over: impl FnOnce(u64) -> DecodeError,
    ) -> Result<&'a [u8], DecodeError> {
        let n = self.count(max, 1, over)?;
        self.take(n)
    }

    /// A length-prefixed UTF-8 string of at most `max` bytes, copied out.
    pub(crate) fn string(
        &mut self,
        max: usize,
        over: impl FnOnce(u64) -> DecodeError,
    ) -> Result<String, DecodeError> {
        let at = self.pos;
        let b = self.bytes(max, over)?;
        std::str::from_utf8(b)
            .map(str::to_owned)
            .map_err(|_| DecodeError::InvalidUtf8 { at })
    }
}

/// True if postcard encodes `value` to exactly `expected`. Streams the comparison instead of
/// allocating a second copy.
pub(crate) fn encodes_to<T: Serialize>(value: &T, expected: &[u8]) -> bool {
    struct Compare<'a> {
        expected: &'a [u8],
        pos: usize,
        equal: bool,
    }
    impl Extend<u8> for Compare<'_> {
        fn extend<I: IntoIterator<Item = u8>>(&mut self, iter: I) {
            for b in iter {
                if self.expected.get(self.pos) != Some(&b) {
                    self.equal = false;
                }
                self.pos += 1;
            }
        }
    }
    match postcard::to_extend(
        value,
        Compare {
            expected,
            pos: 0,
            equal: true,
        },
    ) {
        Ok(c) => c.equal && c.pos == expected.len(),
        Err(_) => false,
    }
}

/// Serializes a byte slice as postcard bytes (varint length, then the bytes).
pub(crate) struct Bytes<'a>(pub &'a [u8]);

impl Serialize for Bytes<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(self.0)
    }
}

/// Serializes 64 bytes as a fixed array (serde derives stop at 32).
pub(crate) struct Array64<'a>(pub &'a [u8; 64]);

impl Serialize for Array64<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut t = s.serialize_tuple(64)?;
        for b in self.0 {
            t.serialize_element(b)?;
        }
        t.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_u64(b: &[u8]) -> Result<u64, DecodeError> {
        let mut r = Reader::new(b);
        let v = r.u64()?;
        r.finish()?;
        Ok(v)
    }

    #[test]
    fn varints_round_trip_with_postcard() {
        for v in [0u64, 1, 127, 128, 300, 1 << 35, u64::MAX - 1, u64::MAX] {
            let enc = postcard::to_allocvec(&v).unwrap();
            assert_eq!(read_u64(&enc), Ok(v), "{v}");
        }
        for v in [0u32, 1, 127, 128, u32::MAX] {
            let enc = postcard::to_allocvec(&v).unwrap();
            let mut r = Reader::new(&enc);
            assert_eq!(r.u32(), Ok(v));
        }
        for v in [0i64, -1, 1, i64::MIN, i64::MAX, -1234567] {
            let enc = postcard::to_allocvec(&v).unwrap();
            let mut r = Reader::new(&enc);
            assert_eq!(r.i64(), Ok(v));
        }
    }

    #[test]
    fn encodes_to_compares_exactly() {
        let v = (1u8, String::from("ab"), 300u64);
        let bytes = postcard::to_allocvec(&v).unwrap();
        assert!(encodes_to(&v, &bytes));
        assert!(!encodes_to(&v, &bytes[..bytes.len() - 1]));
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(!encodes_to(&v, &longer));
        let mut other = bytes.clone();
        other[1] ^= 1;
        assert!(!encodes_to(&v, &other));
    }

    #[test]
    fn overlong_varint_is_rejected_though_postcard_accepts_it() {
        let overlong = [0x80u8, 0x00];
        assert_eq!(postcard::from_bytes::<u64>(&overlong).ok(), Some(0));
        assert_eq!(
            read_u64(&overlong),
            Err(DecodeError::OverlongVarint { at: 0 })
        );
    }

    #[test]
    fn varint_overflow_is_rejected() {
        // 2^64: ten bytes whose last carries bit 64.
        let mut b = vec![0x80u8; 9];
        b.push(0x02);
        assert_eq!(read_u64(&b), Err(DecodeError::VarintOverflow { at: 0 }));
        let eleven = [0xffu8; 11];
        assert_eq!(
            read_u64(&eleven),
            Err(DecodeError::VarintOverflow { at: 0 })
        );
        let mut r = Reader::new(&[0x80, 0x80, 0x80, 0x80, 0x10]);
        assert_eq!(r.u32(), Err(DecodeError::VarintOverflow { at: 0 }));
    }

    #[test]
    fn count_beyond_input_errors_before_allocating() {
        // Claims u64::MAX - 1 elements with three bytes left.
        let mut b = postcard::to_allocvec(&(u64::MAX - 1)).unwrap();
        b.extend_from_slice(&[1, 2, 3]);
        let mut r = Reader::new(&b);
        assert_eq!(
            r.count(usize::MAX, 1, |_| DecodeError::EmptyNode),
            Err(DecodeError::LengthOverrun {
                claimed: u64::MAX - 1,
                available: 3
            })
        );
        let mut r = Reader::new(&[40u8, 0]);
        assert_eq!(
            r.count(32, 32, |n| DecodeError::TooManyDeps { count: n, max: 32 }),
            Err(DecodeError::TooManyDeps { count: 40, max: 32 })
        );
    }

    #[test]
    fn strings_are_checked() {
        let mut r = Reader::new(&[2, 0xff, 0xfe]);
        assert_eq!(
            r.string(10, |_| DecodeError::EmptyNode),
            Err(DecodeError::InvalidUtf8 { at: 0 })
        );
        let mut r = Reader::new(&[3, b'a']);
        assert!(matches!(
            r.string(10, |_| DecodeError::EmptyNode),
            Err(DecodeError::LengthOverrun {
                claimed: 3,
                available: 1
            })
        ));
        let mut r = Reader::new(&[2, b'a', b'b']);
        assert_eq!(
            r.string(10, |_| DecodeError::EmptyNode).as_deref(),
            Ok("ab")
        );
        let mut r = Reader::new(&[2]);
        assert_eq!(r.bool(), Err(DecodeError::InvalidBool { at: 0 }));
    }
}
