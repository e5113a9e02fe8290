//! URL handling: which schemes are allowed, and how URLs are shown.
//!
//! List URLs may carry credentials (`https://token:x-oauth-basic@host/...`)
//! and image URLs may be pre-signed (`...?X-Amz-Signature=...`). Every URL
//! that reaches an error message, a log line or a sidecar file goes through
//! [`redact`] / [`redact_str`] first, which remove the user information and
//! the values of credential parameters
//! ([`vmlisub_core::redact::redact_url`] says which), so that secrets never
//! leave the process through status fields, events or logs.

use reqwest::Url;
use vmlisub_core::redact::redact_url;

/// A URL without its user name, password and credential parameters.
pub fn redact(url: &Url) -> String {
    redact_url(url.as_str())
}

/// [`redact`] for a URL string, normalised when it parses and cleaned all
/// the same when it does not.
pub fn redact_str(url: &str) -> String {
    match Url::parse(url) {
        Ok(parsed) => redact(&parsed),
        Err(_) => redact_url(url),
    }
}

/// Splits credentials off a URL: reqwest would send them as Basic auth
/// anyway, but keeping them out of the URL it holds keeps them out of its
/// error messages too. Returns the clean URL and `(user, password)`,
/// percent-decoded.
pub fn take_credentials(url: &Url) -> (Url, Option<(String, String)>) {
    if url.username().is_empty() && url.password().is_none() {
        return (url.clone(), None);
    }
    let user = percent_decode(url.username());
    let password = percent_decode(url.password().unwrap_or(""));
    let mut clean = url.clone();
    let _ = clean.set_username("");
    let _ = clean.set_password(None);
    (clean, Some((user, password)))
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let decoded = (bytes[i] == b'%')
            .then(|| bytes.get(i + 1..i + 3))
            .flatten()
            .and_then(|hex| std::str::from_utf8(hex).ok())
            .and_then(|hex| u8::from_str_radix(hex, 16).ok());
        match decoded {
            Some(b) => {
                out.push(b);
                i += 3;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn credentials_are_stripped() {
        let url = Url::parse("https://tok%40en:x-oauth-basic@host.example/vo/x.list?a=1").unwrap();
        assert_eq!(redact(&url), "https://host.example/vo/x.list?a=1");
        let (clean, creds) = take_credentials(&url);
        assert_eq!(clean.as_str(), "https://host.example/vo/x.list?a=1");
        assert_eq!(
            creds,
            Some(("tok@en".to_string(), "x-oauth-basic".to_string()))
        );
    }

    #[test]
    fn unparsable_urls_are_stripped_too() {
        assert_eq!(redact_str("https://u:p@[bad/x"), "https://[bad/x");
        assert_eq!(redact_str("no scheme"), "no scheme");
        assert_eq!(redact_str("http://a.b/c@d"), "http://a.b/c@d");
        assert_eq!(redact_str("https://u:p#w@h:99999/x"), "https://h:99999/x");
    }

    #[test]
    fn credential_parameters_are_redacted() {
        let url = Url::parse(
            "https://u:p@s3.example/b/x.img?X-Amz-Credential=AKIA&X-Amz-Signature=f00&part=1#token=t",
        )
        .unwrap();
        assert_eq!(
            redact(&url),
            "https://s3.example/b/x.img?X-Amz-Credential=REDACTED&X-Amz-Signature=REDACTED&part=1#token=REDACTED"
        );
        assert_eq!(
            redact_str("https://h/x?sig=a b&token=%ZZ"),
            "https://h/x?sig=REDACTED&token=REDACTED"
        );
    }
}
