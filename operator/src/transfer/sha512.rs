//! Streaming SHA-512 for images: ring's digest.
//!
//! Image downloads, resume re-hashes, promotion and integrity checks hash
//! gigabytes, and the hash is what bounds them. `sha2` (the pure core's
//! hash, kept for signatures and small inputs) is portable Rust with AVX2
//! intrinsics; ring's x86-64 SHA-512 is assembly (BoringSSL's): its AVX
//! code on Intel CPUs, its scalar code elsewhere, which on the project's
//! AMD machine is as fast as `sha2` or up to 12% faster, and both run at
//! 0.7-0.8 x OpenSSL's AVX2 code (docs/benchmarks.md). ring is already in
//! the tree through rustls, so this adds no crate.

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
pub struct Sha512(ring::digest::Context);

impl Sha512 {
    /// An empty hash.
    pub fn new() -> Self {
        Self(ring::digest::Context::new(&ring::digest::SHA512))
    }

    /// Adds `data` to what was hashed.
    pub fn update(&mut self, data: &[u8]) {
        self.0.update(data);
    }

    /// The digest of everything added.
    pub fn finish(self) -> [u8; SHA512_LEN] {
        let digest = self.0.finish();
        let mut out = [0u8; SHA512_LEN];
        // ring's SHA-512 output is always 64 bytes (unit-tested below).
        for (to, from) in out.iter_mut().zip(digest.as_ref()) {
            *to = *from;
        }
        out
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

    #[test]
    fn output_length_is_64() {
        assert_eq!(ring::digest::SHA512.output_len(), SHA512_LEN);
        assert_eq!(
            ring::digest::digest(&ring::digest::SHA512, b"")
                .as_ref()
                .len(),
            SHA512_LEN
        );
    }

    /// FIPS 180-2 test vector ("abc").
    #[test]
    fn known_answer() {
        let expected = "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a\
                        2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f";
        let digest = Sha512::digest(b"abc");
        let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex, expected);
    }
}
