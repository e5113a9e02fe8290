//! The whole untrusted-bytes path: MIME splitting, BER normalisation, CMS
//! decoding and signature checks. A trust store with the real GridKa CA is
//! loaded once, so that well-formed inputs get as far as path building.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use vmlisub_core::trust::{CrlPolicy, TrustStore, VerifyOptions};

fn store() -> &'static TrustStore {
    static STORE: OnceLock<TrustStore> = OnceLock::new();
    STORE.get_or_init(|| {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/testdata/real-lists/ca");
        let files: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir)
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|entry| {
                let name = entry.file_name().to_string_lossy().into_owned();
                Some((name, std::fs::read(entry.path()).ok()?))
            })
            .collect();
        TrustStore::from_files(files.iter().map(|(name, bytes)| (name.as_str(), bytes.as_slice())))
    })
}

fuzz_target!(|data: &[u8]| {
    let options = VerifyOptions {
        at: jiff::Timestamp::from_second(1_299_801_600).unwrap_or(jiff::Timestamp::UNIX_EPOCH),
        crl_policy: CrlPolicy::IfPresent,
        allow_sha1: true,
    };
    let _ = vmlisub_core::trust::verify(data, store(), &options);
});
