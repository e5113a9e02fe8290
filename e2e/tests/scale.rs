//! Scale benchmark (not a test: `make bench-scale`): 500 lists of 20 small
//! images each (10,000 ImageSubscriptions by AutoSubscribe) plus one list of
//! 5,000 images, against the real control plane. Prints the time until every
//! list is Ready and every image Available, the operator's peak RSS, the API
//! requests per reconcile, and the API traffic and object writes of the
//! vmlisub kinds while nothing is due (hourly intervals). Sizes:
//! `VMLISUB_SCALE_LISTS`, `VMLISUB_SCALE_IMAGES`, `VMLISUB_SCALE_BIG` (0: no
//! big list).
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../../operator/tests/support/live.rs"]
#[allow(dead_code)]
mod live;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::Result;
use kube::api::{Api, DynamicObject, GroupVersionKind, ListParams};
use kube::discovery::ApiResource;
use serde_json::json;
use vmlisub_e2e::operator::{OperatorRun, Publisher, free_port};

const IDLE: Duration = Duration::from_secs(60);

fn size(var: &str, default: usize) -> usize {
    std::env::var(var)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// `vmlisub_reconciles_total` of the operator, summed over kinds and results.
fn reconciles(metrics_url: &str) -> f64 {
    vmlisub_e2e::operator::http_get(metrics_url, None)
        .map(|(_, body)| {
            String::from_utf8_lossy(&body)
                .lines()
                .filter(|l| l.starts_with("vmlisub_reconciles_total{"))
                .filter_map(|l| l.rsplit(' ').next().and_then(|v| v.parse::<f64>().ok()))
                .sum()
        })
        .unwrap_or(0.0)
}

fn api(cluster: &vmlisub_e2e::Cluster, ns: &str, kind: &str, plural: &str) -> Api<DynamicObject> {
    let resource = ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("vmli.hepix.org", "v1alpha1", kind),
        plural,
    );
    Api::namespaced_with(cluster.client(), ns, &resource)
}

/// vmlisub-group requests served so far, by verb (from the API server's
/// own `apiserver_request_total`).
async fn requests_by_verb(cluster: &vmlisub_e2e::Cluster) -> Result<BTreeMap<String, f64>> {
    let request = http::Request::get("/metrics").body(Vec::new())?;
    let text = cluster.client().request_text(request).await?;
    let mut out = BTreeMap::new();
    for line in text.lines() {
        if !line.starts_with("apiserver_request_total{")
            || !line.contains("group=\"vmli.hepix.org\"")
        {
            continue;
        }
        let verb = line
            .split("verb=\"")
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .unwrap_or_default()
            .to_string();
        let value: f64 = line
            .rsplit(' ')
            .next()
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0);
        *out.entry(verb).or_default() += value;
    }
    Ok(out)
}

fn peak_rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

