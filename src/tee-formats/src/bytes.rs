//! Bounds-checked cursor over untrusted bytes, and a writer for fixed layouts.
//!
//! Every read goes through [`Reader::take`], which uses `slice::get`: no read
//! can index out of bounds, whatever the input. Offsets in errors are absolute
//! (from the start of the buffer handed to the public `parse` function).

use crate::FormatError;

/// A cursor over a byte slice whose reads fail with [`FormatError`] instead of
/// panicking.
#[derive(Debug, Clone)]
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    /// Absolute offset of `buf[0]` in the caller's input.
    base: usize,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Self {
            buf,
            pos: 0,
            base: 0,
        }
    }

    /// Absolute offset of the next byte.
    pub(crate) fn offset(&self) -> usize {
        self.base.saturating_add(self.pos)
    }

    /// Bytes left to read.
    pub(crate) fn remaining(&self) -> usize {
        self.buf.len().saturating_sub(self.pos)
    }

    /// The next `n` bytes of field `what`.
    pub(crate) fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], FormatError> {
        let truncated = || FormatError::Truncated {
            what,
            needed: self.offset().saturating_add(n),
            got: self.base.saturating_add(self.buf.len()),
        };
        let end = self.pos.checked_add(n).ok_or_else(truncated)?;
        let out = self.buf.get(self.pos..end).ok_or_else(truncated)?;
        self.pos = end;
        Ok(out)
    }

    pub(crate) fn array<const N: usize>(
        &mut self,
        what: &'static str,
    ) -> Result<[u8; N], FormatError> {
        let offset = self.offset();
        let s = self.take(N, what)?;
        <[u8; N]>::try_from(s).map_err(|_| FormatError::Truncated {
            what,
            needed: offset.saturating_add(N),
            got: offset.saturating_add(s.len()),
        })
    }

    pub(crate) fn u8(&mut self, what: &'static str) -> Result<u8, FormatError> {
        Ok(u8::from_le_bytes(self.array(what)?))
    }

    pub(crate) fn u16(&mut self, what: &'static str) -> Result<u16, FormatError> {
        Ok(u16::from_le_bytes(self.array(what)?))
    }

    pub(crate) fn u32(&mut self, what: &'static str) -> Result<u32, FormatError> {
        Ok(u32::from_le_bytes(self.array(what)?))
    }

    pub(crate) fn u64(&mut self, what: &'static str) -> Result<u64, FormatError> {
        Ok(u64::from_le_bytes(self.array(what)?))
    }

    /// A big-endian `u16` (TPM structures are big-endian).
    pub(crate) fn u16_be(&mut self, what: &'static str) -> Result<u16, FormatError> {
        Ok(u16::from_be_bytes(self.array(what)?))
    }

    /// A big-endian `u32`.
    pub(crate) fn u32_be(&mut self, what: &'static str) -> Result<u32, FormatError> {
        Ok(u32::from_be_bytes(self.array(what)?))
    }

    /// A big-endian `u64`.
    pub(crate) fn u64_be(&mut self, what: &'static str) -> Result<u64, FormatError> {
        Ok(u64::from_be_bytes(self.array(what)?))
    }

    /// Skips `n` reserved bytes of structure `what`, which must all be zero.
    pub(crate) fn reserved(&mut self, n: usize, what: &'static str) -> Result<(), FormatError> {
        let offset = self.offset();
        let s = self.take(n, what)?;
        if s.iter().any(|&b| b != 0) {
            return Err(FormatError::ReservedNotZero {
                what,
                offset,
                len: n,
            });
        }
        Ok(())
    }

    /// Splits off the next `declared` bytes, announced by the length field
    /// `field` at absolute offset `field_offset`, as a reader of their own.
    pub(crate) fn sub(
        &mut self,
        declared: u64,
        field: &'static str,
        field_offset: usize,
    ) -> Result<Reader<'a>, FormatError> {
        let available = self.remaining();
        let out_of_bounds = || FormatError::LengthOutOfBounds {
            field,
            offset: field_offset,
            declared,
            available,
        };
        let n = usize::try_from(declared).map_err(|_| out_of_bounds())?;
        if n > available {
            return Err(out_of_bounds());
        }
        let base = self.offset();
        let buf = self.take(n, field)?;
        Ok(Reader { buf, pos: 0, base })
    }

    /// Everything not yet read.
    pub(crate) fn rest(&mut self) -> &'a [u8] {
        let out = self.buf.get(self.pos..).unwrap_or_default();
        self.pos = self.buf.len();
        out
    }

    /// Fails unless every byte of region `what` has been read.
    pub(crate) fn finish(&self, what: &'static str) -> Result<(), FormatError> {
        match self.remaining() {
            0 => Ok(()),
            len => Err(FormatError::TrailingBytes {
                what,
                offset: self.offset(),
                len,
            }),
        }
    }
}

/// Writes a fixed-size layout front to back. Reserved ranges are skipped and
/// stay zero.
pub(crate) struct ArrayWriter<'a> {
    buf: &'a mut [u8],
    pos: usize,
}

impl<'a> ArrayWriter<'a> {
    pub(crate) fn new(buf: &'a mut [u8]) -> Self {
        Self { buf, pos: 0 }
    }

    pub(crate) fn put(&mut self, bytes: &[u8]) {
        let end = self.pos.saturating_add(bytes.len());
        match self.buf.get_mut(self.pos..end) {
            Some(dst) => dst.copy_from_slice(bytes),
            // Layouts are constants: running past the end is a bug in this crate.
            None => debug_assert!(false, "layout overflows its buffer"),
        }
        self.pos = end;
    }

    pub(crate) fn skip(&mut self, n: usize) {
        self.pos = self.pos.saturating_add(n);
    }

    /// Checks (in debug builds) that the layout filled the buffer exactly.
    pub(crate) fn finish(self) {
        debug_assert_eq!(self.pos, self.buf.len(), "layout does not fill its buffer");
    }
}
