//! `vmlisub images`: each list's images and where they stand, like the
//! original's `vmcatcher_image -l` (whose state bits were 1 subscribed,
//! 2 in the current list).
//!
//! Read-only, from what `vmlisub sync` (or the operator) left behind: the
//! last good list of each subscription (kept beside the state file), the
//! cache's verified images and its expired archive. With the manifests
//! (`-f`, as for `sync`), which images are selected is computed by the
//! selection code a sync pass runs ([`select::endorsed_state`]); without
//! them, from the ImageSubscription statuses recorded in the state.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read as _;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use jiff::Timestamp;
use serde_json::{Value, json};

use super::cache::{CacheError, DEFAULT_CACHE_DIR, open_existing, text};
use super::output::{self, OutputFormat, SCHEMA_VERSION, Table};
use crate::imagelist::{self, Image, Sha512Hex, format_timestamp};
use crate::reason::Reason;
use crate::store::{ExpireReason, ExpiredEntry, Inventory, SubscriptionState};
use crate::subscription::state::{self, State, StateError};
use crate::subscription::{DEFAULT_MAX_LIST_BYTES, GoodList, ObjectKey, select};
use crate::sync::manifest::{self, ManifestError, Manifests};

#[derive(Debug, Args)]
pub struct ImagesArgs {
    /// Manifest files or directories, as for `vmlisub sync -f`: the images
    /// their ImageSubscriptions and AutoSubscribe policies select are the
    /// subscribed ones.
    #[arg(short = 'f', long = "filename", value_name = "FILE_OR_DIR")]
    pub files: Vec<PathBuf>,

    /// The image cache (partial/, endorsed/, expired/).
    #[arg(long, env = "VMLISUB_CACHE_DIR", default_value = DEFAULT_CACHE_DIR)]
    pub cache_dir: PathBuf,

    /// The state file of `vmlisub sync` (the operator's:
    /// `<cache-dir>/state/operator.json`).
    #[arg(long = "state", env = "VMLISUB_STATE", default_value = super::sync::DEFAULT_STATE_FILE)]
    pub state_file: PathBuf,

    /// Only this namespace.
    #[arg(long, short = 'n')]
    pub namespace: Option<String>,

    /// Output format.
    #[arg(long, short = 'o', value_enum, default_value = "table")]
    pub output: OutputFormat,

    /// Only these list subscriptions (NAME or NAMESPACE/NAME).
    pub lists: Vec<String>,
}

/// Why the images could not be listed.
#[derive(Debug, thiserror::Error)]
enum ImagesError {
    #[error(transparent)]
    State(#[from] StateError),
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    #[error(transparent)]
    Cache(#[from] CacheError),
}

impl Reason for ImagesError {
    fn reason(&self) -> &'static str {
        match self {
            Self::State(err) => err.reason(),
            Self::Manifest(err) => err.reason(),
            Self::Cache(err) => err.reason(),
        }
    }
}

/// Where one image stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ImageState {
    /// In the current list and verified in the cache.
    Available,
    /// In the current list and selected, not (yet) in the cache.
    Subscribed,
    /// In the current list, not selected.
    NotSubscribed,
    /// Nothing of it may be served: the list or the image expired, it was
    /// withdrawn, or it left the list (then only the archive knows it).
    Expired,
}

impl ImageState {
    fn as_str(self) -> &'static str {
        match self {
            Self::Available => "available",
            Self::Subscribed => "subscribed",
            Self::NotSubscribed => "not-subscribed",
            Self::Expired => "expired",
        }
    }
}

pub fn run(args: &ImagesArgs) -> ExitCode {
    match images(args, Timestamp::now()) {
        Ok((text, notes)) => {
            for note in notes {
                eprintln!("note: {note}");
            }
            print!("{text}");
            ExitCode::SUCCESS
        }
        Err(err) => super::fail(&err),
    }
}

/// Withdrawn rather than unwanted or corrupt: a selected image that left
/// the cache for one of these is expired until a new list endorses it.
fn is_withdrawal(reason: ExpireReason) -> bool {
    matches!(
        reason,
        ExpireReason::ListExpired
            | ExpireReason::ImageExpired
            | ExpireReason::SignerInvalid
            | ExpireReason::SignerRevoked
            | ExpireReason::EndorserRemoved
            | ExpireReason::SubscriptionGone
    )
}

