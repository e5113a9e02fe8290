//! Benchmark: verifying a signed 1,000-image list.
//!
//! Side by side, in one run, on the same signed message and CA directory:
//!   (a) `vmlisub_core::trust::verify` in-process with a warm trust store,
//!   (b) parsing the verified list (the next step of every update),
//!   (c) `openssl smime -verify -crl_check_all` run as a process (what a
//!       cron-driven tool pays per list).
//!
//! Run with `cargo bench -p vmlisub-core --bench verify` (or `make bench`).
//! Needs the `openssl` CLI to build the test PKI.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use vmlisub_core::trust::{CrlPolicy, VerifyOptions};

#[path = "../../../operator/tests/support/live.rs"]
#[allow(dead_code)]
mod live;

/// Builds an RSA-2048 CA with a CRL, a signer, and a signed list of
/// `images` images; returns the PKI and the signed message.
fn fixture(dir: &Path, images: usize) -> (live::LivePki, Vec<u8>) {
    let pki = live::LivePki::new_rsa(dir);
    let bundle = [
        std::fs::read(dir.join("ca.pem")).unwrap(),
        std::fs::read(dir.join("ca.crl")).unwrap(),
    ]
    .concat();
    std::fs::write(dir.join("bundle.pem"), bundle).unwrap();
    let payloads: Vec<(String, String, Vec<u8>)> = (0..images)
        .map(|index| {
            (
                format!("00000000-0000-4000-8000-{index:012}"),
                format!("https://images.example.org/vo/image-{index}.qcow2"),
                format!("image {index}").into_bytes(),
            )
        })
        .collect();
    let entries: Vec<(&str, &str, &[u8])> = payloads
        .iter()
        .map(|(id, uri, bytes)| (id.as_str(), uri.as_str(), bytes.as_slice()))
        .collect();
    let message = pki.list("11111111-2222-4333-8444-555555555555", "1", &entries);
    std::fs::write(dir.join("list.smime"), &message).unwrap();
    (pki, message)
}

struct Stats {
    median: Duration,
    p95: Duration,
    runs: usize,
}

fn measure(mut run: impl FnMut(), budget: Duration, min_runs: usize) -> Stats {
    run(); // warm-up
    let mut samples = Vec::new();
    let start = Instant::now();
    while samples.len() < min_runs || start.elapsed() < budget {
        let t = Instant::now();
        run();
        samples.push(t.elapsed());
        if samples.len() >= 100_000 {
            break;
        }
    }
    samples.sort();
    Stats {
        median: samples[samples.len() / 2],
        p95: samples[samples.len() * 95 / 100],
        runs: samples.len(),
    }
}

fn main() {
    let dir = tempfile::tempdir().unwrap();
    let (pki, message) = fixture(dir.path(), 1000);
    let files: Vec<(String, Vec<u8>)> = std::fs::read_dir(&pki.ca_dir)
        .unwrap()
        .map(|entry| {
            let entry = entry.unwrap();
            let name = entry.file_name().to_string_lossy().into_owned();
            (name, std::fs::read(entry.path()).unwrap())
        })
        .collect();
    let store = vmlisub_core::trust::TrustStore::from_files(
        files
            .iter()
            .map(|(name, bytes)| (name.as_str(), bytes.as_slice())),
    );
    assert!(store.problems.is_empty(), "{:?}", store.problems);
    let options = VerifyOptions {
        at: jiff::Timestamp::now(),
        crl_policy: CrlPolicy::Require,
        allow_sha1: false,
    };
    let verified = vmlisub_core::trust::verify(&message, &store, &options).unwrap();
    let parsed = vmlisub_core::imagelist::parse(&verified.content).unwrap();
    assert_eq!(parsed.list.images.len(), 1000);

    let budget = Duration::from_secs(3);
    let verify_only = measure(
        || {
            std::hint::black_box(vmlisub_core::trust::verify(&message, &store, &options).unwrap());
        },
        budget,
        50,
    );
    let parse_only = measure(
        || {
            std::hint::black_box(vmlisub_core::imagelist::parse(&verified.content).unwrap());
        },
        budget,
        50,
    );
    let attime = options.at.as_second().to_string();
    let openssl_process = measure(
        || {
            let status = Command::new("openssl")
                .args([
                    "smime",
                    "-verify",
                    "-crl_check_all",
                    "-CAfile",
                    "bundle.pem",
                    "-attime",
                    &attime,
                    "-in",
                    "list.smime",
                    "-out",
                    "/dev/null",
                ])
                .current_dir(dir.path())
                .stderr(std::process::Stdio::null())
                .status()
                .unwrap();
            assert!(status.success());
        },
        budget,
        20,
    );

    println!(
        "verify a signed 1,000-image list ({} bytes), warm trust store, CRL checked",
        message.len()
    );
    println!("{:<44} {:>12} {:>12} {:>8}", "", "median", "p95", "runs");
    for (name, stats) in [
        ("(a) vmlisub verify, in-process", &verify_only),
        ("(b) vmlisub list parse, in-process", &parse_only),
        ("(c) openssl smime -verify, as a process", &openssl_process),
    ] {
        println!(
            "{name:<44} {:>9.3} ms {:>9.3} ms {:>8}",
            stats.median.as_secs_f64() * 1e3,
            stats.p95.as_secs_f64() * 1e3,
            stats.runs
        );
    }
    println!(
        "ratio (c)/(a): {:.1}x, (c)/((a)+(b)): {:.1}x",
        openssl_process.median.as_secs_f64() / verify_only.median.as_secs_f64(),
        openssl_process.median.as_secs_f64()
            / (verify_only.median + parse_only.median).as_secs_f64()
    );
}
