//! The real `vmlisub operator` against the real control plane, authenticated
//! with the chart's own ServiceAccount (so the chart's RBAC is all it has),
//! fed by a loopback HTTP publisher of lists signed by a test PKI made now.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../../operator/tests/support/live.rs"]
#[allow(dead_code)]
mod live;

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context as _, Result, bail, ensure};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Event;
use kube::api::{Api, DeleteParams, DynamicObject, ListParams};
use serde_json::{Value, json};
use sha2::Digest as _;
use vmlisub_e2e::operator::{
    OperatorRun, Publisher, artifact_reader_token, http_get, http_get_as, http_request,
};
use vmlisub_e2e::{
    Cluster, Process, eventually, request_reconcile, uninstall_chart_rbac, vmli_api,
};

const LIST_ID: &str = "3f0e7c52-9a41-4d1e-b6a0-5c2d8e9f1a01";

async fn status(cluster: &Cluster, ns: &str, kind: &str, name: &str) -> Result<Value> {
    let obj = vmli_api(cluster, ns, kind).get(name).await?;
    Ok(obj.data.get("status").cloned().unwrap_or(Value::Null))
}

/// Whether an Event with each of `wanted` reasons is among `events`.
fn has_reasons(events: &[Event], wanted: &[&str]) -> bool {
    wanted
        .iter()
        .all(|w| events.iter().any(|e| e.reason.as_deref() == Some(*w)))
}

