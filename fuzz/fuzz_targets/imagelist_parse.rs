//! The list parser must return a list or an error for any bytes, never panic,
//! and whatever it accepts must serialise back to JSON that parses again.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(parsed) = vmlisub_core::imagelist::parse(data) {
        let again = serde_json_roundtrip(&parsed.list);
        assert!(vmlisub_core::imagelist::parse(&again).is_ok());
    }
});

fn serde_json_roundtrip(list: &vmlisub_core::imagelist::ImageList) -> Vec<u8> {
    serde_json::to_vec(&list.to_document()).unwrap_or_default()
}
