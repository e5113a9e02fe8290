//! URLs as they may be shown: without the credentials they can carry.
//!
//! A subscription URL may hold an access token as its user name
//! (`https://TOKEN:x-oauth-basic@appdb.example/...`, AppDB's form), and an
//! image URL may be pre-signed (`...?X-Amz-Signature=...`, `...?sig=...`).
//! Status fields, Events, logs, metric labels and error messages are read by
//! more people than the Secrets behind those URLs, so every URL shown goes
//! through [`redact_url`] first.
//!
//! [`redact_url`] is a pure string function, deliberately without a URL
//! parser: it must also clean what does not parse (the URL of an
//! `invalid-url` error is shown too), and it never fails or panics. Where it
//! cannot tell, it removes more rather than less. What it removes:
//!
//! * **User information**: everything up to the last `@` of each authority.
//!   An authority starts after a `scheme:` and its slashes (or backslashes),
//!   at the start of a string without a `scheme:/` (`user:pass@proxy:3128`,
//!   `https:u:p@host`), and after every further `://` (URLs nested in a
//!   path or a query); it runs to the next `/`, `?` or `#`, except that a
//!   raw `?` or `#` in a password (`https://u:p#ss@host/`, which no URL
//!   parser accepts, but which an `invalid-url` message shows) does not end
//!   it: when no `host[:port]` comes before the `?` or `#` and an `@` comes
//!   after it, everything up to that `@` goes.
//! * **Credential parameters**: in the query and the fragment (OAuth puts
//!   tokens there), the value of every parameter whose name looks like a
//!   credential becomes [`REDACTED`]. Parameters are separated by `&`, `;`,
//!   `?` or `#`. A name is compared after percent-decoding, in lower case,
//!   with `-`, `.` and spaces read as `_`; it is a credential name if it is
//!   one of [`CREDENTIAL_NAMES`] or contains one of
//!   [`CREDENTIAL_NAME_PARTS`]. This covers `token`, `access_token`,
//!   `password`, `passwd`, `pass`, `secret`, `client_secret`, `key`,
//!   `api_key`, `apikey`, `sig`, `signature`, `auth`, `authorization`, AWS
//!   (`X-Amz-Signature`, `X-Amz-Credential`, `X-Amz-Security-Token`,
//!   `AWSAccessKeyId`), Google (`X-Goog-Signature`, `X-Goog-Credential`) and
//!   Azure SAS (`sig`) pre-signed URLs, and session ids.
//!
//! Not removed: secrets in path segments (nothing tells them apart from
//! names), and URLs nested percent-encoded inside a parameter value.

use std::ops::Range;

/// What a credential parameter's value is replaced with.
pub const REDACTED: &str = "REDACTED";

/// Parameter names that are credentials when they are the whole name
/// (compared as described in the [module documentation](self)).
pub const CREDENTIAL_NAMES: &[&str] = &["key", "sig", "pass", "pw", "pwd"];

/// Parts that make a parameter name a credential name wherever they occur
/// in it (compared as described in the [module documentation](self)).
pub const CREDENTIAL_NAME_PARTS: &[&str] = &[
    "token",
    "secret",
    "passw",
    "signature",
    "credential",
    "auth",
    "apikey",
    "api_key",
    "accesskey",
    "access_key",
    "session",
    "private",
    "jwt",
];

/// `url` with its user information removed and the values of its
/// credential parameters replaced by [`REDACTED`]; everything else is kept
/// as it is. Total: any string is accepted, nothing panics.
///
/// ```
/// use vmlisub_core::redact::redact_url;
/// assert_eq!(
///     redact_url("https://TOKEN:x-oauth-basic@appdb.example/vo/image.list"),
///     "https://appdb.example/vo/image.list"
/// );
/// assert_eq!(
///     redact_url("https://s3.example/img.qcow2?X-Amz-Signature=abc&part=1"),
///     "https://s3.example/img.qcow2?X-Amz-Signature=REDACTED&part=1"
/// );
/// ```
pub fn redact_url(url: &str) -> String {
    // Garbage can hide one credential behind another (a password with a
    // raw `?` that looks like a query); a second look finds it. Each pass
    // only removes text or replaces values, and well-formed URLs are stable
    // after one, so a few passes reach a result that redacts to itself.
    let mut shown = redact_once(url);
    for _ in 0..MAX_PASSES {
        let again = redact_once(&shown);
        if again == shown {
            break;
        }
        shown = again;
    }
    shown
}

