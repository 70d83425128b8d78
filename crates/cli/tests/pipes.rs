//! A closed output pipe (`datm langs --json | head -1`) ends datm quietly, like other
//! command-line tools, instead of a "failed printing to stdout: Broken pipe" panic.

#![cfg(unix)]

use std::io::Read;
use std::os::unix::process::ExitStatusExt;
use std::process::{Command, Stdio};

/// Runs `datm args` with a stdout pipe whose reader is gone before datm starts (closed
/// before the spawn, so that datm can never win a race and write into the buffer).
fn run_with_closed_stdout(args: &[&str]) -> (std::process::ExitStatus, String) {
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let mut child = Command::new(env!("CARGO_BIN_EXE_datm"))
        .args(args)
        .stdout(writer)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    (child.wait().unwrap(), stderr)
}

#[test]
fn closed_pipe_ends_the_process_quietly() {
    for args in [&["langs", "--json"][..], &["langs"][..]] {
        let (status, stderr) = run_with_closed_stdout(args);
        assert!(stderr.is_empty(), "datm {args:?} wrote to stderr: {stderr}");
        assert_eq!(
            status.signal(),
            Some(libc::SIGPIPE),
            "datm {args:?}: {status}"
        );
    }
}
