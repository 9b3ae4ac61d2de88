//! Shared helpers: service addresses, unique names, the `sentra` binary.

use std::process::{Command, Output};

/// The address of a service the test harness started, or a panic saying how to start it.
pub fn service(var: &str) -> String {
    std::env::var(var).unwrap_or_else(|_| {
        panic!("{var} is not set: run the suite with scripts/test.sh (or `eval \"$(scripts/services.sh up)\"` first)")
    })
}

/// A name no other test run uses.
pub fn unique(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!("{prefix}_{}_{nanos}", std::process::id())
}

/// Runs the `sentra` binary with `args`.
pub fn sentra(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sentra"))
        .args(args)
        .env("SENTRA_LOG", "warn")
        .output()
        .expect("run sentra")
}

/// Standard output as text.
pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Standard error as text.
pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}
