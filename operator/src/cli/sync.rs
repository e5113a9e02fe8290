//! `vmlisub sync`: the original's cron workflow from Kubernetes manifests.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;
use jiff::Timestamp;

use serde_json::{Value, json};

use super::output::{self, OutputFormat, SCHEMA_VERSION};
use crate::api::conditions::types;
use crate::hooks::Hook;
use crate::store::RetentionPolicy;
use crate::subscription::state::State;
use crate::subscription::{CoreConfig, DEFAULT_MAX_LIST_BYTES};
use crate::sync::manifest;
use crate::sync::pass::{ProgressSink, SyncConfig, Syncer};
use crate::transfer::TransferConfig;

/// Where `vmlisub sync` keeps its state by default.
pub const DEFAULT_STATE_FILE: &str = "/var/lib/vmlisub/state.json";

#[derive(Debug, Args)]
pub struct SyncArgs {
    /// Manifest files or directories (YAML/JSON: Endorser,
    /// ImageListSubscription, ImageSubscription, and v1 Secret/ConfigMap).
    #[arg(
        short = 'f',
        long = "filename",
        value_name = "FILE_OR_DIR",
        required_unless_present = "status"
    )]
    pub files: Vec<PathBuf>,

    /// The image cache (partial/, endorsed/, expired/).
    #[arg(long, env = "VMLISUB_CACHE_DIR", default_value = "/var/cache/vmimages")]
    pub cache_dir: PathBuf,

    /// CA directory in the IGTF layout.
    #[arg(long, env = "VMLISUB_CA_DIR", default_value = super::verify::DEFAULT_CA_DIR)]
    pub ca_dir: PathBuf,

    /// The state file (statuses and the last good lists, kept beside it).
    #[arg(long = "state", env = "VMLISUB_STATE", default_value = DEFAULT_STATE_FILE)]
    pub state_file: PathBuf,

    /// Command run on each cache event, with the event in VMILS_EVENT_*
    /// environment variables. No shell, no substitution in the arguments:
    /// write `sh -c '... "$VMILS_EVENT_TYPE"'` for one.
    #[arg(long, short = 'x')]
    pub event_command: Option<String>,

    /// Seconds an event command may run before it is killed.
    #[arg(long, default_value_t = 10)]
    pub event_timeout: u64,

    /// One pass over every list, whatever their intervals say (the default).
    #[arg(long, conflicts_with = "watch")]
    pub once: bool,

    /// Keep running, fetching each list on its interval.
    #[arg(long)]
    pub watch: bool,

    /// Print the recorded status and exit (like the original's -l / -i).
    #[arg(long)]
    pub status: bool,

    /// Output of --status: `table` (text for people) or `json` (a stable
    /// schema, see docs/cli.md).
    #[arg(
        long,
        short = 'o',
        value_enum,
        default_value = "table",
        requires = "status"
    )]
    pub output: OutputFormat,

    /// Allow file:// URLs for lists and images.
    #[arg(long)]
    pub allow_file_urls: bool,

    /// Largest clock skew tolerated for a list's creation time, in seconds.
    #[arg(long, default_value_t = 300)]
    pub max_clock_skew: u64,

    /// Base URL of `vmlisub serve` over this cache: recorded as each
    /// image's `status.artifact.url` (e.g. http://images.example.org:8080).
    #[arg(long)]
    pub artifact_base_url: Option<String>,

    /// Keep at most this many expired images.
    #[arg(long)]
    pub keep_expired: Option<usize>,

    /// Delete expired images older than this many days.
    #[arg(long)]
    pub expired_max_age_days: Option<u64>,

    /// Keep at most this many bytes of expired images.
    #[arg(long)]
    pub expired_max_bytes: Option<u64>,

    #[command(flatten)]
    pub crl: super::CrlRefreshArgs,
}

