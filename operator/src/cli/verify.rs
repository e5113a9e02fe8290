//! `vmlisub verify`: check a signed image list (a file, standard input or
//! a URL, fetched as the drivers fetch lists) and print it.
//!
//! This is the trust core on the command line: the same verification the
//! operator runs before it accepts a list, with the verdict explained.

use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, ValueEnum};
use jiff::Timestamp;
use serde_json::{Value, json};

use super::transport::{self, FetchError, TransportArgs};
use crate::decision::{self, Credential, SignerIdentity};
use crate::imagelist::{self, Parsed};
use crate::reason::Reason;
use crate::trust::{self, CrlPolicy, Verified, VerifyOptions};

/// The CA directory grid middleware uses.
pub const DEFAULT_CA_DIR: &str = "/etc/grid-security/certificates";

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// `key=value` lines for people, like the original's `-f lines`.
    Lines,
    /// The verified list, signer and warnings as one JSON document.
    Json,
    /// The bare signed JSON document, without the signature wrapper.
    Message,
    /// The original signed bytes, unchanged.
    Smime,
}

/// What a list is verified against: the same inputs `vmlisub sync` and
/// the operator verify with.
#[derive(Debug, Clone, Args)]
pub struct TrustArgs {
    /// CA directory in the IGTF layout (CA PEMs, CRLs, namespace policies).
    #[arg(long, env = "VMLISUB_CA_DIR", default_value = DEFAULT_CA_DIR)]
    pub ca_dir: PathBuf,

    /// A directory of refreshed CRLs to read with the CA directory (the
    /// `--crl-dir` of `vmlisub sync` or the operator).
    #[arg(long, env = "VMLISUB_CRL_DIR")]
    pub crl_dir: Option<PathBuf>,

    /// What a missing or stale CRL means: reject (`require`), check only
    /// when present (`if-present`), or skip revocation (`ignore`).
    #[arg(long, default_value = "require")]
    pub crl_policy: CrlPolicy,

    /// Accept SHA-1 digests and sha1WithRSA certificates (2011-era lists).
    #[arg(long)]
    pub allow_sha1: bool,

    /// Largest clock skew tolerated for a list's creation time, in seconds.
    #[arg(long, default_value_t = 300)]
    pub max_clock_skew: u64,
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    #[command(flatten)]
    pub trust: TrustArgs,

    /// Verify as of this time (RFC 3339, e.g. 2011-03-11T00:00:00Z) instead of now.
    #[arg(long)]
    pub at: Option<Timestamp>,

    /// Authorised endorser subject (one-line DN); pair each with --endorser-issuer.
    #[arg(long = "endorser", value_name = "SUBJECT")]
    pub endorsers: Vec<String>,

    /// Issuer (one-line DN) of the --endorser at the same position.
    #[arg(long = "endorser-issuer", value_name = "ISSUER")]
    pub endorser_issuers: Vec<String>,

    /// Output format.
    #[arg(long, short = 'f', value_enum, default_value = "lines")]
    pub format: Format,

    #[command(flatten)]
    pub transport: TransportArgs,

    /// The signed list: a file, `-` for standard input, or an http(s) URL
    /// (fetched as `vmlisub sync` fetches lists).
    pub file: String,
}

/// CLI-level failures that are not verification verdicts.
#[derive(Debug, thiserror::Error)]
pub(crate) enum CliError {
    #[error("cannot read {path}: {source}")]
    Input {
        path: String,
        source: std::io::Error,
    },
    #[error("{0}")]
    Usage(String),
    #[error("{0}")]
    TrustStore(#[from] trust::dir::StoreError),
}

impl Reason for CliError {
    fn reason(&self) -> &'static str {
        match self {
            Self::Input { .. } => "input-unreadable",
            Self::Usage(_) => "usage",
            Self::TrustStore(_) => "trust-store-unavailable",
        }
    }
}

