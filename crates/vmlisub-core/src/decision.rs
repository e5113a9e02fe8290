//! Whether a verified, parsed list may replace the stored one.
//!
//! Pure: the caller passes the list, the digest of the signed bytes, the
//! verified signer, the authorised endorser credentials, the last good list
//! and the current time, and gets back a [`Verdict`] or a [`Rejection`].
//! Nothing here fetches, verifies signatures or reads a clock, so every rule
//! can be tested at any point in time.
//!
//! The checks run in a fixed order (signer names, endorsement, identifier,
//! creation time, expiry, then the comparison with the stored list), so the
//! reported reason is stable when several rules fail at once: the first
//! failing check wins.
//!
//! A rejection never touches the last good list. The caller re-evaluates the
//! stored list on its own schedule with [`is_list_expired`], because a stored
//! list that expires must stop endorsing its images even when no new list
//! arrives (the original kept serving them).
//!
//! The rollback guard does not depend on the stored list still verifying:
//! the caller also passes the subscription's [`HighWaterMark`]s, the highest
//! list ever accepted per `dc:identifier`, and a candidate is compared with
//! the mark of its identifier whether or not a stored list is at hand. A
//! stored list that expired, or whose signer expired or was revoked or
//! de-authorised, therefore cannot open the door to an older list signed by
//! another authorised credential.

use crate::imagelist::{Image, ImageList, compare_versions};
use crate::reason::Reason;
use crate::redact::redact_url;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use std::cmp::Ordering;
use std::fmt;
use std::time::Duration;

/// The verified signer of a list, as produced by signature verification:
/// one-line DNs such as `/DC=ch/DC=cern/CN=x`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SignerIdentity {
    /// Subject DN of the signing certificate.
    pub subject: String,
    /// Issuer DN of the signing certificate.
    pub issuer: String,
}

/// One certificate identity of an endorser authorised for a subscription.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Credential {
    /// Subject DN, one-line form.
    pub subject: String,
    /// Issuer DN, one-line form.
    pub issuer: String,
}

/// The last good list of the subscription.
#[derive(Clone, Copy, Debug)]
pub struct StoredList<'a> {
    /// The parsed list.
    pub list: &'a ImageList,
    /// SHA-512 of its signed bytes.
    pub digest: &'a [u8],
}

/// The highest list a subscription ever accepted for one `dc:identifier`:
/// the rollback guard's reference, kept by the caller independently of the
/// stored list (which may be dropped, or stop verifying).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HighWaterMark {
    /// `dc:identifier` of the accepted list.
    pub identifier: String,
    /// Its `hv:version`.
    pub version: String,
    /// Its `dc:date:created`.
    pub created: Timestamp,
    /// SHA-512 of its signed bytes, lower-case hex: the very same list is
    /// never a replay of itself (it may come back after its signer was
    /// re-authorised).
    pub digest: String,
}

impl HighWaterMark {
    /// The mark of an accepted list.
    pub fn of(list: &ImageList, digest: &[u8]) -> Self {
        Self {
            identifier: list.identifier.as_str().to_owned(),
            version: list.version.clone(),
            created: list.created,
            digest: hex(digest),
        }
    }

    /// Whether `digest` (raw bytes) is this mark's list. Empty digests never
    /// match.
    pub fn is_digest(&self, digest: &[u8]) -> bool {
        !digest.is_empty() && self.digest.eq_ignore_ascii_case(&hex(digest))
    }
}

/// Records `list` (just accepted, signed bytes hashing to `digest`) as the
/// mark of its identifier, replacing the previous mark of that identifier.
/// Marks of other identifiers (an earlier identifier pin) are kept.
pub fn raise_high_water(marks: &mut Vec<HighWaterMark>, list: &ImageList, digest: &[u8]) {
    let mark = HighWaterMark::of(list, digest);
    match marks.iter_mut().find(|m| m.identifier == mark.identifier) {
        Some(existing) => *existing = mark,
        None => marks.push(mark),
    }
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes.iter().fold(String::new(), |mut out, b| {
        let _ = write!(out, "{b:02x}");
        out
    })
}

/// Everything [`decide`] looks at.
#[derive(Clone, Copy, Debug)]
pub struct DecisionInput<'a> {
    /// The candidate list (already signature-verified and parsed).
    pub list: &'a ImageList,
    /// SHA-512 of the candidate's signed bytes.
    pub digest: &'a [u8],
    /// Who signed the candidate.
    pub signer: &'a SignerIdentity,
    /// The union of the credentials of the endorsers authorised for this
    /// subscription. Empty means nobody is authorised.
    pub endorsers: &'a [Credential],
    /// The subscription's list identifier, if pinned. When `None` and a
    /// previous list exists, the previous list's identifier is used: a
    /// subscription never silently switches to another list.
    pub pinned_identifier: Option<&'a str>,
    /// The last good list, if any (and if it still verifies: a stored list
    /// that no longer stands is not passed here).
    pub previous: Option<StoredList<'a>>,
    /// The subscription's high-water marks (highest accepted list per
    /// identifier), kept whether or not `previous` is present. The
    /// candidate is compared with the mark of its own identifier.
    pub high_water: &'a [HighWaterMark],
    /// The URL the user subscribed to; a different `hv:uri` in the list is
    /// reported, never followed.
    pub subscription_url: Option<&'a str>,
    /// The current time.
    pub now: Timestamp,
    /// How far in the future `dc:date:created` may be (clocks of publisher
    /// and subscriber disagree a little). Does not extend expiry.
    pub max_clock_skew: Duration,
}

/// Something worth reporting about an accepted list.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "code", rename_all = "kebab-case")]
pub enum DecisionWarning {
    /// The list's `hv:uri` is not the subscription URL. The original moved
    /// the subscription to `hv:uri`; here the user's URL stays
    /// authoritative and the difference is only reported.
    UriDiffers {
        /// The list's `hv:uri`.
        list_uri: String,
        /// The URL subscribed to.
        subscription_url: String,
    },
    /// The content changed but `hv:version` did not; accepted because
    /// `dc:date:created` is newer (the publisher should bump the version).
    VersionUnchanged {
        /// The (unchanged) version.
        version: String,
    },
}

impl DecisionWarning {
    /// Stable kebab-case code (`uri-differs`, `version-unchanged`).
    pub fn code(&self) -> &'static str {
        match self {
            DecisionWarning::UriDiffers { .. } => "uri-differs",
            DecisionWarning::VersionUnchanged { .. } => "version-unchanged",
        }
    }
}

