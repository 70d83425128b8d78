//! Heap buffers that start on a cache line, for the packed weights and inputs the kernels
//! stream. A large `Vec` from the system allocator starts 16 bytes past a page boundary, so
//! every 64-byte vector or AMX tile row read from it spans two cache lines: on a Xeon with
//! AMX (family 6 model 207) a `tileloadd` of such rows took twice as long as of aligned ones.

use std::fmt;
use std::marker::PhantomData;
use std::ops::{Deref, DerefMut};

use bytemuck::{Pod, Zeroable};

/// Bytes per cache line.
const LINE: usize = 64;

/// One cache line of storage.
#[derive(Clone, Copy, Pod, Zeroable)]
#[repr(C, align(64))]
struct Line([u8; LINE]);

/// A zero-initialised buffer of `len` values of `T` whose first value starts a cache line.
#[derive(Clone)]
pub(crate) struct Aligned<T> {
    lines: Vec<Line>,
    len: usize,
    _values: PhantomData<T>,
}

impl<T: Pod> Aligned<T> {
    /// `len` zeros (pages the OS hands out zeroed are not written).
    pub(crate) fn zeroed(len: usize) -> Self {
        let bytes = len * std::mem::size_of::<T>();
        Aligned {
            lines: bytemuck::zeroed_vec(bytes.div_ceil(LINE)),
            len,
            _values: PhantomData,
        }
    }
}

impl<T: Pod> Deref for Aligned<T> {
    type Target = [T];
    fn deref(&self) -> &[T] {
        &bytemuck::cast_slice(&self.lines)[..self.len]
    }
}

impl<T: Pod> DerefMut for Aligned<T> {
    fn deref_mut(&mut self) -> &mut [T] {
        &mut bytemuck::cast_slice_mut(&mut self.lines)[..self.len]
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
        for len in [0, 1, 31, 33, 100_000] {
            let mut a = Aligned::<u16>::zeroed(len);
            assert_eq!(a.len(), len);
            assert_eq!(a.as_ptr() as usize % LINE, 0);
            assert!(a.iter().all(|&v| v == 0));
            a.iter_mut().enumerate().for_each(|(i, v)| *v = i as u16);
            assert!(a.iter().enumerate().all(|(i, &v)| v == i as u16));
        }
    }
}