/// The last good list of `key`, as its stored JSON (what the artifact
/// server publishes). `None` when none was imported.
fn stored_list(state_file: &std::path::Path, key: &ObjectKey) -> Option<GoodList> {
    let smime = state::stored_list_file(state_file, key);
    let read = |path: PathBuf| -> Option<Vec<u8>> {
        let mut bytes = Vec::new();
        std::fs::File::open(path)
            .and_then(|file| file.take(DEFAULT_MAX_LIST_BYTES).read_to_end(&mut bytes))
            .ok()?;
        Some(bytes)
    };
    let content = read(smime.with_extension("json"))?;
    let parsed = imagelist::parse(&content).ok()?;
    let digest = read(smime)
        .map(|bytes| {
            use sha2::Digest as _;
            let digest: [u8; 64] = sha2::Sha512::digest(&bytes).into();
            Sha512Hex::from_digest(&digest)
        })
        .unwrap_or_else(|| Sha512Hex::from_digest(&[0; 64]));
    Some(GoodList { parsed, digest })
}

fn parse_key(text: &str) -> ObjectKey {
    let (namespace, name) = text
        .split_once('/')
        .unwrap_or((manifest::DEFAULT_NAMESPACE, text));
    ObjectKey::new(namespace, name)
}

fn images(args: &ImagesArgs, now: Timestamp) -> Result<(String, Vec<String>), ImagesError> {
    let state = State::load(&args.state_file)?;
    let manifests = if args.files.is_empty() {
        None
    } else {
        Some(manifest::load(&args.files)?)
    };
    let mut notes = Vec::new();
    let (inventory, archive) = match open_existing(&args.cache_dir) {
        Ok(store) => {
            let archive: Vec<(ExpiredEntry, Option<Sha512Hex>, Value)> = store
                .expired_entries()
                .map_err(CacheError::from)?
                .into_iter()
                .map(|entry| {
                    let record = store.expired_record(&entry).ok().flatten();
                    let sha512 = record.as_ref().map(|r| r.sha512.clone());
                    let image = record.map(|r| r.image).unwrap_or(Value::Null);
                    (entry, sha512, image)
                })
                .collect();
            (store.inventory().map_err(CacheError::from)?, archive)
        }
        Err(CacheError::NotACache { path, .. }) => {
            notes.push(format!(
                "{} is not a cache yet: nothing is cached",
                path.display()
            ));
            (Inventory::new(), Vec::new())
        }
        Err(err) => return Err(err.into()),
    };

    let filter: BTreeSet<ObjectKey> = args.lists.iter().map(|l| parse_key(l)).collect();
    let mut keys: BTreeSet<ObjectKey> = state.lists.keys().map(|k| parse_key(k)).collect();
    if let Some(manifests) = &manifests {
        keys.extend(manifests.lists.keys().cloned());
    }
    keys.retain(|key| {
        args.namespace
            .as_deref()
            .is_none_or(|ns| ns == key.namespace)
            && (filter.is_empty()
                || filter.contains(key)
                || args
                    .lists
                    .iter()
                    .any(|l| !l.contains('/') && *l == key.name))
    });

    let mut lists = Vec::new();
    for key in &keys {
        let stored = stored_list(&args.state_file, key);
        if stored.is_none() {
            notes.push(format!("{key}: no list imported yet"));
        }
        let selected = selection(key, stored.as_ref(), manifests.as_ref(), &state);
        let rows = list_rows(key, stored.as_ref(), &selected, &inventory, &archive, now);
        let list = stored.as_ref().map(|good| {
            let list = &good.parsed.list;
            json!({
                "identifier": list.identifier.as_str(),
                "title": list.title,
                "version": list.version,
                "created": format_timestamp(list.created),
                "expires": format_timestamp(list.expires),
                "expired": list.expires <= now,
            })
        });
        lists.push(json!({
            "namespace": key.namespace,
            "name": key.name,
            "list": list,
            "images": rows,
        }));
    }

    let text = match args.output {
        OutputFormat::Json => output::json_text(&json!({
            "schemaVersion": SCHEMA_VERSION,
            "stateFile": args.state_file.display().to_string(),
            "cacheDir": args.cache_dir.display().to_string(),
            "selection": if manifests.is_some() { "manifests" } else { "state" },
            "lists": lists,
        })),
        OutputFormat::Table => {
            let mut table =
                Table::new(&["LIST", "IDENTIFIER", "TITLE", "VERSION", "SIZE", "STATE"]);
            for list in &lists {
                let name = format!("{}/{}", text(&list["namespace"]), text(&list["name"]));
                for image in list["images"].as_array().into_iter().flatten() {
                    table.row(vec![
                        name.clone(),
                        text(&image["identifier"]),
                        text(&image["title"]),
                        text(&image["version"]),
                        text(&image["size"]),
                        text(&image["state"]),
                    ]);
                }
            }
            table.render()
        }
    };
    Ok((text, notes))
}

