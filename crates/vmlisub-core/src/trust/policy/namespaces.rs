//! The EUGridPMA `.namespaces` parser (the format and what a rule
//! permits: see the [`policy`](super) module documentation).

use super::{
    ErrorAt, MAX_PATTERN_BYTES, MAX_RULES_PER_FILE, Origin, Pattern, PolicyError, PolicyErrorKind,
    check_file_size, compile, shorten,
};

/// One `TO Issuer ... PERMIT|DENY Subject "..."` rule.
#[derive(Debug, Clone)]
pub(super) struct NamespaceRule {
    pub(super) permit: bool,
    pub(super) pattern: Pattern,
}

/// The version marker line of the namespaces format.
const VERSION_MARKER: &str = "#NAMESPACES-VERSION:";

/// A token of a namespaces rule.
#[derive(Debug, Clone, PartialEq, Eq)]
enum NsToken {
    Word(String),
    /// The raw text between double quotes (backslashes kept: they belong
    /// to the regular expression).
    Quoted(String),
}

/// Removes a `#` comment from a physical line. `in_quote` carries the
/// quote state across continued lines; returns the kept text and the state
/// at its end.
fn strip_comment(line: &str, mut in_quote: bool) -> (&str, bool) {
    let mut escaped = false;
    for (index, ch) in line.char_indices() {
        if escaped {
            escaped = false;
            continue;
        }
        match ch {
            '\\' if in_quote => escaped = true,
            '"' => in_quote = !in_quote,
            '#' if !in_quote => return (&line[..index], in_quote),
            _ => {}
        }
    }
    (line, in_quote)
}

/// Splits a logical line into words and `"..."` strings. Inside a string a
/// backslash protects the next character (so `\"` does not end it) and is
/// kept.
fn namespace_tokens(line: &str) -> Result<Vec<NsToken>, PolicyErrorKind> {
    let mut tokens = Vec::new();
    let mut chars = line.char_indices().peekable();
    while let Some(&(start, ch)) = chars.peek() {
        if ch.is_whitespace() {
            chars.next();
            continue;
        }
        if ch == '"' {
            chars.next();
            let mut end = None;
            while let Some((index, ch)) = chars.next() {
                match ch {
                    '\\' => {
                        chars.next();
                    }
                    '"' => {
                        end = Some(index);
                        break;
                    }
                    _ => {}
                }
            }
            let end = end.ok_or(PolicyErrorKind::UnterminatedQuote { quote: '"' })?;
            tokens.push(NsToken::Quoted(line[start + 1..end].to_owned()));
        } else {
            let mut end = line.len();
            while let Some(&(index, ch)) = chars.peek() {
                if ch.is_whitespace() || ch == '"' {
                    end = index;
                    break;
                }
                chars.next();
            }
            tokens.push(NsToken::Word(line[start..end].to_owned()));
        }
    }
    Ok(tokens)
}

/// Logical lines of a namespaces file: comments removed, continuations
/// joined, each with the number of its first physical line.
fn logical_lines(text: &str, errors: &ErrorAt<'_>) -> Result<Vec<(usize, String)>, PolicyError> {
    let mut lines = Vec::new();
    let mut pending: Option<(usize, String)> = None;
    let mut in_quote = false;
    for (index, raw) in text.lines().enumerate() {
        let number = index + 1;
        if pending.is_none() {
            if let Some(version) = raw.strip_prefix(VERSION_MARKER) {
                let version = version.trim();
                if version != "1.0" {
                    return Err(errors.at(
                        number,
                        PolicyErrorKind::UnsupportedVersion(shorten(version)),
                    ));
                }
                continue;
            }
            in_quote = false;
        }
        let (kept, quote_open) = strip_comment(raw, in_quote);
        in_quote = quote_open;
        let kept = kept.trim_end();
        let (kept, continues) = match kept.strip_suffix('\\') {
            Some(head) => (head, true),
            None => (kept, false),
        };
        let (start, mut buffer) = pending.take().unwrap_or((number, String::new()));
        buffer.push_str(kept);
        if continues {
            pending = Some((start, buffer));
        } else if !buffer.trim().is_empty() {
            lines.push((start, buffer));
        }
    }
    if let Some((start, buffer)) = pending
        && !buffer.trim().is_empty()
    {
        lines.push((start, buffer));
    }
    Ok(lines)
}

