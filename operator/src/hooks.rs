//! Event hooks with the original's interface, without its shell.
//!
//! vmlisub and vmcatcher ran a shell command per cache event with the image's
//! fields in `VMILS_EVENT_*` (and `VMCATCHER_EVENT_*`) variables. Sites have
//! scripts built on that, so the variables and event types are kept. What
//! changes:
//!
//! * The command is split into argv once, at start-up, and executed
//!   directly; its arguments are exactly what the site configured, for
//!   every event. Event values (image titles and descriptions come from
//!   many image authors) reach the hook **only as environment variables**,
//!   which no program re-parses: a shell expanding `"$VMILS_EVENT_DC_TITLE"`
//!   gets the title as one word of data, whatever quotes, `;`, `$()` or
//!   backticks it holds. vmlisub never substitutes `$VMILS_EVENT_X` into an
//!   argument (that turned titles into shell source inside `sh -c '...'`),
//!   and refuses a command with an argument that is only such a reference,
//!   the original's documented form, rather than pass it on as literal
//!   text.
//! * The names vmlisub sets (`TYPE`, `FILENAME`, `VO` and every `IL_*`
//!   list field) cannot be set by an image key: such keys are dropped. A
//!   key that maps to a name other than `[A-Z0-9_]+` is dropped too, as is
//!   a value with a NUL character (the environment cannot carry one: the
//!   variable is left unset and a warning logged). Inherited `VMILS_EVENT_*`
//!   and `VMCATCHER_EVENT_*` variables are removed, so an unset one stays
//!   unset.
//! * The documented timeout (10 s, never enforced by the original) is
//!   enforced, and a failing hook is logged, never fatal to the cache.

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

/// The prefixes of the variables a hook sees.
pub const PREFIXES: [&str; 2] = ["VMILS_EVENT_", "VMCATCHER_EVENT_"];

/// Names vmlisub sets itself; an image key never takes them. `IL_*` (the
/// list's fields) is reserved as a whole.
const RESERVED: [&str; 3] = ["TYPE", "FILENAME", "VO"];
const RESERVED_PREFIX: &str = "IL_";

fn is_reserved(name: &str) -> bool {
    RESERVED.contains(&name) || name.starts_with(RESERVED_PREFIX)
}

