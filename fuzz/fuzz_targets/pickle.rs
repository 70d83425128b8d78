//! The restricted unpickler alone (`datm_comet::pickle::unpickle`): every opcode, memo,
//! nesting and global a `data.pkl` can hold.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = datm_comet::pickle::unpickle(data);
});
