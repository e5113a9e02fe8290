//! Free loopback ports for servers that bind them later (a subprocess, a
//! service that first sets up its database). Shared by the operator's
//! integration tests and the e2e harness (included by `#[path]`).

use std::net::TcpListener;
use std::ops::Range;
use std::sync::Mutex;

/// A port in `range` that is free now, handed out once per process. The
/// range must lie below the kernel's ephemeral range (32768 and up on
/// Linux), where no outbound connection can be given the port before its
/// server binds it; a pseudo-random start spreads concurrent test
/// processes apart.
pub fn free_port_in(range: Range<u16>) -> Option<u16> {
    static GIVEN: Mutex<Vec<u16>> = Mutex::new(Vec::new());
    let mut given = GIVEN
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0)
        ^ std::process::id().rotate_left(16);
    let span = u64::from(range.end.checked_sub(range.start)?.max(1));
    let mut state = u64::from(seed) | 1;
    for _ in 0..500 {
        // xorshift
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let port = range.start + u16::try_from(state % span).unwrap_or(0);
        if !given.contains(&port) && TcpListener::bind(("127.0.0.1", port)).is_ok() {
            given.push(port);
            return Some(port);
        }
    }
    None
}

/// Where the kernel's ephemeral port range starts on this machine.
pub fn ephemeral_start() -> u16 {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|range| range.split_whitespace().next()?.parse().ok())
        .unwrap_or(32768)
}