impl fmt::Display for DecisionWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecisionWarning::UriDiffers {
                list_uri,
                subscription_url,
            } => write!(
                f,
                "list hv:uri {list_uri:?} differs from the subscription URL {subscription_url:?} (not followed)"
            ),
            DecisionWarning::VersionUnchanged { version } => write!(
                f,
                "list content changed without a new hv:version ({version:?}); accepted because dc:date:created is newer"
            ),
        }
    }
}

/// An accepted list.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "verdict", rename_all = "kebab-case")]
pub enum Verdict {
    /// First list of the subscription: store it.
    New {
        /// Things to report.
        warnings: Vec<DecisionWarning>,
    },
    /// Replaces the stored list.
    Updated {
        /// Things to report.
        warnings: Vec<DecisionWarning>,
    },
    /// Byte-identical to the stored list: nothing to do.
    Unchanged {
        /// Things to report.
        warnings: Vec<DecisionWarning>,
    },
}

impl Verdict {
    /// The warnings of any verdict.
    pub fn warnings(&self) -> &[DecisionWarning] {
        match self {
            Verdict::New { warnings }
            | Verdict::Updated { warnings }
            | Verdict::Unchanged { warnings } => warnings,
        }
    }

    /// Whether the candidate must be stored (new or updated).
    pub fn stores_list(&self) -> bool {
        !matches!(self, Verdict::Unchanged { .. })
    }

    /// `new`, `updated` or `unchanged`.
    pub fn kind(&self) -> &'static str {
        match self {
            Verdict::New { .. } => "new",
            Verdict::Updated { .. } => "updated",
            Verdict::Unchanged { .. } => "unchanged",
        }
    }
}

/// Why a candidate list is refused. DNs and versions come from the list or
/// the certificate and are shown debug-escaped.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    /// The list's endorser block does not name the certificate that signed
    /// it; a valid signature by someone else must not pass as the endorser's.
    #[error(
        "list endorser (hv:dn {list_dn:?}, hv:ca {list_ca:?}) is not the signer (subject {signer_subject:?}, issuer {signer_issuer:?})"
    )]
    SignerDnMismatch {
        /// `hv:endorser/hv:x509/hv:dn`.
        list_dn: String,
        /// `hv:endorser/hv:x509/hv:ca`.
        list_ca: String,
        /// The signer's subject.
        signer_subject: String,
        /// The signer's issuer.
        signer_issuer: String,
    },
    /// The signer is not among the endorsers authorised for the subscription.
    #[error(
        "signer (subject {subject:?}, issuer {issuer:?}) is not an endorser authorised for this subscription"
    )]
    EndorserNotAuthorised {
        /// The signer's subject.
        subject: String,
        /// The signer's issuer.
        issuer: String,
    },
    /// `dc:identifier` is not the subscription's list identifier.
    #[error("list dc:identifier {found:?} is not the subscription's {expected:?}")]
    IdentifierMismatch {
        /// The pinned identifier.
        expected: String,
        /// The list's identifier.
        found: String,
    },
    /// `dc:date:created` is later than now plus the allowed clock skew.
    #[error(
        "list dc:date:created {created} is in the future (now {now}, allowed clock skew {}s)",
        .max_clock_skew.as_secs()
    )]
    CreatedInFuture {
        /// The list's creation time.
        created: Timestamp,
        /// The current time.
        now: Timestamp,
        /// The allowance.
        max_clock_skew: Duration,
    },
    /// `dc:date:expires` has been reached.
    #[error("list expired at {expires} (now {now})")]
    ListExpired {
        /// The list's expiry.
        expires: Timestamp,
        /// The current time.
        now: Timestamp,
    },
    /// `hv:version` is lower than the stored list's, or than the highest
    /// version ever accepted.
    #[error("list hv:version {received:?} is lower than the accepted {stored:?} (rollback)")]
    Rollback {
        /// The stored version.
        stored: String,
        /// The candidate's version.
        received: String,
    },
    /// Same version, different bytes, and not created later: an old or
    /// re-signed copy being passed off as current.
    #[error(
        "list content differs from the accepted list with the same hv:version {version:?}, but dc:date:created {created} is not newer than the accepted {stored_created} (replay)"
    )]
    Replay {
        /// The shared version.
        version: String,
        /// The candidate's creation time.
        created: Timestamp,
        /// The stored list's creation time.
        stored_created: Timestamp,
    },
    /// A higher version created before the stored list: version strings are
    /// publisher-controlled and sometimes reset, creation times must not run
    /// backwards.
    #[error(
        "list dc:date:created {created} is older than the accepted list's {stored_created} (hv:version {received:?} vs accepted {stored:?})"
    )]
    CreatedBeforeStored {
        /// The candidate's creation time.
        created: Timestamp,
        /// The stored list's creation time.
        stored_created: Timestamp,
        /// The candidate's version.
        received: String,
        /// The stored version.
        stored: String,
    },
}

impl Reason for Rejection {
    fn reason(&self) -> &'static str {
        match self {
            Rejection::SignerDnMismatch { .. } => "signer-dn-mismatch",
            Rejection::EndorserNotAuthorised { .. } => "endorser-not-authorised",
            Rejection::IdentifierMismatch { .. } => "identifier-mismatch",
            Rejection::CreatedInFuture { .. } => "created-in-future",
            Rejection::ListExpired { .. } => "list-expired",
            Rejection::Rollback { .. } => "rollback",
            Rejection::Replay { .. } => "replay",
            Rejection::CreatedBeforeStored { .. } => "created-before-stored",
        }
    }
}

/// Whether the list has expired at `now`.
///
/// `dc:date:expires` is taken as the first instant at which the list is no
/// longer valid (`now >= expires`): at second granularity the difference to
/// "strictly after" is one second, and failing closed is the safer side. No
/// clock-skew allowance applies: skew may excuse an early clock for
/// `dc:date:created`, never extend an endorsement.
pub fn is_list_expired(list: &ImageList, now: Timestamp) -> bool {
    now >= list.expires
}

/// Whether an image of `list` is no longer endorsed because the list or the
/// image's own `dc:date:expires` has been reached.
pub fn is_image_expired(list: &ImageList, image: &Image, now: Timestamp) -> bool {
    is_list_expired(list, now) || image.is_expired(now)
}

