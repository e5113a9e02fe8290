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

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use anyhow::Result;
use futures::StreamExt as _;
use kube::api::{DynamicObject, ListParams};
use kube::runtime::watcher;
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

/// Requests served so far by the API server (its own
/// `apiserver_request_total`), keyed `group/resource[/subresource] VERB`
/// (the core group is empty).
async fn requests_by_resource(cluster: &vmlisub_e2e::Cluster) -> Result<BTreeMap<String, f64>> {
    let request = http::Request::get("/metrics").body(Vec::new())?;
    let text = cluster.client().request_text(request).await?;
    let label = |line: &str, name: &str| -> String {
        line.split(&format!("{name}=\""))
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .unwrap_or_default()
            .to_string()
    };
    let mut out = BTreeMap::new();
    for line in text.lines() {
        if !line.starts_with("apiserver_request_total{") {
            continue;
        }
        let mut key = format!("{}/{}", label(line, "group"), label(line, "resource"));
        let subresource = label(line, "subresource");
        if !subresource.is_empty() {
            key = format!("{key}/{subresource}");
        }
        let key = format!("{key} {}", label(line, "verb"));
        let value: f64 = line
            .rsplit(' ')
            .next()
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0);
        *out.entry(key).or_default() += value;
    }
    Ok(out)
}

/// The vmlisub group's part of [`requests_by_resource`], by verb.
async fn requests_by_verb(cluster: &vmlisub_e2e::Cluster) -> Result<BTreeMap<String, f64>> {
    let mut out = BTreeMap::new();
    for (key, value) in requests_by_resource(cluster).await? {
        if let Some(rest) = key.strip_prefix("vmli.hepix.org/")
            && let Some(verb) = rest.rsplit(' ').next()
        {
            *out.entry(verb.to_string()).or_default() += value;
        }
    }
    Ok(out)
}

/// What changed between two [`requests_by_resource`] readings.
fn delta(before: &BTreeMap<String, f64>, after: &BTreeMap<String, f64>) -> BTreeMap<String, f64> {
    after
        .iter()
        .map(|(key, n)| (key.clone(), n - before.get(key).copied().unwrap_or(0.0)))
        .filter(|(_, n)| *n > 0.0)
        .collect()
}