/// Every failure of `vmlisub verify`, in one type so that it prints alike.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Failure {
    #[error(transparent)]
    Cli(#[from] CliError),
    #[error(transparent)]
    Fetch(#[from] FetchError),
    #[error(transparent)]
    Verify(#[from] trust::VerifyError),
    #[error(transparent)]
    List(#[from] imagelist::ListError),
    #[error(transparent)]
    Decision(#[from] decision::Rejection),
}

impl Reason for Failure {
    fn reason(&self) -> &'static str {
        match self {
            Self::Cli(err) => err.reason(),
            Self::Fetch(err) => err.reason(),
            Self::Verify(err) => err.reason(),
            Self::List(err) => err.reason(),
            Self::Decision(err) => err.reason(),
        }
    }
}

pub fn run(args: &VerifyArgs) -> ExitCode {
    match verify_file(args) {
        Ok(output) => {
            use std::io::Write;
            let mut stdout = std::io::stdout().lock();
            let _ = stdout.write_all(&output);
            ExitCode::SUCCESS
        }
        Err(failure) => super::fail(&failure),
    }
}

fn read_input(file: &str) -> Result<Vec<u8>, CliError> {
    let limit = trust::verify::MAX_MESSAGE_BYTES as u64 + 1;
    let mut bytes = Vec::new();
    let result = if file == "-" {
        std::io::stdin().lock().take(limit).read_to_end(&mut bytes)
    } else {
        std::fs::File::open(file).and_then(|f| f.take(limit).read_to_end(&mut bytes))
    };
    result.map_err(|source| CliError::Input {
        path: file.to_string(),
        source,
    })?;
    Ok(bytes)
}

fn endorser_credentials(args: &VerifyArgs) -> Result<Vec<Credential>, CliError> {
    if args.endorsers.len() != args.endorser_issuers.len() {
        return Err(CliError::Usage(format!(
            "{} --endorser but {} --endorser-issuer: give them in pairs",
            args.endorsers.len(),
            args.endorser_issuers.len()
        )));
    }
    Ok(args
        .endorsers
        .iter()
        .zip(&args.endorser_issuers)
        .map(|(subject, issuer)| Credential {
            subject: subject.clone(),
            issuer: issuer.clone(),
        })
        .collect())
}

/// Whom a verified list must be signed by.
pub(crate) enum Endorsement<'a> {
    /// Nobody named: not checked, and the report says so.
    Unchecked,
    /// One of these credentials.
    Given(&'a [Credential]),
    /// Whoever signed it (`vmlisub subscribe`, which proposes the signer
    /// as the Endorser): every other check still runs.
    Signer,
}

/// A list verified and checked as every driver checks one.
pub(crate) struct Checked {
    /// The signed bytes.
    pub message: Vec<u8>,
    pub verified: Verified,
    pub parsed: Parsed,
    /// The decision's warnings, and CA directory entries that were skipped.
    pub warnings: Vec<String>,
}

/// Verifies `message` against the CA directory of `trust` as of `at`
/// ([`trust::verify`], [`imagelist::parse`] and the decision's standalone
/// checks: the code `vmlisub sync` and the operator run on every list).
/// `url`: where it was fetched from, to report a different `hv:uri`.
pub(crate) fn check(
    message: Vec<u8>,
    trust_args: &TrustArgs,
    at: Timestamp,
    endorsement: Endorsement<'_>,
    url: Option<&str>,
) -> Result<Checked, Failure> {
    let store = trust::load_dirs(&trust_args.ca_dir, trust_args.crl_dir.as_deref())
        .map_err(CliError::from)?;
    for problem in &store.problems {
        tracing::warn!(file = %problem.file, problem = %problem.message, "skipped CA directory entry");
    }
    let options = VerifyOptions {
        at,
        crl_policy: trust_args.crl_policy,
        allow_sha1: trust_args.allow_sha1,
    };
    let verified = trust::verify(&message, &store, &options)?;
    let parsed = imagelist::parse(&verified.content)?;
    let signer = SignerIdentity {
        subject: verified.signer.subject.clone(),
        issuer: verified.signer.issuer.clone(),
    };
    let own = [Credential {
        subject: signer.subject.clone(),
        issuer: signer.issuer.clone(),
    }];
    let endorsers = match endorsement {
        Endorsement::Unchecked => None,
        Endorsement::Given(credentials) => Some(credentials),
        Endorsement::Signer => Some(own.as_slice()),
    };
    let skew = std::time::Duration::from_secs(trust_args.max_clock_skew);
    let mut warnings =
        decision::check_standalone(&parsed.list, &signer, endorsers, options.at, skew)?;
    warnings.extend(
        decision::uri_differs(&parsed.list, url)
            .into_iter()
            .map(|warning| warning.to_string()),
    );
    warnings.extend(store.problems.iter().map(|problem| {
        format!(
            "CA directory entry {} skipped: {}",
            problem.file, problem.message
        )
    }));
    Ok(Checked {
        message,
        verified,
        parsed,
        warnings,
    })
}

fn verify_file(args: &VerifyArgs) -> Result<Vec<u8>, Failure> {
    let credentials = endorser_credentials(args)?;
    let (message, url) = if transport::is_url(&args.file) {
        let fetched = transport::fetch(&args.file, &args.transport)?;
        (fetched.bytes, Some(args.file.as_str()))
    } else {
        (read_input(&args.file)?, None)
    };
    let endorsement = if credentials.is_empty() {
        Endorsement::Unchecked
    } else {
        Endorsement::Given(&credentials)
    };
    let checked = check(
        message,
        &args.trust,
        args.at.unwrap_or_else(Timestamp::now),
        endorsement,
        url,
    )?;
    let Checked {
        message,
        verified,
        parsed,
        warnings,
    } = checked;

    Ok(match args.format {
        Format::Smime => message,
        Format::Message => verified.content,
        Format::Json => {
            let mut text =
                serde_json::to_string_pretty(&json_report(&verified, &parsed, &warnings))
                    .unwrap_or_default();
            text.push('\n');
            text.into_bytes()
        }
        Format::Lines => lines_report(&json_report(&verified, &parsed, &warnings)).into_bytes(),
    })
}

/// The `--format json` document.
fn json_report(verified: &Verified, parsed: &Parsed, extra_warnings: &[String]) -> Value {
    let list = &parsed.list;
    let mut warnings: Vec<String> = parsed.warnings.clone();
    warnings.extend(extra_warnings.iter().cloned());
    for rejected in &parsed.rejected {
        warnings.push(format!(
            "image {} dropped: {}: {}",
            rejected.index, rejected.reason, rejected.message
        ));
    }
    json!({
        "signer": verified.signer,
        "list": {
            "identifier": list.identifier.as_str(),
            "title": list.title,
            "description": list.description,
            "version": list.version,
            "created": imagelist::format_timestamp(list.created),
            "expires": imagelist::format_timestamp(list.expires),
            "uri": list.uri,
            "source": list.source,
            "vo": list.vo,
            "endorser": list.endorser,
        },
        "images": list.images,
        "rejectedImages": parsed.rejected,
        "warnings": warnings,
        "verification": {
            "shape": verified.shape,
            "digestAlgorithm": verified.digest_algorithm.name(),
            "chain": verified.chain,
            "signingTime": verified.signing_time,
            "revocation": verified.revocation,
        },
    })
}

/// Flattens the JSON report into `path=value` lines, one scalar per line,
/// in the spirit of the original's `-f lines`.
fn lines_report(report: &Value) -> String {
    fn walk(prefix: &str, value: &Value, out: &mut String) {
        match value {
            Value::Object(map) => {
                for (key, child) in map {
                    let path = if prefix.is_empty() {
                        key.clone()
                    } else {
                        format!("{prefix}.{key}")
                    };
                    walk(&path, child, out);
                }
            }
            Value::Array(items) => {
                for (index, child) in items.iter().enumerate() {
                    walk(&format!("{prefix}[{index}]"), child, out);
                }
            }
            Value::Null => {}
            Value::String(text) => {
                out.push_str(prefix);
                out.push('=');
                // One value per line: escape line breaks inside values.
                out.push_str(&text.replace('\\', "\\\\").replace('\n', "\\n"));
                out.push('\n');
            }
            other => {
                out.push_str(prefix);
                out.push('=');
                out.push_str(&other.to_string());
                out.push('\n');
            }
        }
    }
    let mut out = String::new();
    walk("", report, &mut out);
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn lines_flatten_nested_values() {
        let report = json!({"a": {"b": "x\ny", "n": 3}, "l": ["p", {"q": true}], "z": null});
        assert_eq!(
            lines_report(&report),
            "a.b=x\\ny\na.n=3\nl[0]=p\nl[1].q=true\n"
        );
    }
}
