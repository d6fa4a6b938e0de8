//! A strict, allocation-free reader for fixed-layout wire structures, in the manner of rustls'
//! `codec::Reader`: every read is bounds-checked and names the field, and `finish` rejects
//! trailing bytes.

use std::fmt;

use super::CryptoError;

/// Cursor over untrusted bytes.
pub(crate) struct Reader<'a> {
    bytes: &'a [u8],
    offset: usize,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(bytes: &'a [u8]) -> Self {
        Self { bytes, offset: 0 }
    }

    /// Bytes consumed so far.
    pub(crate) fn offset(&self) -> usize {
        self.offset
    }

    /// Bytes not yet consumed.
    pub(crate) fn remaining(&self) -> usize {
        self.bytes.len().saturating_sub(self.offset)
    }

    /// Takes exactly `n` bytes.
    pub(crate) fn take(&mut self, what: &'static str, n: usize) -> Result<&'a [u8], CryptoError> {
        let available = self.remaining();
        let rest = self.bytes.get(self.offset..).unwrap_or_default();
        match rest.get(..n) {
            Some(out) => {
                self.offset = self.offset.saturating_add(n);
                Ok(out)
            }
            None => Err(CryptoError::Truncated {
                what,
                offset: self.offset,
                needed: n,
                available,
            }),
        }
    }

    /// Takes a fixed-size array.
    pub(crate) fn array<const N: usize>(
        &mut self,
        what: &'static str,
    ) -> Result<[u8; N], CryptoError> {
        let slice = self.take(what, N)?;
        let mut out = [0u8; N];
        out.copy_from_slice(slice);
        Ok(out)
    }

    /// Takes one byte.
    pub(crate) fn u8(&mut self, what: &'static str) -> Result<u8, CryptoError> {
        let [b] = self.array::<1>(what)?;
        Ok(b)
    }

    /// Takes everything that is left.
    pub(crate) fn rest(&mut self) -> &'a [u8] {
        let rest = self.bytes.get(self.offset..).unwrap_or_default();
        self.offset = self.bytes.len();
        rest
    }

    /// Succeeds only if every byte was consumed.
    pub(crate) fn finish(self, what: &'static str) -> Result<(), CryptoError> {
        match self.remaining() {
            0 => Ok(()),
            extra => Err(CryptoError::TrailingData { what, extra }),
        }
    }
}

/// Checks the two magic bytes, the version and the suite that open every structure.
pub(crate) fn read_preamble(
    r: &mut Reader<'_>,
    what: &'static str,
    magic: [u8; 2],
) -> Result<(), CryptoError> {
    let found = r.array::<2>("magic")?;
    if found != magic {
        return Err(CryptoError::BadMagic {
            expected: magic,
            found,
        });
    }
    let version = r.u8("version")?;
    if version != super::VERSION {
        return Err(CryptoError::UnsupportedVersion {
            what,
            expected: super::VERSION,
            found: version,
        });
    }
    let suite = r.u8("suite")?;
    if suite != super::SUITE {
        return Err(CryptoError::UnsupportedSuite {
            expected: super::SUITE,
            found: suite,
        });
    }
    Ok(())
}

/// Lower-case hex for `Debug` of public values.
pub(crate) struct Hex<'a>(pub(crate) &'a [u8]);

impl fmt::Debug for Hex<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reader_reports_truncation_and_trailing_data() {
        let mut r = Reader::new(&[1, 2, 3]);
        assert_eq!(r.u8("a").ok(), Some(1));
        assert!(matches!(
            r.take("b", 5),
            Err(CryptoError::Truncated {
                offset: 1,
                needed: 5,
                available: 2,
                ..
            })
        ));
        assert!(matches!(
            r.finish("x"),
            Err(CryptoError::TrailingData { extra: 2, .. })
        ));
        let mut r = Reader::new(&[1, 2]);
        assert_eq!(r.rest(), &[1, 2]);
        assert!(r.finish("x").is_ok());
    }
}
