//! Event hooks with the original's interface, without its shell.
//!
//! vmlisub and vmcatcher ran a shell command per cache event with the image's
//! fields in `VMILS_EVENT_*` (and `VMCATCHER_EVENT_*`) variables. Sites have
//! scripts built on that, so the variables and event types are kept. What
//! changes: the command is split into argv and executed directly (a list is
//! untrusted input, and its strings reach the environment, never a shell);
//! `$VMILS_EVENT_X` / `${VMCATCHER_EVENT_X}` references in the arguments are
//! substituted by vmlisub so that the original's documented usage
//! (`-x "/usr/bin/VmImageUpdateProcessor \$VMILS_EVENT_TYPE"`) still works; a
//! user who wants a shell writes `sh -c '...'` explicitly. The documented
//! timeout (10 s, never enforced by the original) is enforced, and a failing
//! hook is logged, never fatal to the cache.

use std::collections::BTreeMap;
use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use thiserror::Error;

use crate::reason::Reason;

/// The default time a hook may take before it is killed.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// Output kept from a hook, per stream.
const MAX_OUTPUT_BYTES: usize = 64 * 1024;

/// The moments the original reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    /// An image is about to be downloaded and promoted.
    AvailablePrefix,
    /// An image is now in the cache.
    AvailablePostfix,
    /// An image is about to leave the cache.
    ExpirePrefix,
    /// An image has left the cache.
    ExpirePostfix,
    /// A sync pass starts (vmcatcher).
    ProcessPrefix,
    /// A sync pass ended (vmcatcher).
    ProcessPostfix,
}

impl EventType {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::AvailablePrefix => "AvailablePrefix",
            Self::AvailablePostfix => "AvailablePostfix",
            Self::ExpirePrefix => "ExpirePrefix",
            Self::ExpirePostfix => "ExpirePostfix",
            Self::ProcessPrefix => "ProcessPrefix",
            Self::ProcessPostfix => "ProcessPostfix",
        }
    }
}

/// One event: its type and the variables it carries (names without prefix,
/// e.g. `DC_IDENTIFIER`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub kind: EventType,
    pub fields: BTreeMap<String, String>,
}

impl Event {
    /// An event without image fields (ProcessPrefix/ProcessPostfix).
    pub fn process(kind: EventType) -> Self {
        Self {
            kind,
            fields: BTreeMap::new(),
        }
    }

    /// An image event with every `VMILS_EVENT_*` field of the spec, from
    /// the image as JSON (a cache record, or a serialised `Image`), every key
    /// mapped by the original's naming rule: `sl:os` -> `SL_OS`.
    pub fn image_value(
        kind: EventType,
        image: &serde_json::Value,
        list_identifier: &str,
        vo: Option<&str>,
        filename: &str,
    ) -> Self {
        let mut fields = BTreeMap::new();
        fields.insert("FILENAME".to_string(), filename.to_string());
        fields.insert("IL_DC_IDENTIFIER".to_string(), list_identifier.to_string());
        fields.insert("VO".to_string(), vo.unwrap_or_default().to_string());
        if let serde_json::Value::Object(map) = image {
            for (key, value) in map {
                let name = key.replace([':', '-'], "_").to_ascii_uppercase();
                let text = match value {
                    serde_json::Value::String(text) => text.clone(),
                    serde_json::Value::Number(number) => number.to_string(),
                    serde_json::Value::Bool(flag) => flag.to_string(),
                    _ => continue,
                };
                fields.entry(name).or_insert(text);
            }
        }
        Self { kind, fields }
    }

    /// The environment a hook sees: `VMILS_EVENT_<FIELD>` and
    /// `VMCATCHER_EVENT_<FIELD>` for every field, plus `..._TYPE`.
    pub fn environment(&self) -> Vec<(String, String)> {
        let mut env = Vec::with_capacity(2 * self.fields.len() + 2);
        for prefix in ["VMILS_EVENT_", "VMCATCHER_EVENT_"] {
            env.push((format!("{prefix}TYPE"), self.kind.as_str().to_string()));
            for (name, value) in &self.fields {
                // Environment values cannot hold NUL; drop such a value
                // rather than the whole event.
                if !value.contains('\0')
                    && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                {
                    env.push((format!("{prefix}{name}"), value.clone()));
                }
            }
        }
        env
    }
}

