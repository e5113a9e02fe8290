//! Benchmark: verifying a signed 1,000-image list.
//!
//! Side by side, in one run, on the same signed message and CA directory:
//!   (a) `vmlisub::trust::verify` in-process with a warm trust store,
//!   (b) parsing the verified list (the next step of every update),
//!   (c) `openssl smime -verify -crl_check` run as a process (what a
//!       cron-driven tool pays per list).
//!
//! Run with `cargo bench -p vmlisub --bench verify` (or `make bench`).
//! Needs the `openssl` CLI to build the test PKI.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use vmlisub::trust::{CrlPolicy, VerifyOptions};

fn openssl(dir: &Path, args: &[&str]) {
    let output = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl CLI");
    assert!(
        output.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

fn one_line_subject(dir: &Path, cert: &str) -> String {
    let output = Command::new("openssl")
        .args([
            "x509", "-noout", "-subject", "-nameopt", "compat", "-in", cert,
        ])
        .current_dir(dir)
        .output()
        .expect("openssl CLI");
    String::from_utf8_lossy(&output.stdout)
        .trim()
        .trim_start_matches("subject=")
        .to_string()
}

/// Builds a CA with a CRL, a signer, and a signed list of `images` images.
fn fixture(dir: &Path, images: usize) -> Vec<u8> {
    std::fs::write(
        dir.join("ca.cnf"),
        "[ca]\ndefault_ca = bench\n[bench]\ndatabase = index.txt\ndefault_md = sha256\ndefault_crl_days = 30\n",
    )
    .unwrap();
    std::fs::write(dir.join("index.txt"), "").unwrap();
    std::fs::write(
        dir.join("signer.ext"),
        "keyUsage = critical, digitalSignature, nonRepudiation\nextendedKeyUsage = emailProtection\n",
    )
    .unwrap();
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-days",
            "3650",
            "-subj",
            "/DC=org/DC=example/CN=Bench CA",
        ],
    );
    openssl(
        dir,
        &[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "signer.key",
            "-out",
            "signer.csr",
            "-subj",
            "/DC=org/DC=example/OU=People/CN=bench/CN=12345",
        ],
    );
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "signer.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-set_serial",
            "4660",
            "-days",
            "365",
            "-extfile",
            "signer.ext",
            "-out",
            "signer.pem",
        ],
    );
    openssl(
        dir,
        &[
            "ca", "-config", "ca.cnf", "-gencrl", "-keyfile", "ca.key", "-cert", "ca.pem", "-out",
            "ca.crl",
        ],
    );
    let cas = dir.join("cas");
    std::fs::create_dir_all(&cas).unwrap();
    std::fs::copy(dir.join("ca.pem"), cas.join("bench.0")).unwrap();
    std::fs::copy(dir.join("ca.crl"), cas.join("bench.r0")).unwrap();
    let bundle = [
        std::fs::read(dir.join("ca.pem")).unwrap(),
        std::fs::read(dir.join("ca.crl")).unwrap(),
    ]
    .concat();
    std::fs::write(dir.join("bundle.pem"), bundle).unwrap();

    let subject = one_line_subject(dir, "signer.pem");
    let issuer = one_line_subject(dir, "ca.pem");
    let image_entries: Vec<String> = (0..images)
        .map(|index| {
            format!(
                r#"{{"hv:image": {{"dc:identifier": "00000000-0000-4000-8000-{index:012}", "dc:title": "Image {index}", "dc:description": "Benchmark image number {index} with a description of typical length", "hv:uri": "https://images.example.org/vo/image-{index}.qcow2", "hv:size": {size}, "sl:checksum:sha512": "{index:0128x}", "sl:arch": "x86_64", "sl:os": "Linux", "sl:osversion": "AlmaLinux 9", "sl:comments": "", "hv:hypervisor": "KVM", "hv:version": "1.{index}", "hv:format": "QCOW2", "ad:mpuri": "https://appdb.example.org/store/vm/image/{index}/"}}}}"#,
                size = 1_073_741_824 + index,
            )
        })
        .collect();
    let list = format!(
        r#"{{"hv:imagelist": {{"dc:identifier": "11111111-2222-4333-8444-555555555555", "dc:title": "Benchmark list", "dc:description": "1,000 images", "dc:source": "https://example.org/", "dc:date:created": "2026-01-01T00:00:00Z", "dc:date:expires": "2099-01-01T00:00:00Z", "hv:version": "1", "hv:uri": "https://example.org/image.list", "hv:endorser": {{"hv:x509": {{"hv:dn": "{subject}", "hv:ca": "{issuer}", "hv:email": "bench@example.org", "dc:creator": "bench"}}}}, "hv:images": [{images}]}}}}"#,
        images = image_entries.join(",\n")
    );
    std::fs::write(dir.join("list.json"), list).unwrap();
    openssl(
        dir,
        &[
            "smime",
            "-sign",
            "-signer",
            "signer.pem",
            "-inkey",
            "signer.key",
            "-md",
            "sha256",
            "-in",
            "list.json",
            "-out",
            "list.smime",
        ],
    );
    std::fs::read(dir.join("list.smime")).unwrap()
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
    let message = fixture(dir.path(), 1000);
    let store = vmlisub::trust::load_dir(&dir.path().join("cas")).unwrap();
    assert!(store.problems.is_empty(), "{:?}", store.problems);
    let options = VerifyOptions {
        at: jiff::Timestamp::now(),
        crl_policy: CrlPolicy::Require,
        allow_sha1: false,
    };
    let verified = vmlisub::trust::verify(&message, &store, &options).unwrap();
    let parsed = vmlisub::imagelist::parse(&verified.content).unwrap();
    assert_eq!(parsed.list.images.len(), 1000);

    let budget = Duration::from_secs(3);
    let verify_only = measure(
        || {
            std::hint::black_box(vmlisub::trust::verify(&message, &store, &options).unwrap());
        },
        budget,
        50,
    );
    let parse_only = measure(
        || {
            std::hint::black_box(vmlisub::imagelist::parse(&verified.content).unwrap());
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
                    "-crl_check",
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
