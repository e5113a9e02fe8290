//! What kind of disk image a verified file is, and how big a disk it
//! holds, from its first bytes alone.
//!
//! [`inspect`] is pure: it takes the start of the file (at least
//! [`HEADER_BYTES`] when the file is that long) and the file's size, and
//! never panics, whatever the bytes say. The virtual size is reported only
//! where the format's header defines it:
//!
//! | format | recognised by | virtual size |
//! | --- | --- | --- |
//! | qcow2 (and qcow v1) | `QFI\xfb` at 0 | u64 big-endian at 24 |
//! | vmdk (sparse extent) | `KDMV` at 0 | capacity (u64 little-endian at 12) × 512 |
//! | vmdk (descriptor) | `# Disk DescriptorFile` at 0 | not defined here |
//! | vhd (dynamic) | `conectix` at 0 | current size, u64 big-endian at 48 |
//! | vhdx | `vhdxfile` at 0 | not in the header (metadata region) |
//! | vdi | `0xbeda107f` (LE) at 0x40 | u64 little-endian at 0x170 |
//! | iso (ISO 9660) | `CD001` at 0x8001 | the file size |
//! | gzip, xz, zstd | their magic numbers | not defined (compressed) |
//! | raw | anything else | the file size |
//!
//! A fixed-size VHD has its footer only at the end of the file, so it looks
//! raw here (its virtual size is then the file size, 512 bytes too many).

/// How many leading bytes [`inspect`] needs to recognise every format
/// (the ISO 9660 volume descriptor sits at 0x8001).
pub const HEADER_BYTES: usize = 64 * 1024;

/// A disk image format recognised by [`inspect`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DiskFormat {
    Raw,
    Qcow,
    Qcow2,
    Vmdk,
    Vhd,
    Vhdx,
    Vdi,
    Iso,
    Gzip,
    Xz,
    Zstd,
}

impl DiskFormat {
    /// The format's name as qemu-img and CDI spell it (`raw`, `qcow2`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Raw => "raw",
            Self::Qcow => "qcow",
            Self::Qcow2 => "qcow2",
            Self::Vmdk => "vmdk",
            Self::Vhd => "vpc",
            Self::Vhdx => "vhdx",
            Self::Vdi => "vdi",
            Self::Iso => "iso",
            Self::Gzip => "gzip",
            Self::Xz => "xz",
            Self::Zstd => "zstd",
        }
    }
}

impl std::fmt::Display for DiskFormat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What [`inspect`] found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DiskInfo {
    pub format: DiskFormat,
    /// The size of the disk the image holds, in bytes, where the format's
    /// header defines it.
    pub virtual_size: Option<u64>,
}

fn at<const N: usize>(header: &[u8], offset: usize) -> Option<[u8; N]> {
    header
        .get(offset..offset.checked_add(N)?)
        .and_then(|bytes| bytes.try_into().ok())
}

fn u64_be(header: &[u8], offset: usize) -> Option<u64> {
    at::<8>(header, offset).map(u64::from_be_bytes)
}

fn u64_le(header: &[u8], offset: usize) -> Option<u64> {
    at::<8>(header, offset).map(u64::from_le_bytes)
}

fn u32_be(header: &[u8], offset: usize) -> Option<u32> {
    at::<4>(header, offset).map(u32::from_be_bytes)
}

fn u32_le(header: &[u8], offset: usize) -> Option<u32> {
    at::<4>(header, offset).map(u32::from_le_bytes)
}

