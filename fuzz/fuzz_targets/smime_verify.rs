//! The whole untrusted-bytes path: MIME splitting, BER normalisation, CMS
//! decoding and signature checks. A trust store with the real GridKa CA is
//! loaded once, so that well-formed inputs get as far as path building.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use vmlisub::trust::{CrlPolicy, TrustStore, VerifyOptions};

fn store() -> &'static TrustStore {
    static STORE: OnceLock<TrustStore> = OnceLock::new();
    STORE.get_or_init(|| {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/testdata/real-lists/ca");
        vmlisub::trust::load_dir(std::path::Path::new(dir)).unwrap_or_default()
    })
}

fuzz_target!(|data: &[u8]| {
    let options = VerifyOptions {
        at: jiff::Timestamp::from_second(1_299_801_600).unwrap_or(jiff::Timestamp::UNIX_EPOCH),
        crl_policy: CrlPolicy::IfPresent,
        allow_sha1: true,
    };
    let _ = vmlisub::trust::verify(data, store(), &options);
});
