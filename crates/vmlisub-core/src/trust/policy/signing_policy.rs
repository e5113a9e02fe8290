//! The Globus `.signing_policy` parser (the format and what a block
//! permits: see the [`policy`](super) module documentation).

use super::{
    ErrorAt, MAX_PATTERN_BYTES, MAX_RULES_PER_FILE, Origin, Pattern, PolicyError, PolicyErrorKind,
    check_file_size, compile, shorten,
};

/// One `access_id_CA` block of a signing policy.
#[derive(Debug, Clone)]
pub(super) struct SigningBlock {
    /// `pos_rights globus CA:sign` present (and no `neg_rights`).
    pub(super) may_sign: bool,
    pub(super) subjects: Vec<Pattern>,
    pub(super) origin: Origin,
}

/// A token of a signing-policy line.
#[derive(Debug, Clone, PartialEq, Eq)]
enum SpToken {
    Word(String),
    Quoted(String),
}

impl SpToken {
    fn text(&self) -> &str {
        match self {
            SpToken::Word(text) | SpToken::Quoted(text) => text,
        }
    }
}

/// Splits a line into words and `'...'` strings, dropping a `#` comment.
fn signing_tokens(line: &str) -> Result<Vec<SpToken>, PolicyErrorKind> {
    let mut tokens = Vec::new();
    let mut rest = line;
    loop {
        rest = rest.trim_start();
        if rest.is_empty() || rest.starts_with('#') {
            return Ok(tokens);
        }
        if let Some(after) = rest.strip_prefix('\'') {
            let end = after
                .find('\'')
                .ok_or(PolicyErrorKind::UnterminatedQuote { quote: '\'' })?;
            tokens.push(SpToken::Quoted(after[..end].to_owned()));
            rest = &after[end + 1..];
        } else {
            let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
            tokens.push(SpToken::Word(rest[..end].to_owned()));
            rest = &rest[end..];
        }
    }
}

/// The subject patterns of a `cond_subjects` value: `"..."` strings
/// separated by blanks, or (without double quotes) one bare pattern.
fn cond_subject_patterns(value: &str) -> Result<Vec<String>, PolicyErrorKind> {
    if !value.contains('"') {
        let pattern = value.trim();
        if pattern.is_empty() {
            return Err(PolicyErrorKind::Syntax("empty cond_subjects".into()));
        }
        return Ok(vec![pattern.to_owned()]);
    }
    let mut patterns = Vec::new();
    let mut rest = value;
    loop {
        rest = rest.trim_start();
        if rest.is_empty() {
            break;
        }
        let Some(after) = rest.strip_prefix('"') else {
            return Err(PolicyErrorKind::Syntax(format!(
                "expected a double-quoted subject in cond_subjects, found {:?}",
                shorten(rest)
            )));
        };
        let end = after
            .find('"')
            .ok_or(PolicyErrorKind::UnterminatedQuote { quote: '"' })?;
        patterns.push(after[..end].to_owned());
        rest = &after[end + 1..];
    }
    if patterns.is_empty() {
        return Err(PolicyErrorKind::Syntax("empty cond_subjects".into()));
    }
    Ok(patterns)
}

/// Translates a Globus glob into a regular expression: `*` and `?` are the
/// only metacharacters, everything else is escaped.
fn glob_to_regex(glob: &str) -> String {
    let mut regex = String::with_capacity(glob.len() + 8);
    let mut previous_star = false;
    for ch in glob.chars() {
        match ch {
            // `**` means the same as `*`; collapsing keeps hostile
            // patterns small.
            '*' if previous_star => {}
            '*' => regex.push_str(".*"),
            '?' => regex.push('.'),
            other => {
                let mut buf = [0u8; 4];
                regex.push_str(&regex::escape(other.encode_utf8(&mut buf)));
            }
        }
        previous_star = ch == '*';
    }
    regex
}

