//! `vmlisub subscribe URL`: fetch a list, verify it as `vmlisub sync` and
//! the operator would, and print an Endorser for its signer and an
//! ImageListSubscription for it, for review (the original's
//! `vmcatcher_subscribe -s URL` plus `vmcatcher_endorser --create`, without
//! trusting anybody behind the user's back).
//!
//! Nothing is written: the YAML goes to stdout, to be read, then given to
//! `kubectl apply -f` or `vmlisub sync -f`. It is checked with the manifest
//! parser `vmlisub sync` uses before it is printed.

use std::path::Path;
use std::process::ExitCode;

use clap::Args;
use jiff::Timestamp;
use kube::CustomResourceExt as _;
use serde_json::{Map, Value, json};

use super::transport::{self, TransportArgs};
use super::verify::{self, Checked, Endorsement, TrustArgs};
use crate::api::{API_VERSION, CREDENTIALS_LABEL, Endorser, ImageListSubscriptionSpec};
use crate::reason::Reason;
use crate::sync::manifest;
use crate::trust::CrlPolicy;

#[derive(Debug, Args)]
pub struct SubscribeArgs {
    #[command(flatten)]
    pub trust: TrustArgs,

    #[command(flatten)]
    pub transport: TransportArgs,

    /// Name of the Endorser and the ImageListSubscription (default: derived
    /// from the list's title, else its identifier).
    #[arg(long)]
    pub name: Option<String>,

    /// Namespace written into both objects (default: none; kubectl then
    /// uses its current namespace, `vmlisub sync` uses `default`).
    #[arg(long, short = 'n')]
    pub namespace: Option<String>,

    /// How often the list is checked (Go duration, e.g. 6h; default: the
    /// CRD's default).
    #[arg(long)]
    pub interval: Option<String>,

    /// Cache every image of the list (`imagePolicy: AutoSubscribe`)
    /// instead of only those named by ImageSubscriptions (`Manual`).
    #[arg(long)]
    pub auto_subscribe: bool,

    /// The list's URL (https, http; file:// with --allow-file-urls).
    pub url: String,
}

/// Why no YAML was printed.
#[derive(Debug, thiserror::Error)]
enum SubscribeError {
    #[error(transparent)]
    Check(#[from] verify::Failure),
    #[error("{0}")]
    Usage(String),
    #[error(
        "the signer's {which} {dn:?} cannot be written as an Endorser credential (it does not match the CRD's one-line DN pattern)"
    )]
    Unrepresentable { which: &'static str, dn: String },
    #[error("the generated manifests do not load: {0}")]
    Render(String),
}

impl Reason for SubscribeError {
    fn reason(&self) -> &'static str {
        match self {
            Self::Check(err) => err.reason(),
            Self::Usage(_) => "usage",
            Self::Unrepresentable { .. } => "signer-dn-unrepresentable",
            Self::Render(_) => "render-failed",
        }
    }
}

impl From<transport::FetchError> for SubscribeError {
    fn from(err: transport::FetchError) -> Self {
        Self::Check(err.into())
    }
}

pub fn run(args: &SubscribeArgs) -> ExitCode {
    match subscribe(args) {
        Ok(yaml) => {
            print!("{yaml}");
            ExitCode::SUCCESS
        }
        Err(err) => super::fail(&err),
    }
}

fn subscribe(args: &SubscribeArgs) -> Result<String, SubscribeError> {
    if !transport::is_url(&args.url) {
        return Err(SubscribeError::Usage(format!(
            "{:?} is not a URL (https://, http://, or file:// with --allow-file-urls)",
            args.url
        )));
    }
    if let Some(name) = &args.name
        && !is_list_name(name)
    {
        return Err(SubscribeError::Usage(format!(
            "--name {name:?} is not a valid Kubernetes name (lowercase RFC 1123)"
        )));
    }
    if let Some(namespace) = &args.namespace
        && !manifest::is_valid_namespace(namespace)
    {
        return Err(SubscribeError::Usage(format!(
            "--namespace {namespace:?} is not a valid namespace"
        )));
    }
    if let Some(interval) = &args.interval {
        crate::api::duration::parse_duration(interval)
            .map_err(|err| SubscribeError::Usage(format!("--interval: {err}")))?;
    }
    let fetched = transport::fetch(&args.url, &args.transport)?;
    let now = Timestamp::now();
    let checked = verify::check(
        fetched.bytes,
        &args.trust,
        now,
        Endorsement::Signer,
        Some(&args.url),
    )?;
    tracing::info!(url = %crate::transfer::redact_url(&args.url), final_url = %fetched.final_url, "list verified");
    let yaml = render(args, &checked, now)?;
    // What `vmlisub sync -f` would read: exactly these two objects.
    let loaded = manifest::load_text(&yaml, Path::new("<vmlisub subscribe output>"))
        .map_err(|err| SubscribeError::Render(err.to_string()))?;
    if loaded.endorsers.len() != 1 || loaded.lists.len() != 1 || !loaded.warnings.is_empty() {
        return Err(SubscribeError::Render(format!(
            "expected one Endorser and one ImageListSubscription, got {} and {}",
            loaded.endorsers.len(),
            loaded.lists.len()
        )));
    }
    Ok(yaml)
}

