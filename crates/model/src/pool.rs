//! Parallel loops on candle's CPU worker pool. The model's own CPU kernels run there, like
//! candle's element-wise ops around them: a second pool (rayon's) would compete with it for
//! the cores and pay thread wake-ups at every switch.

/// Fills `out` chunk by chunk (chunks of `len` values, the last possibly shorter) with
/// `f(chunk index, chunk)`, in parallel.
pub fn par_chunks<T: Send>(out: &mut [T], len: usize, f: impl Fn(usize, &mut [T]) + Sync) {
    if len == 0 {
        return;
    }
    let total = out.len();
    let rows = total.div_ceil(len);
    let base = SendPtr(out.as_mut_ptr());
    candle_core::utils::barrier_pool().execute_chunked(rows, |range| {
        for i in range {
            // SAFETY: `execute_chunked` hands out disjoint index ranges, so every chunk is
            // borrowed mutably by exactly one call, and `out` outlives the call.
            let n = len.min(total - i * len);
            let row = unsafe { std::slice::from_raw_parts_mut(base.at(i * len), n) };
            f(i, row);
        }
    });
}

/// A new vector of `total` values made chunk by chunk (chunks of `len` values, the last
/// possibly shorter) from the iterator `f(chunk index)`, which must yield at least the
/// chunk's length of values; in parallel, and without first filling the vector with
/// placeholder values as [`par_chunks`] on a new vector would (a pass over its memory).
pub fn par_collect<T: Send, I: Iterator<Item = T>>(
    total: usize,
    len: usize,
    f: impl Fn(usize) -> I + Sync,
) -> Vec<T> {
    assert!(len > 0 || total == 0, "chunks of no values");
    let mut out = Vec::with_capacity(total);
    par_chunks(&mut out.spare_capacity_mut()[..total], len, |i, chunk| {
        let mut values = f(i);
        for slot in chunk {
            slot.write(values.next().expect("a chunk's iterator ended early"));
        }
    });
    // SAFETY: every slot of every chunk was written above; an iterator that ends early
    // panics, and the pool passes the panic on to this thread before this line.
    unsafe { out.set_len(total) };
    out
}

/// Fills `out`, cut into consecutive chunks of `lens[i]` values (summing to `out.len()`),
/// with `f(i, chunk)`, in parallel.
pub(crate) fn par_split<T: Send>(
    out: &mut [T],
    lens: &[usize],
    f: impl Fn(usize, &mut [T]) + Sync,
) {
    assert_eq!(
        lens.iter().sum::<usize>(),
        out.len(),
        "chunks do not cover the slice"
    );
    let starts: Vec<usize> = lens
        .iter()
        .scan(0, |at, &len| {
            *at += len;
            Some(*at - len)
        })
        .collect();
    let base = SendPtr(out.as_mut_ptr());
    candle_core::utils::barrier_pool().execute_chunked(lens.len(), |range| {
        for i in range {
            // SAFETY: the chunks `starts[i]..starts[i] + lens[i]` are disjoint and inside
            // `out` (their lengths sum to its length), each is handed to one call only, and
            // `out` outlives the call.
            let chunk = unsafe { std::slice::from_raw_parts_mut(base.at(starts[i]), lens[i]) };
            f(i, chunk);
        }
    });
}

/// `(0..n).map(f)` computed in parallel, in order.
pub(crate) fn par_map<T: Send>(n: usize, f: impl Fn(usize) -> T + Sync) -> Vec<T> {
    let mut out: Vec<Option<T>> = (0..n).map(|_| None).collect();
    par_chunks(&mut out, 1, |i, slot| slot[0] = Some(f(i)));
    out.into_iter().flatten().collect()
}

struct SendPtr<T>(*mut T);

impl<T> SendPtr<T> {
    /// The element `i` places further (a method, so closures capture the whole wrapper).
    ///
    /// # Safety
    /// `i` must lie within the slice the pointer came from.
    unsafe fn at(&self, i: usize) -> *mut T {
        // SAFETY: the caller keeps `i` within the slice, as this function requires.
        unsafe { self.0.add(i) }
    }
}
// SAFETY: only used to hand disjoint chunks of one slice to the pool's threads.
unsafe impl<T: Send> Send for SendPtr<T> {}
unsafe impl<T: Send> Sync for SendPtr<T> {}

#[cfg(test)]
mod tests {
    use super::*;

    /// `par_collect` puts every chunk's values in place, the last chunk shorter. (Its panic
    /// on an iterator that ends early is not exercised here: a panic inside candle's pool
    /// poisons the pool's lock for every later test in this process.)
    #[test]
    fn par_collect_fills_every_chunk() {
        let v = par_collect(10_007, 64, |i| (0..).map(move |j| (i * 64 + j) as u32));
        assert_eq!(v, (0..10_007).collect::<Vec<u32>>());
        assert!(par_collect(0, 0, |_| std::iter::empty::<u32>()).is_empty());
    }
}