/// One event: its type and the variables it carries (names without prefix,
/// e.g. `DC_IDENTIFIER`). Every name is `[A-Z0-9_]+` and no value holds a
/// NUL, so the whole event fits in an environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub kind: EventType,
    fields: BTreeMap<String, String>,
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
    /// mapped by the original's naming rule: `sl:os` -> `SL_OS`. Keys that
    /// map to a name vmlisub sets (`TYPE`, `FILENAME`, `VO`, `IL_*`) or to
    /// no valid name are dropped; of two keys with the same name, the first
    /// wins.
    pub fn image_value(
        kind: EventType,
        image: &serde_json::Value,
        list_identifier: &str,
        vo: Option<&str>,
        filename: &str,
    ) -> Self {
        let mut event = Self::process(kind);
        event.set("FILENAME", filename);
        event.set("IL_DC_IDENTIFIER", list_identifier);
        event.set("VO", vo.unwrap_or_default());
        if let serde_json::Value::Object(map) = image {
            // Names taken by an earlier key, even one whose value was
            // dropped: a later key never stands in for it.
            let mut taken = std::collections::BTreeSet::new();
            for (key, value) in map {
                let name = key.replace([':', '-'], "_").to_ascii_uppercase();
                let text = match value {
                    serde_json::Value::String(text) => text.clone(),
                    serde_json::Value::Number(number) => number.to_string(),
                    serde_json::Value::Bool(flag) => flag.to_string(),
                    _ => continue,
                };
                let valid = !name.is_empty()
                    && name
                        .bytes()
                        .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_');
                if !valid || is_reserved(&name) {
                    tracing::debug!(key = ?key, "image key not passed to event hooks");
                    continue;
                }
                if taken.insert(name.clone()) {
                    event.set(&name, &text);
                }
            }
        }
        event
    }

    /// The event of a cached image (its record, and `path`, where the file
    /// is or will be): what both the CLI's hooks and the operator's hook
    /// Jobs see.
    pub fn of_record(
        kind: EventType,
        record: &crate::store::ImageRecord,
        path: &std::path::Path,
    ) -> Self {
        Self::image_value(
            kind,
            &record.image,
            record.list.identifier.as_str(),
            record.list.vo.as_deref(),
            &path.display().to_string(),
        )
    }

    /// Sets a field unless its value holds a NUL, which no environment
    /// variable can carry: then it stays unset.
    fn set(&mut self, name: &str, value: &str) {
        if value.contains('\0') {
            tracing::warn!(
                event = self.kind.as_str(),
                field = name,
                "event value contains a NUL character: VMILS_EVENT_{name} left unset"
            );
            return;
        }
        self.fields.insert(name.to_string(), value.to_string());
    }

    /// One field's value (name without prefix).
    pub fn field(&self, name: &str) -> Option<&str> {
        self.fields.get(name).map(String::as_str)
    }

    /// The environment a hook sees: `VMILS_EVENT_<FIELD>` and
    /// `VMCATCHER_EVENT_<FIELD>` for every field, plus `..._TYPE`.
    pub fn environment(&self) -> Vec<(String, String)> {
        let mut env = Vec::with_capacity(2 * self.fields.len() + 2);
        for prefix in PREFIXES {
            env.push((format!("{prefix}TYPE"), self.kind.as_str().to_string()));
            for (name, value) in &self.fields {
                if name != "TYPE" {
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
    #[error(
        "event command argument {0:?} is an event variable, which vmlisub does not substitute: \
         event values reach the command only in its environment; let the command read \
         VMILS_EVENT_*, or write sh -c '... \"$VMILS_EVENT_...\"'"
    )]
    VariableArgument(String),
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
            Self::Unparsable(_) | Self::Empty | Self::VariableArgument(_) => "hook-invalid",
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
    /// backslashes), without expanding anything. An argument that is only
    /// an event variable (`$VMILS_EVENT_TYPE`, `${VMCATCHER_EVENT_X}`) is
    /// refused: it would reach the command as that literal text.
    pub fn parse(command: &str, timeout: Duration) -> Result<Self, HookError> {
        let argv = shlex::split(command).ok_or_else(|| HookError::Unparsable(command.into()))?;
        if argv.is_empty() {
            return Err(HookError::Empty);
        }
        if let Some(argument) = argv.iter().find(|a| is_variable_reference(a)) {
            return Err(HookError::VariableArgument(argument.clone()));
        }
        Ok(Self { argv, timeout })
    }

    /// The arguments, the same for every event.
    pub fn argv(&self) -> &[String] {
        &self.argv
    }

    /// Runs the hook for `event`, killing it after the timeout.
    pub fn run(&self, event: &Event) -> Result<HookOutput, HookError> {
        let (program, arguments) = match self.argv.split_first() {
            Some((program, arguments)) => (program.clone(), arguments),
            None => return Err(HookError::Empty),
        };
        let mut command = Command::new(&program);
        command.args(arguments);
        // Only this event's variables: an inherited one must not stand in
        // for a value left unset.
        for (name, _) in std::env::vars_os() {
            let inherited = name
                .to_str()
                .is_some_and(|name| PREFIXES.iter().any(|prefix| name.starts_with(prefix)));
            if inherited {
                command.env_remove(&name);
            }
        }
        let mut child = command
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
        let identifier = event.field("DC_IDENTIFIER").unwrap_or_default();
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

/// `$VMILS_EVENT_X`, `${VMILS_EVENT_X}` or the `VMCATCHER_EVENT_` forms,
/// and nothing else.
fn is_variable_reference(argument: &str) -> bool {
    let Some(name) = argument.strip_prefix('$') else {
        return false;
    };
    let name = name
        .strip_prefix('{')
        .and_then(|braced| braced.strip_suffix('}'))
        .unwrap_or(name);
    PREFIXES.iter().any(|prefix| {
        name.strip_prefix(prefix).is_some_and(|rest| {
            !rest.is_empty() && rest.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
        })
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use serde_json::json;

    fn event() -> Event {
        Event::image_value(
            EventType::AvailablePostfix,
            &json!({"dc:identifier": "abc-1", "dc:title": "a title; rm -rf / $(x)"}),
            "list-1",
            None,
            "/cache/abc-1",
        )
    }

    /// A hook as a site would configure it, run for one image event.
    fn run_for(command: &str, image: &serde_json::Value) -> Result<HookOutput, HookError> {
        let event = Event::image_value(
            EventType::AvailablePrefix,
            image,
            "list-id",
            Some("vo.example"),
            "/cache/endorsed/ns/list/img/image",
        );
        Hook::parse(command, DEFAULT_TIMEOUT)?.run(&event)
    }

    #[test]
    fn argv_is_exactly_what_was_configured() {
        let hook = Hook::parse(
            r#"/bin/echo "$HOME" '$VMILS_EVENT_DC_TITLE is not substituted' x${VMILS_EVENT_TYPE}"#,
            DEFAULT_TIMEOUT,
        )
        .unwrap();
        assert_eq!(
            hook.argv(),
            [
                "/bin/echo",
                "$HOME",
                "$VMILS_EVENT_DC_TITLE is not substituted",
                "x${VMILS_EVENT_TYPE}"
            ]
        );
        let output = hook.run(&event()).unwrap();
        assert_eq!(
            output.stdout,
            "$HOME $VMILS_EVENT_DC_TITLE is not substituted x${VMILS_EVENT_TYPE}\n"
        );
    }

    #[test]
    fn an_argument_that_is_only_an_event_variable_is_refused() {
        for command in [
            r"/usr/bin/VmImageUpdateProcessor $VMILS_EVENT_TYPE",
            r"/usr/bin/VmImageUpdateProcessor ${VMCATCHER_EVENT_DC_IDENTIFIER}",
            r#"sh -c "$VMILS_EVENT_DC_TITLE""#,
        ] {
            let err = Hook::parse(command, DEFAULT_TIMEOUT).unwrap_err();
            assert!(matches!(err, HookError::VariableArgument(_)), "{command}");
            assert_eq!(err.reason(), "hook-invalid");
        }
        for command in [
            r#"sh -c '/usr/bin/VmImageUpdateProcessor "$VMILS_EVENT_TYPE"'"#,
            r"printenv VMILS_EVENT_TYPE",
            r"echo $HOME $VMILS_EVENT_ ${VMILS_EVENT_TYPE",
        ] {
            Hook::parse(command, DEFAULT_TIMEOUT).unwrap();
        }
    }

    #[test]
    fn hostile_values_reach_the_hook_verbatim_never_a_shell() {
        let hook = Hook::parse("printenv VMILS_EVENT_DC_TITLE", DEFAULT_TIMEOUT).unwrap();
        let output = hook.run(&event()).unwrap();
        assert_eq!(output.stdout, "a title; rm -rf / $(x)\n");
    }

    /// The issue's example, `sh -c 'logger "new: $VMILS_EVENT_DC_TITLE"'`,
    /// with hostile titles and descriptions: the shell expands the
    /// variables as data, nothing they contain runs, and they arrive byte
    /// for byte.
    #[test]
    fn hostile_titles_and_descriptions_never_execute() {
        let dir = tempfile::tempdir().unwrap();
        let marker = dir.path().join("pwned");
        let m = marker.display().to_string();
        let hostile = [
            format!("x\"; touch {m}; \""),
            format!("x'; touch {m}; '"),
            format!("$(touch {m})"),
            format!("`touch {m}`"),
            format!("a\ntouch {m}\n"),
            format!("\\\"$(touch {m})\\\""),
            format!("${{IFS}}touch${{IFS}}{m}"),
            format!("-n\r\n*; touch {m} #"),
            format!("\"$(touch {m})\"; `touch {m}`; $(touch {m})"),
        ];
        let title = dir.path().join("title");
        let description = dir.path().join("description");
        let logged = dir.path().join("logged");
        let command = format!(
            r#"sh -c 'printf "%s\n" "new: $VMILS_EVENT_DC_TITLE" > {}; printf %s "$VMCATCHER_EVENT_DC_TITLE" > {}; printf %s "$VMILS_EVENT_DC_DESCRIPTION" > {}'"#,
            logged.display(),
            title.display(),
            description.display()
        );
        for value in &hostile {
            let reversed: String = value.chars().rev().collect();
            run_for(
                &command,
                &json!({"dc:identifier": "img", "dc:title": value, "dc:description": reversed}),
            )
            .unwrap();
            assert!(!marker.exists(), "{value:?} ran");
            assert_eq!(std::fs::read(&title).unwrap(), value.as_bytes());
            assert_eq!(std::fs::read(&description).unwrap(), reversed.as_bytes());
            assert_eq!(
                std::fs::read_to_string(&logged).unwrap(),
                format!("new: {value}\n")
            );
        }
    }

    #[test]
    fn a_nul_leaves_its_variable_unset() {
        let output = run_for(
            r#"sh -c 'printf %s "${VMILS_EVENT_DC_TITLE-unset}|${VMCATCHER_EVENT_DC_TITLE-unset}|$VMILS_EVENT_DC_IDENTIFIER|$VMILS_EVENT_SL_OS"'"#,
            &json!({"dc:identifier": "img", "dc:title": "before\u{0}; touch x", "sl:os": "Linux"}),
        )
        .unwrap();
        assert_eq!(output.stdout, "unset|unset|img|Linux");
        let event = Event::image_value(
            EventType::AvailablePrefix,
            &json!({"dc:title": "a\u{0}b"}),
            "l",
            Some("v\u{0}o"),
            "/f",
        );
        assert_eq!(event.field("DC_TITLE"), None);
        assert_eq!(event.field("VO"), None);
        // Nor does another key of the same name fill in.
        let event = Event::image_value(
            EventType::AvailablePrefix,
            &json!({"dc:title": "a\u{0}b", "dc-title": "other"}),
            "l",
            None,
            "/f",
        );
        assert_eq!(event.field("DC_TITLE"), None);
        assert!(event.environment().iter().all(|(_, v)| !v.contains('\0')));
    }

    /// Image keys are data too: the ones that would name what vmlisub sets
    /// (`type` as `VMILS_EVENT_TYPE`, ...) are dropped, and hostile ones
    /// neither run nor become odd variable names.
    #[test]
    fn hostile_image_keys_neither_override_nor_run() {
        let image = json!({
            "dc:identifier": "img",
            "type": "ExpirePostfix",
            "TYPE": "Forged",
            "filename": "/etc/passwd",
            "vo": "evil.vo",
            "il:dc:identifier": "forged-list",
            "il:other": "forged",
            "dc:title": "kept",
        });
        let output = run_for(
            r#"sh -c 'printf "%s|" "$VMILS_EVENT_TYPE" "$VMCATCHER_EVENT_TYPE" "$VMILS_EVENT_FILENAME" "$VMILS_EVENT_VO" "$VMILS_EVENT_IL_DC_IDENTIFIER" "${VMILS_EVENT_IL_OTHER-unset}" "$VMILS_EVENT_DC_TITLE"'"#,
            &image,
        )
        .unwrap();
        assert_eq!(
            output.stdout,
            "AvailablePrefix|AvailablePrefix|/cache/endorsed/ns/list/img/image|vo.example|list-id|unset|kept|"
        );
        // One value per name: nothing for a later entry to override.
        let event = Event::image_value(EventType::AvailablePrefix, &image, "l", None, "/f");
        let environment = event.environment();
        let types: Vec<_> = environment
            .iter()
            .filter(|(name, _)| name.ends_with("_TYPE"))
            .collect();
        assert_eq!(types.len(), 2, "{types:?}");

        // Keys with quotes, `;`, `$()`, backticks, newlines, NUL, `=`.
        let dir = tempfile::tempdir().unwrap();
        let marker = dir.path().join("pwned");
        let m = marker.display().to_string();
        let mut image = serde_json::Map::new();
        image.insert("dc:identifier".into(), json!("img"));
        for key in [
            format!("x; touch {m}"),
            format!("$(touch {m})"),
            format!("`touch {m}`"),
            format!("a\"b'c\ntouch {m}"),
            "a=b".to_string(),
            "a\u{0}b".to_string(),
            "é:clé".to_string(),
            String::new(),
            "ld_preload".to_string(),
        ] {
            image.insert(key, json!(format!("$(touch {m})")));
        }
        let output = run_for("env", &serde_json::Value::Object(image)).unwrap();
        assert!(!marker.exists());
        let names: Vec<&str> = output
            .stdout
            .lines()
            .filter_map(|line| line.split_once('=').map(|(name, _)| name))
            .filter(|name| name.contains("_EVENT_"))
            .collect();
        for name in &names {
            assert!(
                name.bytes()
                    .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_'),
                "{name:?}"
            );
        }
        assert!(names.contains(&"VMILS_EVENT_LD_PRELOAD"), "{names:?}");
        assert!(!output.stdout.lines().any(|l| l.starts_with("LD_PRELOAD=")));
    }

    #[test]
    fn both_prefixes_are_set() {
        let env: BTreeMap<_, _> = event().environment().into_iter().collect();
        assert_eq!(env["VMILS_EVENT_TYPE"], "AvailablePostfix");
        assert_eq!(env["VMCATCHER_EVENT_DC_IDENTIFIER"], "abc-1");
        assert_eq!(env["VMCATCHER_EVENT_FILENAME"], "/cache/abc-1");
    }

    #[test]
    fn timeout_is_enforced() {
        let hook = Hook::parse("sleep 60", Duration::from_millis(200)).unwrap();
        let started = Instant::now();
        let err = hook.run(&event()).unwrap_err();
        assert_eq!(err.reason(), "hook-timeout");
        assert!(started.elapsed() < Duration::from_secs(30));
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