/// The `hv:uri` warning, if the list names another URL than the one the
/// user subscribed to. Compared exactly, but without credentials on either
/// side (a token in the subscription URL does not make it another list),
/// and reported with them removed: the warning reaches status and logs.
pub fn uri_differs(list: &ImageList, subscription_url: Option<&str>) -> Option<DecisionWarning> {
    let url = redact_url(subscription_url?);
    let list_uri = redact_url(&list.uri);
    (list_uri != url).then_some(DecisionWarning::UriDiffers {
        list_uri,
        subscription_url: url,
    })
}

/// The list names its signer exactly (check 1).
fn check_signer(list: &ImageList, signer: &SignerIdentity) -> Result<(), Rejection> {
    let x509 = &list.endorser.x509;
    if x509.dn != signer.subject || x509.ca != signer.issuer {
        return Err(Rejection::SignerDnMismatch {
            list_dn: x509.dn.clone(),
            list_ca: x509.ca.clone(),
            signer_subject: signer.subject.clone(),
            signer_issuer: signer.issuer.clone(),
        });
    }
    Ok(())
}

/// The signer is among the authorised credentials (check 2).
fn check_endorser(signer: &SignerIdentity, endorsers: &[Credential]) -> Result<(), Rejection> {
    let authorised = endorsers
        .iter()
        .any(|c| c.subject == signer.subject && c.issuer == signer.issuer);
    if !authorised {
        return Err(Rejection::EndorserNotAuthorised {
            subject: signer.subject.clone(),
            issuer: signer.issuer.clone(),
        });
    }
    Ok(())
}

/// Not created in the future beyond the skew, not expired (checks 4 and 5).
fn check_times(
    list: &ImageList,
    now: Timestamp,
    max_clock_skew: Duration,
) -> Result<(), Rejection> {
    // A skew so large that now + skew overflows allows any creation time.
    let latest = now.saturating_add(max_clock_skew).unwrap_or(Timestamp::MAX);
    if list.created > latest {
        return Err(Rejection::CreatedInFuture {
            created: list.created,
            now,
            max_clock_skew,
        });
    }
    if is_list_expired(list, now) {
        return Err(Rejection::ListExpired {
            expires: list.expires,
            now,
        });
    }
    Ok(())
}

/// The checks of [`decide`] that do not depend on a subscription (signer
/// names, endorsement, creation time, expiry), for one-off verification
/// such as `vmlisub verify`, where there is no stored list and no pin.
///
/// `endorsers: None` skips the authorisation check (the caller named no
/// endorser) and says so in the returned warnings; `Some(&[])` authorises
/// nobody, as in [`decide`].
pub fn check_standalone(
    list: &ImageList,
    signer: &SignerIdentity,
    endorsers: Option<&[Credential]>,
    now: Timestamp,
    max_clock_skew: Duration,
) -> Result<Vec<String>, Rejection> {
    check_signer(list, signer)?;
    let mut warnings = Vec::new();
    match endorsers {
        Some(endorsers) => check_endorser(signer, endorsers)?,
        None => warnings.push(
            "no endorsers given: the signer was not checked against authorised endorsers"
                .to_owned(),
        ),
    }
    check_times(list, now, max_clock_skew)?;
    Ok(warnings)
}

/// Applies the update rules (spec section 4) to a candidate list.
pub fn decide(input: &DecisionInput<'_>) -> Result<Verdict, Rejection> {
    let list = input.list;

    // 1. The list names its signer, exactly.
    check_signer(list, input.signer)?;

    // 2. The signer is authorised for this subscription.
    check_endorser(input.signer, input.endorsers)?;

    // 3. It is the subscribed list.
    let pinned = input
        .pinned_identifier
        .or_else(|| input.previous.map(|p| p.list.identifier.as_str()));
    if let Some(expected) = pinned
        && list.identifier.as_str() != expected
    {
        return Err(Rejection::IdentifierMismatch {
            expected: expected.to_owned(),
            found: list.identifier.as_str().to_owned(),
        });
    }

    // 4, 5. Not created in the future, not expired.
    check_times(list, input.now, input.max_clock_skew)?;

    let mut warnings: Vec<DecisionWarning> = uri_differs(list, input.subscription_url)
        .into_iter()
        .collect();

    // 6. Against the last good list, then against the high-water mark of
    //    this identifier, which holds even when the stored list is gone or
    //    no longer verifies. References of another identifier (the pin was
    //    changed) are a different list: their versions do not compare.
    let same_list = |identifier: &str| identifier == list.identifier.as_str();
    let previous = input
        .previous
        .filter(|p| same_list(p.list.identifier.as_str()));
    // An empty digest is a caller bug, never proof of identity.
    if let Some(previous) = previous
        && !input.digest.is_empty()
        && input.digest == previous.digest
    {
        return Ok(Verdict::Unchanged { warnings });
    }
    let mut version_unchanged = false;
    if let Some(previous) = previous {
        version_unchanged |= compare_with(list, &previous.list.version, previous.list.created)?;
    }
    if let Some(mark) = input.high_water.iter().find(|m| same_list(&m.identifier))
        && !mark.is_digest(input.digest)
    {
        version_unchanged |= compare_with(list, &mark.version, mark.created)?;
    }
    if version_unchanged {
        warnings.push(DecisionWarning::VersionUnchanged {
            version: list.version.clone(),
        });
    }
    if input.previous.is_none() {
        Ok(Verdict::New { warnings })
    } else {
        Ok(Verdict::Updated { warnings })
    }
}