/// The Endorser and the ImageListSubscription, with the review header.
fn render(
    args: &SubscribeArgs,
    checked: &Checked,
    now: Timestamp,
) -> Result<String, SubscribeError> {
    let list = &checked.parsed.list;
    let signer = &checked.verified.signer;
    for (which, dn) in [("subject", &signer.subject), ("issuer", &signer.issuer)] {
        if !credential_dn_ok(dn) {
            return Err(SubscribeError::Unrepresentable {
                which,
                dn: dn.clone(),
            });
        }
    }
    let name = match &args.name {
        Some(name) => name.clone(),
        None => derive_name(&list.title)
            .or_else(|| derive_name(list.identifier.as_str()))
            .unwrap_or_else(|| "image-list".to_string()),
    };
    let metadata = |name: &str| {
        let mut metadata = Map::new();
        metadata.insert("name".into(), json!(name));
        if let Some(namespace) = &args.namespace {
            metadata.insert("namespace".into(), json!(namespace));
        }
        Value::Object(metadata)
    };
    let endorser = json!({
        "apiVersion": API_VERSION,
        "kind": "Endorser",
        "metadata": metadata(&name),
        "spec": {
            "description": one_line(&format!("Signer of the image list {:?}", list.title), 200),
            "credentials": [{"subject": signer.subject, "issuer": signer.issuer}],
        },
    });
    let mut spec = Map::new();
    spec.insert("url".into(), json!(args.url));
    spec.insert(
        "interval".into(),
        json!(
            args.interval
                .clone()
                .unwrap_or_else(|| default_interval(&args.url))
        ),
    );
    spec.insert("identifier".into(), json!(list.identifier.as_str()));
    spec.insert("endorsers".into(), json!([{"name": name}]));
    spec.insert(
        "imagePolicy".into(),
        json!(if args.auto_subscribe {
            "AutoSubscribe"
        } else {
            "Manual"
        }),
    );
    let mut trust = Map::new();
    if args.trust.crl_policy != CrlPolicy::default() {
        trust.insert("crlPolicy".into(), json!(args.trust.crl_policy.as_str()));
    }
    if args.trust.allow_sha1 {
        trust.insert("allowSha1".into(), json!(true));
    }
    if !trust.is_empty() {
        spec.insert("trust".into(), Value::Object(trust));
    }
    let credentials_secret = format!("{name}-credentials");
    let ca_secret = format!("{name}-transport-ca");
    if args.transport.has_credentials() {
        spec.insert("secretRef".into(), json!({"name": credentials_secret}));
    }
    if args.transport.transport_ca.is_some() {
        spec.insert("certSecretRef".into(), json!({"name": ca_secret}));
    }
    let subscription = json!({
        "apiVersion": API_VERSION,
        "kind": "ImageListSubscription",
        "metadata": metadata(&name),
        "spec": spec,
    });

    let mut out = String::new();
    let mut comment = |text: &str| {
        out.push_str("# ");
        out.push_str(&one_line(text, 2048));
        out.push('\n');
    };
    comment("Review before applying: this trusts");
    comment(&format!("  {}", signer.subject));
    comment(&format!("  (issued by {})", signer.issuer));
    comment(&format!(
        "for the image list {} {:?} (version {}), fetched from {}.",
        list.identifier.as_str(),
        list.title,
        list.version,
        crate::transfer::redact_url(&args.url)
    ));
    comment(&format!(
        "Verified at {} against {}: signer serial {}, valid until {}; the list expires {}.",
        crate::imagelist::format_timestamp(now),
        args.trust.ca_dir.display(),
        signer.serial,
        crate::imagelist::format_timestamp(signer.not_after),
        crate::imagelist::format_timestamp(list.expires),
    ));
    for warning in &checked.warnings {
        comment(&format!("warning: {warning}"));
    }
    if args.transport.has_credentials() {
        comment(&format!(
            "The list needs credentials: create the Secret {credentials_secret} (username and password, or token), labelled {CREDENTIALS_LABEL}=true."
        ));
    }
    if let Some(path) = &args.transport.transport_ca {
        comment(&format!(
            "The server needs a transport CA: create the Secret {ca_secret} with ca.crt from {}, labelled {CREDENTIALS_LABEL}=true.",
            path.display()
        ));
    }
    comment("Apply with `kubectl apply -f FILE`, or use with `vmlisub sync -f FILE`.");
    for object in [endorser, subscription] {
        out.push_str("---\n");
        out.push_str(
            &serde_saphyr::to_string(&object)
                .map_err(|err| SubscribeError::Render(err.to_string()))?,
        );
    }
    Ok(out)
}