/// A configured hook command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hook {
    argv: Vec<String>,
    timeout: Duration,
}

/// Why a hook could not be configured or did not succeed.
#[derive(Debug, Error)]
pub enum HookError {
    #[error("event command {0:?} cannot be split into arguments (unbalanced quotes?)")]
    Unparsable(String),
    #[error("event command is empty")]
    Empty,
    #[error("cannot start event command {program}: {source}")]
    Spawn {
        program: String,
        source: std::io::Error,
    },
    #[error("event command {program} ran longer than {timeout:?} and was killed")]
    Timeout { program: String, timeout: Duration },
    #[error("event command {program} failed with {status}")]
    Failed { program: String, status: String },
    #[error("waiting for event command {program}: {source}")]
    Wait {
        program: String,
        source: std::io::Error,
    },
}

impl Reason for HookError {
    fn reason(&self) -> &'static str {
        match self {
            Self::Unparsable(_) | Self::Empty => "hook-invalid",
            Self::Spawn { .. } => "hook-spawn",
            Self::Timeout { .. } => "hook-timeout",
            Self::Failed { .. } => "hook-failed",
            Self::Wait { .. } => "hook-wait",
        }
    }
}

/// What a finished hook printed.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct HookOutput {
    pub stdout: String,
    pub stderr: String,
}

impl Hook {
    /// Splits `command` like a POSIX shell would split words (quotes and
    /// backslashes), without expanding anything.
    pub fn parse(command: &str, timeout: Duration) -> Result<Self, HookError> {
        let argv = shlex::split(command).ok_or_else(|| HookError::Unparsable(command.into()))?;
        if argv.is_empty() {
            return Err(HookError::Empty);
        }
        Ok(Self { argv, timeout })
    }

    pub fn argv(&self) -> &[String] {
        &self.argv
    }

    /// The argv for one event: `$VMILS_EVENT_X`, `${VMILS_EVENT_X}` and the
    /// `VMCATCHER_EVENT_` forms are replaced by the event's values (empty
    /// when unset); nothing else is touched.
    pub fn argv_for(&self, event: &Event) -> Vec<String> {
        let env: BTreeMap<String, String> = event.environment().into_iter().collect();
        self.argv
            .iter()
            .map(|argument| substitute(argument, &env))
            .collect()
    }

    /// Runs the hook for `event`, killing it after the timeout.
    pub fn run(&self, event: &Event) -> Result<HookOutput, HookError> {
        let argv = self.argv_for(event);
        let program = argv.first().cloned().unwrap_or_default();
        let mut child = Command::new(&program)
            .args(&argv[1..])
            .envs(event.environment())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|source| HookError::Spawn {
                program: program.clone(),
                source,
            })?;
        // Drain both pipes on threads so a chatty hook cannot block on a
        // full pipe while we wait for it.
        let stdout = child.stdout.take().map(drain);
        let stderr = child.stderr.take().map(drain);
        let started = Instant::now();
        let status = loop {
            match child.try_wait() {
                Ok(Some(status)) => break status,
                Ok(None) if started.elapsed() >= self.timeout => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(HookError::Timeout {
                        program,
                        timeout: self.timeout,
                    });
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(10)),
                Err(source) => return Err(HookError::Wait { program, source }),
            }
        };
        let output = HookOutput {
            stdout: stdout.and_then(|h| h.join().ok()).unwrap_or_default(),
            stderr: stderr.and_then(|h| h.join().ok()).unwrap_or_default(),
        };
        if status.success() {
            Ok(output)
        } else {
            Err(HookError::Failed {
                program,
                status: status.to_string(),
            })
        }
    }

    /// Runs the hook and logs the outcome: hooks never fail the caller.
    pub fn notify(&self, event: &Event) {
        let identifier = event
            .fields
            .get("DC_IDENTIFIER")
            .cloned()
            .unwrap_or_default();
        match self.run(event) {
            Ok(output) => tracing::info!(
                event = event.kind.as_str(),
                image = %identifier,
                stdout = %output.stdout.trim_end(),
                stderr = %output.stderr.trim_end(),
                "event hook succeeded"
            ),
            Err(err) => tracing::warn!(
                event = event.kind.as_str(),
                image = %identifier,
                reason = err.reason(),
                error = %err,
                "event hook failed"
            ),
        }
    }
}