/// Passes after the first, at most.
const MAX_PASSES: usize = 4;

fn redact_once(url: &str) -> String {
    // Both kinds of credentials are located in the original string, so that
    // removing one can never make the other unrecognisable (garbage such as
    // `https://h?a=x@&token=...` would otherwise lose its `?` with the
    // "user information" and keep the token).
    let mut hide = vec![Hide::Keep; url.len()];
    for span in credential_values(url) {
        hide[span].fill(Hide::Replace);
    }
    for span in userinfo(url) {
        hide[span].fill(Hide::Drop);
    }
    let mut out = String::with_capacity(url.len());
    let mut replacing = false;
    for (index, c) in url.char_indices() {
        match hide.get(index).copied().unwrap_or(Hide::Drop) {
            Hide::Keep => {
                out.push(c);
                replacing = false;
            }
            Hide::Drop => {}
            Hide::Replace if replacing => {}
            Hide::Replace => {
                out.push_str(REDACTED);
                replacing = true;
            }
        }
    }
    out
}

/// Whether a query or fragment parameter name names a credential.
pub fn is_credential_name(name: &str) -> bool {
    let name: String = percent_decode(name)
        .chars()
        .map(|c| match c {
            '-' | '.' | ' ' => '_',
            c => c.to_ascii_lowercase(),
        })
        .collect();
    CREDENTIAL_NAMES.contains(&name.as_str())
        || CREDENTIAL_NAME_PARTS.iter().any(|part| name.contains(part))
}

/// What becomes of one byte of the URL.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Hide {
    Keep,
    /// Part of a credential parameter's value.
    Replace,
    /// Part of user information.
    Drop,
}

/// The byte ranges of user information (each with its `@`). Every range
/// starts and ends at an ASCII delimiter or the end, so at char boundaries.
fn userinfo(url: &str) -> Vec<Range<usize>> {
    let mut spans = Vec::new();
    // The first authority follows `scheme:` when slashes come next. Without
    // them, `user:pass@host` and `https:u:p@host` cannot be told apart, so
    // the authority starts at the very beginning (dropping the "scheme").
    let mut from = match scheme_len(url) {
        Some(len) if url[len + 1..].starts_with(['/', '\\']) => len + 1,
        _ => 0,
    };
    let parameters = url.find(['?', '#']).unwrap_or(url.len());
    loop {
        let host = authority_userinfo(url, from, from > parameters, &mut spans);
        match url[host..].find("://") {
            Some(at) => from = host + at + 3,
            None => return spans,
        }
    }
}

/// Records the user information of the authority that may start at `from`
/// (after any slashes) and returns where its host starts. An authority
/// nested in a query or fragment parameter ends with the parameter.
fn authority_userinfo(
    url: &str,
    from: usize,
    in_parameter: bool,
    spans: &mut Vec<Range<usize>>,
) -> usize {
    let ends: &[char] = if in_parameter {
        &['/', '&', ';', '?', '#']
    } else {
        &['/']
    };
    let mut start = skip_slashes(url, from);
    loop {
        let end = url[start..].find(ends).map_or(url.len(), |i| start + i);
        let region = &url[start..end];
        let query = region.find(['?', '#']);
        let head = &region[..query.unwrap_or(region.len())];
        let at = match head.rfind('@') {
            Some(at) => at,
            // No `@` before a `?` or `#`, one after it, and what comes
            // before is no `host[:port]`: a raw `?` or `#` in a password
            // (`https://u:p#ss@host/`), which no parser reads as a query.
            None if query.is_some() && !looks_like_host(head) => match region.rfind('@') {
                Some(at) => at,
                None => return start,
            },
            None => return start,
        };
        let host = start + at + 1;
        spans.push(start..host);
        // `user@` followed by no host: what comes after the slashes may be
        // the real authority (parsers skip extra slashes), so look again.
        let next = skip_slashes(url, host);
        if next == host {
            return host;
        }
        start = next;
    }
}

/// `host` or `host:port` (digits only), IPv6 literals included.
fn looks_like_host(text: &str) -> bool {
    let after_literal = text.rfind(']').map_or(text, |i| &text[i + 1..]);
    match after_literal.split_once(':') {
        None => true,
        Some((_, port)) => port.bytes().all(|b| b.is_ascii_digit()),
    }
}