/// The CRD's `interval` default (what an ImageListSubscription without
/// one gets), written out so that the reviewer sees it.
fn default_interval(url: &str) -> String {
    serde_json::from_value::<ImageListSubscriptionSpec>(json!({ "url": url }))
        .map(|spec| spec.interval)
        .unwrap_or_else(|_| "6h".to_string())
}

/// Whether `dn` can be an Endorser credential: a one-line DN (the rule both
/// drivers apply), matching the CRD's pattern so the API server takes it.
fn credential_dn_ok(dn: &str) -> bool {
    if !crate::trust::dn::is_one_line_dn(dn) {
        return false;
    }
    let crd = serde_json::to_value(Endorser::crd()).unwrap_or_default();
    let pattern = crd
        .pointer("/spec/versions/0/schema/openAPIV3Schema/properties/spec/properties/credentials/items/properties/subject/pattern")
        .and_then(Value::as_str);
    match pattern.map(regex::Regex::new) {
        Some(Ok(pattern)) => pattern.is_match(dn),
        // No pattern in the CRD (or one this regex engine does not take):
        // the one-line rule is what the drivers check.
        _ => true,
    }
}

/// A valid name for both objects: an RFC 1123 label (a subdomain that the
/// cache can also use as a directory name).
fn is_list_name(name: &str) -> bool {
    manifest::is_valid_name(name)
        && crate::store::SubscriptionName::new(name).is_ok()
        && name.len() <= 63
        && !name.contains('.')
}

/// `text` as a Kubernetes name: lower-case letters and digits, runs of
/// anything else as one `-`, at most 63 characters.
fn derive_name(text: &str) -> Option<String> {
    let mut name = String::new();
    for c in text.chars() {
        if c.is_ascii_alphanumeric() {
            name.push(c.to_ascii_lowercase());
        } else if !name.ends_with('-') && !name.is_empty() {
            name.push('-');
        }
        if name.len() >= 63 {
            break;
        }
    }
    let name = name.trim_end_matches('-').to_string();
    is_list_name(&name).then_some(name)
}

/// `text` on one line for a comment: control characters (a title could
/// carry a line break and YAML after it) escaped, length capped.
fn one_line(text: &str, max_chars: usize) -> String {
    let escaped: String = text
        .chars()
        .flat_map(|c| {
            if c.is_control() {
                c.escape_default().collect::<Vec<_>>()
            } else {
                vec![c]
            }
        })
        .collect();
    if escaped.chars().count() > max_chars {
        let mut cut: String = escaped.chars().take(max_chars).collect();
        cut.push_str("...");
        cut
    } else {
        escaped
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn names_derive_from_titles() {
        assert_eq!(
            derive_name("CernVM 4 (x86_64) images").as_deref(),
            Some("cernvm-4-x86-64-images")
        );
        assert_eq!(
            derive_name("--Ünïcode only--").as_deref(),
            Some("n-code-only")
        );
        assert_eq!(derive_name("!!!"), None);
        let long = derive_name(&"abc ".repeat(40)).unwrap();
        assert!(long.len() <= 63 && is_list_name(&long), "{long}");
        assert!(!is_list_name("a.b"));
        assert!(!is_list_name("Upper"));
    }

    #[test]
    fn comments_cannot_smuggle_yaml() {
        let text = one_line("title\n---\nkind: Secret", 200);
        assert!(!text.contains('\n'), "{text}");
        assert_eq!(one_line("abcdef", 3), "abc...");
    }

    #[test]
    fn credential_dns_follow_the_crd() {
        assert!(credential_dn_ok(
            "/DC=org/DC=example/CN=list signer/CN=4242"
        ));
        assert!(!credential_dn_ok("CN=no slash"));
        assert!(!credential_dn_ok(""));
    }

    #[test]
    fn the_default_interval_is_the_crds() {
        assert_eq!(default_interval("https://example.org/list"), "6h");
    }
}