/// The identifiers of the images of `key`'s list that are selected for
/// caching.
fn selection(
    key: &ObjectKey,
    stored: Option<&GoodList>,
    manifests: Option<&Manifests>,
    state: &State,
) -> BTreeSet<String> {
    let Some(good) = stored else {
        return BTreeSet::new();
    };
    match manifests {
        Some(manifests) => {
            let Some(spec) = manifests.lists.get(key) else {
                // Not in the manifests: the subscription is gone.
                return BTreeSet::new();
            };
            let images = crate::sync::pass::images_of(manifests, key);
            match select::endorsed_state(spec, good, images) {
                SubscriptionState::Endorsed { wanted, .. } => wanted
                    .into_iter()
                    .map(|w| w.image.as_str().to_string())
                    .collect(),
                _ => BTreeSet::new(),
            }
        }
        // The ImageSubscriptions recorded in the list's namespace.
        None => state
            .images
            .iter()
            .filter(|(image_key, _)| parse_key(image_key).namespace == key.namespace)
            .filter_map(|(_, status)| status.image.as_ref().map(|i| i.identifier.clone()))
            .filter(|id| good.parsed.list.image(id).is_some())
            .collect(),
    }
}

fn list_rows(
    key: &ObjectKey,
    stored: Option<&GoodList>,
    selected: &BTreeSet<String>,
    inventory: &Inventory,
    archive: &[(ExpiredEntry, Option<Sha512Hex>, Value)],
    now: Timestamp,
) -> Vec<Value> {
    // The latest archive entry of each image of this subscription.
    let mut latest: BTreeMap<&str, &(ExpiredEntry, Option<Sha512Hex>, Value)> = BTreeMap::new();
    for item in archive {
        let entry = &item.0;
        if entry.key.namespace.as_str() != key.namespace
            || entry.key.subscription.as_str() != key.name
        {
            continue;
        }
        let slot = latest.entry(entry.key.image.as_str()).or_insert(item);
        if (entry.expired_at, &entry.name) > (slot.0.expired_at, &slot.0.name) {
            *slot = item;
        }
    }
    let expired_json = |item: Option<&&(ExpiredEntry, Option<Sha512Hex>, Value)>| {
        item.map(|(entry, _, _)| {
            json!({
                "reason": entry.reason.map(|r| r.code()),
                "at": format_timestamp(entry.expired_at),
                "entry": entry.name,
            })
        })
    };
    let mut rows = Vec::new();
    let mut listed = BTreeSet::new();
    if let Some(good) = stored {
        let list = &good.parsed.list;
        for image in &list.images {
            let id = image.identifier.as_str();
            listed.insert(id);
            let cached = crate::subscription::select::cache_list_key(key)
                .map(|list_key| list_key.image(image.identifier.clone()))
                .and_then(|image_key| inventory.get(&image_key).cloned())
                .filter(|cached| cached.sha512 == image.sha512 && cached.size == image.size);
            let is_selected = selected.contains(id);
            let archived = latest.get(id);
            let withdrawn = archived.filter(|(entry, sha512, _)| {
                entry.reason.is_some_and(is_withdrawal) && sha512.as_ref() == Some(&image.sha512)
            });
            // An expired list or image endorses nothing, cached or not
            // (the next pass moves it to the archive).
            let (state, reason) = if list.expires <= now {
                (ImageState::Expired, Some("list-expired"))
            } else if image.expires.is_some_and(|expires| expires <= now) {
                (ImageState::Expired, Some("image-expired"))
            } else if cached.is_some() {
                (ImageState::Available, None)
            } else if is_selected {
                match withdrawn.and_then(|(entry, _, _)| entry.reason) {
                    Some(reason) => (ImageState::Expired, Some(reason.code())),
                    None => (ImageState::Subscribed, None),
                }
            } else {
                (ImageState::NotSubscribed, None)
            };
            rows.push(image_row(
                image,
                state,
                reason,
                is_selected,
                cached.map(|c| format_timestamp(c.verified_at)),
                expired_json(archived),
            ));
        }
    }
    // Images that left the list: only the archive remembers them.
    for (id, item) in &latest {
        if listed.contains(id) {
            continue;
        }
        let (entry, sha512, image) = item;
        let field = |name: &str| image.get(name).cloned().unwrap_or(Value::Null);
        rows.push(json!({
            "identifier": id,
            "title": field("dc:title"),
            "version": field("hv:version"),
            "size": image.get("hv:size").cloned().unwrap_or(json!(entry.bytes)),
            "sha512": sha512.as_ref().map(|s| s.as_str().to_string()),
            "state": ImageState::Expired.as_str(),
            "reason": entry.reason.map(|r| r.code()),
            "inList": false,
            "selected": false,
            "verifiedAt": null,
            "expired": expired_json(Some(item)),
        }));
    }
    rows
}

