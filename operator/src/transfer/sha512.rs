//! Streaming SHA-512 for images: OpenSSL's, from the system's libcrypto.
//!
//! Image downloads, resume re-hashes, promotion checks and integrity checks
//! hash gigabytes, and the hash is what bounds them (issue 14, item 8: the
//! downloader is to keep pace with `openssl dgst -sha512`). Only OpenSSL's
//! own x86-64 code reaches that on the project's AMD machine: its AVX2 and
//! BMI2 SHA-512 hashes 1.0-1.1 GB/s there, where ring (which enables its
//! AVX code on Intel CPUs only) and `sha2` (AVX2 message schedule, rounds
//! without BMI2) both run its scalar speed, 0.7-0.8 of that
//! (docs/benchmarks.md). So the system libcrypto does this one job; TLS,
//! signatures and small hashes stay with rustls/ring and the RustCrypto
//! crates of the pure core. The low-level `SHA512_*` interface is used
//! (not EVP): it cannot fail, needs no provider lookup per context, and is
//! present in every OpenSSL 1.1 and 3.x build that keeps the 3.0
//! deprecated interfaces (Debian's, RHEL's and the container image's do).

use std::fmt;
use std::io::Read;

/// Bytes read at a time by [`Sha512::update_from_reader`]: large enough
/// that a read system call per chunk costs nothing beside the hash, small
/// enough to stay in the CPU's L2 cache between the read and the hash.
const READ_CHUNK: usize = 1 << 20;

/// Bytes in a SHA-512 digest.
pub const SHA512_LEN: usize = 64;

/// An incremental SHA-512: feed it with [`update`](Self::update) in pieces
/// of any size, then [`finish`](Self::finish). Cloning forks the state.
#[derive(Clone)]
pub struct Sha512(openssl::sha::Sha512);

impl Sha512 {
    /// An empty hash.
    pub fn new() -> Self {
        Self(openssl::sha::Sha512::new())
    }

    /// Adds `data` to what was hashed.
    pub fn update(&mut self, data: &[u8]) {
        self.0.update(data);
    }

    /// The digest of everything added.
    pub fn finish(self) -> [u8; SHA512_LEN] {
        self.0.finish()
    }

    /// Hashes what `reader` yields, until its end or `limit` bytes,
    /// whichever comes first, reading [`READ_CHUNK`] bytes at a time (the
    /// memory used does not depend on the size). Returns the number of
    /// bytes hashed; interrupted reads are retried. Blocking: run it on a
    /// blocking thread, never on an async runtime's workers.
    pub fn update_from_reader<R: Read>(
        &mut self,
        mut reader: R,
        limit: u64,
    ) -> std::io::Result<u64> {
        let mut buffer = vec![0u8; READ_CHUNK];
        let mut total: u64 = 0;
        while total < limit {
            let want =
                usize::try_from(limit - total).map_or(READ_CHUNK, |left| left.min(READ_CHUNK));
            let n = match reader.read(buffer.get_mut(..want).unwrap_or_default()) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            self.update(buffer.get(..n).unwrap_or_default());
            total = total.saturating_add(u64::try_from(n).unwrap_or(u64::MAX));
        }
        Ok(total)
    }

    /// The digest of `data` in one go.
    pub fn digest(data: &[u8]) -> [u8; SHA512_LEN] {
        let mut hasher = Self::new();
        hasher.update(data);
        hasher.finish()
    }
}

impl Default for Sha512 {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for Sha512 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Sha512")
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use sha2::Digest as _;

    fn hex(digest: &[u8]) -> String {
        digest.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// FIPS 180-2 test vectors ("abc", the two-block message, the empty
    /// message).
    #[test]
    fn known_answers() {
        let cases: [(&[u8], &str); 3] = [
            (
                b"abc",
                "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a\
                 2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f",
            ),
            (
                b"abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu",
                "8e959b75dae313da8cf4f72814fc143f8f7779c6eb9f7fa17299aeadb6889018\
                 501d289e4900f7e4331b99dec4b5433ac7d329eeb6dd26545e96e55b874be909",
            ),
            (
                b"",
                "cf83e1357eefb8bdf1542850d66d8007d620e4050b5715dc83f4a921d36ce9ce\
                 47d0d13c5d85f2b0ff8318d2877eec2f63b931bd47417a81a538327af927da3e",
            ),
        ];
        for (input, expected) in cases {
            assert_eq!(hex(&Sha512::digest(input)), expected);
        }
    }

    /// Against another implementation (RustCrypto's `sha2`), for every
    /// length around the block and padding boundaries and for updates
    /// split at every offset, and through `update_from_reader` with a limit.
    #[test]
    fn agrees_with_rustcrypto_whatever_the_split() {
        let data: Vec<u8> = (0..1200u32).map(|i| (i * 7 + i / 3) as u8).collect();
        for len in (0..300).chain([511, 512, 1023, 1024, 1025, 1200]) {
            let input = &data[..len];
            let reference = sha2::Sha512::digest(input);
            assert_eq!(Sha512::digest(input)[..], reference[..], "len {len}");
            let split = len / 3;
            let mut hasher = Sha512::new();
            hasher.update(&input[..split]);
            let fork = hasher.clone();
            hasher.update(&input[split..]);
            assert_eq!(hasher.finish()[..], reference[..], "len {len} split");
            let mut forked = fork;
            forked.update(&input[split..]);
            assert_eq!(forked.finish()[..], reference[..], "len {len} fork");
        }
        let mut hasher = Sha512::new();
        let read = hasher.update_from_reader(&data[..], 1000).unwrap();
        assert_eq!(read, 1000);
        assert_eq!(hasher.finish()[..], sha2::Sha512::digest(&data[..1000])[..]);
    }
}
