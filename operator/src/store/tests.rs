//! File-system tests of the cache shell, on real temporary directories.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::cache::Step;
use super::*;
use crate::imagelist::{ImageId, ListId, Sha512Hex};
use crate::reason::Reason;
use jiff::Timestamp;
use std::fs;
use std::io::Write;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use tempfile::TempDir;

const T0: i64 = 1_700_000_000; // 2023-11-14T22:13:20Z

fn t(offset: i64) -> Timestamp {
    Timestamp::from_second(T0 + offset).unwrap()
}

fn key(id: &str) -> ImageKey {
    ImageKey::parse("ns", "sub", id).unwrap()
}

fn new_store() -> (TempDir, CacheStore) {
    let dir = TempDir::new().unwrap();
    let store = CacheStore::open(dir.path().join("cache")).unwrap();
    (dir, store)
}

fn sha_of(bytes: &[u8]) -> Sha512Hex {
    sha512_reader(bytes).unwrap().0
}

fn record_of(key: &ImageKey, bytes: &[u8]) -> ImageRecord {
    let sha512 = sha_of(bytes);
    ImageRecord {
        schema: RECORD_SCHEMA,
        key: key.clone(),
        image: serde_json::json!({
            "dc:identifier": key.image.as_str(),
            "dc:title": "test",
            "hv:uri": "https://example.org/image",
            "hv:size": bytes.len(),
            "sl:checksum:sha512": sha512.as_str(),
        }),
        list: ListInfo {
            identifier: ListId::new("list-1").unwrap(),
            version: "1".into(),
            digest: Sha512Hex::from_digest(&[7; 64]),
            expires: Some(t(86_400)),
            vo: None,
        },
        sha512,
        size: bytes.len() as u64,
        verified_at: Some(t(0)),
        expired: None,
    }
}

fn write_partial(store: &CacheStore, key: &ImageKey, bytes: &[u8]) {
    let (mut file, len) = store.open_partial(key).unwrap();
    assert_eq!(len, 0);
    file.write_all(bytes).unwrap();
}

fn promote_bytes(store: &CacheStore, key: &ImageKey, bytes: &[u8]) -> PathBuf {
    write_partial(store, key, bytes);
    store.promote(key, &record_of(key, bytes)).unwrap()
}