fn condition(status: &Value, type_: &str) -> Option<(String, String)> {
    status["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == type_)
        .map(|c| {
            (
                c["status"].as_str().unwrap_or_default().to_string(),
                c["reason"].as_str().unwrap_or_default().to_string(),
            )
        })
}

/// Waits until `kind/name`'s status satisfies `check`.
async fn wait_status(
    cluster: &Cluster,
    ns: &str,
    kind: &str,
    name: &str,
    what: &str,
    operator: &mut Process,
    check: impl Fn(&Value) -> bool,
) -> Result<Value> {
    // An object the operator creates (AutoSubscribe) may not exist yet:
    // NotFound is "not yet", any other error ends the wait.
    // 120 s: a Job failed by its deadline, on a loaded node, waits for
    // its pod's teardown before the Job controller says Failed.
    let result = eventually(Duration::from_secs(120), what, || async {
        match vmli_api(cluster, ns, kind).get_opt(name).await? {
            None => Ok(None),
            Some(obj) => {
                let status = obj.data.get("status").cloned().unwrap_or(Value::Null);
                Ok(check(&status).then_some(status))
            }
        }
    })
    .await;
    if result.is_err() {
        eprintln!("--- operator log ---\n{}", operator.logs());
        if let Ok(status) = status(cluster, ns, kind, name).await {
            eprintln!("--- {kind}/{name} status ---\n{status:#}");
        }
    }
    result
}

fn ready_is(status: &Value, value: &str, reason: &str) -> bool {
    condition(status, "Ready")
        .is_some_and(|(s, r)| s == value && (reason.is_empty() || r == reason))
}

fn sha512_hex(bytes: &[u8]) -> String {
    sha2::Sha512::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The publisher, the PKI and the operator of one test.
struct Site {
    _dir: tempfile::TempDir,
    /// The cache in memory ([`Site::cache_in_memory`]).
    _memory_cache: Option<tempfile::TempDir>,
    pki: live::LivePki,
    publisher: Publisher,
    run: OperatorRun,
    release: String,
}

/// A new namespace (`prefix-...`) with vmlisub's CRDs, and the site of
/// operator `name` in it.
async fn site(cluster: &Cluster, prefix: &str, name: &str) -> Result<(String, Site)> {
    let ns = cluster.create_namespace(prefix).await?;
    cluster
        .apply_crds(&vmlisub_e2e::repo_path("crds/vmlisub.yaml"))
        .await?;
    let site = site_in(cluster, &ns, name).await?;
    Ok((ns, site))
}

/// The site of operator `name` in the namespace `ns`.
async fn site_in(cluster: &Cluster, ns: &str, name: &str) -> Result<Site> {
    let dir = tempfile::Builder::new()
        .prefix(&format!("vmlisub-e2e-{name}-"))
        .tempdir()?;
    let pki_dir = dir.path().join("pki");
    std::fs::create_dir_all(&pki_dir)?;
    let pki = live::LivePki::new(&pki_dir);
    let publisher = Publisher::start(&dir.path().join("www"))?;
    let (run, release) = OperatorRun::as_chart(cluster, ns, dir.path(), &pki.ca_dir, true).await?;
    Ok(Site {
        _dir: dir,
        _memory_cache: None,
        pki,
        publisher,
        run,
        release,
    })
}

impl Site {
    /// Puts the operator's cache on tmpfs (/dev/shm). For tests that assert
    /// a small download finishes within the 2 s before a `Downloading`
    /// write: a disk shared with other jobs can hold one fsync of the
    /// promotion for seconds.
    fn cache_in_memory(&mut self) -> Result<()> {
        let dir = tempfile::Builder::new()
            .prefix("vmlisub-e2e-cache-")
            .tempdir_in("/dev/shm")
            .context("a cache directory in /dev/shm")?;
        self.run.cache_dir = dir.path().to_path_buf();
        self._memory_cache = Some(dir);
        Ok(())
    }

    /// Deletes the test's vmlisub objects while the operator still runs,
    /// so that it removes its finalizers and no later test's (cluster-wide)
    /// operator finds them; then stops the operator and removes the chart's
    /// RBAC and the namespace.
    async fn finish(&self, cluster: &Cluster, ns: &str, mut operator: Process) -> Result<()> {
        let emptied = vmlisub_e2e::delete_vmli_objects(cluster, ns).await;
        if emptied.is_err() {
            eprintln!("--- operator log ---\n{}", operator.logs());
        }
        emptied?;
        operator.terminate(Duration::from_secs(10)).await?;
        uninstall_chart_rbac(cluster, &self.release).await?;
        cluster.delete_namespace(ns).await?;
        Ok(())
    }

    fn publish_list(&self, version: &str, images: &[(&str, &[u8])]) -> Result<String> {
        let entries: Vec<(String, String, &[u8])> = images
            .iter()
            .map(|(id, bytes)| {
                let uri = self.publisher.put(id, bytes).unwrap();
                (id.to_string(), uri, *bytes)
            })
            .collect();
        let refs: Vec<(&str, &str, &[u8])> = entries
            .iter()
            .map(|(id, uri, bytes)| (id.as_str(), uri.as_str(), *bytes))
            .collect();
        let signed = self.pki.list(LIST_ID, version, &refs);
        self.publisher.put("image.list", &signed)
    }

    /// The Endorser, the list `site` at `url` (hourly) and the
    /// ImageSubscription `one` for `img-one`; starts the operator as `name`
    /// and waits until the image is Available.
    async fn subscribe_one(
        &self,
        cluster: &Cluster,
        ns: &str,
        url: &str,
        name: &str,
    ) -> Result<Process> {
        cluster.apply_json(ns, self.endorser()).await?;
        cluster
            .apply_json(ns, vmlisub_e2e::publisher_list("site", url, false))
            .await?;
        cluster
            .apply_json(
                ns,
                json!({
                    "apiVersion": "vmli.hepix.org/v1alpha1", "kind": "ImageSubscription",
                    "metadata": {"name": "one"},
                    "spec": {"subscriptionRef": {"name": "site"}, "identifier": "img-one"},
                }),
            )
            .await?;
        let mut operator = self.run.start(name).await?;
        wait_status(
            cluster,
            ns,
            "ImageSubscription",
            "one",
            "image Available",
            &mut operator,
            |s| s["phase"] == "Available",
        )
        .await?;
        Ok(operator)
    }

    /// Applies the Endorser and an AutoSubscribe ImageListSubscription
    /// `name` of `url` (hourly).
    async fn auto_subscribe(
        &self,
        cluster: &Cluster,
        ns: &str,
        name: &str,
        url: &str,
    ) -> Result<()> {
        cluster.apply_json(ns, self.endorser()).await?;
        cluster
            .apply_json(ns, vmlisub_e2e::publisher_list(name, url, true))
            .await?;
        Ok(())
    }

    fn endorser(&self) -> Value {
        vmlisub_e2e::publisher_endorser(&self.pki.subject, &self.pki.issuer)
    }

    fn cache_file(&self, ns: &str, sub: &str, id: &str) -> PathBuf {
        self.run
            .cache_dir
            .join("endorsed")
            .join(ns)
            .join(sub)
            .join(id)
            .join("image")
    }
}

fn expired_entries(cache: &Path, ns: &str, sub: &str) -> Vec<String> {
    std::fs::read_dir(cache.join("expired").join(ns).join(sub))
        .map(|dir| {
            dir.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn operator_verifies_caches_rejects_rotates_and_archives() -> Result<()> {
    let cluster = vmlisub_e2e::cluster_or_skip!();
    let (ns, site) = site(&cluster, "operator", "lifecycle").await?;
    let images: Vec<(&str, Vec<u8>)> = vec![
        ("img-one", vec![1u8; 40_000]),
        ("img-two", vec![2u8; 50_000]),
        ("img-three", vec![3u8; 60_000]),
    ];
    let refs: Vec<(&str, &[u8])> = images.iter().map(|(i, b)| (*i, b.as_slice())).collect();
    let url = site.publish_list("2", &refs)?;
    let sum_three = sha512_hex(&images[2].1);

    cluster.apply_json(&ns, site.endorser()).await?;
    cluster
        .apply_json(&ns, vmlisub_e2e::publisher_list("site", &url, false))
        .await?;
    for (name, selector) in [
        ("one", json!({"identifier": "img-one"})),
        ("three", json!({"sha512": sum_three})),
    ] {
        let mut spec = json!({"subscriptionRef": {"name": "site"}});
        spec.as_object_mut()
            .unwrap()
            .extend(selector.as_object().unwrap().clone());
        cluster
            .apply_json(
                &ns,
                json!({
                    "apiVersion": "vmli.hepix.org/v1alpha1", "kind": "ImageSubscription",
                    "metadata": {"name": name}, "spec": spec,
                }),
            )
            .await?;
    }
    let mut operator = site.run.start("operator-lifecycle").await?;
    // The artifact server wants a token allowed to read the namespace.
    let reader = artifact_reader_token(&cluster, &ns, "reader").await?;

    // Happy path: both images Available, on disk, verified, served.
    for (name, id, bytes) in [
        ("one", "img-one", &images[0].1),
        ("three", "img-three", &images[2].1),
    ] {
        let status = wait_status(
            &cluster,
            &ns,
            "ImageSubscription",
            name,
            "image Available",
            &mut operator,
            |s| s["phase"] == "Available" && ready_is(s, "True", ""),
        )
        .await?;
        let artifact = &status["artifact"];
        assert_eq!(artifact["digest"], format!("sha512:{}", sha512_hex(bytes)));
        assert_eq!(artifact["size"], bytes.len());
        let on_disk = std::fs::read(site.cache_file(&ns, "site", id))?;
        assert_eq!(sha512_hex(&on_disk), sha512_hex(bytes));
        let url = artifact["url"].as_str().context("artifact url")?;
        let (code, body) = http_get_as(url, None, &reader)?;
        assert_eq!((code, body.len()), (200, bytes.len()));
        let (code, body) = http_get_as(url, Some("bytes=100-199"), &reader)?;
        assert_eq!((code, body.as_slice()), (206, &bytes[100..200]));
    }
    let list = wait_status(
        &cluster,
        &ns,
        "ImageListSubscription",
        "site",
        "list Ready",
        &mut operator,
        |s| ready_is(s, "True", ""),
    )
    .await?;
    assert_eq!(list["list"]["version"], "2");
    assert_eq!(list["imageCount"], 3);
    assert_eq!(list["list"]["signer"]["subject"], site.pki.subject.as_str());
    // The list itself is served, signed and as bare JSON.
    let (code, _) = http_get_as(
        &format!("{}/lists/{ns}/site.smime", site.run.base_url()),
        None,
        &reader,
    )?;
    assert_eq!(code, 200);
    let (code, body) = http_get_as(
        &format!("{}/lists/{ns}/site.json", site.run.base_url()),
        None,
        &reader,
    )?;
    assert_eq!(code, 200);
    assert!(String::from_utf8_lossy(&body).contains(LIST_ID));
    let one = vmli_api(&cluster, &ns, "ImageSubscription")
        .get("one")
        .await?;
    cluster
        .events_until(&one, "DownloadStarted and Available", |events| {
            has_reasons(events, &["DownloadStarted", "Available"])
        })
        .await?;

    // Bad update 1: a tampered list. Ready=False with the reason; the images stay.
    let signed = std::fs::read(site.publisher.dir.join("image.list"))?;
    let text = String::from_utf8_lossy(&signed).replace("Image img-one", "Image img-0ne");
    assert_ne!(
        text.as_bytes(),
        signed.as_slice(),
        "tampering must change the list"
    );
    site.publisher.put("image.list", text.as_bytes())?;
    request_reconcile(&cluster, &ns, "ImageListSubscription", "site", "tamper").await?;
    let list = wait_status(
        &cluster,
        &ns,
        "ImageListSubscription",
        "site",
        "tampered list rejected",
        &mut operator,
        |s| s["lastHandledReconcileAt"] == "tamper" && ready_is(s, "False", ""),
    )
    .await?;
    let (_, reason) = condition(&list, "Ready").unwrap();
    assert!(
        ["SignatureInvalid", "DigestMismatch"].contains(&reason.as_str()),
        "{reason}"
    );
    assert_eq!(condition(&list, "SignatureVerified").unwrap().0, "False");
    assert_eq!(list["list"]["version"], "2", "the last good list stays");
    assert_eq!(
        status(&cluster, &ns, "ImageSubscription", "one").await?["phase"],
        "Available"
    );

    // Bad update 2: a validly signed older version (rollback).
    site.publish_list("1", &refs)?;
    request_reconcile(&cluster, &ns, "ImageListSubscription", "site", "rollback").await?;
    let list = wait_status(
        &cluster,
        &ns,
        "ImageListSubscription",
        "site",
        "rollback rejected",
        &mut operator,
        |s| s["lastHandledReconcileAt"] == "rollback" && ready_is(s, "False", ""),
    )
    .await?;
    let (_, reason) = condition(&list, "Ready").unwrap();
    assert!(reason.contains("Rollback"), "{reason}");
    assert_eq!(
        status(&cluster, &ns, "ImageSubscription", "three").await?["phase"],
        "Available"
    );

    // Rotation: version 3 drops img-one; it expires and is archived, in order.
    let kept: Vec<(&str, &[u8])> = refs[1..].to_vec();
    site.publish_list("3", &kept)?;
    request_reconcile(&cluster, &ns, "ImageListSubscription", "site", "rotate").await?;
    wait_status(
        &cluster,
        &ns,
        "ImageListSubscription",
        "site",
        "version 3",
        &mut operator,
        |s| s["list"]["version"] == "3" && ready_is(s, "True", ""),
    )
    .await?;
    let one = wait_status(
        &cluster,
        &ns,
        "ImageSubscription",
        "one",
        "img-one expired",
        &mut operator,
        |s| s["phase"] == "Expired",
    )
    .await?;
    assert_eq!(one["history"][0]["reason"], "removed-from-list");
    assert!(one["artifact"].is_null());
    assert!(!site.cache_file(&ns, "site", "img-one").exists());
    assert!(
        expired_entries(&site.run.cache_dir, &ns, "site")
            .iter()
            .any(|e| e.ends_with("img-one"))
    );
    let one = vmli_api(&cluster, &ns, "ImageSubscription")
        .get("one")
        .await?;
    let events = cluster
        .events_until(&one, "Expiring and Expired", |events| {
            has_reasons(events, &["Expiring", "Expired"])
        })
        .await?;
    let reasons: Vec<String> = events.iter().filter_map(|e| e.reason.clone()).collect();
    let expiring = reasons.iter().position(|r| r == "Expiring");
    let expired = reasons.iter().position(|r| r == "Expired");
    assert!(
        expiring.is_some() && expired.is_some() && expiring < expired,
        "{reasons:?}"
    );
    assert_eq!(
        status(&cluster, &ns, "ImageSubscription", "three").await?["phase"],
        "Available"
    );

    // No reconcile loop: an idle operator writes nothing.
    let before = vmli_api(&cluster, &ns, "ImageSubscription")
        .get("three")
        .await?
        .metadata
        .resource_version;
    tokio::time::sleep(Duration::from_secs(5)).await;
    let after = vmli_api(&cluster, &ns, "ImageSubscription")
        .get("three")
        .await?
        .metadata
        .resource_version;
    assert_eq!(before, after, "an idle image must not be rewritten");

    // Deletion: the finalizer archives the image, then the object goes.
    vmli_api(&cluster, &ns, "ImageSubscription")
        .delete("three", &DeleteParams::default())
        .await?;
    vmlisub_e2e::wait_deleted(
        &vmli_api(&cluster, &ns, "ImageSubscription"),
        "three",
        Duration::from_secs(60),
    )
    .await?;
    assert!(!site.cache_file(&ns, "site", "img-three").exists());
    assert!(
        expired_entries(&site.run.cache_dir, &ns, "site")
            .iter()
            .any(|e| e.ends_with("img-three"))
    );

    // A spec the operator refuses (a local file URL): Stalled, not retried,
    // until the spec is fixed.
    let lists = vmli_api(&cluster, &ns, "ImageListSubscription");
    vmlisub_e2e::merge_patch(
        &lists,
        "site",
        &json!({"spec": {"url": "file:///etc/passwd"}}),
    )
    .await?;
    let list = wait_status(
        &cluster,
        &ns,
        "ImageListSubscription",
        "site",
        "Stalled",
        &mut operator,
        |s| condition(s, "Stalled").is_some_and(|(st, r)| st == "True" && r == "SchemeRefused"),
    )
    .await?;
    assert!(ready_is(&list, "False", ""), "{list:#}");
    vmlisub_e2e::merge_patch(&lists, "site", &json!({"spec": {"url": url}})).await?;
    wait_status(
        &cluster,
        &ns,
        "ImageListSubscription",
        "site",
        "Stalled cleared",
        &mut operator,
        |s| condition(s, "Stalled").is_none() && ready_is(s, "True", ""),
    )
    .await?;

    // Endorser deleted: the list is no longer endorsed and its images go.
    cluster.apply_json(&ns, json!({
        "apiVersion": "vmli.hepix.org/v1alpha1", "kind": "ImageSubscription",
        "metadata": {"name": "two"}, "spec": {"subscriptionRef": {"name": "site"}, "identifier": "img-two"},
    })).await?;
    wait_status(
        &cluster,
        &ns,
        "ImageSubscription",
        "two",
        "img-two Available",
        &mut operator,
        |s| s["phase"] == "Available",
    )
    .await?;
    vmli_api(&cluster, &ns, "Endorser")
        .delete("publisher", &DeleteParams::default())
        .await?;
    let list = wait_status(
        &cluster,
        &ns,
        "ImageListSubscription",
        "site",
        "list without endorser",
        &mut operator,
        |s| ready_is(s, "False", ""),
    )
    .await?;
    assert!(
        condition(&list, "Ready").unwrap().1.starts_with("Endorser"),
        "{list:#}"
    );
    let two = wait_status(
        &cluster,
        &ns,
        "ImageSubscription",
        "two",
        "img-two expired",
        &mut operator,
        |s| s["phase"] == "Expired",
    )
    .await?;
    assert_eq!(two["history"][0]["reason"], "endorser-removed");
    assert!(!site.cache_file(&ns, "site", "img-two").exists());

    // The Lease was taken with the chart's RBAC.
    let leases: Api<k8s_openapi::api::coordination::v1::Lease> =
        Api::namespaced(cluster.client(), &ns);
    let lease = leases.get("vmlisub-leader").await?;
    assert_eq!(
        lease.spec.and_then(|s| s.holder_identity).as_deref(),
        Some("operator-lifecycle")
    );

    site.finish(&cluster, &ns, operator).await
}

/// Issue #10: a refused list stays refused. The publisher answers 304 to
/// the validators of the response it last served, so the operator must
/// never send those of a refused response: every requested reconcile
/// fetches the tampered list again, the conditions keep describing it
/// (SignatureVerified=False with the reason) and the last good list's image
/// stays Available.
#[tokio::test]
async fn operator_keeps_refusing_a_tampered_list_across_reconciles() -> Result<()> {
    let cluster = vmlisub_e2e::cluster_or_skip!();
    let (ns, site) = site(&cluster, "operator-304", "refusal").await?;
    let image = vec![7u8; 30_000];
    let url = site.publish_list("2", &[("img-one", &image)])?;
    let mut operator = site
        .subscribe_one(&cluster, &ns, &url, "operator-refusal")
        .await?;
    wait_status(
        &cluster,
        &ns,
        "ImageListSubscription",
        "site",
        "list Ready",
        &mut operator,
        |s| ready_is(s, "True", ""),
    )
    .await?;
    // The good list, unchanged: its validators are sent and answered 304.
    request_reconcile(&cluster, &ns, "ImageListSubscription", "site", "unchanged").await?;
    wait_status(
        &cluster,
        &ns,
        "ImageListSubscription",
        "site",
        "unchanged list handled",
        &mut operator,
        |s| s["lastHandledReconcileAt"] == "unchanged" && ready_is(s, "True", ""),
    )
    .await?;
    let list_requests = |publisher: &Publisher| -> Vec<String> {
        publisher
            .requests()
            .into_iter()
            .filter(|r| r.starts_with("GET /image.list"))
            .collect()
    };
    let seen = list_requests(&site.publisher);
    assert!(
        seen.last().is_some_and(|r| r.ends_with(" -> 304")),
        "{seen:?}"
    );

    // Tampered, then two more requested reconciles.
    let signed = std::fs::read(site.publisher.dir.join("image.list"))?;
    let text = String::from_utf8_lossy(&signed).replace("Image img-one", "Image img-0ne");
    assert_ne!(
        text.as_bytes(),
        signed.as_slice(),
        "tampering must change the list"
    );
    site.publisher.put("image.list", text.as_bytes())?;
    for token in ["tamper-1", "tamper-2", "tamper-3"] {
        let before = list_requests(&site.publisher).len();
        request_reconcile(&cluster, &ns, "ImageListSubscription", "site", token).await?;
        let list = wait_status(
            &cluster,
            &ns,
            "ImageListSubscription",
            "site",
            &format!("{token} handled"),
            &mut operator,
            |s| s["lastHandledReconcileAt"] == token,
        )
        .await?;
        let (ready, reason) = condition(&list, "Ready").context("Ready")?;
        assert_eq!(ready, "False", "{token}: {list:#}");
        assert!(
            ["SignatureInvalid", "DigestMismatch"].contains(&reason.as_str()),
            "{token}: {list:#}"
        );
        assert_eq!(
            condition(&list, "SignatureVerified"),
            Some(("False".to_string(), reason.clone())),
            "{token}: {list:#}"
        );
        assert_eq!(list["list"]["version"], "2", "the last good list stays");
        // kstatus: retrying, not given up.
        assert_eq!(
            condition(&list, "Reconciling"),
            Some(("True".to_string(), "ProgressingWithRetry".to_string())),
            "{token}: {list:#}"
        );
        assert!(condition(&list, "Stalled").is_none(), "{token}: {list:#}");
        let seen = list_requests(&site.publisher);
        let fetches = &seen[before..];
        assert!(
            !fetches.is_empty() && fetches.iter().all(|r| !r.ends_with(" -> 304")),
            "{token}: the tampered list must be fetched, not answered 304: {seen:?}"
        );
        let one = status(&cluster, &ns, "ImageSubscription", "one").await?;
        assert_eq!(one["phase"], "Available", "{token}: {one:#}");
        assert!(site.cache_file(&ns, "site", "img-one").exists());
    }

    // The publisher repairs its list: accepted again.
    site.publisher.put("image.list", &signed)?;
    request_reconcile(&cluster, &ns, "ImageListSubscription", "site", "repaired").await?;
    let list = wait_status(
        &cluster,
        &ns,
        "ImageListSubscription",
        "site",
        "repaired list accepted",
        &mut operator,
        |s| s["lastHandledReconcileAt"] == "repaired" && ready_is(s, "True", ""),
    )
    .await?;
    assert_eq!(condition(&list, "SignatureVerified").unwrap().0, "True");
    assert!(condition(&list, "Reconciling").is_none(), "{list:#}");

    site.finish(&cluster, &ns, operator).await
}

#[tokio::test]
async fn operator_autosubscribes_expires_lists_and_resumes_after_kill() -> Result<()> {
    let cluster = vmlisub_e2e::cluster_or_skip!();
    let (ns, mut site) = site(&cluster, "operator-auto", "auto").await?;
    site.cache_in_memory()?;
    let big: Vec<u8> = (0..6_000_000u32).map(|i| (i % 251) as u8).collect();
    let small = vec![7u8; 10_000];
    // The list expires 75 s from now: time for two operator starts and
    // the throttled download on a loaded machine, checked below.
    let now = jiff::Timestamp::now();
    let big_uri = site.publisher.put("big", &big)?;
    let small_uri = site.publisher.put("small", &small)?;
    let signed = site.pki.list_with_times(
        LIST_ID,
        "1",
        &[
            ("big", big_uri.as_str(), big.as_slice()),
            ("small", small_uri.as_str(), small.as_slice()),
        ],
        now - jiff::SignedDuration::from_hours(1),
        now + jiff::SignedDuration::from_secs(75),
    );
    let url = site.publisher.put("image.list", &signed)?;
    // 1 MB/s: the big image takes about 6 s, long enough to kill the operator mid-way.
    site.publisher.set_throttle(1_000_000);
    site.auto_subscribe(&cluster, &ns, "auto", &url).await?;
    // Every version of every ImageSubscription, as a watch sees them
    // (each write is one), from before the operator starts.
    let images = vmli_api(&cluster, &ns, "ImageSubscription");
    let seen = observe(images.clone()).await?;
    let mut operator = site.run.start("operator-auto-1").await?;

    // AutoSubscribe creates owned ImageSubscriptions.
    let owned = eventually(
        Duration::from_secs(60),
        "owned ImageSubscriptions",
        || async {
            let list = images.list(&Default::default()).await?;
            Ok((list.items.len() == 2).then_some(list.items))
        },
    )
    .await?;
    for image in &owned {
        let owners = image.metadata.owner_references.clone().unwrap_or_default();
        assert!(owners.iter().any(|o| o.kind == "ImageListSubscription"
            && o.name == "auto"
            && o.controller == Some(true)));
    }
    // Kill -9 in mid-download, then restart: the download resumes.
    let partial = site
        .run
        .cache_dir
        .join("partial")
        .join(&ns)
        .join("auto")
        .join("big");
    eventually(Duration::from_secs(60), "a partial download", || async {
        Ok(std::fs::metadata(&partial)
            .ok()
            .filter(|m| m.len() > 500_000)
            .map(|_| ()))
    })
    .await?;
    let pid = operator.pid();
    let killed = std::process::Command::new("kill")
        .args(["-9", &pid.to_string()])
        .status()?;
    assert!(killed.success());
    let _ = operator.terminate(Duration::from_secs(5)).await;
    // The container restarts (the same pod name, so the same Lease
    // identity: no wait for the killed holder's Lease to expire; a new
    // pod taking over is the node tests' two-replica case).
    let mut operator = site.run.start("operator-auto-1").await?;
    let big_name = owned
        .iter()
        .map(|o| o.metadata.name.clone().unwrap_or_default())
        .find(|n| n.ends_with("-big"))
        .context("owned big")?;
    let big_status = wait_status(
        &cluster,
        &ns,
        "ImageSubscription",
        &big_name,
        "big Available after restart",
        &mut operator,
        |s| s["phase"] == "Available",
    )
    .await?;
    ensure!(
        jiff::Timestamp::now() < now + jiff::SignedDuration::from_secs(70),
        "the machine was too slow for this test: the list expires before its checks"
    );
    assert_eq!(
        big_status["artifact"]["digest"],
        format!("sha512:{}", sha512_hex(&big))
    );
    let on_disk = std::fs::read(site.cache_file(&ns, "auto", "big"))?;
    assert_eq!(
        sha512_hex(&on_disk),
        sha512_hex(&big),
        "nothing corrupt after the restart"
    );
    let resumed = site
        .publisher
        .requests()
        .iter()
        .any(|r| r.starts_with("GET /big bytes="));
    assert!(
        resumed,
        "the second operator resumed with a Range request: {:?}",
        site.publisher.requests()
    );

    // What the writes were. Each ImageSubscription was created with the
    // finalizer (no second write to add it); the small image, done within
    // 2 s, went to Available without a Downloading write; the big one,
    // 6 s at 1 MB/s, showed Downloading with its progress on the way.
    let small_name = owned
        .iter()
        .map(|o| o.metadata.name.clone().unwrap_or_default())
        .find(|n| n.ends_with("-small"))
        .context("owned small")?;
    let (big_versions, small_versions) = (seen.versions(&big_name), seen.versions(&small_name));
    for versions in [&big_versions, &small_versions] {
        let first = versions.first().context("no version watched")?;
        assert_eq!(
            first["metadata"]["finalizers"],
            json!(["vmli.hepix.org/archive"]),
            "created with the finalizer: {first:#}"
        );
    }
    let small_phases = seen.phases(&small_name);
    assert!(
        !small_phases.contains(&"Downloading".to_string()),
        "{small_phases:?}"
    );
    assert!(
        big_versions
            .iter()
            .any(|o| o["status"]["phase"] == "Downloading"
                && o["status"]["progress"]["bytes"].as_u64().unwrap_or(0) > 0
                && o["status"]["progress"]["total"] == big.len()),
        "{:?}",
        seen.phases(&big_name)
    );

    // The list expires: its images expire with it.
    let expiry = eventually(
        Duration::from_secs(150),
        "images expired with the list",
        || async {
            let s = status(&cluster, &ns, "ImageSubscription", &small_name).await?;
            Ok((s["phase"] == "Expired").then_some(s))
        },
    )
    .await;
    if expiry.is_err() {
        eprintln!("--- operator log ---\n{}", operator.logs());
    }
    let small_status = expiry?;
    assert_eq!(small_status["history"][0]["reason"], "list-expired");
    let list = status(&cluster, &ns, "ImageListSubscription", "auto").await?;
    assert!(ready_is(&list, "False", "ListExpired"), "{list:#}");

    // Deleting the list garbage-collects its owned ImageSubscriptions.
    vmli_api(&cluster, &ns, "ImageListSubscription")
        .delete("auto", &DeleteParams::background())
        .await?;
    eventually(
        Duration::from_secs(60),
        "owned ImageSubscriptions collected",
        || async {
            let list = images.list(&Default::default()).await?;
            Ok(list.items.is_empty().then_some(()))
        },
    )
    .await?;
    if operator.try_wait()?.is_some() {
        bail!("the operator exited: {}", operator.logs());
    }
    site.finish(&cluster, &ns, operator).await
}

/// An image waiting for a download slot (`--max-concurrent-downloads 1`,
/// another image downloading) writes nothing while it waits: its only
/// versions are the one AutoSubscribe created and Available. Scale depends
/// on it: 10,000 images found at once cost no write until each one's turn.
#[tokio::test]
async fn operator_writes_nothing_for_an_image_waiting_for_a_download_slot() -> Result<()> {
    let cluster = vmlisub_e2e::cluster_or_skip!();
    let (ns, mut site) = site(&cluster, "operator-slot", "slot").await?;
    site.cache_in_memory()?;
    site.run
        .extra_args
        .extend(["--max-concurrent-downloads".into(), "1".into()]);
    let big: Vec<u8> = (0..5_000_000u32).map(|i| (i % 253) as u8).collect();
    let small = vec![9u8; 10_000];
    // 1 MB/s: the big image holds the one slot for about 5 s.
    site.publisher.set_throttle(1_000_000);
    let url = site.publish_list("1", &[("big", &big)])?;
    site.auto_subscribe(&cluster, &ns, "slot", &url).await?;
    let images = vmli_api(&cluster, &ns, "ImageSubscription");
    let seen = observe(images.clone()).await?;
    let mut operator = site.run.start("operator-slot").await?;
    wait_status(
        &cluster,
        &ns,
        "ImageSubscription",
        "slot-big",
        "big downloading",
        &mut operator,
        |s| s["phase"] == "Downloading",
    )
    .await?;
    // Version 2 adds the small image while the big one holds the slot.
    site.publish_list("2", &[("big", &big), ("small", &small)])?;
    request_reconcile(&cluster, &ns, "ImageListSubscription", "slot", "v2").await?;
    let both = eventually(Duration::from_secs(60), "both Available", || async {
        let mut available = 0;
        for name in ["slot-small", "slot-big"] {
            let image = images.get_opt(name).await?;
            available +=
                usize::from(image.is_some_and(|i| i.data["status"]["phase"] == "Available"));
        }
        Ok((available == 2).then_some(()))
    })
    .await;
    if both.is_err() {
        eprintln!("--- operator log ---\n{}", operator.logs());
    }
    both?;
    assert_eq!(
        seen.phases("slot-small"),
        ["-", "Available"],
        "{:#?}",
        seen.versions("slot-small")
    );
    // It did wait: its download began after the big one's had ended.
    let requests = site.publisher.requests();
    let position = |path: &str| requests.iter().position(|r| r.starts_with(path));
    assert!(
        position("GET /small").is_some() && position("GET /big") < position("GET /small"),
        "{requests:?}"
    );
    site.finish(&cluster, &ns, operator).await
}

/// A download that fails the same way twice, each attempt long enough to
/// show Downloading (5 MB at 1 MB/s against the 2 s timer, the wrong sha512), is reported Failed
/// after each attempt: the second Failed is written although the object as
/// read before that attempt already said exactly that.
#[tokio::test]
async fn operator_reports_a_repeated_failure_after_a_long_attempt() -> Result<()> {
    let cluster = vmlisub_e2e::cluster_or_skip!();
    let (ns, site) = site(&cluster, "operator-refail", "refail").await?;
    let listed = vec![1u8; 5_000_000];
    let served = vec![2u8; 5_000_000];
    let uri = site.publisher.put("bad", &served)?;
    let signed = site
        .pki
        .list(LIST_ID, "1", &[("bad", uri.as_str(), listed.as_slice())]);
    let url = site.publisher.put("image.list", &signed)?;
    site.publisher.set_throttle(1_000_000);
    site.auto_subscribe(&cluster, &ns, "refail", &url).await?;
    let images = vmli_api(&cluster, &ns, "ImageSubscription");
    let seen = observe(images.clone()).await?;
    let operator = site.run.start("operator-refail").await?;
    let phases = || seen.phases("refail-bad");
    let twice = eventually(Duration::from_secs(120), "two failed attempts", || async {
        let phases = phases();
        let failed = phases.iter().filter(|p| *p == "Failed").count();
        Ok((failed >= 2).then_some(phases))
    })
    .await;
    if twice.is_err() {
        eprintln!(
            "--- phases ---\n{:?}\n--- operator log ---\n{}",
            phases(),
            operator.logs()
        );
    }
    let phases = twice?;
    // Each attempt wrote Downloading (then its progress, every 2 s), then
    // Failed.
    let mut attempts: Vec<&str> = phases
        .iter()
        .map(String::as_str)
        .filter(|p| *p != "-")
        .collect();
    attempts.dedup();
    assert!(
        attempts.starts_with(&["Downloading", "Failed", "Downloading", "Failed"]),
        "{phases:?}"
    );
    site.finish(&cluster, &ns, operator).await
}

/// AutoSubscribe never re-applies an owned ImageSubscription that is being
/// deleted: held by another finalizer after the operator archived it, it
/// would get the operator's finalizer back in the apply, which the API
/// server refuses, and the whole pass would fail. A changed `imageExport`
/// still reaches the other owned ImageSubscription.
#[tokio::test]
async fn operator_autosubscribe_leaves_a_terminating_image_alone() -> Result<()> {
    let cluster = vmlisub_e2e::cluster_or_skip!();
    let (ns, site) = site(&cluster, "operator-held", "held").await?;
    let url = site.publish_list("1", &[("a", b"image a"), ("b", b"image b")])?;
    site.auto_subscribe(&cluster, &ns, "held", &url).await?;
    let mut operator = site.run.start("operator-held").await?;
    for name in ["held-a", "held-b"] {
        wait_status(
            &cluster,
            &ns,
            "ImageSubscription",
            name,
            "Available",
            &mut operator,
            |s| s["phase"] == "Available",
        )
        .await?;
    }
    let images = vmli_api(&cluster, &ns, "ImageSubscription");
    let hold = "e2e.vmli.hepix.org/hold";
    vmlisub_e2e::merge_patch(
        &images,
        "held-a",
        &json!({"metadata": {"finalizers": ["vmli.hepix.org/archive", hold]}}),
    )
    .await?;
    images.delete("held-a", &DeleteParams::default()).await?;
    eventually(
        Duration::from_secs(60),
        "the operator's finalizer gone",
        || async {
            let a = images.get("held-a").await?;
            Ok((a.metadata.finalizers == Some(vec![hold.to_string()])).then_some(()))
        },
    )
    .await?;

    vmlisub_e2e::merge_patch(
        &vmli_api(&cluster, &ns, "ImageListSubscription"),
        "held",
        &json!({"spec": {"imageExport": {"kubevirt": {"importsToKeep": 3}}}}),
    )
    .await?;
    let copied = eventually(
        Duration::from_secs(60),
        "imageExport copied to held-b",
        || async {
            let b = images.get("held-b").await?;
            Ok((b.data["spec"]["export"]["kubevirt"]["importsToKeep"] == 3).then_some(()))
        },
    )
    .await;
    if copied.is_err() {
        eprintln!("--- operator log ---\n{}", operator.logs());
    }
    copied?;
    let a = images.get("held-a").await?;
    assert!(a.data["spec"]["export"].is_null(), "{:#}", a.data);
    assert_eq!(a.metadata.finalizers, Some(vec![hold.to_string()]));
    let list = status(&cluster, &ns, "ImageListSubscription", "held").await?;
    assert!(ready_is(&list, "True", ""), "{list:#}");

    vmlisub_e2e::merge_patch(
        &images,
        "held-a",
        &json!({"metadata": {"finalizers": null}}),
    )
    .await?;
    site.finish(&cluster, &ns, operator).await
}

/// Every object version a watch delivered (each write is one).
struct Observed(std::sync::Arc<std::sync::Mutex<Vec<Value>>>);

impl Observed {
    /// The versions of object `name`, oldest first.
    fn versions(&self, name: &str) -> Vec<Value> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
            .filter(|o| o["metadata"]["name"] == name)
            .cloned()
            .collect()
    }

    /// The `status.phase` of each version of `name` (`-` for none).
    fn phases(&self, name: &str) -> Vec<String> {
        self.versions(name)
            .iter()
            .map(|o| o["status"]["phase"].as_str().unwrap_or("-").to_string())
            .collect()
    }
}

/// Starts a watch on `api` and returns every object version it delivers
/// from then on (initial ones included), once its first listing is done.
async fn observe(api: Api<DynamicObject>) -> Result<Observed> {
    use futures::StreamExt as _;
    use kube::runtime::watcher;
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let (listed_tx, listed) = tokio::sync::oneshot::channel();
    let into = std::sync::Arc::clone(&seen);
    tokio::spawn(async move {
        let mut listed_tx = Some(listed_tx);
        let mut events = std::pin::pin!(watcher(api, watcher::Config::default()));
        while let Some(event) = events.next().await {
            match event {
                Ok(watcher::Event::Apply(o) | watcher::Event::InitApply(o)) => {
                    into.lock().unwrap().push(serde_json::to_value(&o).unwrap());
                }
                Ok(watcher::Event::InitDone) => {
                    if let Some(tx) = listed_tx.take() {
                        let _ = tx.send(());
                    }
                }
                _ => {}
            }
        }
    });
    tokio::time::timeout(Duration::from_secs(30), listed).await??;
    Ok(Observed(seen))
}

/// Issue #16 on the real control plane: the leader refreshes the CA's CRL
/// from the URL of its `HASH.info`, and when the CA publishes a CRL that
/// revokes the signer, the list stops verifying and its image expires as
/// `signer-revoked`, without a restart.
#[tokio::test]
async fn operator_refreshes_crls_and_a_revocation_expires_the_images() -> Result<()> {
    let cluster = vmlisub_e2e::cluster_or_skip!();
    let (ns, mut site) = site(&cluster, "operator-crl", "crl").await?;
    let now = jiff::Timestamp::now();
    // The CA directory's CRL, two hours old; the CA has published a newer one.
    let older = site.pki.crl(
        now - jiff::SignedDuration::from_hours(2),
        now + jiff::SignedDuration::from_hours(24 * 7),
        1,
        &[],
        false,
    );
    std::fs::write(site.pki.ca_dir.join("livetest.r0"), older)?;
    let fresh = site.pki.crl(
        now - jiff::SignedDuration::from_mins(10),
        now + jiff::SignedDuration::from_hours(24 * 7),
        2,
        &[],
        false,
    );
    let crl_url = site.publisher.put("live-ca.crl", &fresh)?;
    std::fs::write(
        site.pki.ca_dir.join("livetest.info"),
        format!("alias = live-test\ncrl_url = {crl_url}\n"),
    )?;
    site.run
        .extra_args
        .extend(["--crl-refresh-interval".to_string(), "10s".to_string()]);
    let image = vec![3u8; 20_000];
    let url = site.publish_list("1", &[("img-one", &image)])?;
    let mut operator = site
        .subscribe_one(&cluster, &ns, &url, "operator-crl")
        .await?;
    // The leader fetched the published CRL into the cache volume's CRL dir.
    let crl_dir = site.run.cache_dir.join("state").join("crls");
    eventually(Duration::from_secs(30), "refreshed CRL written", || {
        let crl_dir = crl_dir.clone();
        let fresh = fresh.clone();
        async move {
            let written = std::fs::read_dir(&crl_dir)
                .map(|dir| {
                    dir.flatten()
                        .filter(|e| e.file_name().to_string_lossy().ends_with(".r0"))
                        .any(|e| std::fs::read(e.path()).is_ok_and(|b| b == fresh))
                })
                .unwrap_or(false);
            Ok(written.then_some(()))
        }
    })
    .await?;

    // The CA revokes the signer (serial 4242).
    let revoking = site.pki.crl(
        jiff::Timestamp::now() - jiff::SignedDuration::from_secs(30),
        jiff::Timestamp::now() + jiff::SignedDuration::from_hours(24 * 7),
        3,
        &[live::LivePki::SIGNER_SERIAL_HEX],
        false,
    );
    site.publisher.put("live-ca.crl", &revoking)?;
    let one = wait_status(
        &cluster,
        &ns,
        "ImageSubscription",
        "one",
        "image expired by the revocation",
        &mut operator,
        |s| s["phase"] == "Expired",
    )
    .await?;
    assert_eq!(one["history"][0]["reason"], "signer-revoked", "{one:#}");
    assert!(!site.cache_file(&ns, "site", "img-one").exists());
    let list = status(&cluster, &ns, "ImageListSubscription", "site").await?;
    assert_eq!(
        condition(&list, "Ready")
            .map(|(status, _)| status)
            .as_deref(),
        Some("False"),
        "{list:#}"
    );
    assert!(
        operator.logs().contains("CRL refreshed"),
        "{}",
        operator.logs()
    );
    site.finish(&cluster, &ns, operator).await
}

/// The confused deputy: whoever may create an ImageListSubscription names a
/// Secret they may not read (a token) and a URL of theirs. The operator
/// reads only Secrets labelled `vmli.hepix.org/credentials: "true"`, so the
/// list stalls with SecretNotOptedIn and the token never leaves; labelled,
/// the same Secret is used.
#[tokio::test]
async fn operator_reads_only_secrets_opted_in() -> Result<()> {
    use k8s_openapi::api::core::v1::Secret;
    let cluster = vmlisub_e2e::cluster_or_skip!();
    let (ns, site) = site(&cluster, "operator-deputy", "deputy").await?;
    let image = vec![5u8; 10_000];
    let url = site.publish_list("1", &[("img-one", &image)])?;
    let secrets: Api<Secret> = Api::namespaced(cluster.client(), &ns);
    let secret: Secret = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "victim-token"},
        "stringData": {"token": "s3cret-victim-token"},
    }))?;
    vmlisub_e2e::create(&secrets, &secret).await?;
    cluster.apply_json(&ns, site.endorser()).await?;
    cluster
        .apply_json(
            &ns,
            json!({
                "apiVersion": "vmli.hepix.org/v1alpha1", "kind": "ImageListSubscription",
                "metadata": {"name": "site"},
                "spec": {"url": url, "interval": "1h", "endorsers": [{"name": "publisher"}],
                         "secretRef": {"name": "victim-token"}},
            }),
        )
        .await?;
    let mut operator = site.run.start("operator-deputy").await?;
    let list = wait_status(
        &cluster,
        &ns,
        "ImageListSubscription",
        "site",
        "Stalled on a Secret not opted in",
        &mut operator,
        |s| condition(s, "Stalled").is_some_and(|(v, r)| v == "True" && r == "SecretNotOptedIn"),
    )
    .await?;
    assert!(ready_is(&list, "False", "SecretNotOptedIn"), "{list:#}");
    // kstatus as kubectl reads it: Stalled, not Ready, not Reconciling.
    let wait = |condition: &str, timeout: &str| {
        vmlisub_e2e::kubectl(
            &[
                "wait",
                "-n",
                &ns,
                "imagelistsubscription/site",
                &format!("--for=condition={condition}"),
                &format!("--timeout={timeout}"),
            ],
            None,
        )
    };
    wait("Stalled=True", "10s")?;
    assert!(wait("Ready=True", "1s").is_err(), "Ready while Stalled");
    assert!(condition(&list, "Reconciling").is_none(), "{list:#}");
    let text = list.to_string();
    assert!(text.contains("vmli.hepix.org/credentials"), "{list:#}");
    assert!(!text.contains("s3cret-victim-token"), "{list:#}");
    assert!(
        site.publisher.requests().is_empty(),
        "nothing may be fetched with the Secret: {:?}",
        site.publisher.requests()
    );
    let site_list = vmli_api(&cluster, &ns, "ImageListSubscription")
        .get("site")
        .await?;
    let events = cluster
        .events_until(&site_list, "SecretNotOptedIn", |events| {
            has_reasons(events, &["SecretNotOptedIn"])
        })
        .await?;
    assert!(!format!("{events:?}").contains("s3cret-victim-token"));
    assert!(!operator.logs().contains("s3cret-victim-token"));

    // The owner opts the Secret in: used on the next (requested) reconcile.
    vmlisub_e2e::merge_patch(
        &secrets,
        "victim-token",
        &json!({"metadata": {"labels": {"vmli.hepix.org/credentials": "true"}}}),
    )
    .await?;
    request_reconcile(&cluster, &ns, "ImageListSubscription", "site", "opted-in").await?;
    let list = wait_status(
        &cluster,
        &ns,
        "ImageListSubscription",
        "site",
        "list Ready with the opted-in Secret",
        &mut operator,
        |s| ready_is(s, "True", ""),
    )
    .await?;
    assert!(condition(&list, "Stalled").is_none(), "{list:#}");
    wait("Ready=True", "10s")?;
    assert!(wait("Stalled=True", "1s").is_err(), "Stalled after the fix");
    let requests = site.publisher.requests();
    assert!(
        requests.iter().any(|r| r.starts_with("GET /image.list")
            && r.contains("authorization=Bearer s3cret-victim-token")),
        "{requests:?}"
    );
    assert!(!operator.logs().contains("s3cret-victim-token"));

    site.finish(&cluster, &ns, operator).await
}