pub fn run(args: &SyncArgs) -> ExitCode {
    if args.status {
        return print_status(args);
    }
    let hook = match &args.event_command {
        Some(command) => match Hook::parse(command, Duration::from_secs(args.event_timeout)) {
            Ok(hook) => Some(hook),
            Err(err) => return super::fail(&err),
        },
        None => None,
    };
    let core = CoreConfig {
        cache_dir: args.cache_dir.clone(),
        ca_dir: args.ca_dir.clone(),
        state_file: args.state_file.clone(),
        allow_file_urls: args.allow_file_urls,
        max_list_bytes: DEFAULT_MAX_LIST_BYTES,
        max_clock_skew: Duration::from_secs(args.max_clock_skew),
        transfer: TransferConfig::default(),
        artifact_base_url: args.artifact_base_url.clone(),
        crl_dir: Some(
            args.crl.dir_or(
                &args
                    .state_file
                    .parent()
                    .unwrap_or_else(|| std::path::Path::new("."))
                    .join("crls"),
            ),
        ),
        crl_refresh_interval: args.crl.interval(),
    };
    let config = SyncConfig {
        core,
        hook,
        retention: RetentionPolicy {
            max_count: args.keep_expired,
            max_age: args
                .expired_max_age_days
                .map(|days| Duration::from_secs(days.saturating_mul(86_400))),
            max_bytes: args.expired_max_bytes,
        },
        force: !args.watch,
        progress: std::io::IsTerminal::is_terminal(&std::io::stdout()).then(terminal_progress),
    };
    let runtime = match super::runtime(tokio::runtime::Builder::new_current_thread()) {
        Ok(runtime) => runtime,
        Err(code) => return code,
    };
    runtime.block_on(sync(args, config))
}

async fn sync(args: &SyncArgs, config: SyncConfig) -> ExitCode {
    let (mut syncer, notes) = match Syncer::open(config) {
        Ok(opened) => opened,
        Err(err) => return super::fail(&err),
    };
    for note in notes {
        println!("recovery: {note}");
    }
    loop {
        // Manifests are re-read every pass, so edits apply without a restart.
        let manifests = match manifest::load(&args.files) {
            Ok(manifests) => manifests,
            Err(err) => return super::fail(&err),
        };
        for warning in &manifests.warnings {
            println!("warning: {warning}");
        }
        let report = match syncer.run_pass(&manifests, Timestamp::now()).await {
            Ok(report) => report,
            Err(err) => return super::fail(&err),
        };
        for line in &report.lines {
            println!("{line}");
        }
        if !args.watch {
            if report.not_ready.is_empty() {
                println!("all {} objects Ready", count(&manifests));
                return ExitCode::SUCCESS;
            }
            for object in &report.not_ready {
                println!("not Ready: {object}");
            }
            return ExitCode::from(1);
        }
        let wait = report
            .next_due
            .and_then(|due| {
                let seconds = due.as_second().saturating_sub(Timestamp::now().as_second());
                u64::try_from(seconds).ok()
            })
            .unwrap_or(60)
            .clamp(5, 3600);
        tokio::time::sleep(Duration::from_secs(wait)).await;
    }
}

/// A one-line progress display for large downloads on a terminal.
fn terminal_progress() -> ProgressSink {
    ProgressSink(std::sync::Arc::new(
        |label: &str, received: u64, total: u64| {
            const MIB: u64 = 1024 * 1024;
            if total < 16 * MIB {
                return;
            }
            let percent = received.saturating_mul(100) / total.max(1);
            print!(
                "\r{label}: {percent:3}% {}/{} MiB",
                received / MIB,
                total / MIB
            );
            if received >= total {
                println!();
            }
            let _ = std::io::Write::flush(&mut std::io::stdout());
        },
    ))
}

fn count(manifests: &manifest::Manifests) -> usize {
    manifests.endorsers.len() + manifests.lists.len() + manifests.images.len()
}

fn print_status(args: &SyncArgs) -> ExitCode {
    let state = match State::load(&args.state_file) {
        Ok(state) => state,
        Err(err) => return super::fail(&err),
    };
    if args.output == OutputFormat::Json {
        print!(
            "{}",
            output::json_text(&status_json(&args.state_file, &state))
        );
        return ExitCode::SUCCESS;
    }
    let ready = |conditions: &[crate::api::Condition]| {
        crate::api::conditions::find(conditions, types::READY)
            .map(|c| format!("{:?}/{}", c.status, c.reason))
            .unwrap_or_else(|| "Unknown".into())
    };
    println!("LISTS");
    for (key, entry) in &state.lists {
        let list = entry.status.list.as_ref();
        println!(
            "{key}\t{}\tversion={}\texpires={}\timages={}\tidentifier={}",
            ready(&entry.status.conditions),
            list.map_or("-", |l| l.version.as_str()),
            list.map_or("-", |l| l.expires.as_str()),
            entry.status.image_count,
            list.map_or("-", |l| l.identifier.as_str()),
        );
    }
    println!("IMAGES");
    for (key, status) in &state.images {
        println!(
            "{key}\t{:?}\t{}\t{}",
            status.phase,
            status.image.as_ref().map_or("-", |i| i.identifier.as_str()),
            status.artifact.as_ref().map_or("-", |a| a.path.as_str()),
        );
        if let Some(glance) = status.export.as_ref().and_then(|e| e.glance.as_ref()) {
            println!(
                "  glance\t{:?}\timage={}{}",
                glance.state,
                glance.image_id.as_deref().unwrap_or("-"),
                glance
                    .last_error
                    .as_deref()
                    .map(|e| format!("\terror={e}"))
                    .unwrap_or_default()
            );
        }
    }
    ExitCode::SUCCESS
}