/// CPU seconds (user + system) used so far by each control-plane process
/// and by `pid` (the operator), from /proc.
fn cpu_seconds(pid: u32) -> BTreeMap<String, f64> {
    let ticks = |stat: &str| -> Option<f64> {
        // Fields after the parenthesised command: utime and stime are the
        // 12th and 13th.
        let rest = stat.rsplit_once(") ")?.1;
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let utime: f64 = fields.get(11)?.parse().ok()?;
        let stime: f64 = fields.get(12)?.parse().ok()?;
        Some((utime + stime) / 100.0)
    };
    let mut out = BTreeMap::new();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return out;
    };
    for entry in entries.flatten() {
        let Some(this) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        let comm = std::fs::read_to_string(format!("/proc/{this}/comm")).unwrap_or_default();
        let name = match comm.trim() {
            _ if this == pid => "operator",
            "kube-apiserver" => "kube-apiserver",
            "etcd" => "etcd",
            "kube-controller" | "kube-controller-manager" => "kube-controller-manager",
            _ => continue,
        };
        if let Some(seconds) = std::fs::read_to_string(format!("/proc/{this}/stat"))
            .ok()
            .as_deref()
            .and_then(ticks)
        {
            *out.entry(name.to_string()).or_default() += seconds;
        }
    }
    out
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
    let endorser: DynamicObject =
        serde_json::from_value(vmlisub_e2e::publisher_endorser(&pki.subject, &pki.issuer))?;
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
        let list: DynamicObject =
            serde_json::from_value(vmlisub_e2e::publisher_list("big", &url, false))?;
        cluster.apply_dynamic(&list, Some(&ns)).await?;
    }
    for n in 0..lists_n {
        let id = format!("00000000-0000-4000-8000-{n:012}");
        let url = publisher.put(&format!("list-{n}"), &pki.list(&id, "1", &entries))?;
        let list: DynamicObject = serde_json::from_value(vmlisub_e2e::publisher_list(
            &format!("list-{n:03}"),
            &url,
            true,
        ))?;
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
    let all_at_start = requests_by_resource(&cluster).await?;
    let lists = vmlisub_e2e::vmli_api(&cluster, &ns, "ImageListSubscription");
    let subscriptions = vmlisub_e2e::vmli_api(&cluster, &ns, "ImageSubscription");
    // Progress is followed by watches, as a GitOps tool would, not by
    // listing 10,000 objects again and again: the benchmark's own load on
    // the API server stays that of two more watchers.
    let ready_list = move |l: &DynamicObject| {
        l.data["status"]["imageCount"] == images_n
            || (l.metadata.name.as_deref() == Some("big")
                && l.data["status"]["imageCount"] == big_n)
    };
    let available = |i: &DynamicObject| i.data["status"]["phase"] == "Available";
    let updates = futures::stream::select(
        watcher(lists.clone(), watcher::Config::default()).map(|e| (true, e)),
        watcher(subscriptions.clone(), watcher::Config::default()).map(|e| (false, e)),
    );
    let started = Instant::now();
    let mut operator = run.start("operator-scale").await?;
    let cpu_at_start = cpu_seconds(operator.pid());
    let mut ready: (BTreeSet<String>, BTreeSet<String>) = Default::default();
    let wanted = (lists_n + usize::from(big_n > 0), lists_n * images_n);
    let mut updates = std::pin::pin!(updates);
    let all_ready = loop {
        if (ready.0.len(), ready.1.len()) == wanted {
            break started.elapsed();
        }
        let next = tokio::time::timeout(
            Duration::from_secs(600).saturating_sub(started.elapsed()),
            updates.next(),
        )
        .await;
        let Ok(Some((is_list, event))) = next else {
            panic!(
                "not ready after 600 s: {} lists, {} images\n{}",
                ready.0.len(),
                ready.1.len(),
                operator.logs()
            );
        };
        let (set, test): (_, &dyn Fn(&DynamicObject) -> bool) = if is_list {
            (&mut ready.0, &ready_list)
        } else {
            (&mut ready.1, &available)
        };
        match event? {
            watcher::Event::Apply(o) | watcher::Event::InitApply(o) => {
                let name = o.metadata.name.clone().unwrap_or_default();
                if test(&o) {
                    set.insert(name);
                } else {
                    set.remove(&name);
                }
            }
            watcher::Event::Delete(o) => {
                set.remove(&o.metadata.name.clone().unwrap_or_default());
            }
            watcher::Event::Init | watcher::Event::InitDone => {}
        }
    };
    let rss_ready = peak_rss_kib(operator.pid());
    let cpu_at_ready = cpu_seconds(operator.pid());
    let requests_at_ready = requests_by_verb(&cluster).await?;
    let all_at_ready = requests_by_resource(&cluster).await?;
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
    let idle_delta: BTreeMap<&String, f64> = after
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
        "SCALE MALLOC_ARENA_MAX={}",
        std::env::var("MALLOC_ARENA_MAX").unwrap_or_else(|_| "unset".into())
    );
    println!(
        "SCALE requests_to_ready={requests_to_ready:.0} reconciles_to_ready={reconciles_at_ready:.0} requests_per_reconcile={:.2}",
        requests_to_ready / reconciles_at_ready.max(1.0)
    );
    println!("SCALE all_ready_seconds={:.1}", all_ready.as_secs_f64());
    let cpu: BTreeMap<&String, String> = cpu_at_ready
        .iter()
        .map(|(name, s)| {
            let used = s - cpu_at_start.get(name).copied().unwrap_or(0.0);
            (name, format!("{used:.1}"))
        })
        .collect();
    println!("SCALE cpu_seconds_to_ready={cpu:?}");
    let mut heaviest: Vec<(String, f64)> =
        delta(&all_at_start, &all_at_ready).into_iter().collect();
    heaviest.sort_by(|a, b| b.1.total_cmp(&a.1));
    heaviest.truncate(12);
    println!(
        "SCALE requests_to_ready_all_groups={:.0}",
        delta(&all_at_start, &all_at_ready).values().sum::<f64>()
    );
    for (key, n) in heaviest {
        println!("SCALE requests_to_ready[{key}]={n:.0}");
    }
    println!(
        "SCALE peak_rss_mib_at_ready={:.1} peak_rss_mib_after_idle={:.1}",
        rss_ready as f64 / 1024.0,
        rss_peak as f64 / 1024.0
    );
    println!(
        "SCALE idle_seconds={} list_fetches_during_run={fetches}",
        IDLE.as_secs()
    );
    println!("SCALE idle_vmli_requests_by_verb={idle_delta:?}");
    println!("SCALE idle_objects_rewritten={changed}");
    operator.terminate(Duration::from_secs(10)).await?;
    cluster.delete_namespace(&ns).await?;
    assert_eq!(changed, 0, "status writes while nothing changed");
    Ok(())
}
