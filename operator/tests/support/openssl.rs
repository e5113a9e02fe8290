//! Thin wrapper around the `openssl` command-line tool.
//!
//! Every call is a plain `std::process::Command` with an argument vector (no
//! shell). A missing `openssl` binary is a hard failure, never a skip: CI
//! installs it, and a silently skipped crypto suite is worse than a red one.

use std::ffi::OsStr;
use std::io::ErrorKind;
use std::path::Path;
use std::process::{Command, Output, Stdio};

/// The `openssl` program to run: `$VMLISUB_TEST_OPENSSL` or `openssl` on PATH.
pub fn program() -> String {
    std::env::var("VMLISUB_TEST_OPENSSL").unwrap_or_else(|_| "openssl".to_owned())
}

/// A command for `openssl` running in `dir`, with stdin closed.
pub fn command(dir: &Path) -> Command {
    let mut cmd = Command::new(program());
    cmd.current_dir(dir).stdin(Stdio::null());
    cmd
}

/// Runs `cmd` and returns its output; panics loudly if it cannot be started.
pub fn output(cmd: &mut Command) -> Output {
    match cmd.output() {
        Ok(out) => out,
        Err(err) if err.kind() == ErrorKind::NotFound => panic!(
            "the `{}` command-line tool is not installed (or not on PATH): these tests \
             need OpenSSL 3.x; install it (CI does) or set VMLISUB_TEST_OPENSSL",
            program()
        ),
        Err(err) => panic!("cannot run {cmd:?}: {err}"),
    }
}

/// Runs `openssl ARGS` in `dir` and returns its output, whatever the exit status.
pub fn try_run<I, S>(dir: &Path, args: I) -> Output
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    output(command(dir).args(args))
}

/// Runs `openssl ARGS` in `dir`; panics with its stderr unless it succeeds.
/// Returns stdout.
pub fn run<I, S>(dir: &Path, args: I) -> Vec<u8>
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let mut cmd = command(dir);
    cmd.args(args);
    let out = output(&mut cmd);
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// Like [`run`], returning stdout as trimmed text.
pub fn run_text<I, S>(dir: &Path, args: I) -> String
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    String::from_utf8_lossy(&run(dir, args)).trim().to_owned()
}

/// Panics unless an OpenSSL 3.x `openssl` tool is available.
pub fn ensure_available() {
    let version = run_text(Path::new("."), ["version"]);
    assert!(
        version.starts_with("OpenSSL 3."),
        "these tests need the OpenSSL 3.x command-line tool, found: {version}"
    );
}