pub(super) fn parse_signing_policy(
    text: &str,
    file: &str,
) -> Result<Vec<(String, SigningBlock)>, PolicyError> {
    let errors = ErrorAt { file };
    check_file_size(text, &errors)?;
    let mut blocks: Vec<(String, SigningBlock)> = Vec::new();
    // Rights seen in the current block: (positive seen, negative seen).
    let mut rights = (false, false);
    let mut rule_count = 0usize;
    for (index, line) in text.lines().enumerate() {
        let number = index + 1;
        let tokens = signing_tokens(line).map_err(|kind| errors.at(number, kind))?;
        let Some(first) = tokens.first() else {
            continue;
        };
        let SpToken::Word(keyword) = first else {
            return Err(errors.syntax(number, "a statement must start with a keyword"));
        };
        if tokens.len() != 3 {
            return Err(errors.syntax(
                number,
                format!(
                    "expected `{keyword} <authority> <value>`, found {} fields",
                    tokens.len()
                ),
            ));
        }
        let (authority, value) = match (tokens.get(1), tokens.get(2)) {
            (Some(SpToken::Word(authority)), Some(value)) => (authority.as_str(), value),
            _ => return Err(errors.syntax(number, "the authority must be a plain word")),
        };
        let expect_authority = |expected: &str| {
            if authority.eq_ignore_ascii_case(expected) {
                Ok(())
            } else {
                Err(errors.syntax(
                    number,
                    format!("{keyword} needs authority {expected}, found {authority:?}"),
                ))
            }
        };
        match keyword.as_str() {
            "access_id_CA" => {
                expect_authority("X509")?;
                let dn = value.text().trim();
                if dn.is_empty() {
                    return Err(errors.syntax(number, "empty CA DN"));
                }
                if dn.len() > MAX_PATTERN_BYTES {
                    return Err(errors.at(
                        number,
                        PolicyErrorKind::BadPattern {
                            pattern: shorten(dn),
                            reason: format!("longer than {MAX_PATTERN_BYTES} bytes"),
                        },
                    ));
                }
                blocks.push((
                    dn.to_owned(),
                    SigningBlock {
                        may_sign: false,
                        subjects: Vec::new(),
                        origin: Origin {
                            file: file.to_owned(),
                            line: number,
                        },
                    },
                ));
                rights = (false, false);
            }
            "pos_rights" | "neg_rights" => {
                let Some((_, block)) = blocks.last_mut() else {
                    return Err(errors.syntax(number, format!("{keyword} before any access_id_CA")));
                };
                let positive = keyword == "pos_rights";
                if (positive && rights.1) || (!positive && rights.0) {
                    return Err(
                        errors.syntax(number, "pos_rights and neg_rights mixed in one block")
                    );
                }
                if positive {
                    rights.0 = true;
                    // Only `globus CA:sign` is about signing certificates;
                    // other rights are ignored, as Globus does.
                    if authority.eq_ignore_ascii_case("globus") && value.text().trim() == "CA:sign"
                    {
                        block.may_sign = true;
                    }
                } else {
                    rights.1 = true;
                    block.may_sign = false;
                }
            }
            "cond_subjects" => {
                expect_authority("globus")?;
                let Some((_, block)) = blocks.last_mut() else {
                    return Err(errors.syntax(number, "cond_subjects before any access_id_CA"));
                };
                let globs =
                    cond_subject_patterns(value.text()).map_err(|kind| errors.at(number, kind))?;
                for glob in globs {
                    rule_count += 1;
                    if rule_count > MAX_RULES_PER_FILE {
                        return Err(errors.at(
                            number,
                            PolicyErrorKind::TooManyRules {
                                limit: MAX_RULES_PER_FILE,
                            },
                        ));
                    }
                    let origin = Origin {
                        file: file.to_owned(),
                        line: number,
                    };
                    if glob.len() > MAX_PATTERN_BYTES {
                        return Err(errors.at(
                            number,
                            PolicyErrorKind::BadPattern {
                                pattern: shorten(&glob),
                                reason: format!("longer than {MAX_PATTERN_BYTES} bytes"),
                            },
                        ));
                    }
                    let pattern = compile(&glob, &glob_to_regex(&glob), origin, &errors)?;
                    block.subjects.push(pattern);
                }
            }
            other => {
                return Err(errors.at(
                    number,
                    PolicyErrorKind::UnknownKeyword {
                        keyword: shorten(other),
                    },
                ));
            }
        }
    }
    Ok(blocks)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::trust::policy::tests::{KindCheck, permitted, signing, signing_error};

    #[test]
    fn signing_policy_globs() {
        let set = signing(
            "access_id_CA X509 '/O=Grid/CN=CA.1'\n\
             pos_rights globus CA:sign\n\
             cond_subjects globus '\"/O=Grid/*\" \"/O=Grid.org/CN=host?.grid.org\"'\n",
        );
        let ca = "/O=Grid/CN=CA.1";
        assert!(permitted(&set, ca, "/O=Grid/CN=x"));
        assert!(permitted(&set, ca, "/O=Grid/"));
        assert!(!permitted(&set, ca, "/O=Grid"));
        assert!(permitted(&set, ca, "/O=Grid.org/CN=host1.grid.org"));
        assert!(!permitted(&set, ca, "/O=Grid.org/CN=host12.grid.org"));
        // `.` is literal in globs.
        assert!(!permitted(&set, ca, "/O=GridXorg/CN=host1.grid.org"));
        assert!(!permitted(&set, ca, "/O=Grid.org/CN=host1XgridXorg"));
        // Metacharacters of regular expressions are literal too.
        let set = signing(
            "access_id_CA X509 '/O=CA'\npos_rights globus CA:sign\ncond_subjects globus '\"/CN=a+b (c) [d] $e ^f |g \\h {2}*\"'\n",
        );
        assert!(permitted(&set, "/O=CA", "/CN=a+b (c) [d] $e ^f |g \\h {2}"));
        assert!(permitted(
            &set,
            "/O=CA",
            "/CN=a+b (c) [d] $e ^f |g \\h {2}/CN=more"
        ));
        assert!(!permitted(
            &set,
            "/O=CA",
            "/CN=aab (c) [d] $e ^f |g \\h {2}"
        ));
        // A bare pattern without double quotes, with blanks in it.
        let set = signing(
            "access_id_CA X509 '/O=CA'\npos_rights globus CA:sign\ncond_subjects globus '/O=CA/CN=John Doe'\n",
        );
        assert!(permitted(&set, "/O=CA", "/O=CA/CN=John Doe"));
        assert_eq!(glob_to_regex("a***b?"), "a.*b.");
    }

    #[test]
    fn signing_policy_blocks_and_rights() {
        let set = signing(
            "# several CAs in one file\n\
             access_id_CA X509 '/O=A/CN=CA'\n\
             pos_rights globus CA:sign\n\
             cond_subjects globus '\"/O=A/*\"'\n\
             \n\
             access_id_CA X509 '/O=B/CN=CA'\n\
             pos_rights globus something:else\n\
             cond_subjects globus '\"/O=B/*\"'\n\
             access_id_CA X509 '/O=C/CN=CA'\n\
             neg_rights globus CA:sign\n\
             cond_subjects globus '\"/O=C/*\"'\n\
             access_id_CA X509 '/O=D/CN=CA'\n\
             access_id_CA X509 '/O=A/CN=CA'\n\
             pos_rights globus CA:sign\n\
             cond_subjects globus '\"/O=A2/*\"'\n\
             cond_subjects globus '\"/O=A3/*\"'\n",
        );
        assert!(permitted(&set, "/O=A/CN=CA", "/O=A/CN=x"));
        assert!(permitted(&set, "/O=A/CN=CA", "/O=A2/CN=x"));
        assert!(permitted(&set, "/O=A/CN=CA", "/O=A3/CN=x"));
        assert!(!permitted(&set, "/O=A/CN=CA", "/O=B/CN=x"));
        // No CA:sign right, negative rights, or no rights: nothing passes.
        assert!(!permitted(&set, "/O=B/CN=CA", "/O=B/CN=x"));
        assert!(!permitted(&set, "/O=C/CN=CA", "/O=C/CN=x"));
        assert!(!permitted(&set, "/O=D/CN=CA", "/O=D/CN=x"));
        assert_eq!(set.issuers().len(), 4);
    }

    #[test]
    fn malformed_signing_policies_are_typed_errors_with_lines() {
        let head = "access_id_CA X509 '/O=CA'\npos_rights globus CA:sign\n";
        let cases: Vec<(String, usize, KindCheck)> = vec![
            ("access_id_CA X509 '/O=CA\n".into(), 1, |kind| {
                matches!(kind, PolicyErrorKind::UnterminatedQuote { quote: '\'' })
            }),
            (
                format!("{head}cond_subjects globus '\"/O=CA/*'\n"),
                3,
                |kind| matches!(kind, PolicyErrorKind::UnterminatedQuote { quote: '"' }),
            ),
            (
                format!("{head}cond_banned globus '\"/O=CA/*\"'\n"),
                3,
                |kind| matches!(kind, PolicyErrorKind::UnknownKeyword { keyword } if keyword == "cond_banned"),
            ),
            (
                "access_id_HOST X509 'host.example.org'\n".into(),
                1,
                |kind| matches!(kind, PolicyErrorKind::UnknownKeyword { .. }),
            ),
            ("access_id_CA X509\n".into(), 1, |kind| {
                matches!(kind, PolicyErrorKind::Syntax(_))
            }),
            ("access_id_CA X509 '/O=CA' extra\n".into(), 1, |kind| {
                matches!(kind, PolicyErrorKind::Syntax(_))
            }),
            ("access_id_CA globus '/O=CA'\n".into(), 1, |kind| {
                matches!(kind, PolicyErrorKind::Syntax(_))
            }),
            ("access_id_CA X509 ''\n".into(), 1, |kind| {
                matches!(kind, PolicyErrorKind::Syntax(_))
            }),
            ("'access_id_CA' X509 '/O=CA'\n".into(), 1, |kind| {
                matches!(kind, PolicyErrorKind::Syntax(_))
            }),
            ("# header\npos_rights globus CA:sign\n".into(), 2, |kind| {
                matches!(kind, PolicyErrorKind::Syntax(_))
            }),
            ("cond_subjects globus '\"/O=CA/*\"'\n".into(), 1, |kind| {
                matches!(kind, PolicyErrorKind::Syntax(_))
            }),
            (format!("{head}neg_rights globus CA:sign\n"), 3, |kind| {
                matches!(kind, PolicyErrorKind::Syntax(_))
            }),
            (
                format!("{head}cond_subjects X509 '\"/O=CA/*\"'\n"),
                3,
                |kind| matches!(kind, PolicyErrorKind::Syntax(_)),
            ),
            (
                format!("{head}cond_subjects globus '\"/O=CA/*\" junk'\n"),
                3,
                |kind| matches!(kind, PolicyErrorKind::Syntax(_)),
            ),
            (format!("{head}cond_subjects globus ''\n"), 3, |kind| {
                matches!(kind, PolicyErrorKind::Syntax(_))
            }),
        ];
        for (text, line, expected) in cases {
            let error = signing_error(&text);
            assert_eq!(error.line, line, "{text}: {error}");
            assert!(expected(&error.kind), "{text}: {error}");
        }
    }
}