fn drain(mut pipe: impl Read + Send + 'static) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut kept = Vec::new();
        let mut buffer = [0u8; 8192];
        while let Ok(read) = pipe.read(&mut buffer) {
            if read == 0 {
                break;
            }
            let room = MAX_OUTPUT_BYTES.saturating_sub(kept.len());
            kept.extend_from_slice(&buffer[..read.min(room)]);
        }
        String::from_utf8_lossy(&kept).into_owned()
    })
}

/// Replaces `$NAME` / `${NAME}` for event variable names only.
fn substitute(argument: &str, env: &BTreeMap<String, String>) -> String {
    let mut out = String::with_capacity(argument.len());
    let mut rest = argument;
    while let Some(dollar) = rest.find('$') {
        out.push_str(&rest[..dollar]);
        let after = &rest[dollar + 1..];
        let (name, consumed) = if let Some(braced) = after.strip_prefix('{') {
            match braced.find('}') {
                Some(end) => (&braced[..end], end + 2),
                None => ("", 0),
            }
        } else {
            let end = after
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(after.len());
            (&after[..end], end)
        };
        let is_event_variable =
            name.starts_with("VMILS_EVENT_") || name.starts_with("VMCATCHER_EVENT_");
        if consumed > 0 && is_event_variable {
            out.push_str(env.get(name).map(String::as_str).unwrap_or_default());
            rest = &after[consumed..];
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn event() -> Event {
        let mut fields = BTreeMap::new();
        fields.insert("DC_IDENTIFIER".to_string(), "abc-1".to_string());
        fields.insert("DC_TITLE".to_string(), "a title; rm -rf / $(x)".to_string());
        Event {
            kind: EventType::AvailablePostfix,
            fields,
        }
    }

    #[test]
    fn argv_is_split_without_a_shell_and_event_variables_substituted() {
        let hook = Hook::parse(
            r#"/bin/echo "$VMILS_EVENT_TYPE" ${VMCATCHER_EVENT_DC_IDENTIFIER} $HOME '$VMILS_EVENT_DC_TITLE'"#,
            DEFAULT_TIMEOUT,
        )
        .unwrap();
        assert_eq!(
            hook.argv_for(&event()),
            vec![
                "/bin/echo",
                "AvailablePostfix",
                "abc-1",
                "$HOME",
                "a title; rm -rf / $(x)"
            ]
        );
    }

    #[test]
    fn hostile_values_reach_the_hook_verbatim_never_a_shell() {
        let hook = Hook::parse("printenv VMILS_EVENT_DC_TITLE", DEFAULT_TIMEOUT).unwrap();
        let output = hook.run(&event()).unwrap();
        assert_eq!(output.stdout, "a title; rm -rf / $(x)\n");
    }

    #[test]
    fn both_prefixes_are_set() {
        let env: BTreeMap<_, _> = event().environment().into_iter().collect();
        assert_eq!(env["VMILS_EVENT_TYPE"], "AvailablePostfix");
        assert_eq!(env["VMCATCHER_EVENT_DC_IDENTIFIER"], "abc-1");
    }

    #[test]
    fn timeout_is_enforced() {
        let hook = Hook::parse("sleep 5", Duration::from_millis(200)).unwrap();
        let started = Instant::now();
        let err = hook.run(&event()).unwrap_err();
        assert_eq!(err.reason(), "hook-timeout");
        assert!(started.elapsed() < Duration::from_secs(3));
    }

    #[test]
    fn failures_are_typed() {
        assert_eq!(
            Hook::parse("sh -c 'exit 3'", DEFAULT_TIMEOUT)
                .unwrap()
                .run(&event())
                .unwrap_err()
                .reason(),
            "hook-failed"
        );
        assert_eq!(
            Hook::parse("/nonexistent/hook", DEFAULT_TIMEOUT)
                .unwrap()
                .run(&event())
                .unwrap_err()
                .reason(),
            "hook-spawn"
        );
        assert!(matches!(
            Hook::parse("echo 'unbalanced", DEFAULT_TIMEOUT),
            Err(HookError::Unparsable(_))
        ));
        assert!(matches!(
            Hook::parse("  ", DEFAULT_TIMEOUT),
            Err(HookError::Empty)
        ));
    }
}