/// `tokenreviews` requests the API server has served so far (its own
/// `apiserver_request_total`).
/// The operator's `vmlisub_artifact_access_total` for `via` (all verdicts).
fn operator_access_decisions(run: &OperatorRun, via: &str) -> Result<f64> {
    let reply = http_request("GET", &format!("{}/metrics", run.metrics_url()), &[])?;
    let label = format!("via=\"{via}\"");
    Ok(String::from_utf8_lossy(&reply.body)
        .lines()
        .filter(|line| line.starts_with("vmlisub_artifact_access_total{") && line.contains(&label))
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum())
}

async fn token_reviews(cluster: &Cluster) -> Result<f64> {
    let request = http::Request::get("/metrics").body(Vec::new())?;
    let text = cluster.client().request_text(request).await?;
    Ok(text
        .lines()
        .filter(|line| {
            line.starts_with("apiserver_request_total{")
                && line.contains("resource=\"tokenreviews\"")
        })
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum())
}

/// Token-gated artifacts on the real API server (the operator runs with
/// the chart's RBAC, so its TokenReviews and SubjectAccessReviews are what
/// the chart grants): no token 401, a bad token 401, a token without the
/// grant 403 (here and for another namespace), a reader's token 200 with
/// Range, a handful of Range requests costing one TokenReview, and a
/// list with spec.publicArtifacts served anonymously until it is turned
/// off again. /metrics is on its own port, not on the artifact port.
#[tokio::test]
async fn operator_serves_artifacts_only_to_allowed_service_account_tokens() -> Result<()> {
    let cluster = vmlisub_e2e::cluster_or_skip!();
    let ns = cluster.create_namespace("artifact-auth").await?;
    let other = cluster.create_namespace("artifact-other").await?;
    cluster
        .apply_crds(&vmlisub_e2e::repo_path("crds/vmlisub.yaml"))
        .await?;
    let site = site_in(&cluster, &ns, "auth").await?;
    let bytes: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    let url = site.publish_list("1", &[("img-one", bytes.as_slice())])?;
    let operator = site
        .subscribe_one(&cluster, &ns, &url, "operator-auth")
        .await?;
    let image = status(&cluster, &ns, "ImageSubscription", "one").await?["artifact"]["url"]
        .as_str()
        .context("artifact url")?
        .to_string();
    let base = site.run.base_url();
    let list = format!("{base}/lists/{ns}/site.json");

    let reader = artifact_reader_token(&cluster, &ns, "reader").await?;
    let stranger = cluster.service_account_token(&ns, "stranger").await?;
    let elsewhere = artifact_reader_token(&cluster, &other, "reader").await?;
    let as_token = |token: &str| format!("Bearer {token}");

    // No token: 401 with a Bearer challenge, for images and lists, GET and
    // HEAD; nothing of the image leaks.
    for (method, target) in [("GET", &image), ("HEAD", &image), ("GET", &list)] {
        let reply = http_request(method, target, &[])?;
        assert_eq!(reply.status, 401, "{method} {target}");
        assert_eq!(
            reply.header("www-authenticate"),
            Some("Bearer realm=\"vmlisub\"")
        );
        assert!(reply.header("etag").is_none() && reply.body.len() < 200);
    }
    // A token the API server does not know, and a malformed header: 401
    // invalid_token.
    for header in ["Bearer not-a-real-token", "Basic dXNlcjpwYXNz"] {
        let reply = http_request("GET", &image, &[("Authorization", header)])?;
        assert_eq!(reply.status, 401, "{header}");
        assert!(
            reply
                .header("www-authenticate")
                .is_some_and(|c| c.contains("error=\"invalid_token\"")),
            "{header}"
        );
    }
    let too_long = format!("Bearer {}", "a".repeat(9000));
    let reply = http_request("GET", &image, &[("Authorization", &too_long)])?;
    assert_eq!(reply.status, 401);
    // Valid tokens without the grant: 403, also for a reader of another
    // namespace.
    for token in [&stranger, &elsewhere] {
        let reply = http_request("GET", &image, &[("Authorization", &as_token(token))])?;
        assert_eq!(reply.status, 403);
        let reply = http_request("GET", &list, &[("Authorization", &as_token(token))])?;
        assert_eq!(reply.status, 403);
    }
    // The reader: the image, whole and in ranges, and the list.
    let (code, body) = http_get_as(&image, None, &reader)?;
    assert_eq!((code, body == bytes), (200, true));
    let (code, body) = http_get_as(&image, Some("bytes=1000-1999"), &reader)?;
    assert_eq!((code, body.as_slice()), (206, &bytes[1000..2000]));
    let reply = http_request("HEAD", &image, &[("Authorization", &as_token(&reader))])?;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("content-length"), Some("300000"));
    let (code, body) = http_get_as(&list, None, &reader)?;
    assert_eq!(code, 200);
    assert!(String::from_utf8_lossy(&body).contains(LIST_ID));
    // The reader's grant is for its namespace only: 403 in `other` (before
    // anything is looked up), and the other reader gets there the 404 of a
    // missing image, not a refusal.
    let there = image.replace(&format!("/images/{ns}/"), &format!("/images/{other}/"));
    assert_eq!(http_get_as(&there, None, &reader)?.0, 403);
    assert_eq!(http_get_as(&there, None, &elsewhere)?.0, 404);

    // A client resuming with Range requests: its reviews are cached.
    let resuming = cluster.service_account_token(&ns, "reader").await?;
    let before = token_reviews(&cluster).await?;
    let (reviewed, cached) = (
        operator_access_decisions(&site.run, "review")?,
        operator_access_decisions(&site.run, "cache")?,
    );
    for start in (0..8u64).map(|n| n * 30_000) {
        let range = format!("bytes={start}-");
        let (code, body) = http_get_as(&image, Some(&range), &resuming)?;
        assert_eq!((code, body.as_slice()), (206, &bytes[start as usize..]));
    }
    // The operator's count: one review, seven answers from the cache. The
    // API server's count (cluster-wide, so other clients may add to it)
    // shows the review reached it.
    let reviewed = operator_access_decisions(&site.run, "review")? - reviewed;
    let cached = operator_access_decisions(&site.run, "cache")? - cached;
    assert_eq!(
        (reviewed, cached),
        (1.0, 7.0),
        "8 ranged requests with one token: (reviews, cache hits)"
    );
    let reviews = token_reviews(&cluster).await? - before;
    assert!(
        reviews >= 1.0,
        "the API server counted {reviews} TokenReviews"
    );

    // publicArtifacts: anyone, without a token, until it is turned off.
    let lists = vmli_api(&cluster, &ns, "ImageListSubscription");
    vmlisub_e2e::merge_patch(&lists, "site", &json!({"spec": {"publicArtifacts": true}})).await?;
    eventually(
        Duration::from_secs(30),
        "anonymous access to a public list",
        || async {
            let (code, body) = http_get(&image, None)?;
            Ok((code == 200).then_some(body))
        },
    )
    .await
    .map(|body| assert!(body == bytes))?;
    assert_eq!(
        http_get(&image, Some("bytes=0-9"))?,
        (206, bytes[..10].to_vec())
    );
    assert_eq!(http_get(&list, None)?.0, 200);
    // Only that list: the same image path in another namespace is not open.
    assert_eq!(http_get(&there, None)?.0, 401);
    vmlisub_e2e::merge_patch(&lists, "site", &json!({"spec": {"publicArtifacts": false}})).await?;
    eventually(Duration::from_secs(30), "the list closed again", || async {
        Ok((http_get(&image, None)?.0 == 401).then_some(()))
    })
    .await?;

    // Metrics on their own port only.
    let metrics = http_request("GET", &format!("{}/metrics", site.run.metrics_url()), &[])?;
    assert_eq!(metrics.status, 200);
    assert!(String::from_utf8_lossy(&metrics.body).contains("vmlisub_leader"));
    assert_eq!(
        http_request("GET", &format!("{base}/metrics"), &[])?.status,
        404
    );

    site.finish(&cluster, &ns, operator).await?;
    cluster.delete_namespace(&other).await?;
    Ok(())
}