/// The format and virtual size of a disk image whose first bytes are
/// `header` (a prefix of the file, [`HEADER_BYTES`] long unless the file is
/// shorter) and whose size is `file_size`.
pub fn inspect(header: &[u8], file_size: u64) -> DiskInfo {
    let starts = |magic: &[u8]| header.starts_with(magic);
    let info = |format, virtual_size| DiskInfo {
        format,
        virtual_size,
    };
    if starts(b"QFI\xfb") {
        return match u32_be(header, 4) {
            Some(1) => info(DiskFormat::Qcow, u64_be(header, 24)),
            Some(2 | 3) => info(DiskFormat::Qcow2, u64_be(header, 24)),
            _ => info(DiskFormat::Qcow2, None),
        };
    }
    if starts(b"KDMV") {
        let capacity = u64_le(header, 12).and_then(|sectors| sectors.checked_mul(512));
        return info(DiskFormat::Vmdk, capacity);
    }
    if starts(b"# Disk DescriptorFile") {
        return info(DiskFormat::Vmdk, None);
    }
    if starts(b"vhdxfile") {
        return info(DiskFormat::Vhdx, None);
    }
    if starts(b"conectix") {
        return info(DiskFormat::Vhd, u64_be(header, 48));
    }
    if u32_le(header, 0x40) == Some(0xbeda_107f) {
        // Header version 1.x (major in the high half) has the disk size at
        // 0x170; other versions lay the header out differently.
        let size = (u32_le(header, 0x44).map(|v| v >> 16) == Some(1))
            .then(|| u64_le(header, 0x170))
            .flatten();
        return info(DiskFormat::Vdi, size);
    }
    if starts(&[0x1f, 0x8b]) {
        return info(DiskFormat::Gzip, None);
    }
    if starts(&[0xfd, b'7', b'z', b'X', b'Z', 0x00]) {
        return info(DiskFormat::Xz, None);
    }
    if starts(&[0x28, 0xb5, 0x2f, 0xfd]) {
        return info(DiskFormat::Zstd, None);
    }
    if header.get(0x8001..0x8006) == Some(b"CD001") {
        return info(DiskFormat::Iso, Some(file_size));
    }
    info(DiskFormat::Raw, Some(file_size))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn with(len: usize, writes: &[(usize, &[u8])]) -> Vec<u8> {
        let mut header = vec![0u8; len];
        for (offset, bytes) in writes {
            header[*offset..*offset + bytes.len()].copy_from_slice(bytes);
        }
        header
    }

    #[test]
    fn qcow2_size_is_big_endian_at_24() {
        let size = 10u64 * 1024 * 1024 * 1024;
        for version in [2u32, 3] {
            let header = with(
                512,
                &[
                    (0, b"QFI\xfb"),
                    (4, &version.to_be_bytes()),
                    (24, &size.to_be_bytes()),
                ],
            );
            assert_eq!(
                inspect(&header, 4096),
                DiskInfo {
                    format: DiskFormat::Qcow2,
                    virtual_size: Some(size)
                }
            );
        }
        let v1 = with(
            48,
            &[
                (0, b"QFI\xfb"),
                (4, &1u32.to_be_bytes()),
                (24, &7u64.to_be_bytes()),
            ],
        );
        assert_eq!(inspect(&v1, 48).format, DiskFormat::Qcow);
        assert_eq!(inspect(&v1, 48).virtual_size, Some(7));
    }

    #[test]
    fn qcow2_with_an_unknown_version_or_a_short_header_has_no_size() {
        let unknown = with(512, &[(0, b"QFI\xfb"), (4, &9u32.to_be_bytes())]);
        assert_eq!(inspect(&unknown, 512).virtual_size, None);
        assert_eq!(inspect(&unknown, 512).format, DiskFormat::Qcow2);
        for len in 4..32 {
            let short = &with(32, &[(0, b"QFI\xfb"), (4, &3u32.to_be_bytes())])[..len];
            let found = inspect(short, len as u64);
            assert_eq!(found.format, DiskFormat::Qcow2, "{len}");
            assert_eq!(found.virtual_size, None, "{len}");
        }
    }

    #[test]
    fn raw_is_the_file_size_and_the_empty_file_is_raw() {
        assert_eq!(
            inspect(&[], 0),
            DiskInfo {
                format: DiskFormat::Raw,
                virtual_size: Some(0)
            }
        );
        assert_eq!(
            inspect(&[7u8; 1000], 1_000_000).virtual_size,
            Some(1_000_000)
        );
        // Almost-magic is still raw.
        assert_eq!(inspect(b"QFI\xfa....", 9).format, DiskFormat::Raw);
        assert_eq!(inspect(b"QFI", 3).format, DiskFormat::Raw);
    }

    #[test]
    fn vmdk_capacity_is_in_sectors_and_overflow_is_no_size() {
        let header = with(
            512,
            &[
                (0, b"KDMV"),
                (4, &1u32.to_le_bytes()),
                (12, &2048u64.to_le_bytes()),
            ],
        );
        assert_eq!(inspect(&header, 65536).virtual_size, Some(2048 * 512));
        assert_eq!(inspect(&header, 65536).format, DiskFormat::Vmdk);
        let huge = with(512, &[(0, b"KDMV"), (12, &u64::MAX.to_le_bytes())]);
        assert_eq!(inspect(&huge, 512).virtual_size, None);
        let descriptor = b"# Disk DescriptorFile\nversion=1\n";
        assert_eq!(
            inspect(descriptor, descriptor.len() as u64),
            DiskInfo {
                format: DiskFormat::Vmdk,
                virtual_size: None
            }
        );
    }

    #[test]
    fn vhd_vhdx_and_vdi() {
        let vhd = with(512, &[(0, b"conectix"), (48, &(1u64 << 30).to_be_bytes())]);
        assert_eq!(
            inspect(&vhd, 4096),
            DiskInfo {
                format: DiskFormat::Vhd,
                virtual_size: Some(1 << 30)
            }
        );
        assert_eq!(DiskFormat::Vhd.as_str(), "vpc");
        let vhdx = with(1024, &[(0, b"vhdxfile")]);
        assert_eq!(
            inspect(&vhdx, 1 << 20),
            DiskInfo {
                format: DiskFormat::Vhdx,
                virtual_size: None
            }
        );
        let vdi = with(
            0x200,
            &[
                (0x40, &0xbeda_107fu32.to_le_bytes()),
                (0x44, &0x0001_0001u32.to_le_bytes()),
                (0x170, &(5u64 << 30).to_le_bytes()),
            ],
        );
        assert_eq!(
            inspect(&vdi, 0x200),
            DiskInfo {
                format: DiskFormat::Vdi,
                virtual_size: Some(5 << 30)
            }
        );
        let vdi_v0 = with(0x200, &[(0x40, &0xbeda_107fu32.to_le_bytes())]);
        assert_eq!(inspect(&vdi_v0, 0x200).virtual_size, None);
        assert_eq!(inspect(&vdi[..0x171], 0x171).virtual_size, None);
    }

    #[test]
    fn iso_and_compressed() {
        let iso = with(0x8800, &[(0x8001, b"CD001")]);
        assert_eq!(
            inspect(&iso, 700 << 20),
            DiskInfo {
                format: DiskFormat::Iso,
                virtual_size: Some(700 << 20)
            }
        );
        // Cut before the descriptor: raw.
        assert_eq!(inspect(&iso[..0x8003], 0x8003).format, DiskFormat::Raw);
        for (magic, format) in [
            (&[0x1f, 0x8b, 8][..], DiskFormat::Gzip),
            (&[0xfd, b'7', b'z', b'X', b'Z', 0][..], DiskFormat::Xz),
            (&[0x28, 0xb5, 0x2f, 0xfd][..], DiskFormat::Zstd),
        ] {
            assert_eq!(
                inspect(magic, 100),
                DiskInfo {
                    format,
                    virtual_size: None
                }
            );
        }
    }

    #[test]
    fn every_format_has_a_distinct_name() {
        let all = [
            DiskFormat::Raw,
            DiskFormat::Qcow,
            DiskFormat::Qcow2,
            DiskFormat::Vmdk,
            DiskFormat::Vhd,
            DiskFormat::Vhdx,
            DiskFormat::Vdi,
            DiskFormat::Iso,
            DiskFormat::Gzip,
            DiskFormat::Xz,
            DiskFormat::Zstd,
        ];
        let names: std::collections::BTreeSet<_> = all.iter().map(|f| f.to_string()).collect();
        assert_eq!(names.len(), all.len());
    }

    #[test]
    fn hostile_headers_never_panic() {
        // Every prefix of every magic, with all-0xff and all-zero filler,
        // at lengths around every offset the parser reads.
        let magics: [&[u8]; 8] = [
            b"QFI\xfb",
            b"KDMV",
            b"conectix",
            b"vhdxfile",
            &[0x1f, 0x8b],
            &[0xfd, b'7', b'z', b'X', b'Z', 0],
            &[0x28, 0xb5, 0x2f, 0xfd],
            b"# Disk DescriptorFile",
        ];
        let lengths = [
            0usize, 1, 3, 4, 7, 8, 12, 19, 20, 23, 24, 31, 32, 47, 55, 56, 0x43, 0x47, 0x177,
            0x178, 0x8005, 0x8006,
        ];
        for magic in magics {
            for filler in [0u8, 0xff] {
                for len in lengths {
                    let mut header = vec![filler; len.max(magic.len())];
                    header[..magic.len()].copy_from_slice(magic);
                    let header = &header[..len.min(header.len())];
                    for size in [0, 1, u64::MAX] {
                        let _ = inspect(header, size);
                    }
                }
            }
        }
        // A pseudo-random sweep (xorshift), reproducible.
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..2000 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let len = (state % 0x8100) as usize;
            let bytes: Vec<u8> = (0..len)
                .map(|i| (state.rotate_left(i as u32 % 64) >> 3) as u8)
                .collect();
            let found = inspect(&bytes, state);
            if found.format == DiskFormat::Raw {
                assert_eq!(found.virtual_size, Some(state));
            }
        }
    }
}