/// Every file under `dir`, relative, sorted (symlinks listed, not followed).
fn tree(dir: &Path) -> Vec<String> {
    fn walk(base: &Path, dir: &Path, out: &mut Vec<String>) {
        let Ok(rd) = fs::read_dir(dir) else { return };
        for e in rd {
            let e = e.unwrap();
            let p = e.path();
            let rel = p.strip_prefix(base).unwrap().to_string_lossy().into_owned();
            let ft = e.file_type().unwrap();
            if ft.is_dir() {
                out.push(format!("{rel}/"));
                walk(base, &p, out);
            } else {
                out.push(rel);
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

/// The central invariant: every `image` in the endorsed area sits next to a
/// verified record whose size matches, and nothing else is there.
fn assert_endorsed_area_clean(root: &Path) {
    let endorsed = root.join(ENDORSED_DIR);
    for rel in tree(&endorsed) {
        let p = endorsed.join(&rel);
        if rel.ends_with('/') {
            continue;
        }
        let name = p.file_name().unwrap().to_str().unwrap();
        assert!(
            name == IMAGE_FILE || name == RECORD_FILE,
            "unexpected {rel} in endorsed area"
        );
        if name == IMAGE_FILE {
            let rec_path = p.with_file_name(RECORD_FILE);
            let rec: ImageRecord =
                serde_json::from_slice(&fs::read(&rec_path).expect("image without record"))
                    .unwrap();
            assert!(rec.verified_at.is_some(), "{rel}: unverified record");
            assert!(
                rec.expired.is_none(),
                "{rel}: expired record in endorsed area"
            );
            let bytes = fs::read(&p).unwrap();
            assert_eq!(bytes.len() as u64, rec.size, "{rel}");
            assert_eq!(
                sha_of(&bytes),
                rec.sha512,
                "{rel}: unverified bytes in endorsed area"
            );
        }
    }
}

fn mode(p: &Path) -> u32 {
    fs::symlink_metadata(p).unwrap().permissions().mode() & 0o777
}

// ----- open / layout ----------------------------------------------------

#[test]
fn open_creates_the_three_areas_with_private_modes() {
    let (dir, store) = new_store();
    let root = dir.path().join("cache");
    assert_eq!(store.root(), root);
    for area in [PARTIAL_DIR, ENDORSED_DIR, EXPIRED_DIR] {
        assert!(root.join(area).is_dir(), "{area}");
    }
    assert_eq!(mode(&root.join(PARTIAL_DIR)) & 0o077, 0);
    assert_eq!(mode(&root.join(EXPIRED_DIR)) & 0o077, 0);
    assert_eq!(mode(&root.join(ENDORSED_DIR)) & 0o022, 0);
    // Re-opening an existing cache is fine.
    CacheStore::open(&root).unwrap();
    let k = key("img");
    assert_eq!(store.partial_path(&k), root.join("partial/ns/sub/img"));
    assert_eq!(store.image_path(&k), root.join("endorsed/ns/sub/img/image"));
    assert_eq!(
        store.record_path(&k),
        root.join("endorsed/ns/sub/img/record.json")
    );
}

#[test]
fn two_subscriptions_with_the_same_image_id_do_not_collide() {
    let (_dir, store) = new_store();
    let a = ImageKey::parse("ns", "list-a", "img").unwrap();
    let b = ImageKey::parse("ns", "list-b", "img").unwrap();
    let c = ImageKey::parse("other", "list-a", "img").unwrap();
    let pa = promote_bytes(&store, &a, b"aaa");
    let pb = promote_bytes(&store, &b, b"bbbb");
    let pc = promote_bytes(&store, &c, b"c");
    assert_eq!(fs::read(pa).unwrap(), b"aaa");
    assert_eq!(fs::read(pb).unwrap(), b"bbbb");
    assert_eq!(fs::read(pc).unwrap(), b"c");
    assert_eq!(store.inventory().unwrap().len(), 3);
    let of_a: Vec<ImageKey> = store
        .inventory_of(&a.cache_list_key())
        .unwrap()
        .iter()
        .map(|c| c.key.clone())
        .collect();
    assert_eq!(of_a, vec![a.clone()]);
    let unknown = ImageKey::parse("none", "list-x", "img").unwrap();
    assert!(
        store
            .inventory_of(&unknown.cache_list_key())
            .unwrap()
            .is_empty()
    );
}

// ----- partial downloads --------------------------------------------------

#[test]
fn open_partial_resumes_without_truncating_and_discard_reports_bytes() {
    let (_dir, store) = new_store();
    let k = key("img");
    assert_eq!(store.partial_len(&k).unwrap(), None);
    write_partial(&store, &k, b"0123456789");
    let (_file, len) = store.open_partial(&k).unwrap();
    assert_eq!(len, 10);
    assert_eq!(store.partial_len(&k).unwrap(), Some(10));
    assert_eq!(store.prepare_partial(&k).unwrap(), store.partial_path(&k));
    assert_eq!(fs::read(store.partial_path(&k)).unwrap(), b"0123456789");
    assert_eq!(store.discard_partial(&k).unwrap(), 10);
    assert_eq!(store.discard_partial(&k).unwrap(), 0);
    assert!(!store.partial_path(&k).exists());
}

// ----- promotion ----------------------------------------------------------

#[test]
fn promote_moves_file_and_record_into_the_endorsed_area() {
    let (dir, store) = new_store();
    let k = key("858a817e-0ca2-473f-89d3-d5bdfc51968e");
    let bytes = b"a small but real image".to_vec();
    write_partial(&store, &k, &bytes);
    let rec = record_of(&k, &bytes);
    let path = store.promote(&k, &rec).unwrap();
    assert_eq!(path, store.image_path(&k));
    assert_eq!(fs::read(&path).unwrap(), bytes);
    assert_eq!(mode(&path), 0o644);
    assert!(!store.partial_path(&k).exists());
    assert_eq!(store.record(&k).unwrap(), rec);
    let on_disk: serde_json::Value =
        serde_json::from_slice(&fs::read(store.record_path(&k)).unwrap()).unwrap();
    assert_eq!(on_disk["verifiedAt"], "2023-11-14T22:13:20Z");
    assert_eq!(on_disk["list"]["identifier"], "list-1");
    assert_eq!(on_disk["key"]["subscription"], "sub");
    // No staging leftovers.
    assert_eq!(
        tree(&dir.path().join("cache/partial")),
        vec!["ns/", "ns/sub/"]
    );
    let inv = store.inventory().unwrap();
    assert_eq!(inv.len(), 1);
    assert_eq!(inv.get(&k).unwrap().sha512, rec.sha512);
    let (file, r) = store.open_image(&k).unwrap();
    assert_eq!(file.metadata().unwrap().len(), bytes.len() as u64);
    assert_eq!(r, rec);
    assert_endorsed_area_clean(&dir.path().join("cache"));
    let rec = store.recover_at(t(1)).unwrap();
    assert!(rec.is_clean(), "{rec:?}");
    assert_eq!(rec.endorsed, 1);
}

#[test]
fn promote_rechecks_the_size_and_leaves_the_partial_on_refusal() {
    let (dir, store) = new_store();
    let k = key("img");
    write_partial(&store, &k, b"12345");
    let mut rec = record_of(&k, b"123456");
    let err = store.promote(&k, &rec).unwrap_err();
    assert_eq!(err.reason(), "size-mismatch", "{err}");
    assert!(matches!(
        err,
        StoreError::SizeMismatch {
            expected: 6,
            actual: 5,
            ..
        }
    ));
    assert_eq!(fs::read(store.partial_path(&k)).unwrap(), b"12345");
    assert!(tree(&dir.path().join("cache/endorsed")).is_empty());

    // A record whose size disagrees with its own listed hv:size is refused
    // before the file is even looked at.
    rec.size = 5;
    assert_eq!(
        store.promote(&k, &rec).unwrap_err().reason(),
        "record-invalid"
    );
}

#[test]
fn promote_refuses_records_that_do_not_prove_verification() {
    let (_dir, store) = new_store();
    let k = key("img");
    write_partial(&store, &k, b"abc");
    let mut unverified = record_of(&k, b"abc");
    unverified.verified_at = None;
    assert_eq!(
        store.promote(&k, &unverified).unwrap_err().reason(),
        "record-invalid"
    );
    let other = record_of(&key("other"), b"abc");
    assert_eq!(
        store.promote(&k, &other).unwrap_err().reason(),
        "record-invalid"
    );
    assert!(store.partial_path(&k).exists());
    assert!(store.inventory().unwrap().is_empty());
}

#[test]
fn verify_and_promote_rehashes() {
    let (_dir, store) = new_store();
    let k = key("img");
    write_partial(&store, &k, b"tampered");
    // Same length, other content.
    let rec = record_of(&k, b"original");
    let err = store.verify_and_promote(&k, &rec).unwrap_err();
    assert_eq!(err.reason(), "checksum-mismatch", "{err}");
    assert!(store.partial_path(&k).exists());
    assert!(store.inventory().unwrap().is_empty());
    // Plain promote trusts the caller's proof (size only).
    let good = record_of(&k, b"tampered");
    store.verify_and_promote(&k, &good).unwrap();
    assert_eq!(store.inventory().unwrap().len(), 1);
}

/// The stamp of the partial file as the downloader would take it.
fn partial_stamp(store: &CacheStore, key: &ImageKey) -> crate::transfer::FileStamp {
    let file = fs::File::open(store.partial_path(key)).unwrap();
    crate::transfer::FileStamp::of(&file).unwrap()
}

#[test]
fn promote_stamped_trusts_an_unchanged_file_and_rehashes_a_changed_one() {
    let (_dir, store) = new_store();
    let k = key("img");
    write_partial(&store, &k, b"original");
    let stamp = partial_stamp(&store, &k);
    // Another writer changes the bytes (same length) after the hash: the
    // stamp differs, the file is hashed again and refused.
    std::thread::sleep(std::time::Duration::from_millis(20));
    fs::write(store.partial_path(&k), b"tampered").unwrap();
    let rec = record_of(&k, b"original");
    let err = store.promote_stamped(&k, &rec, &stamp).unwrap_err();
    assert_eq!(err.reason(), "checksum-mismatch", "{err}");
    assert!(store.inventory().unwrap().is_empty());

    // An unchanged file is not hashed again: its stamp is the proof (a
    // record whose digest the file does not have still goes in, which
    // shows that no second hash ran).
    let k2 = key("img2");
    write_partial(&store, &k2, b"original");
    let stamp = partial_stamp(&store, &k2);
    let unproven = record_of(&k2, b"whatever");
    store.promote_stamped(&k2, &unproven, &stamp).unwrap();
    assert_eq!(store.inventory().unwrap().len(), 1);
}

#[test]
fn promote_never_replaces_an_endorsed_image() {
    let (dir, store) = new_store();
    let k = key("img");
    promote_bytes(&store, &k, b"first");
    write_partial(&store, &k, b"second");
    let err = store.promote(&k, &record_of(&k, b"second")).unwrap_err();
    assert_eq!(err.reason(), "already-exists", "{err}");
    assert_eq!(fs::read(store.image_path(&k)).unwrap(), b"first");
    assert_eq!(fs::read(store.partial_path(&k)).unwrap(), b"second");
    assert_endorsed_area_clean(&dir.path().join("cache"));
    // Expire first, then the replacement goes in.
    store
        .expire(&k, ExpireReason::ChecksumChanged, t(0))
        .unwrap();
    store.promote(&k, &record_of(&k, b"second")).unwrap();
    assert_eq!(fs::read(store.image_path(&k)).unwrap(), b"second");
}

#[test]
fn promote_without_a_partial_is_not_found() {
    let (_dir, store) = new_store();
    let k = key("img");
    assert_eq!(
        store
            .promote(&k, &record_of(&k, b"x"))
            .unwrap_err()
            .reason(),
        "not-found"
    );
    store.prepare_partial(&k).unwrap();
    assert_eq!(
        store
            .promote(&k, &record_of(&k, b"x"))
            .unwrap_err()
            .reason(),
        "not-found"
    );
}

/// A crash between any two steps of a promotion leaves either the old state
/// (the partial file, nothing endorsed) or the new one (endorsed with its
/// record), and never a partial or unverified file in the endorsed area.
#[test]
fn promotion_is_atomic_under_crashes_at_every_step() {
    for step in [
        Step::StagingCreated,
        Step::RecordWritten,
        Step::ImageStaged,
        Step::Committed,
    ] {
        let (dir, store) = new_store();
        let root = dir.path().join("cache");
        let k = key("img");
        let bytes = vec![0x5a; 100_000];
        write_partial(&store, &k, &bytes);
        store.set_crash_at(Some(step));
        let err = store.promote(&k, &record_of(&k, &bytes)).unwrap_err();
        assert!(err.is_simulated_crash(), "{step:?}: {err}");
        drop(store);

        // Right after the crash, before any recovery.
        assert_endorsed_area_clean(&root);
        let committed = step == Step::Committed;

        // Restart.
        let store = CacheStore::open(&root).unwrap();
        let report = store.recover_at(t(10)).unwrap();
        assert_endorsed_area_clean(&root);
        assert!(report.quarantined.is_empty(), "{step:?}: {report:?}");
        let inv = store.inventory().unwrap();
        if committed {
            assert_eq!(inv.len(), 1, "{step:?}");
            assert!(!store.partial_path(&k).exists(), "{step:?}");
            assert!(report.partials.is_empty(), "{step:?}");
            assert_eq!(fs::read(store.image_path(&k)).unwrap(), bytes);
        } else {
            assert!(inv.is_empty(), "{step:?}");
            assert_eq!(fs::read(store.partial_path(&k)).unwrap(), bytes, "{step:?}");
            assert_eq!(report.partials.len(), 1, "{step:?}");
            assert_eq!(report.partials[0].len, bytes.len() as u64);
            assert_eq!(
                report.rolled_back,
                if step == Step::ImageStaged {
                    vec![k.clone()]
                } else {
                    vec![]
                }
            );
            // Only the partial is left in partial/.
            assert_eq!(
                tree(&root.join(PARTIAL_DIR)),
                vec!["ns/", "ns/sub/", "ns/sub/img"],
                "{step:?}"
            );
            // And the promotion can be redone.
            store.promote(&k, &record_of(&k, &bytes)).unwrap();
            assert_endorsed_area_clean(&root);
        }
        // Recovery is idempotent.
        assert!(store.recover_at(t(20)).unwrap().is_clean(), "{step:?}");
    }
}

#[test]
fn recovery_removes_a_torn_record_write_in_staging() {
    let (dir, store) = new_store();
    let root = dir.path().join("cache");
    let k = key("img");
    write_partial(&store, &k, b"data");
    // Crash in the middle of the atomic record write: only the temp file.
    let staging = root.join("partial/ns/sub/.promote-img");
    fs::create_dir(&staging).unwrap();
    fs::write(staging.join(".record.json.tmp"), b"{\"sche").unwrap();
    let report = store.recover_at(t(0)).unwrap();
    assert!(!staging.exists());
    assert_eq!(report.removed.len(), 2, "{report:?}");
    assert_eq!(report.partials.len(), 1);
    store.promote(&k, &record_of(&k, b"data")).unwrap();
}

// ----- recovery -----------------------------------------------------------

#[test]
fn recovery_reports_partials_orphans_and_moves_unverified_files_out() {
    let (dir, store) = new_store();
    let root = dir.path().join("cache");
    let outside = dir.path().join("outside");
    fs::create_dir(&outside).unwrap();
    fs::write(outside.join("secret"), b"do not touch").unwrap();

    let good = key("good");
    promote_bytes(&store, &good, b"good bytes");
    // A leftover temp file of an interrupted record rewrite.
    fs::write(root.join("endorsed/ns/sub/good/.record.json.tmp"), b"{").unwrap();

    write_partial(&store, &key("downloading"), &[1; 100]);

    let e = root.join("endorsed/ns/sub");
    // Image without record.
    fs::create_dir(e.join("orphan")).unwrap();
    fs::write(e.join("orphan/image"), b"who knows").unwrap();
    // Record without image.
    fs::create_dir(e.join("rec-only")).unwrap();
    fs::write(
        e.join("rec-only/record.json"),
        record_of(&key("rec-only"), b"x")
            .to_json(Path::new("x"))
            .unwrap(),
    )
    .unwrap();
    // Record that says never verified.
    let mut unverified = record_of(&key("unverified"), b"unverified");
    unverified.verified_at = None;
    fs::create_dir(e.join("unverified")).unwrap();
    fs::write(e.join("unverified/image"), b"unverified").unwrap();
    fs::write(
        e.join("unverified/record.json"),
        unverified.to_json(Path::new("x")).unwrap(),
    )
    .unwrap();
    // Size disagrees with the record.
    fs::create_dir(e.join("short")).unwrap();
    fs::write(e.join("short/image"), b"short").unwrap();
    fs::write(
        e.join("short/record.json"),
        record_of(&key("short"), b"longer!!")
            .to_json(Path::new("x"))
            .unwrap(),
    )
    .unwrap();
    // Unparseable record.
    fs::create_dir(e.join("garbled")).unwrap();
    fs::write(e.join("garbled/image"), b"g").unwrap();
    fs::write(e.join("garbled/record.json"), b"not json").unwrap();
    // Record of another key.
    fs::create_dir(e.join("moved")).unwrap();
    fs::write(e.join("moved/image"), b"m").unwrap();
    fs::write(
        e.join("moved/record.json"),
        record_of(&key("elsewhere"), b"m")
            .to_json(Path::new("x"))
            .unwrap(),
    )
    .unwrap();
    // The image is a symlink to a file outside the cache.
    fs::create_dir(e.join("linked-image")).unwrap();
    symlink(outside.join("secret"), e.join("linked-image/image")).unwrap();
    fs::write(
        e.join("linked-image/record.json"),
        record_of(&key("linked-image"), b"do not touch")
            .to_json(Path::new("x"))
            .unwrap(),
    )
    .unwrap();
    // Things the store did not create.
    fs::write(e.join(".hidden"), b"?").unwrap();
    symlink(&outside, e.join("linked-entry")).unwrap();
    symlink(outside.join("secret"), root.join("partial/ns/sub/evil")).unwrap();
    fs::create_dir(e.join("empty")).unwrap();
    fs::create_dir_all(root.join("endorsed/Bad_NS/sub")).unwrap();

    let report = store.recover_at(t(100)).unwrap();

    assert_eq!(report.endorsed, 1);
    assert_eq!(report.partials.len(), 1);
    assert_eq!(report.partials[0].key, key("downloading"));
    assert_eq!(report.partials[0].len, 100);
    assert_eq!(report.orphan_records, vec![key("rec-only")]);
    let mut quarantined: Vec<(String, ExpireReason)> = report
        .quarantined
        .iter()
        .map(|q| (q.entry.key.image.to_string(), q.reason))
        .collect();
    quarantined.sort();
    assert_eq!(
        quarantined,
        vec![
            ("garbled".into(), ExpireReason::Orphan),
            ("linked-image".into(), ExpireReason::Unverified),
            ("moved".into(), ExpireReason::Orphan),
            ("orphan".into(), ExpireReason::Orphan),
            ("short".into(), ExpireReason::SizeMismatch),
            ("unverified".into(), ExpireReason::Unverified),
        ]
    );
    let mut unexpected: Vec<String> = report
        .unexpected
        .iter()
        .map(|u| {
            u.path
                .strip_prefix(&root)
                .unwrap()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    unexpected.sort();
    assert_eq!(
        unexpected,
        vec![
            "endorsed/Bad_NS",
            "endorsed/ns/sub/.hidden",
            "endorsed/ns/sub/linked-entry",
            "partial/ns/sub/evil"
        ]
    );
    let mut removed: Vec<String> = report
        .removed
        .iter()
        .map(|p| {
            p.strip_prefix(&root)
                .unwrap()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    removed.sort();
    assert_eq!(
        removed,
        vec![
            "endorsed/ns/sub/empty",
            "endorsed/ns/sub/good/.record.json.tmp"
        ]
    );

    // Nothing outside was followed or touched.
    assert_eq!(fs::read(outside.join("secret")).unwrap(), b"do not touch");
    assert_eq!(tree(&outside), vec!["secret"]);
    // Quarantined entries are archived, not deleted, with their reason.
    let expired = store.expired_entries().unwrap();
    assert_eq!(expired.len(), 6);
    let orphan = expired.iter().find(|x| x.key == key("orphan")).unwrap();
    assert_eq!(orphan.reason, Some(ExpireReason::Orphan));
    assert_eq!(orphan.expired_at, t(100));
    let orphan_dir = root.join("expired/ns/sub").join(&orphan.name);
    assert_eq!(fs::read(orphan_dir.join("image")).unwrap(), b"who knows");
    let marker: ExpiryMarker =
        serde_json::from_slice(&fs::read(orphan_dir.join(MARKER_FILE)).unwrap()).unwrap();
    assert_eq!(marker.expired.reason, ExpireReason::Orphan);
    let unv = expired.iter().find(|x| x.key == key("unverified")).unwrap();
    let moved: ImageRecord = serde_json::from_slice(
        &fs::read(
            root.join("expired/ns/sub")
                .join(&unv.name)
                .join(RECORD_FILE),
        )
        .unwrap(),
    )
    .unwrap();
    assert_eq!(
        moved.expired.as_ref().unwrap().reason,
        ExpireReason::Unverified
    );

    // The endorsed area now only holds verified entries (plus the reported
    // orphan record and the foreign things, which are not images).
    assert_eq!(
        store
            .inventory()
            .unwrap()
            .iter()
            .map(|c| c.key.clone())
            .collect::<Vec<_>>(),
        vec![good.clone()]
    );

    // The caller decides about the partial; the orphan record can be archived.
    assert_eq!(store.discard_partial(&key("downloading")).unwrap(), 100);
    let archived = store
        .expire(&key("rec-only"), ExpireReason::Missing, t(200))
        .unwrap();
    assert_eq!(archived.bytes, 0);

    // A second run only reports the foreign things again.
    let again = store.recover_at(t(300)).unwrap();
    assert!(
        again.quarantined.is_empty() && again.orphan_records.is_empty() && again.removed.is_empty()
    );
    assert_eq!(again.unexpected.len(), 4);
    assert_eq!(again.endorsed, 1);
}

#[test]
fn recovery_completes_an_interrupted_expiry() {
    let (dir, store) = new_store();
    let root = dir.path().join("cache");
    let k = key("img");
    promote_bytes(&store, &k, b"bytes");
    store.set_crash_at(Some(Step::ExpiryMarked));
    assert!(
        store
            .expire(&k, ExpireReason::SignerInvalid, t(5))
            .unwrap_err()
            .is_simulated_crash()
    );
    store.set_crash_at(None);
    // Marked entries no longer count as cached, even before recovery.
    assert!(store.inventory().unwrap().is_empty());
    let report = CacheStore::open(&root).unwrap().recover_at(t(50)).unwrap();
    assert_eq!(report.completed_expiries.len(), 1);
    let done = &report.completed_expiries[0];
    assert_eq!(done.reason, Some(ExpireReason::SignerInvalid));
    // The original time of the decision is kept.
    assert_eq!(done.expired_at, t(5));
    assert_eq!(done.name, "20231114T221325Z-img");
    assert!(
        tree(&root.join(ENDORSED_DIR))
            .iter()
            .all(|p| p.ends_with('/'))
    );
}

// ----- expiry -------------------------------------------------------------

#[test]
fn expire_moves_file_and_record_with_reason_and_timestamp() {
    let (dir, store) = new_store();
    let root = dir.path().join("cache");
    let k = key("img");
    promote_bytes(&store, &k, b"version one");
    let e1 = store
        .expire(&k, ExpireReason::RemovedFromList, t(0))
        .unwrap();
    assert_eq!(e1.name, "20231114T221320Z-img");
    assert_eq!(e1.bytes, 11);
    assert_eq!(e1.reason, Some(ExpireReason::RemovedFromList));
    let dir1 = root.join("expired/ns/sub/20231114T221320Z-img");
    assert_eq!(fs::read(dir1.join(IMAGE_FILE)).unwrap(), b"version one");
    let rec: ImageRecord =
        serde_json::from_slice(&fs::read(dir1.join(RECORD_FILE)).unwrap()).unwrap();
    let expiry = rec.expired.unwrap();
    assert_eq!(expiry.reason, ExpireReason::RemovedFromList);
    assert_eq!(expiry.at, t(0));
    assert_eq!(rec.verified_at, Some(t(0)));
    assert!(!store.entry_path(&k).exists());
    assert!(store.inventory().unwrap().is_empty());

    // The same key expiring again in the same second gets a distinct name.
    promote_bytes(&store, &k, b"version two");
    let e2 = store
        .expire(&k, ExpireReason::ChecksumChanged, t(0))
        .unwrap();
    assert_eq!(e2.name, "20231114T221320Z.1-img");
    let mut listed = store.expired_entries().unwrap();
    listed.sort_by(|a, b| a.name.cmp(&b.name));
    assert_eq!(listed, vec![e1, e2]);

    assert_eq!(
        store
            .expire(&k, ExpireReason::Orphan, t(0))
            .unwrap_err()
            .reason(),
        "not-found"
    );
    assert_eq!(expired_name_stamp(t(0)), "20231114T221320Z");
}

// ----- integrity ------------------------------------------------------------

#[test]
fn recheck_detects_corruption_and_the_plan_downloads_again() {
    let (dir, store) = new_store();
    let root = dir.path().join("cache");
    let s = key("x").cache_list_key();
    let bytes = vec![3u8; 3 * 1024 * 1024 + 17];
    let wanted = |image: &str| Desired {
        subscription: s.clone(),
        state: SubscriptionState::Endorsed {
            list_expires: t(10_000),
            wanted: vec![WantedImage {
                image: ImageId::new(image).unwrap(),
                sha512: sha_of(&bytes),
                size: bytes.len() as u64,
                expires: None,
            }],
            listed: vec![],
        },
    };

    for (case, corrupt, reason) in [
        ("flip", 0, ExpireReason::ChecksumMismatch),
        ("truncate", 1, ExpireReason::SizeMismatch),
        ("delete", 2, ExpireReason::Missing),
    ] {
        let k = key(case);
        promote_bytes(&store, &k, &bytes);
        assert_eq!(
            store.recheck_at(&k, t(1)).unwrap(),
            Integrity::Intact {
                sha512: sha_of(&bytes),
                size: bytes.len() as u64
            }
        );
        let p = plan(&store.inventory().unwrap(), &[wanted(case)], t(1));
        assert_eq!(p.keep, vec![k.clone()]);

        let img = store.image_path(&k);
        match corrupt {
            0 => {
                let mut data = fs::read(&img).unwrap();
                data[2 * 1024 * 1024] ^= 1;
                fs::write(&img, data).unwrap();
            }
            1 => fs::OpenOptions::new()
                .write(true)
                .open(&img)
                .unwrap()
                .set_len(10)
                .unwrap(),
            _ => fs::remove_file(&img).unwrap(),
        }
        let Integrity::Corrupt {
            reason: got,
            detail,
            expired,
        } = store.recheck_at(&k, t(2)).unwrap()
        else {
            panic!("{case}: corruption not detected");
        };
        assert_eq!(got, reason, "{case}: {detail}");
        assert_eq!(expired.reason, Some(reason));
        let moved: ImageRecord = serde_json::from_slice(
            &fs::read(
                root.join("expired/ns/sub")
                    .join(&expired.name)
                    .join(RECORD_FILE),
            )
            .unwrap(),
        )
        .unwrap();
        assert_eq!(moved.expired.as_ref().unwrap().reason, reason);
        assert_eq!(
            moved.expired.unwrap().detail.as_deref(),
            Some(detail.as_str())
        );
        // Gone from the cache, so planned for download again.
        let p = plan(&store.inventory().unwrap(), &[wanted(case)], t(3));
        assert_eq!(p.download.len(), 1, "{case}");
        assert_eq!(p.download[0].key, k);
        assert_endorsed_area_clean(&root);
    }
}

#[test]
fn recheck_of_an_unknown_image_is_not_found() {
    let (_dir, store) = new_store();
    assert_eq!(
        store.recheck(&key("nope")).unwrap_err().reason(),
        "not-found"
    );
}

// ----- retention ------------------------------------------------------------

#[test]
fn retention_by_count_age_and_bytes_on_disk() {
    let (dir, store) = new_store();
    let root = dir.path().join("cache");
    let day = 86_400;
    for (i, size) in [(0i64, 100usize), (1, 200), (2, 300), (3, 400)] {
        let k = key(&format!("img{i}"));
        promote_bytes(&store, &k, &vec![i as u8; size]);
        store
            .expire(&k, ExpireReason::RemovedFromList, t(i * day))
            .unwrap();
    }
    let now = t(10 * day);
    assert_eq!(store.expired_entries().unwrap().len(), 4);

    // Nothing by default.
    let r = store
        .prune_expired(&RetentionPolicy::default(), now)
        .unwrap();
    assert!(r.deleted.is_empty());

    // By age: older than 8.5 days -> img0 and img1 (10 and 9 days old).
    let r = store
        .prune_expired(
            &RetentionPolicy {
                max_age: Some(std::time::Duration::from_secs(8 * 86_400 + 43_200)),
                ..Default::default()
            },
            now,
        )
        .unwrap();
    assert_eq!(
        r.deleted
            .iter()
            .map(|e| e.key.image.as_str())
            .collect::<Vec<_>>(),
        vec!["img0", "img1"]
    );
    assert_eq!(r.freed_bytes, 300);
    assert!(r.failed.is_empty());

    // By bytes: 700 left, limit 500 -> the oldest (img2, 300) goes.
    let r = store
        .prune_expired(
            &RetentionPolicy {
                max_bytes: Some(500),
                ..Default::default()
            },
            now,
        )
        .unwrap();
    assert_eq!(
        r.deleted
            .iter()
            .map(|e| e.key.image.as_str())
            .collect::<Vec<_>>(),
        vec!["img2"]
    );

    // By count.
    let r = store
        .prune_expired(
            &RetentionPolicy {
                max_count: Some(0),
                ..Default::default()
            },
            now,
        )
        .unwrap();
    assert_eq!(r.deleted.len(), 1);
    assert_eq!(r.freed_bytes, 400);
    assert_eq!(tree(&root.join(EXPIRED_DIR)), vec!["ns/", "ns/sub/"]);
}

#[test]
fn retention_refuses_tampered_names_and_does_not_follow_links() {
    let (dir, store) = new_store();
    let root = dir.path().join("cache");
    let outside = dir.path().join("outside");
    fs::create_dir(&outside).unwrap();
    fs::write(outside.join("keep"), b"k").unwrap();

    let k = key("img");
    promote_bytes(&store, &k, b"abc");
    let mut entry = store.expire(&k, ExpireReason::Unsubscribed, t(0)).unwrap();
    // A link inside the expired entry is removed, its target is not.
    symlink(
        outside.join("keep"),
        root.join("expired/ns/sub").join(&entry.name).join("link"),
    )
    .unwrap();

    let mut evil = entry.clone();
    evil.name = "../../../outside".into();
    let mut hidden = entry.clone();
    hidden.name = ".hidden".into();
    let report = store.apply_retention(&[evil, hidden]);
    assert_eq!(report.failed.len(), 2);
    assert!(
        report
            .failed
            .iter()
            .all(|(_, e)| e.reason() == "unsafe-name")
    );

    // A planted symlink in place of an expired entry is refused.
    symlink(&outside, root.join("expired/ns/sub/20000101T000000Z-x")).unwrap();
    let mut linked = entry.clone();
    linked.name = "20000101T000000Z-x".into();
    let report = store.apply_retention(&[linked]);
    assert_eq!(report.failed[0].1.reason(), "symlink-refused");

    entry.bytes = 0;
    let report = store.apply_retention(&[entry]);
    assert!(report.failed.is_empty(), "{:?}", report.failed);
    assert_eq!(report.freed_bytes, 3);
    assert_eq!(fs::read(outside.join("keep")).unwrap(), b"k");
}

// ----- symlinks ---------------------------------------------------------------

#[test]
fn symlink_planted_in_the_endorsed_area_is_refused() {
    let (dir, store) = new_store();
    let root = dir.path().join("cache");
    let outside = dir.path().join("outside");
    fs::create_dir(&outside).unwrap();

    // The subscription directory is a link to somewhere else.
    fs::create_dir_all(root.join("endorsed/ns")).unwrap();
    symlink(&outside, root.join("endorsed/ns/sub")).unwrap();
    let k = key("img");
    write_partial(&store, &k, b"payload");
    let err = store.promote(&k, &record_of(&k, b"payload")).unwrap_err();
    assert_eq!(err.reason(), "symlink-refused", "{err}");
    assert!(
        tree(&outside).is_empty(),
        "write redirected: {:?}",
        tree(&outside)
    );
    assert_eq!(fs::read(store.partial_path(&k)).unwrap(), b"payload");
    assert_eq!(
        store
            .expire(&k, ExpireReason::Orphan, t(0))
            .unwrap_err()
            .reason(),
        "symlink-refused"
    );
    assert_eq!(store.recheck(&k).unwrap_err().reason(), "symlink-refused");
    fs::remove_file(root.join("endorsed/ns/sub")).unwrap();

    // The image inside an entry is a link.
    store.promote(&k, &record_of(&k, b"payload")).unwrap();
    fs::write(outside.join("other"), b"payload").unwrap();
    fs::remove_file(store.image_path(&k)).unwrap();
    symlink(outside.join("other"), store.image_path(&k)).unwrap();
    assert_eq!(
        store.open_image(&k).unwrap_err().reason(),
        "symlink-refused"
    );
    assert_eq!(store.recheck(&k).unwrap_err().reason(), "symlink-refused");
    assert!(store.inventory().unwrap().is_empty());

    // The whole endorsed area is a link.
    let (dir2, store2) = new_store();
    let root2 = dir2.path().join("cache");
    fs::remove_dir(root2.join(ENDORSED_DIR)).unwrap();
    symlink(&outside, root2.join(ENDORSED_DIR)).unwrap();
    assert_eq!(store2.inventory().unwrap_err().reason(), "symlink-refused");
    assert_eq!(
        CacheStore::open(&root2).unwrap_err().reason(),
        "symlink-refused"
    );
}

#[test]
fn symlink_planted_as_a_partial_file_is_refused() {
    let (dir, store) = new_store();
    let outside = dir.path().join("victim");
    fs::write(&outside, b"precious").unwrap();
    let k = key("img");
    store.prepare_partial(&k).unwrap();
    symlink(&outside, store.partial_path(&k)).unwrap();
    assert_eq!(
        store.prepare_partial(&k).unwrap_err().reason(),
        "symlink-refused"
    );
    assert_eq!(
        store.open_partial(&k).unwrap_err().reason(),
        "symlink-refused"
    );
    assert_eq!(
        store.partial_len(&k).unwrap_err().reason(),
        "symlink-refused"
    );
    assert_eq!(
        store
            .promote(&k, &record_of(&k, b"precious"))
            .unwrap_err()
            .reason(),
        "symlink-refused"
    );
    // Discarding removes the link, not the target.
    assert_eq!(store.discard_partial(&k).unwrap(), 0);
    assert_eq!(fs::read(&outside).unwrap(), b"precious");

    // A FIFO does not hang the store.
    let fifo = store.partial_path(&k);
    let status = std::process::Command::new("mkfifo").arg(&fifo).status();
    if status.is_ok_and(|s| s.success()) {
        assert_eq!(
            store.open_partial(&k).unwrap_err().reason(),
            "unexpected-file-type"
        );
    }
}

// ----- space ------------------------------------------------------------------

#[test]
fn disk_space_precheck_names_needed_and_available() {
    let (_dir, store) = new_store();
    let ok = store.check_space(0).unwrap();
    assert_eq!(ok.needed, 0);
    assert!(ok.available > 0);
    let err = store.check_space(u64::MAX).unwrap_err();
    assert_eq!(err.reason(), "no-space");
    let StoreError::NoSpace {
        needed,
        available,
        path,
    } = &err
    else {
        panic!("{err:?}");
    };
    assert_eq!(*needed, u64::MAX);
    assert!(*available < u64::MAX);
    assert_eq!(path, store.root());
    let msg = err.to_string();
    assert!(
        msg.contains(&u64::MAX.to_string()) && msg.contains(&available.to_string()),
        "{msg}"
    );

    // The reserve counts.
    let reserved = CacheStore::open(store.root())
        .unwrap()
        .with_min_free_bytes(u64::MAX);
    assert_eq!(reserved.check_space(0).unwrap_err().reason(), "no-space");

    // Bytes already in the partial file are not needed again.
    let k = key("img");
    write_partial(&store, &k, &[0; 4096]);
    let check = store.check_space_for(&k, 4096 + 100).unwrap();
    assert_eq!(check.needed, 100);
    let check = store.check_space_for(&k, 10).unwrap();
    assert_eq!(check.needed, 0);
    let err = store.check_space_for(&key("other"), u64::MAX).unwrap_err();
    assert!(matches!(
        err,
        StoreError::NoSpace {
            needed: u64::MAX,
            ..
        }
    ));

    // The pure parts.
    assert_eq!(bytes_still_needed(100, 30, 5), 75);
    assert_eq!(bytes_still_needed(100, 300, 5), 5);
    assert_eq!(bytes_still_needed(u64::MAX, 0, 1), u64::MAX);
    assert!(compare_space(Path::new("/c"), 10, 10).is_ok());
    assert!(compare_space(Path::new("/c"), 11, 10).is_err());
}

// ----- a real small file system -----------------------------------------------

const SMALL_FS_ENV: &str = "VMLISUB_STORE_SMALL_FS";

/// Runs [`small_fs_checks`] on a 1 MiB tmpfs. The test re-executes itself
/// inside a private user and mount namespace (`unshare -rm`), where an
/// unprivileged user may mount a tmpfs; the mount disappears with the
/// process. Skipped (with a message) where user namespaces are unavailable.
#[test]
fn small_real_filesystem() {
    if let Ok(dir) = std::env::var(SMALL_FS_ENV) {
        small_fs_checks(Path::new(&dir));
        println!("small-fs checks passed");
        return;
    }
    let mnt = TempDir::new().unwrap();
    let exe = std::env::current_exe().unwrap();
    let name = format!(
        "{}::small_real_filesystem",
        module_path!().split_once("::").unwrap().1
    );
    let out = std::process::Command::new("unshare")
        .args(["--user", "--map-root-user", "--mount", "sh", "-c"])
        .arg("mount -t tmpfs -o size=1m vmlisub-test \"$0\" || exit 77; exec \"$@\"")
        .arg(mnt.path())
        .arg(&exe)
        .args(["--exact", &name, "--nocapture", "--test-threads=1"])
        .env(SMALL_FS_ENV, mnt.path())
        .output();
    let out = match out {
        Ok(out) => out,
        Err(e) => {
            eprintln!("skipping small_real_filesystem: cannot run unshare: {e}");
            return;
        }
    };
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !stdout.contains("running 1 test") {
        eprintln!(
            "skipping small_real_filesystem: no private tmpfs ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
        return;
    }
    assert!(
        out.status.success() && stdout.contains("small-fs checks passed"),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    println!("small_real_filesystem: checks ran on a private 1 MiB tmpfs");
}

fn small_fs_checks(mnt: &Path) {
    const KIB: u64 = 1024;
    let store = CacheStore::open(mnt.join("cache")).unwrap();
    let available = store.check_space(0).unwrap().available;
    assert!(
        available <= 1024 * KIB && available > 512 * KIB,
        "{available}"
    );

    let err = store.check_space(2048 * KIB).unwrap_err();
    assert!(
        matches!(err, StoreError::NoSpace { needed, available: a, .. } if needed == 2048 * KIB && a == available),
        "{err}"
    );

    // A half-downloaded image: the rest fits, another full image does not.
    let a = key("a");
    let a_bytes = vec![0xa5; 512 * KIB as usize];
    write_partial(&store, &a, &a_bytes);
    let check = store.check_space_for(&a, 512 * KIB + 64 * KIB).unwrap();
    assert_eq!(check.needed, 64 * KIB);
    let err = store.check_space_for(&key("b"), 768 * KIB).unwrap_err();
    assert_eq!(err.reason(), "no-space");

    // Fill the file system with another download.
    let b = key("b");
    let (mut file, _) = store.open_partial(&b).unwrap();
    let chunk = vec![0u8; 64 * KIB as usize];
    let write_err = loop {
        if let Err(e) = file.write_all(&chunk) {
            break e;
        }
    };
    drop(file);
    let mapped = StoreError::io("write", store.partial_path(&b), write_err);
    assert_eq!(mapped.reason(), "no-space", "{mapped}");

    // Promotion needs a little space for the record: it fails cleanly with
    // no-space and leaves the old state.
    let err = store.promote(&a, &record_of(&a, &a_bytes)).unwrap_err();
    assert_eq!(err.reason(), "no-space", "{err}");
    assert_eq!(fs::read(store.partial_path(&a)).unwrap(), a_bytes);
    assert!(store.inventory().unwrap().is_empty());
    assert_endorsed_area_clean(&mnt.join("cache"));
    assert!(store.recover().unwrap().rolled_back.is_empty());

    // Free space by discarding the other download; now it goes through.
    assert!(store.discard_partial(&b).unwrap() > 0);
    store.promote(&a, &record_of(&a, &a_bytes)).unwrap();
    assert_eq!(store.inventory().unwrap().len(), 1);
    assert_endorsed_area_clean(&mnt.join("cache"));
}

#[test]
fn downloader_sidecars_travel_with_their_partials() {
    let (_dir, store) = new_store();
    let k = key("img-1");
    let partial = store.prepare_partial(&k).unwrap();
    fs::write(&partial, b"0123456789").unwrap();
    let sidecar = crate::transfer::sidecar_path(&partial);
    fs::write(&sidecar, b"{}").unwrap();
    // An orphan sidecar (no partial) is cleaned up; the live one is kept
    // and never reported as unexpected or as a partial of its own.
    let orphan = partial.with_file_name(".gone.meta");
    fs::write(&orphan, b"{}").unwrap();
    let recovery = store.recover_at(t(0)).unwrap();
    assert!(recovery.unexpected.is_empty(), "{:?}", recovery.unexpected);
    assert_eq!(recovery.partials.len(), 1);
    assert!(sidecar.exists());
    assert!(!orphan.exists());
    assert_eq!(store.discard_partial(&k).unwrap(), 10);
    assert!(!sidecar.exists());
}