/// A list of 10,000 images (the parser's limit) on the real API server: the
/// status carries counts and a pointer to the served list, not the image
/// table, so it stays far below etcd's object limit and the list becomes
/// Ready; the full table is one authorised GET away.
#[tokio::test]
async fn operator_keeps_the_status_of_a_10000_image_list_small() -> Result<()> {
    let cluster = vmlisub_e2e::cluster_or_skip!();
    let (ns, site) = site(&cluster, "operator-big", "big").await?;
    let ids: Vec<String> = (0..10_000).map(|i| format!("img-{i:05}")).collect();
    let uris: Vec<String> = ids
        .iter()
        .map(|id| format!("{}/{id}", site.publisher.url))
        .collect();
    let images: Vec<(&str, &str, &[u8])> = ids
        .iter()
        .zip(&uris)
        .map(|(id, uri)| (id.as_str(), uri.as_str(), id.as_bytes()))
        .collect();
    let signed = site.pki.list(LIST_ID, "1", &images);
    let url = site.publisher.put("image.list", &signed)?;
    cluster.apply_json(&ns, site.endorser()).await?;
    cluster
        .apply_json(&ns, vmlisub_e2e::publisher_list("site", &url, false))
        .await?;
    let mut operator = site.run.start("operator-big").await?;
    let list = wait_status(
        &cluster,
        &ns,
        "ImageListSubscription",
        "site",
        "a 10,000-image list Ready",
        &mut operator,
        |s| ready_is(s, "True", ""),
    )
    .await?;
    assert_eq!(list["imageCount"], 10_000, "{list:#}");
    let size = list.to_string().len();
    assert!(size < 4096, "status of {size} bytes: {list:#}");
    let artifact = &list["artifact"];
    let served_at = artifact["url"].as_str().context("artifact.url")?;
    assert!(
        served_at.ends_with(&format!("/lists/{ns}/site.json")),
        "{list:#}"
    );
    let token = vmlisub_e2e::operator::artifact_reader_token(&cluster, &ns, "reader").await?;
    let (status_code, body) = vmlisub_e2e::operator::http_get_as(served_at, None, &token)?;
    assert_eq!(status_code, 200);
    assert_eq!(artifact["size"], body.len());
    assert_eq!(
        artifact["digest"].as_str().unwrap(),
        format!("sha512:{}", sha512_hex(&body))
    );
    let table: Value = serde_json::from_slice(&body)?;
    assert_eq!(
        table["hv:imagelist"]["hv:images"].as_array().map(Vec::len),
        Some(10_000)
    );

    site.finish(&cluster, &ns, operator).await
}

