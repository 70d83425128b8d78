//! Heap buffers that start on a cache line, for the packed weights and inputs the kernels
//! stream. A large `Vec` from the system allocator starts 16 bytes past a page boundary, so
//! every 64-byte vector or AMX tile row read from it spans two cache lines: on a Xeon with
//! AMX (family 6 model 207) a `tileloadd` of such rows took twice as long as of aligned ones.
//!
//! The bytes are a zeroed allocation of the C library's `calloc`, a line longer than asked
//! and used from its first line boundary: `calloc` hands out fresh pages untouched (the OS
//! zeroes them as the packing threads first write them) and memory freed earlier, zeroed,
//! again. An aligned zeroed allocation writes every byte up front instead (0.2 s for
//! Gemma-3's 336 MB LM head, on one thread, before the packing threads start), and
//! anonymous maps of their own never reuse what the weights they are packed from freed
//! (COMET's peak RSS: 1.4 → 2.6 GB). They are not offered transparent huge pages: on the
//! Zen 4 VM of session 23 faulting them in as huge pages made loading 0.8–1.2 s slower, and
//! the earlier request had had no effect since the buffers were zeroed before it.

use std::fmt;
use std::marker::PhantomData;
use std::ops::{Deref, DerefMut};

use bytemuck::Pod;

/// Bytes per cache line.
const LINE: usize = 64;

/// A zero-initialised buffer of `len` values of `T` whose first value starts a cache line.
pub(crate) struct Aligned<T> {
    /// `calloc`'s bytes, one line more than the values need.
    bytes: Vec<u8>,
    /// Where the values start in `bytes` (a line boundary).
    start: usize,
    len: usize,
    _values: PhantomData<T>,
}

impl<T: Pod> Aligned<T> {
    /// `len` zeros.
    pub(crate) fn zeroed(len: usize) -> Self {
        let bytes = vec![0u8; len * std::mem::size_of::<T>() + LINE];
        let at = bytes.as_ptr() as usize;
        Aligned {
            start: at.next_multiple_of(LINE) - at,
            bytes,
            len,
            _values: PhantomData,
        }
    }

    /// The values' bytes.
    fn range(&self) -> std::ops::Range<usize> {
        self.start..self.start + self.len * std::mem::size_of::<T>()
    }
}

impl<T: Pod> Deref for Aligned<T> {
    type Target = [T];
    fn deref(&self) -> &[T] {
        bytemuck::cast_slice(&self.bytes[self.range()])
    }
}

impl<T: Pod> DerefMut for Aligned<T> {
    fn deref_mut(&mut self) -> &mut [T] {
        let range = self.range();
        bytemuck::cast_slice_mut(&mut self.bytes[range])
    }
}

impl<T: Pod> Clone for Aligned<T> {
    fn clone(&self) -> Self {
        // A copy of the bytes would start elsewhere relative to a line.
        let mut copy = Aligned::zeroed(self.len);
        copy.copy_from_slice(self);
        copy
    }
}

impl<T: Pod> Default for Aligned<T> {
    /// No values.
    fn default() -> Self {
        Aligned::zeroed(0)
    }
}

impl<T> fmt::Debug for Aligned<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Aligned({} values)", self.len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn starts_on_a_line_and_holds_zeros() {
        for len in [0, 1, 31, 33, 100_000, 1 << 20] {
            let mut a = Aligned::<u16>::zeroed(len);
            assert_eq!(a.len(), len);
            assert_eq!(a.as_ptr() as usize % LINE, 0);
            assert!(a.iter().all(|&v| v == 0));
            a.iter_mut().enumerate().for_each(|(i, v)| *v = i as u16);
            assert!(a.iter().enumerate().all(|(i, &v)| v == i as u16));
            assert_eq!(&a.clone()[..], &a[..]);
        }
    }
}
