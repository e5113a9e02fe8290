//! BER normalisation: never panics, and its output is a fixed point.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(der) = vmlisub_core::trust::ber::to_der(data) {
        assert_eq!(vmlisub_core::trust::ber::to_der(&der).as_deref(), Ok(der.as_slice()));
    }
});