/// The `sync --status -o json` document (schema in docs/cli.md): a summary
/// per object that stays put across CRD versions, read from the status's
/// wire form, plus that status verbatim under `status`.
fn status_json(state_file: &std::path::Path, state: &State) -> Value {
    fn split(key: &str) -> (&str, &str) {
        key.split_once('/').unwrap_or(("", key))
    }
    fn pick(value: &Value, fields: &[&str]) -> Value {
        let mut out = serde_json::Map::new();
        for field in fields {
            if let Some(found) = value.get(*field).filter(|v| !v.is_null()) {
                out.insert((*field).to_string(), found.clone());
            }
        }
        Value::Object(out)
    }
    fn ready(status: &Value) -> Value {
        status
            .get("conditions")
            .and_then(Value::as_array)
            .and_then(|conditions| {
                conditions
                    .iter()
                    .find(|c| c.get("type").and_then(Value::as_str) == Some(types::READY))
            })
            .map_or(Value::Null, |c| {
                pick(c, &["status", "reason", "message", "lastTransitionTime"])
            })
    }
    // Every object: where it is, its Ready summary, the kind's own
    // summary fields, and its status verbatim.
    fn object(key: &str, status: Value, fields: Value) -> Value {
        let (namespace, name) = split(key);
        let mut out = json!({
            "namespace": namespace,
            "name": name,
            "ready": ready(&status),
        });
        if let (Value::Object(out), Value::Object(fields)) = (&mut out, fields) {
            out.extend(fields);
        }
        out["status"] = status;
        out
    }
    let endorsers: Vec<Value> = state
        .endorsers
        .iter()
        .map(|(key, status)| {
            object(
                key,
                serde_json::to_value(status).unwrap_or_default(),
                json!({}),
            )
        })
        .collect();
    let lists: Vec<Value> = state
        .lists
        .iter()
        .map(|(key, entry)| {
            let status = serde_json::to_value(&entry.status).unwrap_or_default();
            let list = status.get("list").filter(|l| l.is_object()).map(|list| {
                let mut summary = pick(
                    list,
                    &[
                        "identifier",
                        "title",
                        "version",
                        "created",
                        "expires",
                        "importedAt",
                    ],
                );
                if let (Value::Object(summary), Some(signer)) = (&mut summary, list.get("signer")) {
                    summary.insert("signer".into(), pick(signer, &["subject", "issuer"]));
                }
                summary
            });
            let fields = json!({
                "list": list,
                "imageCount": status.get("imageCount").cloned().unwrap_or(Value::Null),
                "lastFetchTime": status.get("lastFetchTime").cloned().unwrap_or(Value::Null),
                "nextFetch": entry.next_fetch,
            });
            object(key, status, fields)
        })
        .collect();
    let images: Vec<Value> = state
        .images
        .iter()
        .map(|(key, status)| {
            let status = serde_json::to_value(status).unwrap_or_default();
            let fields = json!({
                "phase": status.get("phase").cloned().unwrap_or(Value::Null),
                "identifier": status.pointer("/image/identifier").cloned().unwrap_or(Value::Null),
                "artifact": status
                    .get("artifact")
                    .filter(|a| a.is_object())
                    .map(|a| {
                        pick(
                            a,
                            &["path", "url", "digest", "size", "format", "virtualSize"],
                        )
                    }),
                "glance": status
                    .pointer("/export/glance")
                    .filter(|g| g.is_object())
                    .map(|g| pick(g, &["imageId", "state", "digest", "lastError"])),
            });
            object(key, status, fields)
        })
        .collect();
    json!({
        "schemaVersion": SCHEMA_VERSION,
        "stateFile": state_file.display().to_string(),
        "endorsers": endorsers,
        "lists": lists,
        "images": images,
    })
}
