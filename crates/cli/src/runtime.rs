//! Process-wide settings applied once at start-up, before any thread pool or large buffer
//! exists: the allocator, the CPU work of the model commands, and how a closed output pipe
//! ends the process.

/// The process's allocator: mimalloc, built without transparent huge pages (`no_thp`).
/// Loading a GGUF model rebuilds its tokenizer: Gemma-3's quarter of a million tokens give
/// half a million merges, made as a million short strings and hashed into maps, then much
/// of it freed; with glibc's allocator that build took 0.50 s on 2 cores, with mimalloc
/// 0.31 s. With huge pages, loading stalled for 0.5–2 s in the kernel's compaction.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// `mi_option_purge_delay` in mimalloc's `mi_option_e` (`mimalloc.h`), which the Rust
/// bindings do not name.
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Spin iterations of candle's idle CPU workers before they park. candle's default
/// (25 000) keeps a worker spinning through every GEMM that runs on the other pool, taking
/// a core from it on small machines; measured on 2 cores, training is ~10% faster with a
/// short spin and decoding unchanged.
const CANDLE_SPIN_LIMIT: &str = "500";

/// Applies the settings; an explicit `CANDLE_BARRIER_POOL_SPIN_LIMIT`, `RAYON_NUM_THREADS`
/// or `RUST_LIB_BACKTRACE` wins.
pub fn configure() {
    if std::env::var_os("RUST_LIB_BACKTRACE").is_none() {
        // With `RUST_BACKTRACE=1` (common in Rust users' shells) candle attaches a captured
        // stack to every error it makes and prints it inside the error's message: a bad
        // GGUF file's one-line error came with 33 frames. Errors are for users; panics
        // still print their stack as `RUST_BACKTRACE` asks, and `RUST_LIB_BACKTRACE=1`
        // brings the errors' back.
        // Safe: called first thing in `main`, before any other thread exists.
        std::env::set_var("RUST_LIB_BACKTRACE", "0");
    }
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
    // Freed memory stays with the process to be reused, never returned to the kernel to be
    // mapped and zeroed anew: a training step frees and allocates its activations again
    // (training with the default delay: 167 tokens/s and 1.4 M page faults; without purging:
    // 186 tokens/s, 0.64 M).
    // SAFETY: sets an allocator option; no other thread runs yet.
    unsafe {
        libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, -1);
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