pub(super) fn parse_namespaces(
    text: &str,
    file: &str,
    self_dn: Option<&str>,
) -> Result<Vec<(String, NamespaceRule)>, PolicyError> {
    let errors = ErrorAt { file };
    check_file_size(text, &errors)?;
    let mut rules = Vec::new();
    for (number, line) in logical_lines(text, &errors)? {
        if rules.len() >= MAX_RULES_PER_FILE {
            return Err(errors.at(
                number,
                PolicyErrorKind::TooManyRules {
                    limit: MAX_RULES_PER_FILE,
                },
            ));
        }
        let tokens = namespace_tokens(&line).map_err(|kind| errors.at(number, kind))?;
        let word = |index: usize| match tokens.get(index) {
            Some(NsToken::Word(word)) => Some(word.as_str()),
            _ => None,
        };
        let keyword_is = |index: usize, keyword: &str| {
            word(index).is_some_and(|word| word.eq_ignore_ascii_case(keyword))
        };
        if !keyword_is(0, "TO") {
            let found = match tokens.first() {
                Some(NsToken::Word(word)) => word.clone(),
                Some(NsToken::Quoted(text)) => format!("\"{text}\""),
                None => String::new(),
            };
            return Err(errors.at(
                number,
                PolicyErrorKind::UnknownKeyword {
                    keyword: shorten(&found),
                },
            ));
        }
        let grammar = "expected `TO Issuer (\"<DN>\" | SELF) (PERMIT | DENY) Subject \"<regex>\"`";
        if tokens.len() != 6 || !keyword_is(1, "Issuer") || !keyword_is(4, "Subject") {
            return Err(errors.syntax(number, grammar));
        }
        let issuer = match tokens.get(2) {
            Some(NsToken::Quoted(dn)) if !dn.is_empty() => dn.clone(),
            Some(NsToken::Word(word)) if word.eq_ignore_ascii_case("SELF") => match self_dn {
                Some(dn) => dn.to_owned(),
                None => return Err(errors.at(number, PolicyErrorKind::SelfUnknown)),
            },
            _ => return Err(errors.syntax(number, grammar)),
        };
        if issuer.len() > MAX_PATTERN_BYTES {
            return Err(errors.at(
                number,
                PolicyErrorKind::BadPattern {
                    pattern: shorten(&issuer),
                    reason: format!("longer than {MAX_PATTERN_BYTES} bytes"),
                },
            ));
        }
        let permit = if keyword_is(3, "PERMIT") {
            true
        } else if keyword_is(3, "DENY") {
            false
        } else {
            return Err(errors.syntax(number, grammar));
        };
        let Some(NsToken::Quoted(subject)) = tokens.get(5) else {
            return Err(errors.syntax(number, grammar));
        };
        let origin = Origin {
            file: file.to_owned(),
            line: number,
        };
        let pattern = compile(subject, subject, origin, &errors)?;
        rules.push((issuer, NamespaceRule { permit, pattern }));
    }
    Ok(rules)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::trust::policy::tests::{KindCheck, namespaces, namespaces_error, permitted};
    use crate::trust::policy::{PolicySet, PolicyVerdict};

    #[test]
    fn deny_rules_win_over_permit_rules() {
        let set = namespaces(
            r#"
TO Issuer "/O=Grid/CN=CA" PERMIT Subject "/O=Grid/.*"
TO Issuer "/O=Grid/CN=CA" DENY   Subject "/O=Grid/OU=Banned/.*"
TO Issuer "/O=Grid/CN=CA" DENY   Subject ".*/CN=root"
"#,
        );
        assert!(permitted(
            &set,
            "/O=Grid/CN=CA",
            "/O=Grid/OU=Users/CN=alice"
        ));
        assert!(!permitted(
            &set,
            "/O=Grid/CN=CA",
            "/O=Grid/OU=Banned/CN=bob"
        ));
        assert!(!permitted(
            &set,
            "/O=Grid/CN=CA",
            "/O=Grid/OU=Users/CN=root"
        ));
        let PolicyVerdict::Denied { reason } = set.check("/O=Grid/CN=CA", "/O=Grid/OU=Banned/x")
        else {
            panic!("expected a denial");
        };
        assert!(
            reason.contains("DENY") && reason.contains("test.namespaces:3"),
            "{reason}"
        );
        // Only DENY rules: nothing is permitted.
        let set = namespaces(r#"TO Issuer "/O=Grid/CN=CA" DENY Subject "/O=Evil/.*""#);
        assert!(!permitted(&set, "/O=Grid/CN=CA", "/O=Grid/CN=x"));
    }

    #[test]
    fn continuations_comments_and_case() {
        let set = namespaces(
            "#NAMESPACES-VERSION: 1.0\r\n\
             # a comment\r\n\
             TO Issuer \"/O=Grid/CN=CA #1\" \\\r\n\
             \t  \\\r\n\
             PERMIT Subject \"/O=Grid/OU=#2/.*\" # trailing comment\r\n\
             to issuer \"/O=Grid/CN=CA #1\" permit subject \"/O=Other/.*\"\r\n\
             \r\n\
             TO Issuer \"/O=Grid/CN=CA #1\" \\\n\
             DENY Subject \"/O=Grid/OU=#2/CN=x\"",
        );
        let issuer = "/O=Grid/CN=CA #1";
        assert!(permitted(&set, issuer, "/O=Grid/OU=#2/CN=y"));
        assert!(permitted(&set, issuer, "/O=Other/CN=y"));
        assert!(!permitted(&set, issuer, "/O=Grid/OU=#2/CN=x"));
        assert!(!permitted(&set, issuer, "/O=Grid/OU=3/CN=y"));
        // Errors point at the first line of the logical rule.
        let error = namespaces_error("# c\nTO Issuer \"/O=A\" \\\n  PERMIT Subject \"(\"\n");
        assert_eq!(error.line, 2);
        assert!(matches!(error.kind, PolicyErrorKind::BadPattern { .. }));
        assert!(
            error
                .to_string()
                .starts_with("bad.namespaces:2: pattern \"(\" rejected"),
            "{error}"
        );
    }

    #[test]
    fn self_needs_the_ca_dn() {
        let text = "TO Issuer SELF PERMIT Subject \"/O=Grid/.*\"\n";
        let error = namespaces_error(text);
        assert_eq!(error.kind, PolicyErrorKind::SelfUnknown);
        assert_eq!(error.line, 1);
        let mut set = PolicySet::default();
        set.add_namespaces_with_self(text, "1234abcd.namespaces", "/O=Grid/CN=CA")
            .unwrap();
        assert!(permitted(&set, "/O=Grid/CN=CA", "/O=Grid/CN=x"));
        assert!(!permitted(&set, "/O=Grid/CN=CA", "/O=Evil/CN=x"));
        // A quoted "SELF" is a DN, not the keyword.
        let set = namespaces("TO Issuer \"SELF\" PERMIT Subject \".*\"");
        assert!(permitted(&set, "SELF", "/O=x"));
    }

    #[test]
    fn regex_metacharacters_in_dns() {
        // Issuers are exact strings: metacharacters in them are literal.
        let issuer = "/DC=org/DC=ex.ample/CN=CA (2) +x* [1]";
        let set = namespaces(&format!(
            "TO Issuer \"{issuer}\" PERMIT Subject \"/DC=org/DC=ex\\.ample/CN=[a-z]+ \\(user\\)\"\n"
        ));
        assert!(permitted(
            &set,
            issuer,
            "/DC=org/DC=ex.ample/CN=alice (user)"
        ));
        assert!(!permitted(
            &set,
            issuer,
            "/DC=org/DC=exXample/CN=alice (user)"
        ));
        assert!(!permitted(
            &set,
            issuer,
            "/DC=org/DC=ex.ample/CN=Alice (user)"
        ));
        assert_eq!(
            set.check("/DC=org/DC=exXample/CN=CA (2) +x* [1]", "/x"),
            PolicyVerdict::NoPolicy
        );
        // Alternation stays inside the anchors.
        let set = namespaces("TO Issuer \"/O=CA\" PERMIT Subject \"/O=a|/O=b\"");
        assert!(permitted(&set, "/O=CA", "/O=a"));
        assert!(permitted(&set, "/O=CA", "/O=b"));
        assert!(!permitted(&set, "/O=CA", "/O=a/CN=x"));
        assert!(!permitted(&set, "/O=CA", "x/O=b"));
        // An attempt to close the anchoring group is not a valid pattern.
        let error = namespaces_error("TO Issuer \"/O=CA\" PERMIT Subject \"/O=a)|(.*\"");
        assert!(
            matches!(error.kind, PolicyErrorKind::BadPattern { .. }),
            "{error}"
        );
        // A quote escaped inside the regex does not end the string.
        let set = namespaces(r#"TO Issuer "/O=CA" PERMIT Subject "/CN=\"quoted\"""#);
        assert!(permitted(&set, "/O=CA", "/CN=\"quoted\""));
        // One-line DNs carry escapes such as `\/` and `\xC3`; a pattern
        // matches them as the text they are.
        let set = namespaces(r#"TO Issuer "/O=CA" PERMIT Subject "/CN=J\\xC3\\xBCrgen""#);
        assert!(permitted(&set, "/O=CA", "/CN=J\\xC3\\xBCrgen"));
    }

    #[test]
    fn malformed_namespaces_are_typed_errors_with_lines() {
        let unterminated = namespaces_error("\n\nTO Issuer \"/O=CA PERMIT Subject \".*\"\n");
        // `"/O=CA PERMIT Subject "` is a string; `.*"` opens another.
        assert_eq!(unterminated.line, 3);
        assert_eq!(
            unterminated.kind,
            PolicyErrorKind::UnterminatedQuote { quote: '"' }
        );
        let cases: Vec<(&str, usize, KindCheck)> = vec![
            (
                "FROM Issuer \"/O=CA\" PERMIT Subject \".*\"",
                1,
                |kind| matches!(kind, PolicyErrorKind::UnknownKeyword { keyword } if keyword == "FROM"),
            ),
            (
                "\n\"TO\" Issuer \"/O=CA\" PERMIT Subject \".*\"",
                2,
                |kind| matches!(kind, PolicyErrorKind::UnknownKeyword { .. }),
            ),
            ("TO Issuer \"/O=CA\" ALLOW Subject \".*\"", 1, |kind| {
                matches!(kind, PolicyErrorKind::Syntax(_))
            }),
            ("TO Issuer \"/O=CA\" PERMIT Subject .*", 1, |kind| {
                matches!(kind, PolicyErrorKind::Syntax(_))
            }),
            ("TO Issuer /O=CA PERMIT Subject \".*\"", 1, |kind| {
                matches!(kind, PolicyErrorKind::Syntax(_))
            }),
            ("TO Issuer \"\" PERMIT Subject \".*\"", 1, |kind| {
                matches!(kind, PolicyErrorKind::Syntax(_))
            }),
            (
                "TO Issuer \"/O=CA\" PERMIT Subject \".*\" extra",
                1,
                |kind| matches!(kind, PolicyErrorKind::Syntax(_)),
            ),
            ("TO Issuer \"/O=CA\" PERMIT", 1, |kind| {
                matches!(kind, PolicyErrorKind::Syntax(_))
            }),
            ("TO Issuer \"/O=CA\" PERMIT Subject \"[a-\"", 1, |kind| {
                matches!(kind, PolicyErrorKind::BadPattern { .. })
            }),
            ("TO Issuer \"/O=CA\" PERMIT Subject \"(?i)x\"", 1, |kind| {
                matches!(kind, PolicyErrorKind::BadPattern { .. })
            }),
            (
                "#NAMESPACES-VERSION: 2.0\n",
                1,
                |kind| matches!(kind, PolicyErrorKind::UnsupportedVersion(version) if version == "2.0"),
            ),
        ];
        for (text, line, expected) in cases {
            let error = namespaces_error(text);
            assert_eq!(error.line, line, "{text}: {error}");
            assert!(expected(&error.kind), "{text}: {error}");
            assert_eq!(error.file, "bad.namespaces");
        }
    }
}
