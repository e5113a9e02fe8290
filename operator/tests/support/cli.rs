//! Running `vmlisub verify` and reading its verdict.

use std::ffi::OsString;
use std::io::Write as _;
use std::path::Path;
use std::process::{Command, Stdio};

/// The binary under test (set by cargo for integration tests).
pub const VMLISUB: &str = env!("CARGO_BIN_EXE_vmlisub");

/// `--crl-policy`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CrlPolicy {
    Require,
    IfPresent,
    Ignore,
}

impl CrlPolicy {
    pub fn arg(self) -> &'static str {
        match self {
            CrlPolicy::Require => "require",
            CrlPolicy::IfPresent => "if-present",
            CrlPolicy::Ignore => "ignore",
        }
    }
}

/// A `vmlisub verify` invocation.
#[derive(Clone, Debug, Default)]
pub struct Verify {
    args: Vec<OsString>,
    stdin: Option<Vec<u8>>,
}

impl Verify {
    pub fn new() -> Self {
        Verify {
            args: vec!["verify".into()],
            stdin: None,
        }
    }

    pub fn arg(mut self, arg: impl Into<OsString>) -> Self {
        self.args.push(arg.into());
        self
    }

    pub fn ca_dir(self, dir: &Path) -> Self {
        self.arg("--ca-dir").arg(dir)
    }

    pub fn crl_policy(self, policy: CrlPolicy) -> Self {
        self.arg("--crl-policy").arg(policy.arg())
    }

    pub fn at(self, at: &str) -> Self {
        self.arg("--at").arg(at)
    }

    pub fn allow_sha1(self) -> Self {
        self.arg("--allow-sha1")
    }

    pub fn endorser(self, subject: &str, issuer: &str) -> Self {
        self.arg("--endorser")
            .arg(subject)
            .arg("--endorser-issuer")
            .arg(issuer)
    }

    pub fn format(self, format: &str) -> Self {
        self.arg("--format").arg(format)
    }

    /// The message file (last argument).
    pub fn file(self, file: &Path) -> Self {
        self.arg(file)
    }

    /// Reads the message from stdin (`-`).
    pub fn stdin(mut self, data: Vec<u8>) -> Self {
        self.stdin = Some(data);
        self.arg("-")
    }

    pub fn args(&self) -> &[OsString] {
        &self.args
    }

    pub fn run(&self) -> Outcome {
        let mut cmd = Command::new(VMLISUB);
        cmd.args(&self.args)
            .env_remove("RUST_LOG")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .stdin(if self.stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            });
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {VMLISUB}: {e}"));
        if let Some(data) = &self.stdin {
            let mut stdin = child
                .stdin
                .take()
                .unwrap_or_else(|| panic!("no stdin pipe"));
            stdin
                .write_all(data)
                .unwrap_or_else(|e| panic!("write to vmlisub stdin: {e}"));
        }
        let out = child
            .wait_with_output()
            .unwrap_or_else(|e| panic!("wait for vmlisub: {e}"));
        Outcome {
            command: format!("{VMLISUB} {}", shell_words(&self.args)),
            code: out.status.code(),
            stdout: out.stdout,
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
}

fn shell_words(args: &[OsString]) -> String {
    args.iter()
        .map(|a| {
            let s = a.to_string_lossy();
            if s.chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_./=:".contains(c))
            {
                s.into_owned()
            } else {
                format!("'{}'", s.replace('\'', r"'\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// What `vmlisub verify` did.
#[derive(Clone, Debug)]
pub struct Outcome {
    pub command: String,
    pub code: Option<i32>,
    pub stdout: Vec<u8>,
    pub stderr: String,
}

impl Outcome {
    pub fn accepted(&self) -> bool {
        self.code == Some(0)
    }

    /// The reason code of a well-formed failure report, if this is one:
    /// non-zero exit and exactly one stderr line `error: <code>: <text>`.
    pub fn reason(&self) -> Option<String> {
        if self.accepted() {
            return None;
        }
        let text = self.stderr.strip_suffix('\n').unwrap_or(&self.stderr);
        if text.contains('\n') {
            return None;
        }
        let rest = text.strip_prefix("error: ")?;
        let (code, explanation) = rest.split_once(": ")?;
        let well_formed = !code.is_empty()
            && code
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b == b'-' || b.is_ascii_digit())
            && !explanation.trim().is_empty();
        well_formed.then(|| code.to_owned())
    }

    /// A short description for assertion messages.
    pub fn describe(&self) -> String {
        format!(
            "$ {}\nexit: {:?}\nstderr:\n{}\nstdout (first 400 bytes):\n{}",
            self.command,
            self.code,
            self.stderr,
            String::from_utf8_lossy(&self.stdout[..self.stdout.len().min(400)])
        )
    }

    /// Asserts success.
    pub fn assert_ok(&self) -> &Self {
        assert!(self.accepted(), "expected success\n{}", self.describe());
        self
    }

    /// Asserts failure with exactly `code` (and the one-line stderr contract).
    pub fn assert_reason(&self, code: &str) -> &Self {
        assert!(
            !self.accepted(),
            "expected `{code}`, but verification succeeded\n{}",
            self.describe()
        );
        match self.reason() {
            Some(got) => assert_eq!(got, code, "wrong reason code\n{}", self.describe()),
            None => panic!(
                "expected `error: {code}: ...` as the only stderr line\n{}",
                self.describe()
            ),
        }
        self
    }

    /// stdout parsed as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e})\n{}", self.describe()))
    }
}
