//! Heap buffers that start on a cache line, for the packed weights and inputs the kernels
//! stream. A large `Vec` from the system allocator starts 16 bytes past a page boundary, so
//! every 64-byte vector or AMX tile row read from it spans two cache lines: on a Xeon with
//! AMX (family 6 model 207) a `tileloadd` of such rows took twice as long as of aligned ones.
//!
//! Large buffers are anonymous memory maps: their pages come zeroed from the OS when first
//! written (by the packing threads), where the allocator's aligned zeroed allocation writes
//! every byte up front (0.2 s for Gemma-3's 336 MB LM head, on one thread, before the
//! packing threads start). They are not offered transparent huge pages: on the Zen 4 VM of
//! session 23 faulting them in as huge pages made loading 0.8–1.2 s slower (no compaction
//! stalls; decoding ~2% faster), and the earlier request had had no effect since the buffers
//! were zeroed before it.

use std::fmt;
use std::marker::PhantomData;
use std::ops::{Deref, DerefMut};

use bytemuck::{Pod, Zeroable};

/// Bytes per cache line.
const LINE: usize = 64;

/// Buffers of at least this many bytes are mapped (page-aligned) rather than allocated.
const MAP_FROM: usize = 1 << 20;

/// One cache line of storage.
#[derive(Clone, Copy, Pod, Zeroable)]
#[repr(C, align(64))]
struct Line([u8; LINE]);

/// Where an [`Aligned`] buffer's bytes live.
enum Storage {
    /// Cache lines from the allocator (small buffers).
    Lines(Vec<Line>),
    /// An anonymous map (large buffers).
    Mapped(memmap2::MmapMut),
}

impl Storage {
    /// `bytes` zero bytes, starting on a cache line.
    fn zeroed(bytes: usize) -> Storage {
        let lines = || Storage::Lines(bytemuck::zeroed_vec(bytes.div_ceil(LINE)));
        if bytes < MAP_FROM {
            return lines();
        }
        // Where the OS refuses a map, the allocator's zeroed lines do.
        memmap2::MmapMut::map_anon(bytes).map_or_else(|_| lines(), Storage::Mapped)
    }

    fn bytes(&self) -> &[u8] {
        match self {
            Storage::Lines(lines) => bytemuck::cast_slice(lines),
            Storage::Mapped(map) => map,
        }
    }

    fn bytes_mut(&mut self) -> &mut [u8] {
        match self {
            Storage::Lines(lines) => bytemuck::cast_slice_mut(lines),
            Storage::Mapped(map) => map,
        }
    }
}

/// A zero-initialised buffer of `len` values of `T` whose first value starts a cache line.
pub(crate) struct Aligned<T> {
    storage: Storage,
    len: usize,
    _values: PhantomData<T>,
}

impl<T: Pod> Aligned<T> {
    /// `len` zeros.
    pub(crate) fn zeroed(len: usize) -> Self {
        Aligned {
            storage: Storage::zeroed(len * std::mem::size_of::<T>()),
            len,
            _values: PhantomData,
        }
    }
}

impl<T: Pod> Deref for Aligned<T> {
    type Target = [T];
    fn deref(&self) -> &[T] {
        let bytes = self.len * std::mem::size_of::<T>();
        bytemuck::cast_slice(&self.storage.bytes()[..bytes])
    }
}

impl<T: Pod> DerefMut for Aligned<T> {
    fn deref_mut(&mut self) -> &mut [T] {
        let bytes = self.len * std::mem::size_of::<T>();
        bytemuck::cast_slice_mut(&mut self.storage.bytes_mut()[..bytes])
    }
}

impl<T: Pod> Clone for Aligned<T> {
    fn clone(&self) -> Self {
        let mut copy = Aligned::zeroed(self.len);
        copy.copy_from_slice(self);
        copy
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
