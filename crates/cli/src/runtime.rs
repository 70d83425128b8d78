//! Process-wide settings applied once at start-up, before any thread pool or large buffer
//! exists: the CPU work of the model commands, and how a closed output pipe ends the process.

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

/// Applies the settings; an explicit `CANDLE_BARRIER_POOL_SPIN_LIMIT` or
/// `RAYON_NUM_THREADS` wins.
pub fn configure() {
    if std::env::var_os("CANDLE_BARRIER_POOL_SPIN_LIMIT").is_none() {
        // Safe: called first thing in `main`, before any other thread exists.
        std::env::set_var("CANDLE_BARRIER_POOL_SPIN_LIMIT", CANDLE_SPIN_LIMIT);
    }
    if std::env::var_os("RAYON_NUM_THREADS").is_none() {
        // candle asks for its thread count at every CPU matmul and, without this variable,
        // counts the physical cores by reading and parsing /proc/cpuinfo each time (~30 µs:
        // a tenth of a serving step, which runs a thousand small LoRA matmuls). Counted once
        // here, the same way, it is an environment lookup from then on.
        let threads = datm_model::candle_core::utils::get_num_threads();
        // Safe: called first thing in `main`, before any other thread exists.
        std::env::set_var("RAYON_NUM_THREADS", threads.to_string());
    }
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator parameters; no other thread runs yet.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD);
        libc::mallopt(libc::M_TRIM_THRESHOLD, libc::c_int::MAX);
    }
}

/// Lets a closed output pipe end the process quietly, as it does other command-line tools
/// (`datm langs --json | head -1`). Rust ignores `SIGPIPE`, so every `println!` after the
/// reader has gone would panic with "Broken pipe"; restoring the default action instead
/// ends the process when it next writes to the pipe. Only pipes and sockets raise `SIGPIPE`:
/// writes to files still report their errors.
pub fn exit_quietly_on_closed_pipe() {
    #[cfg(unix)]
    // SAFETY: `signal` with `SIG_DFL` installs no handler code; no other thread exists yet.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}