fn image_row(
    image: &Image,
    state: ImageState,
    reason: Option<&str>,
    selected: bool,
    verified_at: Option<String>,
    expired: Option<Value>,
) -> Value {
    json!({
        "identifier": image.identifier.as_str(),
        "title": image.title,
        "version": image.version,
        "size": image.size,
        "sha512": image.sha512.as_str(),
        "state": state.as_str(),
        "reason": reason,
        "inList": true,
        "selected": selected,
        "verifiedAt": verified_at,
        "expired": expired,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::imagelist::ImageId;
    use crate::store::{CachedImage, ImageKey, Namespace, SubscriptionName};

    fn key(image: &str) -> ImageKey {
        ImageKey::new(
            Namespace::new("grid").unwrap(),
            SubscriptionName::new("vo").unwrap(),
            ImageId::new(image).unwrap(),
        )
    }

    fn archived(
        image: &str,
        reason: ExpireReason,
        sha512: &Sha512Hex,
    ) -> (ExpiredEntry, Option<Sha512Hex>, Value) {
        let entry = ExpiredEntry {
            key: key(image),
            name: format!("20260101T000000Z-{image}"),
            expired_at: "2026-01-01T00:00:00Z".parse().unwrap(),
            reason: Some(reason),
            bytes: 10,
        };
        let record = json!({"dc:title": format!("old {image}"), "hv:version": "0", "hv:size": 10});
        (entry, Some(sha512.clone()), record)
    }

    fn states(rows: &[Value]) -> Vec<(String, String, Value)> {
        rows.iter()
            .map(|row| {
                (
                    text(&row["identifier"]),
                    text(&row["state"]),
                    row["reason"].clone(),
                )
            })
            .collect()
    }

    /// The rules, one image each: cached, selected and waiting, not
    /// selected, withdrawn with the listed digest, corrupt and downloading
    /// again, and an image that left the list.
    #[test]
    fn each_image_gets_one_state() {
        let good = crate::subscription::view::fixture(6);
        let sha = good.parsed.list.images[0].sha512.clone();
        let other = Sha512Hex::from_digest(&[9; 64]);
        let mut inventory = Inventory::new();
        inventory.insert(CachedImage {
            key: key("img-0"),
            sha512: sha.clone(),
            size: 10,
            verified_at: "2026-01-02T00:00:00Z".parse().unwrap(),
        });
        // A cached file of another version does not count.
        inventory.insert(CachedImage {
            key: key("img-5"),
            sha512: other.clone(),
            size: 10,
            verified_at: "2026-01-02T00:00:00Z".parse().unwrap(),
        });
        let archive = vec![
            archived("img-2", ExpireReason::EndorserRemoved, &sha),
            archived("img-3", ExpireReason::ChecksumMismatch, &sha),
            archived("img-4", ExpireReason::SignerRevoked, &other),
            archived("gone", ExpireReason::RemovedFromList, &other),
        ];
        let selected: BTreeSet<String> = ["img-0", "img-1", "img-2", "img-3", "img-4", "img-5"]
            .into_iter()
            .map(String::from)
            .collect();
        let list = ObjectKey::new("grid", "vo");
        let now: Timestamp = "2026-06-01T00:00:00Z".parse().unwrap();
        let rows = list_rows(&list, Some(&good), &selected, &inventory, &archive, now);
        let expect =
            |id: &str, state: &str, reason: Value| (id.to_string(), state.to_string(), reason);
        assert_eq!(
            states(&rows),
            [
                expect("img-0", "available", Value::Null),
                expect("img-1", "subscribed", Value::Null),
                expect("img-2", "expired", json!("endorser-removed")),
                expect("img-3", "subscribed", Value::Null),
                // Revoked, but the list now gives another digest: a new download.
                expect("img-4", "subscribed", Value::Null),
                expect("img-5", "subscribed", Value::Null),
                expect("gone", "expired", json!("removed-from-list")),
            ]
        );
        assert_eq!(rows[6]["title"], "old gone");
        assert_eq!(rows[6]["inList"], false);
        assert_eq!(rows[2]["expired"]["reason"], "endorser-removed");

        // Not selected: not subscribed, even with an old archive entry.
        let rows = list_rows(
            &list,
            Some(&good),
            &BTreeSet::new(),
            &inventory,
            &archive,
            now,
        );
        assert_eq!(text(&rows[1]["state"]), "not-subscribed");
        assert_eq!(text(&rows[2]["state"]), "not-subscribed");
        // Cached but not selected any more (the next pass expires it).
        assert_eq!(text(&rows[0]["state"]), "available");

        // Past the list's expiry nothing is available any more.
        let later: Timestamp = "2099-05-01T00:00:00Z".parse().unwrap();
        let rows = list_rows(&list, Some(&good), &selected, &inventory, &archive, later);
        assert!(
            states(&rows)[..6]
                .iter()
                .all(|(_, state, reason)| state == "expired" && *reason == json!("list-expired")),
            "{rows:#?}"
        );
    }
}