/// The hook Jobs of `ns`, by the label every one carries.
async fn hook_jobs(cluster: &Cluster, ns: &str) -> Result<Vec<Job>> {
    let jobs: Api<Job> = Api::namespaced(cluster.client(), ns);
    Ok(jobs
        .list(&ListParams::default().labels("vmli.hepix.org/hook-event"))
        .await?
        .items)
}

fn hook_event_of(job: &Job) -> String {
    job.metadata.labels.as_ref().unwrap()["vmli.hepix.org/hook-event"].clone()
}

fn env_of(job: &Job) -> std::collections::BTreeMap<String, String> {
    let pod = job.spec.as_ref().unwrap().template.spec.as_ref().unwrap();
    pod.containers[0]
        .env
        .iter()
        .flatten()
        .filter_map(|v| Some((v.name.clone(), v.value.clone()?)))
        .collect()
}

/// Marks a Job finished the way the Job controller does (there is no
/// kubelet here: its pods never run).
async fn finish_job(cluster: &Cluster, ns: &str, name: &str, succeeded: bool) -> Result<()> {
    let jobs: Api<Job> = Api::namespaced(cluster.client(), ns);
    let now = jiff::Timestamp::now().to_string();
    let condition = |type_: &str, reason: &str| {
        json!({"type": type_, "status": "True", "reason": reason, "message": "e2e",
               "lastProbeTime": now, "lastTransitionTime": now})
    };
    let status = if succeeded {
        json!({"active": 0, "ready": 0, "terminating": 0, "succeeded": 1, "failed": 0,
               "completionTime": now, "uncountedTerminatedPods": {},
               "conditions": [condition("SuccessCriteriaMet", "CompletionsReached"),
                              condition("Complete", "CompletionsReached")]})
    } else {
        json!({"active": 0, "ready": 0, "terminating": 0, "succeeded": 0, "failed": 1,
               "uncountedTerminatedPods": {},
               "conditions": [condition("FailureTarget", "BackoffLimitExceeded"),
                              condition("Failed", "BackoffLimitExceeded")]})
    };
    vmlisub_e2e::merge_patch_status(&jobs, name, &json!({"status": status})).await?;
    Ok(())
}

