//! Fixed points in time. Nothing in these tests reads the wall clock: every
//! certificate, CRL and list carries explicit dates, and every verification
//! (vmlisub `--at`, openssl `-attime`) happens at [`AT`], far from all edges.

/// The verification time of every generated case.
pub const AT: &str = "2026-01-15T12:00:00Z";

/// Validity of the trusted root CA.
pub const ROOT_FROM: &str = "2020-01-01T00:00:00Z";
pub const ROOT_UNTIL: &str = "2040-01-01T00:00:00Z";
/// Validity of intermediate CAs.
pub const INTER_FROM: &str = "2021-01-01T00:00:00Z";
pub const INTER_UNTIL: &str = "2039-01-01T00:00:00Z";
/// Validity of ordinary signers.
pub const SIGNER_FROM: &str = "2024-01-01T00:00:00Z";
pub const SIGNER_UNTIL: &str = "2028-01-01T00:00:00Z";
/// A window that ended long before [`AT`].
pub const PAST_FROM: &str = "2015-01-01T00:00:00Z";
pub const PAST_UNTIL: &str = "2022-01-01T00:00:00Z";
/// A window that starts long after [`AT`].
pub const FUTURE_FROM: &str = "2030-01-01T00:00:00Z";
pub const FUTURE_UNTIL: &str = "2039-06-01T00:00:00Z";

/// A CRL current at [`AT`].
pub const CRL_FRESH: (&str, &str) = ("2026-01-01T00:00:00Z", "2026-02-01T00:00:00Z");
/// A CRL whose nextUpdate passed before [`AT`].
pub const CRL_STALE: (&str, &str) = ("2025-11-01T00:00:00Z", "2025-12-01T00:00:00Z");
/// A CRL whose thisUpdate is after [`AT`].
pub const CRL_FUTURE: (&str, &str) = ("2026-03-01T00:00:00Z", "2026-04-01T00:00:00Z");
/// When revoked certificates were revoked.
pub const REVOKED_AT: &str = "2025-06-01T00:00:00Z";

/// A list current at [`AT`].
pub const LIST_FRESH: (&str, &str) = ("2026-01-10T00:00:00Z", "2026-02-10T00:00:00Z");
/// A list that expired before [`AT`].
pub const LIST_EXPIRED: (&str, &str) = ("2025-11-01T00:00:00Z", "2025-12-01T00:00:00Z");
/// A list created after [`AT`].
pub const LIST_FUTURE: (&str, &str) = ("2026-03-01T00:00:00Z", "2026-04-01T00:00:00Z");

/// Splits `YYYY-MM-DDTHH:MM:SSZ` into its fields.
fn fields(rfc3339: &str) -> [i64; 6] {
    let b = rfc3339.as_bytes();
    assert!(
        b.len() == 20 && b[4] == b'-' && b[7] == b'-' && b[10] == b'T' && b[19] == b'Z',
        "not YYYY-MM-DDTHH:MM:SSZ: {rfc3339}"
    );
    let num = |r: std::ops::Range<usize>| -> i64 {
        rfc3339[r]
            .parse()
            .unwrap_or_else(|_| panic!("bad time {rfc3339}"))
    };
    [
        num(0..4),
        num(5..7),
        num(8..10),
        num(11..13),
        num(14..16),
        num(17..19),
    ]
}

/// Seconds since the Unix epoch (for `openssl -attime`).
pub fn epoch(rfc3339: &str) -> i64 {
    let [y, m, d, hh, mm, ss] = fields(rfc3339);
    // Days from civil (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    days * 86_400 + hh * 3600 + mm * 60 + ss
}

/// `YYMMDDHHMMSSZ` (ASN.1 UTCTime, 1950..2049), as `openssl ca` wants it.
pub fn utctime(rfc3339: &str) -> String {
    let [y, m, d, hh, mm, ss] = fields(rfc3339);
    assert!((1950..2050).contains(&y), "UTCTime cannot hold {rfc3339}");
    format!("{:02}{m:02}{d:02}{hh:02}{mm:02}{ss:02}Z", y % 100)
}

/// An ASN.1 time as RFC 5280 4.1.2.5 wants it for `openssl ca`
/// (`-startdate`, `-enddate`, `-crl_lastupdate`, `-crl_nextupdate`):
/// `YYMMDDHHMMSSZ` (UTCTime) for 1950..2049, `YYYYMMDDHHMMSSZ`
/// (GeneralizedTime) from 2050 on.
pub fn asn1time(rfc3339: &str) -> String {
    let [y, m, d, hh, mm, ss] = fields(rfc3339);
    if (1950..2050).contains(&y) {
        utctime(rfc3339)
    } else {
        assert!(y >= 2050, "RFC 5280 has no encoding for {rfc3339}");
        format!("{y:04}{m:02}{d:02}{hh:02}{mm:02}{ss:02}Z")
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn epoch_and_utctime() {
        assert_eq!(super::epoch("1970-01-01T00:00:00Z"), 0);
        assert_eq!(super::epoch("2011-03-11T00:00:00Z"), 1_299_801_600);
        assert_eq!(super::epoch("2000-02-29T12:00:00Z"), 951_825_600);
        assert_eq!(super::utctime("2026-01-15T12:00:00Z"), "260115120000Z");
        assert_eq!(super::asn1time("1999-12-31T23:59:59Z"), "991231235959Z");
        assert_eq!(super::asn1time("2050-01-01T00:00:00Z"), "20500101000000Z");
    }
}