#[tokio::test]
#[ignore = "benchmark: make bench-scale"]
async fn scale_lists_of_images() -> Result<()> {
    let (lists_n, images_n, big_n) = (
        size("VMLISUB_SCALE_LISTS", 500),
        size("VMLISUB_SCALE_IMAGES", 20),
        size("VMLISUB_SCALE_BIG", 5000),
    );
    let cluster = vmlisub_e2e::cluster_or_skip!();
    let ns = cluster.create_namespace("scale").await?;
    cluster
        .apply_crds(vmlisub_e2e::repo_path("crds/vmlisub.yaml"))
        .await?;
    let temp = tempfile::Builder::new()
        .prefix("vmlisub-scale-")
        .tempdir()?;
    let dir = temp.path();
    std::fs::create_dir_all(dir.join("pki"))?;
    let pki = live::LivePki::new(&dir.join("pki"));
    let publisher = Publisher::start(&dir.join("www"))?;
    let images: Vec<(String, Vec<u8>)> = (0..images_n)
        .map(|i| (format!("image-{i:02}"), vec![i as u8; 4096]))
        .collect();
    let uris: Vec<String> = images
        .iter()
        .map(|(id, bytes)| publisher.put(id, bytes).unwrap())
        .collect();
    let entries: Vec<(&str, &str, &[u8])> = images
        .iter()
        .zip(&uris)
        .map(|((id, bytes), uri)| (id.as_str(), uri.as_str(), bytes.as_slice()))
        .collect();
    let endorser: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "vmli.hepix.org/v1alpha1", "kind": "Endorser",
        "metadata": {"name": "publisher"},
        "spec": {"credentials": [{"subject": pki.subject, "issuer": pki.issuer}]},
    }))?;
    cluster.apply_dynamic(&endorser, Some(&ns)).await?;
    if big_n > 0 {
        let big: Vec<(String, String)> = (0..big_n)
            .map(|i| {
                (
                    format!("big-{i:05}"),
                    format!("{}/big-{i:05}", publisher.url),
                )
            })
            .collect();
        let refs: Vec<(&str, &str, &[u8])> = big
            .iter()
            .map(|(id, uri)| (id.as_str(), uri.as_str(), id.as_bytes()))
            .collect();
        let url = publisher.put(
            "big-list",
            &pki.list("00000000-0000-4000-8000-b19000000000", "1", &refs),
        )?;
        let list: DynamicObject = serde_json::from_value(json!({
            "apiVersion": "vmli.hepix.org/v1alpha1", "kind": "ImageListSubscription",
            "metadata": {"name": "big"},
            "spec": {"url": url, "interval": "1h", "endorsers": [{"name": "publisher"}]},
        }))?;
        cluster.apply_dynamic(&list, Some(&ns)).await?;
    }
    for n in 0..lists_n {
        let id = format!("00000000-0000-4000-8000-{n:012}");
        let url = publisher.put(&format!("list-{n}"), &pki.list(&id, "1", &entries))?;
        let list: DynamicObject = serde_json::from_value(json!({
            "apiVersion": "vmli.hepix.org/v1alpha1", "kind": "ImageListSubscription",
            "metadata": {"name": format!("list-{n:03}")},
            "spec": {"url": url, "interval": "1h", "endorsers": [{"name": "publisher"}],
                     "imagePolicy": "AutoSubscribe"},
        }))?;
        cluster.apply_dynamic(&list, Some(&ns)).await?;
    }
    let run = OperatorRun {
        kubeconfig: vmlisub_e2e::kubeconfig_path().expect("kubeconfig"),
        extra_args: vec!["--watch-namespace".into(), ns.clone()],
        cache_dir: dir.join("cache"),
        ca_dir: pki.ca_dir.clone(),
        port: free_port()?,
        metrics_port: free_port()?,
        namespace: ns.clone(),
        leader_elect: false,
    };
    let metrics_url = format!("http://127.0.0.1:{}/metrics", run.metrics_port);
    let requests_at_start = requests_by_verb(&cluster).await?;
    let started = Instant::now();
    let mut operator = run.start("operator-scale").await?;
    let lists = api(
        &cluster,
        &ns,
        "ImageListSubscription",
        "imagelistsubscriptions",
    );
    let subscriptions = api(&cluster, &ns, "ImageSubscription", "imagesubscriptions");
    let all_ready = loop {
        let ready_lists = lists
            .list(&ListParams::default())
            .await?
            .items
            .iter()
            .filter(|l| {
                l.data["status"]["imageCount"] == images_n
                    || (l.metadata.name.as_deref() == Some("big")
                        && l.data["status"]["imageCount"] == big_n)
            })
            .count();
        let available = subscriptions
            .list(&ListParams::default())
            .await?
            .items
            .iter()
            .filter(|i| i.data["status"]["phase"] == "Available")
            .count();
        if ready_lists == lists_n + usize::from(big_n > 0) && available == lists_n * images_n {
            break started.elapsed();
        }
        if started.elapsed() > Duration::from_secs(600) {
            panic!(
                "not ready after 600 s: {ready_lists} lists, {available} images\n{}",
                operator.logs()
            );
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let rss_ready = peak_rss_kib(operator.pid());
    let requests_at_ready = requests_by_verb(&cluster).await?;
    let reconciles_at_ready = reconciles(&metrics_url);
    let requests_to_ready: f64 = requests_at_ready
        .iter()
        .map(|(verb, n)| n - requests_at_start.get(verb).copied().unwrap_or(0.0))
        .sum();
    // Idle: nothing is due (hourly intervals).
    tokio::time::sleep(Duration::from_secs(5)).await;
    let versions = |items: Vec<DynamicObject>| -> BTreeMap<String, String> {
        items
            .into_iter()
            .map(|o| {
                (
                    o.metadata.name.unwrap_or_default(),
                    o.metadata.resource_version.unwrap_or_default(),
                )
            })
            .collect()
    };
    let before_objects = (
        versions(lists.list(&ListParams::default()).await?.items),
        versions(subscriptions.list(&ListParams::default()).await?.items),
    );
    let before = requests_by_verb(&cluster).await?;
    tokio::time::sleep(IDLE).await;
    let after = requests_by_verb(&cluster).await?;
    let after_objects = (
        versions(lists.list(&ListParams::default()).await?.items),
        versions(subscriptions.list(&ListParams::default()).await?.items),
    );
    let fetches = publisher
        .requests()
        .iter()
        .filter(|r| r.starts_with("GET /list-"))
        .count();
    let rss_peak = peak_rss_kib(operator.pid());
    let delta: BTreeMap<&String, f64> = after
        .iter()
        .map(|(verb, n)| (verb, n - before.get(verb).copied().unwrap_or(0.0)))
        .filter(|(_, n)| *n > 0.0)
        .collect();
    let changed = before_objects
        .0
        .iter()
        .filter(|(k, v)| after_objects.0.get(*k) != Some(v))
        .count()
        + before_objects
            .1
            .iter()
            .filter(|(k, v)| after_objects.1.get(*k) != Some(v))
            .count();
    println!(
        "SCALE lists={lists_n} images_per_list={images_n} total_images={} big_list_images={big_n}",
        lists_n * images_n
    );
    println!(
        "SCALE requests_to_ready={requests_to_ready:.0} reconciles_to_ready={reconciles_at_ready:.0} requests_per_reconcile={:.2}",
        requests_to_ready / reconciles_at_ready.max(1.0)
    );
    println!("SCALE all_ready_seconds={:.1}", all_ready.as_secs_f64());
    println!(
        "SCALE peak_rss_mib_at_ready={:.1} peak_rss_mib_after_idle={:.1}",
        rss_ready as f64 / 1024.0,
        rss_peak as f64 / 1024.0
    );
    println!(
        "SCALE idle_seconds={} list_fetches_during_run={fetches}",
        IDLE.as_secs()
    );
    println!("SCALE idle_vmli_requests_by_verb={delta:?}");
    println!("SCALE idle_objects_rewritten={changed}");
    operator.terminate(Duration::from_secs(10)).await?;
    cluster.delete_namespace(&ns).await?;
    assert_eq!(changed, 0, "status writes while nothing changed");
    Ok(())
}