/// Issue #13 item 3: `spec.hooks` runs the original's image events as
/// Jobs, proven up to the Job objects and their ownership (their pods never
/// run: without the node no kubelet takes them, on the node their image
/// cannot be pulled; the node tests run a hook to completion). The Job controller and the garbage collector of the
/// real kube-controller-manager do their part: `timeout` fails Jobs with
/// DeadlineExceeded, deleting the list deletes its Jobs.
#[tokio::test]
async fn operator_runs_hooks_as_owned_jobs_prunes_and_reports_them() -> Result<()> {
    let cluster = vmlisub_e2e::cluster_or_skip!();
    let (ns, mut site) = site(&cluster, "operator-hooks", "hooks").await?;
    site.run.extra_args.push("--hook-jobs".into());
    let one = b"an image for the hooks".as_slice();
    let url = site.publish_list("1", &[("img-one", one)])?;
    let command = json!([
        "sh",
        "-c",
        "exec glancepush \"$VMILS_EVENT_TYPE\" \"$VMILS_EVENT_DC_TITLE\""
    ]);
    let list_doc = |timeout: &str, command: &Value| {
        json!({
            "apiVersion": "vmli.hepix.org/v1alpha1", "kind": "ImageListSubscription",
            "metadata": {"name": "site"},
            "spec": {"url": url, "interval": "1h", "endorsers": [{"name": "publisher"}],
                "hooks": {
                    "jobTemplate": {
                        "metadata": {"labels": {"team": "cloud"}},
                        "spec": {"backoffLimit": 0, "template": {"spec": {"containers": [{
                            "name": "handler", "image": "registry.example/glancepush:1",
                            "command": command,
                            "env": [{"name": "OS_CLOUD", "value": "site"},
                                    {"name": "VMILS_EVENT_TYPE", "value": "Forged"}],
                        }]}}},
                    },
                    "timeout": timeout,
                    "historyLimit": {"successful": 1, "failed": 1},
                }},
        })
    };
    cluster.apply_json(&ns, site.endorser()).await?;
    cluster.apply_json(&ns, list_doc("1h", &command)).await?;
    cluster
        .apply_json(
            &ns,
            json!({
                "apiVersion": "vmli.hepix.org/v1alpha1", "kind": "ImageSubscription",
                "metadata": {"name": "one"},
                "spec": {"subscriptionRef": {"name": "site"}, "identifier": "img-one"},
            }),
        )
        .await?;
    let mut operator = site.run.start("operator-hooks-1").await?;
    wait_status(
        &cluster,
        &ns,
        "ImageSubscription",
        "one",
        "img-one Available",
        &mut operator,
        |s| s["phase"] == "Available",
    )
    .await?;

    // AvailablePrefix and AvailablePostfix: one Job each, owned by the
    // list, labelled, the event in env only.
    let lists = vmli_api(&cluster, &ns, "ImageListSubscription");
    let list = lists.get("site").await?;
    let uid = list.metadata.uid.clone().unwrap();
    let jobs = eventually(Duration::from_secs(30), "two hook Jobs", || async {
        let jobs = hook_jobs(&cluster, &ns).await?;
        Ok((jobs.len() == 2).then_some(jobs))
    })
    .await?;
    let events: std::collections::BTreeSet<String> = jobs.iter().map(hook_event_of).collect();
    assert_eq!(
        events,
        ["AvailablePostfix", "AvailablePrefix"]
            .map(String::from)
            .into()
    );
    let sha512 = sha512_hex(one);
    for job in &jobs {
        let name = job.metadata.name.clone().unwrap();
        assert!(
            name.starts_with("site-avail-") && name.len() <= 63,
            "{name}"
        );
        let owner = &job.metadata.owner_references.as_ref().unwrap()[0];
        assert_eq!(
            (owner.kind.as_str(), owner.name.as_str(), owner.uid.as_str()),
            ("ImageListSubscription", "site", uid.as_str())
        );
        assert_eq!(owner.controller, Some(true));
        let labels = job.metadata.labels.as_ref().unwrap();
        assert_eq!(labels["vmli.hepix.org/list"], "site");
        assert_eq!(labels["vmli.hepix.org/image"], "img-one");
        assert_eq!(labels["team"], "cloud");
        let spec = job.spec.as_ref().unwrap();
        assert_eq!(spec.active_deadline_seconds, Some(3600));
        let pod = spec.template.spec.as_ref().unwrap();
        assert_eq!(pod.restart_policy.as_deref(), Some("Never"));
        assert_eq!(
            serde_json::to_value(&pod.containers[0].command)?,
            command,
            "the command is the template's"
        );
        let env = env_of(job);
        let event = hook_event_of(job);
        assert_eq!(
            env["VMILS_EVENT_TYPE"], event,
            "the template's own is dropped"
        );
        assert_eq!(env["VMCATCHER_EVENT_TYPE"], event);
        assert_eq!(env["VMILS_EVENT_DC_IDENTIFIER"], "img-one");
        assert_eq!(env["VMILS_EVENT_DC_TITLE"], "Image img-one");
        assert_eq!(env["VMILS_EVENT_SL_CHECKSUM_SHA512"], sha512);
        assert_eq!(env["VMILS_EVENT_IL_DC_IDENTIFIER"], LIST_ID);
        assert_eq!(env["VMLISUB_NAMESPACE"], ns);
        assert_eq!(env["VMLISUB_LIST"], "site");
        assert_eq!(env["VMLISUB_IMAGE_SUBSCRIPTION"], "one");
        assert_eq!(env["OS_CLOUD"], "site");
        let names: Vec<&str> = pod.containers[0]
            .env
            .iter()
            .flatten()
            .map(|v| v.name.as_str())
            .filter(|n| *n == "VMILS_EVENT_TYPE")
            .collect();
        assert_eq!(names.len(), 1);
        if event == "AvailablePostfix" {
            assert_eq!(
                env["VMLISUB_ARTIFACT_URL"],
                format!("{}/images/{ns}/site/img-one", site.run.base_url())
            );
        }
    }

    // A retry creates no duplicate: the operator restarts without the
    // cached file, downloads the image again and fires both events again,
    // with the same Job names (AlreadyExists is done).
    operator.terminate(Duration::from_secs(10)).await?;
    std::fs::remove_dir_all(site.run.cache_dir.join("endorsed").join(&ns).join("site"))?;
    let mut operator = site.run.start("operator-hooks-2").await?;
    eventually(
        Duration::from_secs(60),
        "img-one downloaded again",
        || async {
            Ok(site
                .cache_file(&ns, "site", "img-one")
                .exists()
                .then_some(()))
        },
    )
    .await?;
    // The AvailablePostfix hook follows the promotion at once.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let again = hook_jobs(&cluster, &ns).await?;
    let uids = |jobs: &[Job]| -> std::collections::BTreeSet<String> {
        jobs.iter()
            .map(|j| j.metadata.uid.clone().unwrap())
            .collect()
    };
    assert_eq!(uids(&again), uids(&jobs), "the same two Jobs");
    let list = lists.get("site").await?;
    let created = |events: &[Event]| {
        events
            .iter()
            .filter(|e| e.reason.as_deref() == Some("HookJobCreated"))
            // Repeats of one reason are a series of one Event.
            .map(|e| e.series.as_ref().and_then(|s| s.count).unwrap_or(1))
            .sum::<i32>()
    };
    let events = cluster
        .events_until(&list, "two HookJobCreated", |events| created(events) >= 2)
        .await?;
    assert_eq!(created(&events), 2, "two Jobs created, none again");

    // status.hooks follows the Jobs: AvailablePostfix is the newest.
    let post = jobs
        .iter()
        .find(|j| hook_event_of(j) == "AvailablePostfix")
        .unwrap();
    let post_name = post.metadata.name.clone().unwrap();
    let pre_name = jobs
        .iter()
        .find(|j| hook_event_of(j) == "AvailablePrefix")
        .unwrap()
        .metadata
        .name
        .clone()
        .unwrap();
    let hooks = wait_status(
        &cluster,
        &ns,
        "ImageListSubscription",
        "site",
        "status.hooks",
        &mut operator,
        |s| s["hooks"]["lastRun"]["jobName"] == post_name.as_str(),
    )
    .await?;
    assert_eq!(hooks["hooks"]["lastRun"]["event"], "AvailablePostfix");
    assert_eq!(
        condition(&hooks, "HookJobs"),
        Some(("True".into(), "JobCreated".into()))
    );
    assert_eq!(hooks["hooks"]["lastRun"]["image"], "img-one");
    assert!(
        ready_is(&hooks, "True", ""),
        "hooks leave the list's own status alone: {hooks:#}"
    );
    finish_job(&cluster, &ns, &post_name, true).await?;
    let hooks = wait_status(
        &cluster,
        &ns,
        "ImageListSubscription",
        "site",
        "lastRun Succeeded",
        &mut operator,
        |s| s["hooks"]["lastRun"]["phase"] == "Succeeded",
    )
    .await?;
    assert_eq!(hooks["hooks"]["lastRun"]["succeeded"], 1);
    assert!(hooks["hooks"]["lastRun"]["finished"].is_string());
    finish_job(&cluster, &ns, &pre_name, false).await?;
    // A requested list reconcile (a list status write) keeps status.hooks.
    request_reconcile(&cluster, &ns, "ImageListSubscription", "site", "hooks-1").await?;
    wait_status(
        &cluster,
        &ns,
        "ImageListSubscription",
        "site",
        "reconcile handled",
        &mut operator,
        |s| s["lastHandledReconcileAt"] == "hooks-1",
    )
    .await?;
    let kept = status(&cluster, &ns, "ImageListSubscription", "site").await?;
    assert_eq!(kept["hooks"]["lastRun"]["jobName"], post_name.as_str());

    // The expiry events, with a 10 s timeout: the real Job controller
    // fails them (DeadlineExceeded); historyLimit keeps the newest failed
    // and the succeeded Job.
    cluster.apply_json(&ns, list_doc("10s", &command)).await?;
    site.publish_list("2", &[("img-two", b"another".as_slice())])?;
    request_reconcile(&cluster, &ns, "ImageListSubscription", "site", "hooks-2").await?;
    wait_status(
        &cluster,
        &ns,
        "ImageSubscription",
        "one",
        "img-one withdrawn",
        &mut operator,
        |s| s["phase"] == "Expired",
    )
    .await?;
    let hooks = wait_status(
        &cluster,
        &ns,
        "ImageListSubscription",
        "site",
        "ExpirePostfix failed by its deadline",
        &mut operator,
        |s| {
            s["hooks"]["lastRun"]["event"] == "ExpirePostfix"
                && s["hooks"]["lastRun"]["phase"] == "Failed"
        },
    )
    .await?;
    let expire_post = hooks["hooks"]["lastRun"]["jobName"]
        .as_str()
        .unwrap()
        .to_string();
    let left = eventually(Duration::from_secs(60), "pruned to the limits", || async {
        let jobs = hook_jobs(&cluster, &ns).await?;
        let mut names: Vec<String> = jobs
            .iter()
            .map(|j| j.metadata.name.clone().unwrap())
            .collect();
        names.sort();
        Ok((names.len() == 2).then_some(names))
    })
    .await?;
    let mut expected = vec![post_name.clone(), expire_post.clone()];
    expected.sort();
    assert_eq!(left, expected);
    let jobs_api: Api<Job> = Api::namespaced(cluster.client(), &ns);
    let failed = jobs_api.get(&expire_post).await?;
    let reason = failed
        .status
        .and_then(|s| s.conditions)
        .unwrap_or_default()
        .into_iter()
        .find(|c| c.type_ == "Failed")
        .and_then(|c| c.reason);
    assert_eq!(reason.as_deref(), Some("DeadlineExceeded"));
    let list = lists.get("site").await?;
    cluster
        .events_until(&list, "HookJobSucceeded and HookJobFailed", |events| {
            has_reasons(events, &["HookJobSucceeded", "HookJobFailed"])
        })
        .await?;

    // A template that would splice a value into the command is refused:
    // a condition-like lastError and a Warning, and the image is
    // downloaded all the same.
    let spliced = json!(["sh", "-c", "glancepush $(VMILS_EVENT_DC_TITLE)"]);
    cluster.apply_json(&ns, list_doc("10s", &spliced)).await?;
    site.publish_list("3", &[("img-one", one)])?;
    request_reconcile(&cluster, &ns, "ImageListSubscription", "site", "hooks-3").await?;
    wait_status(
        &cluster,
        &ns,
        "ImageSubscription",
        "one",
        "img-one back",
        &mut operator,
        |s| s["phase"] == "Available",
    )
    .await?;
    let hooks = wait_status(
        &cluster,
        &ns,
        "ImageListSubscription",
        "site",
        "lastError",
        &mut operator,
        |s| s["hooks"]["lastError"]["reason"] == "HookTemplateInvalid",
    )
    .await?;
    assert_eq!(
        condition(&hooks, "HookJobs"),
        Some(("False".into(), "HookTemplateInvalid".into()))
    );
    assert!(
        ready_is(&hooks, "True", ""),
        "the list itself is fine: {hooks:#}"
    );
    let message = hooks["hooks"]["lastError"]["message"].as_str().unwrap();
    assert!(message.contains("$(VMILS_EVENT_DC_TITLE)"), "{message}");
    let list = lists.get("site").await?;
    cluster
        .events_until(&list, "HookTemplateInvalid", |events| {
            has_reasons(events, &["HookTemplateInvalid"])
        })
        .await?;
    assert_eq!(hook_jobs(&cluster, &ns).await?.len(), 2, "no Job from it");

    // Deleting the list: the garbage collector deletes its Jobs.
    lists.delete("site", &DeleteParams::default()).await?;
    eventually(Duration::from_secs(60), "hook Jobs collected", || async {
        Ok(hook_jobs(&cluster, &ns).await?.is_empty().then_some(()))
    })
    .await?;

    site.finish(&cluster, &ns, operator).await
}