/// The update rules against one accepted reference (version and creation
/// time of the stored list or of the high-water mark), for a candidate with
/// other bytes. `Ok(true)`: accepted although the version did not change.
fn compare_with(
    list: &ImageList,
    stored_version: &str,
    stored_created: Timestamp,
) -> Result<bool, Rejection> {
    match compare_versions(&list.version, stored_version) {
        Ordering::Less => Err(Rejection::Rollback {
            stored: stored_version.to_owned(),
            received: list.version.clone(),
        }),
        Ordering::Equal if list.created > stored_created => Ok(true),
        Ordering::Equal => Err(Rejection::Replay {
            version: list.version.clone(),
            created: list.created,
            stored_created,
        }),
        Ordering::Greater if list.created < stored_created => Err(Rejection::CreatedBeforeStored {
            created: list.created,
            stored_created,
            received: list.version.clone(),
            stored: stored_version.to_owned(),
        }),
        Ordering::Greater => Ok(false),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::imagelist::{parse, parse_timestamp};
    use serde_json::json;
    use std::sync::LazyLock;

    const DN: &str =
        "/DC=ch/DC=cern/OU=Organic Units/OU=Users/CN=buncic/CN=379010/CN=Predrag Buncic";
    const CA: &str = "/DC=ch/DC=cern/CN=CERN Trusted Certification Authority";
    const ID: &str = "63175437-7d59-4851-b333-c96cb6545a86";
    const URL: &str = "https://cernvm.cern.ch/releases/image.list";
    const NOW: &str = "2020-06-01T12:00:00Z";

    fn ts(s: &str) -> Timestamp {
        parse_timestamp(s).unwrap()
    }

    struct L {
        id: &'static str,
        version: &'static str,
        created: &'static str,
        expires: &'static str,
        dn: &'static str,
        ca: &'static str,
        uri: &'static str,
    }

    impl Default for L {
        fn default() -> Self {
            L {
                id: ID,
                version: "3.3.0-1",
                created: "2020-06-01T00:00:00Z",
                expires: "2020-07-01T00:00:00Z",
                dn: DN,
                ca: CA,
                uri: URL,
            }
        }
    }

    impl L {
        fn build(self) -> ImageList {
            let doc = json!({"hv:imagelist": {
                "dc:identifier": self.id,
                "dc:title": "t",
                "dc:description": "d",
                "dc:source": "s",
                "dc:date:created": self.created,
                "dc:date:expires": self.expires,
                "hv:version": self.version,
                "hv:uri": self.uri,
                "hv:endorser": {"hv:x509": {"hv:dn": self.dn, "hv:ca": self.ca}},
                "hv:images": []
            }});
            parse(&serde_json::to_vec(&doc).unwrap()).unwrap().list
        }
    }

    fn signer() -> SignerIdentity {
        SignerIdentity {
            subject: DN.into(),
            issuer: CA.into(),
        }
    }

    fn endorsers() -> Vec<Credential> {
        vec![
            Credential {
                subject: "/CN=someone else".into(),
                issuer: CA.into(),
            },
            Credential {
                subject: DN.into(),
                issuer: CA.into(),
            },
        ]
    }

    const DIGEST_A: &[u8] = &[0xaa; 64];
    const DIGEST_B: &[u8] = &[0xbb; 64];

    static SIGNER: LazyLock<SignerIdentity> = LazyLock::new(signer);
    static ENDORSERS: LazyLock<Vec<Credential>> = LazyLock::new(endorsers);

    /// Runs `decide` with defaults for everything but the candidate list,
    /// adjusted by `f`.
    fn run<'a>(
        list: &'a ImageList,
        f: impl FnOnce(&mut DecisionInput<'a>),
    ) -> Result<Verdict, Rejection> {
        let mut input = DecisionInput {
            list,
            digest: DIGEST_A,
            signer: &SIGNER,
            endorsers: &ENDORSERS,
            pinned_identifier: Some(ID),
            previous: None,
            high_water: &[],
            subscription_url: Some(URL),
            now: ts(NOW),
            max_clock_skew: Duration::from_secs(300),
        };
        f(&mut input);
        decide(&input)
    }

    fn against<'a>(
        list: &'a ImageList,
        stored: &'a ImageList,
        digest: &'a [u8],
    ) -> Result<Verdict, Rejection> {
        run(list, |i| {
            i.digest = digest;
            i.previous = Some(StoredList {
                list: stored,
                digest: DIGEST_A,
            });
        })
    }

    fn code(r: Result<Verdict, Rejection>) -> &'static str {
        r.unwrap_err().reason()
    }

    #[test]
    fn first_list_is_new() {
        let list = L::default().build();
        assert_eq!(run(&list, |_| {}), Ok(Verdict::New { warnings: vec![] }));
        let v = run(&list, |i| i.pinned_identifier = None).unwrap();
        assert_eq!(v.kind(), "new");
        assert!(v.stores_list());
        assert!(v.warnings().is_empty());
    }

    #[test]
    fn signer_names_must_match_exactly() {
        for l in [
            L {
                dn: "/DC=ch/DC=cern/CN=other",
                ..L::default()
            },
            L {
                ca: "/DC=ch/DC=cern/CN=Other CA",
                ..L::default()
            },
            L {
                dn: "/dc=ch/dc=cern/OU=Organic Units/OU=Users/CN=buncic/CN=379010/CN=Predrag Buncic",
                ..L::default()
            },
            L {
                dn: "/DC=ch/DC=cern/OU=Organic Units/OU=Users/CN=buncic/CN=379010/CN=Predrag Buncic ",
                ..L::default()
            },
        ] {
            let list = l.build();
            let e = run(&list, |_| {}).unwrap_err();
            assert_eq!(e.reason(), "signer-dn-mismatch");
            assert!(matches!(e, Rejection::SignerDnMismatch { .. }));
        }
        // Swapped subject and issuer.
        let list = L {
            dn: CA,
            ca: DN,
            ..L::default()
        }
        .build();
        assert_eq!(code(run(&list, |_| {})), "signer-dn-mismatch");
    }

    #[test]
    fn signer_mismatch_is_reported_before_anything_else() {
        let list = L {
            dn: "/CN=x",
            id: "other",
            created: "2030-01-01T00:00:00Z",
            expires: "2031-01-01T00:00:00Z",
            ..L::default()
        }
        .build();
        assert_eq!(
            code(run(&list, |i| i.endorsers = &[])),
            "signer-dn-mismatch"
        );
    }

    #[test]
    fn endorser_must_be_authorised() {
        let list = L::default().build();
        assert_eq!(
            run(&list, |i| i.endorsers = &[]),
            Err(Rejection::EndorserNotAuthorised {
                subject: DN.into(),
                issuer: CA.into()
            })
        );
        let same_subject_other_issuer = [Credential {
            subject: DN.into(),
            issuer: "/CN=Other CA".into(),
        }];
        assert_eq!(
            code(run(&list, |i| i.endorsers = &same_subject_other_issuer)),
            "endorser-not-authorised"
        );
        let other_subject = [Credential {
            subject: "/CN=x".into(),
            issuer: CA.into(),
        }];
        assert_eq!(
            code(run(&list, |i| i.endorsers = &other_subject)),
            "endorser-not-authorised"
        );
        // Authorisation is checked before the identifier.
        assert_eq!(
            code(run(&list, |i| {
                i.endorsers = &[];
                i.pinned_identifier = Some("other");
            })),
            "endorser-not-authorised"
        );
    }

    #[test]
    fn identifier_must_match_the_pin() {
        let list = L::default().build();
        assert_eq!(
            run(&list, |i| i.pinned_identifier =
                Some("76fdee70-8119-5d33-aaaa-3c57e1c60df1")),
            Err(Rejection::IdentifierMismatch {
                expected: "76fdee70-8119-5d33-aaaa-3c57e1c60df1".into(),
                found: ID.into()
            })
        );
        // Exact comparison.
        assert_eq!(
            code(run(&list, |i| i.pinned_identifier =
                Some("63175437-7D59-4851-B333-C96CB6545A86"))),
            "identifier-mismatch"
        );
        // Checked before time rules.
        let future = L {
            created: "2030-01-01T00:00:00Z",
            ..L::default()
        }
        .build();
        assert_eq!(
            code(run(&future, |i| i.pinned_identifier = Some("x"))),
            "identifier-mismatch"
        );
    }

    #[test]
    fn without_a_pin_the_previous_identifier_applies() {
        let stored = L {
            id: "previous-list",
            version: "1",
            ..L::default()
        }
        .build();
        let list = L::default().build();
        let r = run(&list, |i| {
            i.pinned_identifier = None;
            i.digest = DIGEST_B;
            i.previous = Some(StoredList {
                list: &stored,
                digest: DIGEST_A,
            });
        });
        assert_eq!(code(r), "identifier-mismatch");
    }

    #[test]
    fn creation_time_and_clock_skew() {
        let skew = Duration::from_secs(300);
        let at_limit = L {
            created: "2020-06-01T12:05:00Z",
            ..L::default()
        }
        .build();
        assert!(run(&at_limit, |i| i.max_clock_skew = skew).is_ok());
        let past_limit = L {
            created: "2020-06-01T12:05:01Z",
            ..L::default()
        }
        .build();
        assert_eq!(
            run(&past_limit, |i| i.max_clock_skew = skew),
            Err(Rejection::CreatedInFuture {
                created: ts("2020-06-01T12:05:01Z"),
                now: ts(NOW),
                max_clock_skew: skew
            })
        );
        // Zero skew: exactly now is fine, one second later is not.
        let now = L {
            created: NOW,
            ..L::default()
        }
        .build();
        assert!(run(&now, |i| i.max_clock_skew = Duration::ZERO).is_ok());
        let later = L {
            created: "2020-06-01T12:00:01Z",
            ..L::default()
        }
        .build();
        assert_eq!(
            code(run(&later, |i| i.max_clock_skew = Duration::ZERO)),
            "created-in-future"
        );
        // Sub-second skew does not round up to a whole second.
        assert_eq!(
            code(run(&later, |i| i.max_clock_skew = Duration::from_millis(999))),
            "created-in-future"
        );
        // An absurd skew does not overflow.
        assert!(run(&past_limit, |i| i.max_clock_skew = Duration::MAX).is_ok());
        // Creation in the future is reported before expiry.
        let both = L {
            created: "2020-06-02T00:00:00Z",
            expires: "2020-06-01T00:00:00Z",
            ..L::default()
        }
        .build();
        assert_eq!(code(run(&both, |_| {})), "created-in-future");
    }

    #[test]
    fn expiry() {
        let exactly_now = L {
            expires: NOW,
            ..L::default()
        }
        .build();
        assert_eq!(
            run(&exactly_now, |_| {}),
            Err(Rejection::ListExpired {
                expires: ts(NOW),
                now: ts(NOW)
            })
        );
        assert!(is_list_expired(&exactly_now, ts(NOW)));
        assert!(!is_list_expired(&exactly_now, ts("2020-06-01T11:59:59Z")));
        let one_second_left = L {
            expires: "2020-06-01T12:00:01Z",
            ..L::default()
        }
        .build();
        assert!(run(&one_second_left, |_| {}).is_ok());
        // Clock skew never extends validity.
        let past = L {
            expires: "2020-06-01T11:59:59Z",
            ..L::default()
        }
        .build();
        assert_eq!(
            code(run(&past, |i| i.max_clock_skew = Duration::from_secs(3600))),
            "list-expired"
        );
        // Expiry is checked even for a byte-identical list.
        let r = run(&past, |i| {
            i.previous = Some(StoredList {
                list: &past,
                digest: DIGEST_A,
            });
        });
        assert_eq!(code(r), "list-expired");
    }

    #[test]
    fn image_expiry_includes_list_expiry() {
        let doc = json!({"hv:imagelist": {
            "dc:identifier": ID, "dc:title": "t", "dc:description": "d", "dc:source": "s",
            "dc:date:created": "2020-06-01T00:00:00Z",
            "dc:date:expires": "2020-07-01T00:00:00Z",
            "hv:version": "1", "hv:uri": URL,
            "hv:endorser": {"hv:x509": {"hv:dn": DN, "hv:ca": CA}},
            "hv:images": [{"hv:image": {
                "dc:identifier": "img", "dc:title": "", "dc:description": "",
                "hv:uri": "https://x/img", "hv:size": 1,
                "sl:checksum:sha512": "a".repeat(128),
                "sl:arch": "", "sl:os": "", "sl:osversion": "", "sl:comments": "",
                "hv:hypervisor": "", "hv:version": "",
                "dc:date:expires": "2020-06-15T00:00:00Z"
            }}]
        }});
        let list = parse(&serde_json::to_vec(&doc).unwrap()).unwrap().list;
        let image = &list.images()[0];
        assert!(!is_image_expired(&list, image, ts("2020-06-14T23:59:59Z")));
        assert!(is_image_expired(&list, image, ts("2020-06-15T00:00:00Z")));
        let mut no_own = image.clone();
        no_own.expires = None;
        assert!(!is_image_expired(
            &list,
            &no_own,
            ts("2020-06-30T23:59:59Z")
        ));
        assert!(is_image_expired(&list, &no_own, ts("2020-07-01T00:00:00Z")));
    }

    #[test]
    fn identical_bytes_are_unchanged() {
        let stored = L::default().build();
        assert_eq!(
            against(&stored, &stored, DIGEST_A),
            Ok(Verdict::Unchanged { warnings: vec![] })
        );
        let v = against(&stored, &stored, DIGEST_A).unwrap();
        assert!(!v.stores_list());
        assert_eq!(v.kind(), "unchanged");
    }

    #[test]
    fn empty_digests_never_prove_identity() {
        let stored = L::default().build();
        let r = run(&stored, |i| {
            i.digest = &[];
            i.previous = Some(StoredList {
                list: &stored,
                digest: &[],
            });
        });
        assert_eq!(code(r), "replay");
    }

    #[test]
    fn lower_version_is_a_rollback() {
        let stored = L {
            version: "3.10.0",
            ..L::default()
        }
        .build();
        let list = L {
            version: "3.3.0-1",
            created: "2020-06-01T01:00:00Z",
            ..L::default()
        }
        .build();
        assert_eq!(
            against(&list, &stored, DIGEST_B),
            Err(Rejection::Rollback {
                stored: "3.10.0".into(),
                received: "3.3.0-1".into()
            })
        );
    }

    #[test]
    fn equal_version_needs_a_newer_creation_time() {
        let stored = L::default().build();
        let newer = L {
            created: "2020-06-01T00:00:01Z",
            ..L::default()
        }
        .build();
        assert_eq!(
            against(&newer, &stored, DIGEST_B),
            Ok(Verdict::Updated {
                warnings: vec![DecisionWarning::VersionUnchanged {
                    version: "3.3.0-1".into()
                }]
            })
        );
        let same_time = L::default().build();
        assert_eq!(
            against(&same_time, &stored, DIGEST_B),
            Err(Rejection::Replay {
                version: "3.3.0-1".into(),
                created: ts("2020-06-01T00:00:00Z"),
                stored_created: ts("2020-06-01T00:00:00Z")
            })
        );
        let older = L {
            created: "2020-05-31T23:59:59Z",
            ..L::default()
        }
        .build();
        assert_eq!(code(against(&older, &stored, DIGEST_B)), "replay");
        // Versions that compare equal but are spelled differently count as equal.
        let respelled = L {
            version: "3.3.0.1",
            ..L::default()
        }
        .build();
        assert_eq!(code(against(&respelled, &stored, DIGEST_B)), "replay");
    }

    #[test]
    fn higher_version_must_not_be_created_earlier() {
        let stored = L {
            version: "20150618211400",
            created: "2020-06-01T00:00:00Z",
            ..L::default()
        }
        .build();
        let older = L {
            version: "20150618211500",
            created: "2020-05-31T23:59:59Z",
            ..L::default()
        }
        .build();
        assert_eq!(
            against(&older, &stored, DIGEST_B),
            Err(Rejection::CreatedBeforeStored {
                created: ts("2020-05-31T23:59:59Z"),
                stored_created: ts("2020-06-01T00:00:00Z"),
                received: "20150618211500".into(),
                stored: "20150618211400".into()
            })
        );
        let same_time = L {
            version: "20150618211500",
            ..L::default()
        }
        .build();
        assert_eq!(
            against(&same_time, &stored, DIGEST_B),
            Ok(Verdict::Updated { warnings: vec![] })
        );
        let newer = L {
            version: "20150618211500",
            created: "2020-06-01T06:00:00Z",
            ..L::default()
        }
        .build();
        let v = against(&newer, &stored, DIGEST_B).unwrap();
        assert_eq!(v, Verdict::Updated { warnings: vec![] });
        assert!(v.stores_list());
        assert_eq!(v.kind(), "updated");
    }

    fn mark(version: &str, created: &str, digest: &[u8]) -> HighWaterMark {
        HighWaterMark {
            identifier: ID.into(),
            version: version.into(),
            created: ts(created),
            digest: hex(digest),
        }
    }

    /// `decide` with no stored list, only high-water marks.
    fn against_marks(list: &ImageList, marks: &[HighWaterMark]) -> Result<Verdict, Rejection> {
        run(list, |i| {
            i.digest = DIGEST_B;
            i.high_water = marks;
        })
    }

    #[test]
    fn high_water_mark_guards_without_a_stored_list() {
        // The stored list (v2, signed by a credential that is no longer
        // valid) is gone from the input; its mark is what remains.
        let marks = [mark("2", "2020-06-01T00:00:00Z", DIGEST_A)];
        let v1 = L {
            version: "1",
            created: "2020-05-01T00:00:00Z",
            ..L::default()
        }
        .build();
        assert_eq!(
            against_marks(&v1, &marks),
            Err(Rejection::Rollback {
                stored: "2".into(),
                received: "1".into()
            })
        );
        // Lower version, even when created later.
        let v1_recent = L {
            version: "1",
            created: "2020-06-01T06:00:00Z",
            ..L::default()
        }
        .build();
        assert_eq!(code(against_marks(&v1_recent, &marks)), "rollback");
        // Equal version, other bytes, created at the same time or earlier.
        for created in ["2020-06-01T00:00:00Z", "2020-05-31T23:59:59Z"] {
            let v2 = L {
                version: "2",
                created,
                ..L::default()
            }
            .build();
            assert_eq!(code(against_marks(&v2, &marks)), "replay", "{created}");
        }
        // Equal version created later: accepted, with the warning.
        let v2_later = L {
            version: "2",
            created: "2020-06-01T00:00:01Z",
            ..L::default()
        }
        .build();
        assert_eq!(
            against_marks(&v2_later, &marks),
            Ok(Verdict::New {
                warnings: vec![DecisionWarning::VersionUnchanged {
                    version: "2".into()
                }]
            })
        );
        // Higher version: accepted, unless created before the mark.
        let v3 = L {
            version: "3",
            created: "2020-06-01T00:00:00Z",
            ..L::default()
        }
        .build();
        assert_eq!(
            against_marks(&v3, &marks),
            Ok(Verdict::New { warnings: vec![] })
        );
        let v3_early = L {
            version: "3",
            created: "2020-05-31T00:00:00Z",
            ..L::default()
        }
        .build();
        assert_eq!(
            code(against_marks(&v3_early, &marks)),
            "created-before-stored"
        );
        // The very list of the mark comes back (its signer re-authorised):
        // not a replay of itself.
        let v2 = L {
            version: "2",
            ..L::default()
        }
        .build();
        assert_eq!(
            run(&v2, |i| i.high_water = &marks),
            Ok(Verdict::New { warnings: vec![] })
        );
        // An empty digest never matches a mark.
        assert_eq!(
            code(run(&v2, |i| {
                i.digest = &[];
                i.high_water = &marks;
            })),
            "replay"
        );
    }

    #[test]
    fn high_water_mark_is_checked_next_to_the_stored_list() {
        // The stored list is v1, but v3 was accepted since (then dropped):
        // v2 is newer than the stored list and still a rollback.
        let stored = L {
            version: "1",
            ..L::default()
        }
        .build();
        let v2 = L {
            version: "2",
            created: "2020-06-01T01:00:00Z",
            ..L::default()
        }
        .build();
        let marks = [mark("3", "2020-06-01T00:30:00Z", &[0xcc; 64])];
        let r = run(&v2, |i| {
            i.digest = DIGEST_B;
            i.previous = Some(StoredList {
                list: &stored,
                digest: DIGEST_A,
            });
            i.high_water = &marks;
        });
        assert_eq!(
            r,
            Err(Rejection::Rollback {
                stored: "3".into(),
                received: "2".into()
            })
        );
        // Byte-identical to the stored list stays unchanged.
        let r = run(&stored, |i| {
            i.previous = Some(StoredList {
                list: &stored,
                digest: DIGEST_A,
            });
            i.high_water = &marks;
        });
        assert_eq!(r, Ok(Verdict::Unchanged { warnings: vec![] }));
        // A higher version than both is an update; the warning for an
        // unchanged version is reported once.
        let v3 = L {
            version: "3",
            created: "2020-06-01T02:00:00Z",
            ..L::default()
        }
        .build();
        let r = run(&v3, |i| {
            i.digest = DIGEST_B;
            i.previous = Some(StoredList {
                list: &stored,
                digest: DIGEST_A,
            });
            i.high_water = &marks;
        });
        assert_eq!(
            r,
            Ok(Verdict::Updated {
                warnings: vec![DecisionWarning::VersionUnchanged {
                    version: "3".into()
                }]
            })
        );
    }

    #[test]
    fn references_of_another_identifier_do_not_compare() {
        const OTHER: &str = "0b7e4b52-3c9d-4e0a-9f6f-1b2c3d4e5f60";
        let list = L {
            version: "1",
            ..L::default()
        }
        .build();
        // A mark of the previously pinned list does not hold the new pin back...
        let other_mark = HighWaterMark {
            identifier: OTHER.into(),
            ..mark("9", "2020-06-01T00:00:00Z", DIGEST_A)
        };
        assert_eq!(
            against_marks(&list, std::slice::from_ref(&other_mark)),
            Ok(Verdict::New { warnings: vec![] })
        );
        // ...and neither does the stored list of that identifier, once the
        // pin names another list.
        let stored_other = L {
            id: OTHER,
            version: "9",
            ..L::default()
        }
        .build();
        let r = run(&list, |i| {
            i.digest = DIGEST_B;
            i.previous = Some(StoredList {
                list: &stored_other,
                digest: DIGEST_A,
            });
        });
        assert_eq!(r, Ok(Verdict::Updated { warnings: vec![] }));
        // Without a pin, the stored list's identifier still pins.
        let r = run(&list, |i| {
            i.digest = DIGEST_B;
            i.pinned_identifier = None;
            i.previous = Some(StoredList {
                list: &stored_other,
                digest: DIGEST_A,
            });
        });
        assert_eq!(code(r), "identifier-mismatch");
        // The mark of its own identifier still applies next to others.
        let marks = [other_mark, mark("2", "2020-06-01T00:00:00Z", DIGEST_A)];
        assert_eq!(code(against_marks(&list, &marks)), "rollback");
    }

    #[test]
    fn raising_the_mark_replaces_only_its_identifier() {
        let mut marks = vec![HighWaterMark {
            identifier: "other".into(),
            ..mark("7", "2020-01-01T00:00:00Z", DIGEST_A)
        }];
        let v1 = L {
            version: "1",
            ..L::default()
        }
        .build();
        raise_high_water(&mut marks, &v1, DIGEST_A);
        let v2 = L {
            version: "2",
            created: "2020-06-01T01:00:00Z",
            ..L::default()
        }
        .build();
        raise_high_water(&mut marks, &v2, DIGEST_B);
        assert_eq!(marks.len(), 2);
        assert_eq!(marks[0].identifier, "other");
        assert_eq!(marks[1], mark("2", "2020-06-01T01:00:00Z", DIGEST_B));
        assert!(marks[1].is_digest(DIGEST_B));
        assert!(!marks[1].is_digest(DIGEST_A));
        assert!(!marks[1].is_digest(&[]));
        // Serialised as the state file keeps it.
        let value = serde_json::to_value(&marks[1]).unwrap();
        assert_eq!(value["created"], "2020-06-01T01:00:00Z");
        assert_eq!(value["digest"], "bb".repeat(64));
        let back: HighWaterMark = serde_json::from_value(value).unwrap();
        assert_eq!(back, marks[1]);
    }

    #[test]
    fn differing_uri_is_only_a_warning() {
        let list = L {
            uri: "https://elsewhere.example/list",
            ..L::default()
        }
        .build();
        let want = DecisionWarning::UriDiffers {
            list_uri: "https://elsewhere.example/list".into(),
            subscription_url: URL.into(),
        };
        assert_eq!(
            run(&list, |_| {}),
            Ok(Verdict::New {
                warnings: vec![want.clone()]
            })
        );
        assert_eq!(want.code(), "uri-differs");
        assert!(want.to_string().contains("not followed"));
        // Also on unchanged and updated verdicts.
        assert_eq!(
            against(&list, &list, DIGEST_A).unwrap().warnings(),
            std::slice::from_ref(&want)
        );
        let stored = L {
            version: "1",
            ..L::default()
        }
        .build();
        assert_eq!(
            against(&list, &stored, DIGEST_B).unwrap().warnings(),
            [want]
        );
        // No subscription URL, nothing to compare.
        assert!(
            run(&list, |i| i.subscription_url = None)
                .unwrap()
                .warnings()
                .is_empty()
        );
        assert_eq!(uri_differs(&list, None), None);
        assert_eq!(uri_differs(&L::default().build(), Some(URL)), None);
    }

    #[test]
    fn uri_warning_never_carries_credentials() {
        // The same list, subscribed to with a token: no difference.
        let with_token = URL.replacen("https://", "https://TOKEN:x-oauth-basic@", 1);
        assert_ne!(with_token, URL);
        assert_eq!(uri_differs(&L::default().build(), Some(&with_token)), None);
        // Another list: reported, without the token or a signature in the
        // list's own hv:uri.
        let list = L {
            uri: "https://elsewhere.example/list?sig=LISTSECRET",
            ..L::default()
        }
        .build();
        let warning = uri_differs(&list, Some(&with_token)).unwrap();
        let shown = format!("{warning} {}", serde_json::to_string(&warning).unwrap());
        assert!(!shown.contains("TOKEN"), "{shown}");
        assert!(!shown.contains("LISTSECRET"), "{shown}");
        assert!(
            shown.contains("https://elsewhere.example/list?sig=REDACTED"),
            "{shown}"
        );
    }

    #[test]
    fn standalone_checks() {
        let list = L::default().build();
        let skew = Duration::from_secs(300);
        let endorsers = endorsers();
        assert_eq!(
            check_standalone(&list, &signer(), Some(&endorsers), ts(NOW), skew),
            Ok(vec![])
        );
        let w = check_standalone(&list, &signer(), None, ts(NOW), skew).unwrap();
        assert_eq!(w.len(), 1);
        assert!(w[0].contains("not checked"));
        assert_eq!(
            check_standalone(&list, &signer(), Some(&[]), ts(NOW), skew)
                .unwrap_err()
                .reason(),
            "endorser-not-authorised"
        );
        let other = SignerIdentity {
            subject: "/CN=x".into(),
            issuer: CA.into(),
        };
        assert_eq!(
            check_standalone(&list, &other, None, ts(NOW), skew)
                .unwrap_err()
                .reason(),
            "signer-dn-mismatch"
        );
        assert_eq!(
            check_standalone(&list, &signer(), None, ts("2020-07-01T00:00:00Z"), skew)
                .unwrap_err()
                .reason(),
            "list-expired"
        );
        assert_eq!(
            check_standalone(&list, &signer(), None, ts("2020-05-31T23:54:59Z"), skew)
                .unwrap_err()
                .reason(),
            "created-in-future"
        );
        assert!(check_standalone(&list, &signer(), None, ts("2020-05-31T23:55:00Z"), skew).is_ok());
    }

    #[test]
    fn rejection_codes_and_messages() {
        let t = ts(NOW);
        let cases = [
            (
                Rejection::SignerDnMismatch {
                    list_dn: "a".into(),
                    list_ca: "b".into(),
                    signer_subject: "c".into(),
                    signer_issuer: "d\u{1b}".into(),
                },
                "signer-dn-mismatch",
            ),
            (
                Rejection::EndorserNotAuthorised {
                    subject: "a".into(),
                    issuer: "b".into(),
                },
                "endorser-not-authorised",
            ),
            (
                Rejection::IdentifierMismatch {
                    expected: "a".into(),
                    found: "b".into(),
                },
                "identifier-mismatch",
            ),
            (
                Rejection::CreatedInFuture {
                    created: t,
                    now: t,
                    max_clock_skew: Duration::from_secs(300),
                },
                "created-in-future",
            ),
            (
                Rejection::ListExpired { expires: t, now: t },
                "list-expired",
            ),
            (
                Rejection::Rollback {
                    stored: "2".into(),
                    received: "1".into(),
                },
                "rollback",
            ),
            (
                Rejection::Replay {
                    version: "1".into(),
                    created: t,
                    stored_created: t,
                },
                "replay",
            ),
            (
                Rejection::CreatedBeforeStored {
                    created: t,
                    stored_created: t,
                    received: "2".into(),
                    stored: "1".into(),
                },
                "created-before-stored",
            ),
        ];
        for (r, c) in cases {
            assert_eq!(r.reason(), c);
            let msg = r.to_string();
            assert!(!msg.contains('\u{1b}'), "{msg}");
        }
        let msg = Rejection::CreatedInFuture {
            created: ts("2020-06-01T12:05:01Z"),
            now: t,
            max_clock_skew: Duration::from_secs(300),
        }
        .to_string();
        assert!(
            msg.contains("2020-06-01T12:05:01Z") && msg.contains("300s"),
            "{msg}"
        );
    }

    #[test]
    fn verdict_serializes_with_codes() {
        let v = Verdict::Updated {
            warnings: vec![DecisionWarning::VersionUnchanged {
                version: "1".into(),
            }],
        };
        assert_eq!(
            serde_json::to_value(&v).unwrap(),
            json!({"verdict": "updated", "warnings": [{"code": "version-unchanged", "version": "1"}]})
        );
    }

    #[test]
    fn real_cloudkeeper_list_with_its_named_signer() {
        let list = parse(include_bytes!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../../shared/testdata/real-lists/cloudkeeper-imagelist01.unsigned"
        )))
        .unwrap()
        .list;
        let signer = SignerIdentity {
            subject: "/DC=XXX/DC=YYY/C=ZZZ/O=Hosts/O=AA.net/CN=some.unknown.source".into(),
            issuer: "/DC=XXX/DC=YYY/CN=SOME TEST CA".into(),
        };
        let endorsers = [Credential {
            subject: signer.subject.clone(),
            issuer: signer.issuer.clone(),
        }];
        let input = DecisionInput {
            list: &list,
            digest: DIGEST_A,
            signer: &signer,
            endorsers: &endorsers,
            pinned_identifier: None,
            previous: None,
            high_water: &[],
            subscription_url: Some("https://appdb.somewhere.net/store/vo/some1.vo.net/image.list"),
            now: ts("2024-01-01T00:00:00Z"),
            max_clock_skew: Duration::from_secs(300),
        };
        assert_eq!(decide(&input), Ok(Verdict::New { warnings: vec![] }));
        // The cloudkeeper test certificate is not the endorser the list names.
        let test_cert = SignerIdentity {
            subject: "/CN=cloudkeeper test".into(),
            issuer: "/CN=cloudkeeper test".into(),
        };
        let input = DecisionInput {
            signer: &test_cert,
            ..input
        };
        assert_eq!(decide(&input).unwrap_err().reason(), "signer-dn-mismatch");
    }
}
