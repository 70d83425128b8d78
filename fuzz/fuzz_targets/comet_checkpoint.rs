//! COMET checkpoints as `datm comet` reads them: the torch zip archive, then the
//! restricted unpickler over `data.pkl` and the tensor storages it names
//! (`datm_comet::checkpoint::read_from`).
#![no_main]

use std::io::Cursor;
use std::path::Path;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = datm_comet::checkpoint::read_from(
        Cursor::new(data),
        data.len() as u64,
        Path::new("fuzz.ckpt"),
    );
});