fn skip_slashes(url: &str, from: usize) -> usize {
    let rest = &url[from..];
    from + (rest.len() - rest.trim_start_matches(['/', '\\']).len())
}

/// The length of a leading `scheme` (RFC 3986: a letter, then letters,
/// digits, `+`, `-`, `.`) followed by `:`.
fn scheme_len(url: &str) -> Option<usize> {
    let colon = url.find(':')?;
    let scheme = &url[..colon];
    let mut chars = scheme.chars();
    let first = chars.next()?;
    (first.is_ascii_alphabetic()
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.')))
    .then_some(colon)
}

/// The byte ranges of the values of credential parameters in the query and
/// fragment.
fn credential_values(url: &str) -> Vec<Range<usize>> {
    let mut spans = Vec::new();
    let Some(mut separator) = url.find(['?', '#']) else {
        return spans;
    };
    while separator < url.len() {
        let start = separator + 1;
        let end = url[start..]
            .find(['&', ';', '?', '#'])
            .map_or(url.len(), |i| start + i);
        if let Some(equals) = url[start..end].find('=')
            && is_credential_name(&url[start..start + equals])
        {
            spans.push(start + equals + 1..end);
        }
        separator = end;
    }
    spans
}

/// `%XX` decoded where it is well-formed; anything else kept.
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&byte) = bytes.get(i) {
        let decoded = (byte == b'%')
            .then(|| bytes.get(i + 1..i + 3))
            .flatten()
            .and_then(|hex| std::str::from_utf8(hex).ok())
            .and_then(|hex| u8::from_str_radix(hex, 16).ok());
        match decoded {
            Some(value) => {
                out.push(value);
                i += 3;
            }
            None => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn examples() {
        let cases = [
            // Nothing to remove.
            (
                "https://h.example/vo/image.list",
                "https://h.example/vo/image.list",
            ),
            (
                "https://h.example:8443/a?b=1#top",
                "https://h.example:8443/a?b=1#top",
            ),
            ("", ""),
            ("no scheme", "no scheme"),
            ("http://a.b/c@d", "http://a.b/c@d"),
            ("file:///var/lists/x.list", "file:///var/lists/x.list"),
            // User information.
            ("https://u:p@h/x", "https://h/x"),
            (
                "https://TOKEN:x-oauth-basic@appdb.example/vo/l",
                "https://appdb.example/vo/l",
            ),
            ("https://u@h", "https://h"),
            ("https://u:p@[::1]:8080/x", "https://[::1]:8080/x"),
            ("https://a@b@h/x", "https://h/x"),
            ("HTTPS://u:p@h/x", "HTTPS://h/x"),
            ("https:///u:p@h/x", "https:///h/x"),
            ("https:\\\\u:p@h\\x", "https:\\\\h\\x"),
            ("https:/u:p@h/x", "https:/h/x"),
            ("https:u:p@h/x", "h/x"),
            ("//u:p@h/x", "//h/x"),
            ("user:pass@proxy:3128", "proxy:3128"),
            ("TOKEN:x-oauth-basic@appdb.example", "appdb.example"),
            // Raw reserved characters in a password: removed all the same.
            ("https://u:p#ss@h/x", "https://h/x"),
            ("https://u:p?ss@h/x", "https://h/x"),
            ("https://u:p\\ss@h/x", "https://h/x"),
            ("https://u:p?token=s@h/x", "https://REDACTED"),
            ("https://[::1?x@h/x", "https://h/x"),
            // An `@` in the query of a URL without a path is no user.
            ("https://h?m=a@b", "https://h?m=a@b"),
            ("https://h:8443#a=@b", "https://h:8443#a=@b"),
            ("https://[::1]:8443?a=@b", "https://[::1]:8443?a=@b"),
            ("https://u:p@h?m=a@b", "https://h?m=a@b"),
            // A user with no host after it: the next authority is looked at.
            ("https://a:@//b:secret@c/x", "https:////c/x"),
            // Nested URLs.
            (
                "https://h/fetch/https://u:p@i/x?y=1",
                "https://h/fetch/https://i/x?y=1",
            ),
            (
                "https://h/?next=https://u:p@i/",
                "https://h/?next=https://i/",
            ),
            // Credential parameters.
            ("https://h/x?token=abc", "https://h/x?token=REDACTED"),
            ("https://h?token=abc", "https://h?token=REDACTED"),
            (
                "https://h/x?a=1&access_token=abc&b=2",
                "https://h/x?a=1&access_token=REDACTED&b=2",
            ),
            (
                "https://s3/x?X-Amz-Algorithm=AWS4&X-Amz-Credential=AK%2F2025&X-Amz-Signature=f00&X-Amz-Security-Token=t",
                "https://s3/x?X-Amz-Algorithm=AWS4&X-Amz-Credential=REDACTED&X-Amz-Signature=REDACTED&X-Amz-Security-Token=REDACTED",
            ),
            (
                "https://blob/c/x?sv=2022&sig=abc%3D&se=2030",
                "https://blob/c/x?sv=2022&sig=REDACTED&se=2030",
            ),
            ("https://h/x?PASSWORD=a=b", "https://h/x?PASSWORD=REDACTED"),
            (
                "https://h/x?passwd=a;pass=b",
                "https://h/x?passwd=REDACTED;pass=REDACTED",
            ),
            (
                "https://h/x?key=a&keyword=b",
                "https://h/x?key=REDACTED&keyword=b",
            ),
            (
                "https://h/x?api-key=a&x.api.key=b",
                "https://h/x?api-key=REDACTED&x.api.key=REDACTED",
            ),
            (
                "https://h/x?acc%65ss_token=a",
                "https://h/x?acc%65ss_token=REDACTED",
            ),
            ("https://h/x?secret", "https://h/x?secret"),
            ("https://h/x?=token", "https://h/x?=token"),
            (
                "https://h/cb#access_token=abc&state=s",
                "https://h/cb#access_token=REDACTED&state=s",
            ),
            ("https://h/x?a=1#sig=abc", "https://h/x?a=1#sig=REDACTED"),
            (
                "https://h/?next=https://i/x?token=t",
                "https://h/?next=https://i/x?token=REDACTED",
            ),
            // Both.
            (
                "https://u:p@h/x?token=abc#frag",
                "https://h/x?token=REDACTED#frag",
            ),
        ];
        for (input, expected) in cases {
            assert_eq!(redact_url(input), expected, "{input:?}");
            assert_eq!(redact_url(expected), expected, "idempotent on {expected:?}");
        }
    }

    #[test]
    fn credential_names() {
        for name in [
            "token",
            "Token",
            "access_token",
            "id-token",
            "X-Amz-Security-Token",
            "X-Amz-Signature",
            "X-Amz-Credential",
            "X-Goog-Signature",
            "AWSAccessKeyId",
            "password",
            "passwd",
            "pass",
            "pw",
            "pwd",
            "secret",
            "client_secret",
            "key",
            "KEY",
            "apikey",
            "api_key",
            "x-api-key",
            "sig",
            "signature",
            "auth",
            "authorization",
            "oauth_verifier",
            "jsessionid",
            "private_token",
            "jwt",
            "%74oken",
        ] {
            assert!(is_credential_name(name), "{name}");
        }
        for name in [
            "", "a", "sv", "se", "part", "keyword", "monkey", "version", "format", "id", "name",
            "sigma",
        ] {
            assert!(!is_credential_name(name), "{name}");
        }
    }

    /// A small deterministic generator (xorshift), so that failures can be
    /// replayed from the printed seed.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }

        fn below(&mut self, n: usize) -> usize {
            (self.next() % n.max(1) as u64) as usize
        }

        fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
            items[self.below(items.len())]
        }

        /// `len` characters from `alphabet`.
        fn text(&mut self, alphabet: &str, len: usize) -> String {
            let chars: Vec<char> = alphabet.chars().collect();
            (0..len).map(|_| chars[self.below(chars.len())]).collect()
        }
    }

    /// Characters RFC 3986 allows in user information (plus `%`).
    const USERINFO: &str =
        "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~!$&'()*+,;=:%";
    /// Hostile pieces: delimiters, encodings, control and non-ASCII text.
    const NOISE: &[&str] = &[
        "/", "//", "\\", "?", "#", "&", ";", "=", "@", ":", "://", "%", "%4", "%zz", "%00", "\0",
        "\n", " ", "\"", "'", "$(x)", "`x`", "é", "日本", "\u{202e}", "\u{fffd}", "[", "]", "::1",
        "token", "sig=", "?key=", "#auth=", "https", "http:", "a", "0",
    ];

    /// A URL built from random parts around secrets in the places that
    /// must be redacted, with noise in the places that must not matter.
    fn hostile_url(rng: &mut Rng, secret: &str) -> String {
        let scheme = rng.pick(&[
            "https://",
            "http://",
            "HTTPS://",
            "https:///",
            "https:/",
            "https:\\\\",
            "//",
            "",
            "s3+x://",
        ]);
        let mut url = scheme.to_string();
        // User information: the secret as user or password, or both.
        let len = rng.below(6);
        let user = rng.text(USERINFO, len);
        let len = rng.below(6);
        let password = rng.text(USERINFO, len);
        url.push_str(&match rng.below(4) {
            0 => format!("{secret}{user}@"),
            1 => format!("{user}:{secret}{password}@"),
            2 => format!("{user}{secret}:{password}{secret}@"),
            _ => format!("{user}:{password}@"),
        });
        url.push_str(rng.pick(&[
            "h.example",
            "127.0.0.1:8080",
            "[::1]",
            "xn--bcher-kva.example",
            "",
        ]));
        for _ in 0..rng.below(4) {
            url.push('/');
            let len = rng.below(8);
            url.push_str(&rng.text("abc.-_~@:!$'()*+,", len));
            if rng.below(3) == 0 {
                url.push_str(rng.pick(NOISE));
            }
        }
        let names = [
            "token",
            "access_token",
            "X-Amz-Signature",
            "X-Amz-Credential",
            "X-Amz-Security-Token",
            "sig",
            "Signature",
            "password",
            "passwd",
            "pass",
            "secret",
            "key",
            "api-key",
            "auth",
            "AUTHORIZATION",
            "client_secret",
            "x%2Dapi%2Dkey",
        ];
        for index in 0..rng.below(5) {
            let separator = if index == 0 {
                rng.pick(&["?", "#"])
            } else {
                rng.pick(&["?", "&", ";", "#"])
            };
            url.push_str(separator);
            if rng.below(2) == 0 {
                // A credential parameter, its value noisy but free of
                // separators (those would end the value).
                let name = rng.pick(&names);
                let len = rng.below(6);
                let prefix = rng.text("abcXYZ019-._~%+=/:@", len);
                let noise = rng.pick(NOISE).replace(['&', ';', '?', '#'], "");
                url.push_str(&format!("{name}={prefix}{secret}{noise}"));
            } else {
                let name = rng.pick(&["a", "part", "sv", "format", "next"]);
                let len = rng.below(6);
                let value = rng.text("abc019-._~+=:@/", len);
                url.push_str(&format!("{name}={value}"));
            }
        }
        url
    }

    #[test]
    fn generated_secrets_never_survive() {
        const SECRET: &str = "SeCrEt";
        for seed in 1..=20_000u64 {
            let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
            let url = hostile_url(&mut rng, SECRET);
            let shown = redact_url(&url);
            assert!(
                !shown.contains(SECRET),
                "seed {seed}: {url:?} shown as {shown:?}"
            );
            assert_eq!(
                redact_url(&shown),
                shown,
                "seed {seed}: {url:?} not idempotent"
            );
        }
    }

    #[test]
    fn garbage_never_panics() {
        let mut rng = Rng(0x5EED);
        for _ in 0..20_000 {
            let mut text = String::new();
            for _ in 0..rng.below(24) {
                text.push_str(rng.pick(NOISE));
            }
            let shown = redact_url(&text);
            // Nothing is added but the REDACTED markers.
            assert!(
                shown.len() <= text.len() + REDACTED.len() * text.matches('=').count(),
                "{text:?} -> {shown:?}"
            );
        }
        // Arbitrary bytes, as lossy UTF-8.
        for _ in 0..5_000 {
            let bytes: Vec<u8> = (0..rng.below(64)).map(|_| rng.next() as u8).collect();
            let _ = redact_url(&String::from_utf8_lossy(&bytes));
        }
        // Long runs of delimiters stay linear enough to finish at once.
        let long = "a@/".repeat(100_000) + &"?token=x&".repeat(10_000);
        let shown = redact_url(&long);
        assert!(!shown.contains("token=x"));
    }
}
