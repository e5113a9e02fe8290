//! Name constraints (RFC 5280 sections 4.2.1.10 and 6.1.3 (b), (c)).
//!
//! vmlisub implements the forms a grid S/MIME path can meet: directoryName
//! (against the subject and subjectAltName directory names), rfc822Name
//! (against emailAddress attributes of the subject and subjectAltName
//! email addresses) and uniformResourceIdentifier (subjectAltName URIs).
//! Matching follows OpenSSL's rules, which implement the RFC's: a mailbox,
//! a host, or a `.domain` suffix for email; a host or a `.domain` suffix
//! for URIs; an RDN prefix for directory names.
//!
//! Any other form in a *critical* nameConstraints extension makes the path
//! fail closed (vmlisub cannot prove the certificate honours it); in a
//! non-critical extension such subtrees are ignored. `minimum` and
//! `maximum` must keep their defaults (RFC 5280 requires it; OpenSSL
//! refuses otherwise too).

use x509_cert::ext::pkix::NameConstraints;
use x509_cert::ext::pkix::constraints::name::GeneralSubtree;
use x509_cert::ext::pkix::name::GeneralName;

use der::Encode;

use super::cert::CertInfo;
use super::name::{self, CanonicalName};

/// The names of a certificate that constraints apply to.
struct Names {
    directories: Vec<CanonicalName>,
    emails: Vec<String>,
    uris: Vec<String>,
}

fn names_of(cert: &CertInfo) -> Result<Names, String> {
    let mut names = Names {
        directories: Vec::new(),
        emails: Vec::new(),
        uris: Vec::new(),
    };
    if !cert.subject.is_empty() {
        names.directories.push(cert.subject.clone());
    }
    for email in name::email_addresses(&cert.subject_der).map_err(|err| err.to_string())? {
        match email {
            Ok(email) => names.emails.push(email),
            Err(_) => {
                return Err("the subject's emailAddress is not an ASCII IA5String".into());
            }
        }
    }
    for general in &cert.subject_alt_names {
        match general {
            GeneralName::DirectoryName(dir) => {
                let der = dir.to_der().map_err(|err| err.to_string())?;
                names
                    .directories
                    .push(CanonicalName::from_der(&der).map_err(|err| err.to_string())?);
            }
            GeneralName::Rfc822Name(email) => names.emails.push(email.to_string()),
            GeneralName::UniformResourceIdentifier(uri) => names.uris.push(uri.to_string()),
            _ => {}
        }
    }
    Ok(names)
}

/// A subtree base in a form vmlisub checks.
enum Base {
    Directory(CanonicalName),
    Email(String),
    Uri(String),
}

fn base_of(subtree: &GeneralSubtree, critical: bool) -> Result<Option<Base>, String> {
    if subtree.minimum != 0 || subtree.maximum.is_some() {
        return Err("a name constraint sets minimum or maximum".into());
    }
    Ok(Some(match &subtree.base {
        GeneralName::DirectoryName(dir) => {
            let der = dir.to_der().map_err(|err| err.to_string())?;
            Base::Directory(CanonicalName::from_der(&der).map_err(|err| err.to_string())?)
        }
        GeneralName::Rfc822Name(email) => Base::Email(email.to_string()),
        GeneralName::UniformResourceIdentifier(uri) => Base::Uri(uri.to_string()),
        other if critical => {
            return Err(format!(
                "critical nameConstraints with a {} subtree, which vmlisub does not check",
                form_name(other)
            ));
        }
        _ => return Ok(None),
    }))
}

fn form_name(name: &GeneralName) -> &'static str {
    match name {
        GeneralName::OtherName(_) => "otherName",
        GeneralName::Rfc822Name(_) => "rfc822Name",
        GeneralName::DnsName(_) => "dNSName",
        GeneralName::DirectoryName(_) => "directoryName",
        GeneralName::EdiPartyName(_) => "ediPartyName",
        GeneralName::UniformResourceIdentifier(_) => "uniformResourceIdentifier",
        GeneralName::IpAddress(_) => "iPAddress",
        GeneralName::RegisteredId(_) => "registeredID",
    }
}

