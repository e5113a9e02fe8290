//! `vmlisub cache ls [--expired]`: what the cache holds, read-only (the
//! original's `cache.index` files, `vmcatcher_cache` without the actions).
//!
//! The endorsed area lists only complete, verified entries
//! ([`CacheStore::inventory`]: what `vmlisub serve` would serve and what a
//! sync pass plans with); the archive lists every expired entry with the
//! reason and time its record or marker gives ([`CacheStore::expired_entries`]).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Subcommand};
use serde_json::{Value, json};

use super::output::{self, OutputFormat, SCHEMA_VERSION, Table};
use crate::imagelist::format_timestamp;
use crate::reason::Reason;
use crate::store::{CacheStore, ENDORSED_DIR, EXPIRED_DIR, PARTIAL_DIR, StoreError};

/// The cache directory `sync` and the operator default to.
pub const DEFAULT_CACHE_DIR: &str = "/var/cache/vmimages";

#[derive(Debug, Args)]
pub struct CacheArgs {
    #[command(subcommand)]
    pub command: CacheCommand,
}

#[derive(Debug, Subcommand)]
pub enum CacheCommand {
    /// List the verified images of the cache, or its expired archive.
    Ls(LsArgs),
}

#[derive(Debug, Args)]
pub struct LsArgs {
    /// The image cache (partial/, endorsed/, expired/).
    #[arg(long, env = "VMLISUB_CACHE_DIR", default_value = DEFAULT_CACHE_DIR)]
    pub cache_dir: PathBuf,

    /// List the expired archive instead, with each entry's reason and time.
    #[arg(long)]
    pub expired: bool,

    /// Only this namespace.
    #[arg(long, short = 'n')]
    pub namespace: Option<String>,

    /// Output format.
    #[arg(long, short = 'o', value_enum, default_value = "table")]
    pub output: OutputFormat,
}

/// Why the cache could not be listed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum CacheError {
    #[error("{path} is not a vmlisub cache (no {area}/ directory)")]
    NotACache { path: PathBuf, area: &'static str },
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl Reason for CacheError {
    fn reason(&self) -> &'static str {
        match self {
            Self::NotACache { .. } => "cache-unavailable",
            Self::Store(err) => err.reason(),
        }
    }
}

/// Opens an existing cache without creating or recovering anything: the
/// listing commands only read. A directory without the three areas is
/// refused rather than turned into a cache.
pub(crate) fn open_existing(root: &Path) -> Result<CacheStore, CacheError> {
    for area in [PARTIAL_DIR, ENDORSED_DIR, EXPIRED_DIR] {
        let is_dir = std::fs::symlink_metadata(root.join(area)).is_ok_and(|meta| meta.is_dir());
        if !is_dir {
            return Err(CacheError::NotACache {
                path: root.to_path_buf(),
                area,
            });
        }
    }
    Ok(CacheStore::open(root)?)
}

pub fn run(args: &CacheArgs) -> ExitCode {
    match &args.command {
        CacheCommand::Ls(ls) => match list(ls) {
            Ok(text) => {
                print!("{text}");
                ExitCode::SUCCESS
            }
            Err(err) => super::fail(&err),
        },
    }
}

fn list(args: &LsArgs) -> Result<String, CacheError> {
    let store = open_existing(&args.cache_dir)?;
    let wanted = |namespace: &str| args.namespace.as_deref().is_none_or(|ns| ns == namespace);
    if args.expired {
        let mut entries = store.expired_entries()?;
        entries.retain(|entry| wanted(entry.key.namespace.as_str()));
        entries
            .sort_by(|a, b| (&a.key, a.expired_at, &a.name).cmp(&(&b.key, b.expired_at, &b.name)));
        let rows: Vec<Value> = entries
            .iter()
            .map(|entry| {
                // The record (when the entry kept one) names the digest.
                let record = store.expired_record(entry).ok().flatten();
                let detail = record
                    .as_ref()
                    .and_then(|r| r.expired.as_ref())
                    .and_then(|e| e.detail.clone());
                json!({
                    "namespace": entry.key.namespace.as_str(),
                    "list": entry.key.subscription.as_str(),
                    "image": entry.key.image.as_str(),
                    "entry": entry.name,
                    "size": entry.bytes,
                    "sha512": record.as_ref().map(|r| r.sha512.as_str().to_string()),
                    "reason": entry.reason.map(|r| r.code()),
                    "detail": detail,
                    "expiredAt": format_timestamp(entry.expired_at),
                    "path": store.expired_entry_path(entry).display().to_string(),
                })
            })
            .collect();
        Ok(match args.output {
            OutputFormat::Json => output::json_text(&json!({
                "schemaVersion": SCHEMA_VERSION,
                "cacheDir": args.cache_dir.display().to_string(),
                "area": "expired",
                "entries": rows,
            })),
            OutputFormat::Table => {
                let mut table = Table::new(&[
                    "NAMESPACE",
                    "LIST",
                    "IMAGE",
                    "SIZE",
                    "REASON",
                    "EXPIRED",
                    "ENTRY",
                ]);
                for row in &rows {
                    table.row(vec![
                        text(&row["namespace"]),
                        text(&row["list"]),
                        text(&row["image"]),
                        text(&row["size"]),
                        text(&row["reason"]),
                        text(&row["expiredAt"]),
                        text(&row["entry"]),
                    ]);
                }
                table.render()
            }
        })
    } else {
        let inventory = store.inventory()?;
        let rows: Vec<Value> = inventory
            .iter()
            .filter(|cached| wanted(cached.key.namespace.as_str()))
            .map(|cached| {
                json!({
                    "namespace": cached.key.namespace.as_str(),
                    "list": cached.key.subscription.as_str(),
                    "image": cached.key.image.as_str(),
                    "size": cached.size,
                    "sha512": cached.sha512.as_str(),
                    "verifiedAt": format_timestamp(cached.verified_at),
                    "path": store.image_path(&cached.key).display().to_string(),
                })
            })
            .collect();
        Ok(match args.output {
            OutputFormat::Json => output::json_text(&json!({
                "schemaVersion": SCHEMA_VERSION,
                "cacheDir": args.cache_dir.display().to_string(),
                "area": "endorsed",
                "entries": rows,
            })),
            OutputFormat::Table => {
                let mut table =
                    Table::new(&["NAMESPACE", "LIST", "IMAGE", "SIZE", "SHA512", "VERIFIED"]);
                for row in &rows {
                    table.row(vec![
                        text(&row["namespace"]),
                        text(&row["list"]),
                        text(&row["image"]),
                        text(&row["size"]),
                        output::short_digest(&text(&row["sha512"])),
                        text(&row["verifiedAt"]),
                    ]);
                }
                table.render()
            }
        })
    }
}

/// A JSON scalar as table text (`null` as empty).
pub(crate) fn text(value: &Value) -> String {
    match value {
        Value::Null => String::new(),
        Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}
