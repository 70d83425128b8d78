//! Process-wide settings for the CPU work of the model commands, applied once at start-up
//! before any thread pool or large buffer exists.

/// Spin iterations of candle's idle CPU workers before they park. candle's default
/// (25 000) keeps a worker spinning through every GEMM that runs on the other pool, taking
/// a core from it on small machines; measured on 2 cores, training is ~10% faster with a
/// short spin and decoding unchanged.
const CANDLE_SPIN_LIMIT: &str = "500";

/// Allocations up to this size come from the heap and are reused after being freed,
/// instead of being mapped and zeroed by the kernel anew for every activation of a
/// training step (glibc's default threshold adapts only up to this value).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const MMAP_THRESHOLD: libc::c_int = 32 << 20;

/// Applies the settings; an explicit `CANDLE_BARRIER_POOL_SPIN_LIMIT` wins.
pub fn configure() {
    if std::env::var_os("CANDLE_BARRIER_POOL_SPIN_LIMIT").is_none() {
        // Safe: called first thing in `main`, before any other thread exists.
        std::env::set_var("CANDLE_BARRIER_POOL_SPIN_LIMIT", CANDLE_SPIN_LIMIT);
    }
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator parameters; no other thread runs yet.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD);
        libc::mallopt(libc::M_TRIM_THRESHOLD, libc::c_int::MAX);
    }
}