/// Checks `cert`'s names against one CA's name constraints.
pub fn check(constraints: &NameConstraints, critical: bool, cert: &CertInfo) -> Result<(), String> {
    let mut permitted = Vec::new();
    for subtree in constraints.permitted_subtrees.iter().flatten() {
        if let Some(base) = base_of(subtree, critical)? {
            permitted.push(base);
        }
    }
    let mut excluded = Vec::new();
    for subtree in constraints.excluded_subtrees.iter().flatten() {
        if let Some(base) = base_of(subtree, critical)? {
            excluded.push(base);
        }
    }
    let names = names_of(cert)?;

    // directoryName
    let dir_permitted: Vec<&CanonicalName> = permitted
        .iter()
        .filter_map(|base| match base {
            Base::Directory(dir) => Some(dir),
            _ => None,
        })
        .collect();
    for dir in &names.directories {
        if !dir_permitted.is_empty() && !dir_permitted.iter().any(|base| dir.is_within(base)) {
            return Err("a directory name is outside the permitted subtrees".into());
        }
        if excluded
            .iter()
            .any(|base| matches!(base, Base::Directory(b) if dir.is_within(b)))
        {
            return Err("a directory name is inside an excluded subtree".into());
        }
    }
    // rfc822Name
    let email_permitted: Vec<&str> = permitted
        .iter()
        .filter_map(|base| match base {
            Base::Email(email) => Some(email.as_str()),
            _ => None,
        })
        .collect();
    for email in &names.emails {
        let mut any_permitted = false;
        for base in &email_permitted {
            if email_matches(email, base)? {
                any_permitted = true;
            }
        }
        if !email_permitted.is_empty() && !any_permitted {
            return Err(format!(
                "email address {email} is outside the permitted subtrees"
            ));
        }
        for base in &excluded {
            if let Base::Email(base) = base
                && email_matches(email, base)?
            {
                return Err(format!(
                    "email address {email} is inside an excluded subtree"
                ));
            }
        }
    }
    // uniformResourceIdentifier
    let uri_permitted: Vec<&str> = permitted
        .iter()
        .filter_map(|base| match base {
            Base::Uri(uri) => Some(uri.as_str()),
            _ => None,
        })
        .collect();
    for uri in &names.uris {
        let host = uri_host(uri)?;
        if !uri_permitted.is_empty() && !uri_permitted.iter().any(|base| host_matches(host, base)) {
            return Err(format!("URI {uri} is outside the permitted subtrees"));
        }
        if excluded
            .iter()
            .any(|base| matches!(base, Base::Uri(b) if host_matches(host, b)))
        {
            return Err(format!("URI {uri} is inside an excluded subtree"));
        }
    }
    Ok(())
}

/// RFC 5280 4.2.1.10 for rfc822Name: `user@host` names one mailbox (the
/// local part compared exactly), `host` every mailbox at that host,
/// `.domain` every mailbox at a host within the domain. Hosts compare
/// case-insensitively.
fn email_matches(email: &str, base: &str) -> Result<bool, String> {
    let Some((local, host)) = email.rsplit_once('@') else {
        return Err(format!("email address {email:?} has no @"));
    };
    if base.starts_with('.') {
        return Ok(host.len() > base.len() - 1
            && email.len() > base.len()
            && email[email.len() - base.len()..].eq_ignore_ascii_case(base));
    }
    match base.rsplit_once('@') {
        Some((base_local, base_host)) => {
            Ok((base_local.is_empty() || base_local == local)
                && base_host.eq_ignore_ascii_case(host))
        }
        None => Ok(base.eq_ignore_ascii_case(host)),
    }
}

/// The host part of a URI (`scheme://host[:port][/...]`).
fn uri_host(uri: &str) -> Result<&str, String> {
    let Some((_, rest)) = uri.split_once("://") else {
        return Err(format!("URI {uri:?} has no host part"));
    };
    let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host = host.rsplit_once('@').map_or(host, |(_, host)| host);
    let host = host.split(':').next().unwrap_or_default();
    if host.is_empty() {
        return Err(format!("URI {uri:?} has no host part"));
    }
    Ok(host)
}

/// A host against a URI constraint: the host itself, or with a leading `.`
/// any host within that domain.
fn host_matches(host: &str, base: &str) -> bool {
    if base.starts_with('.') {
        host.len() > base.len() && host[host.len() - base.len()..].eq_ignore_ascii_case(base)
    } else {
        host.eq_ignore_ascii_case(base)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn email_forms() {
        let ok = |e, b| email_matches(e, b).unwrap_or(false);
        assert!(ok("user@example.org", "user@example.org"));
        assert!(ok("user@EXAMPLE.org", "user@example.org"));
        assert!(!ok("User@example.org", "user@example.org"));
        assert!(ok("anyone@example.org", "example.org"));
        assert!(!ok("anyone@mail.example.org", "example.org"));
        assert!(ok("anyone@mail.example.org", ".example.org"));
        assert!(!ok("anyone@example.org", ".example.org"));
        assert!(!ok("anyone@badexample.org", ".example.org"));
        assert!(email_matches("no-at-sign", "example.org").is_err());
    }

    #[test]
    fn uri_forms() {
        assert_eq!(
            uri_host("https://user@Host.example.org:8443/x").unwrap(),
            "Host.example.org"
        );
        assert!(uri_host("urn:x").is_err());
        assert!(host_matches("Host.example.org", ".example.org"));
        assert!(!host_matches("example.org", ".example.org"));
        assert!(host_matches("EXAMPLE.org", "example.org"));
        assert!(!host_matches("a.example.org", "example.org"));
    }
}
