//! IGTF namespace policies: which subjects a CA may certify.
//!
//! A CA directory may carry, per CA, a Globus `<hash>.signing_policy` (EACL)
//! and/or an EUGridPMA `<hash>.namespaces` file. Both restrict the subject
//! names a CA may issue certificates for; a CA signing outside its namespace
//! is a red flag (compromised or misconfigured CA), so its certificates must
//! not be trusted for that subject.
//!
//! Both formats name the CA and the subjects by OpenSSL one-line DN strings
//! (see [`super::dn`]), and all matching here is plain, case-sensitive
//! string matching on those strings. The original grid tools differ in
//! details (JGlobus matches signing policies case-insensitively); being
//! case-sensitive is the stricter choice, and one-line DNs are compared
//! case-sensitively everywhere else in this crate.
//!
//! # Formats
//!
//! `.signing_policy` (one statement per line, `#` starts a comment):
//!
//! ```text
//! access_id_CA  X509   '/C=DE/O=GermanGrid/CN=GridKa-CA'
//! pos_rights    globus CA:sign
//! cond_subjects globus '"/C=DE/O=GermanGrid/*" "/O=GermanGrid/OU=*"'
//! ```
//!
//! Each `access_id_CA` starts a block for that CA; a block permits a subject
//! when it grants `pos_rights globus CA:sign` and one of its `cond_subjects`
//! patterns matches. Patterns are Globus globs: `*` matches any sequence of
//! characters and `?` any single character (as the Globus
//! `ca-signing-policy.doc` and JGlobus define them); everything else is
//! literal and the whole subject must match. A block with `neg_rights`, or
//! without `CA:sign`, permits nothing.
//!
//! `.namespaces` (EUGridPMA namespaces format 1.0):
//!
//! ```text
//! TO Issuer "/C=DE/O=GermanGrid/CN=GridKa-CA" \
//!   PERMIT Subject "/C=DE/O=GermanGrid/.*"
//! ```
//!
//! One rule per logical line (a trailing `\` continues it), keywords are
//! case-insensitive, `#` outside quotes starts a comment, `SELF` as issuer
//! means the CA the file belongs to. The subject is a regular expression
//! (written for POSIX ERE; the common subset is what IGTF files use)
//! anchored to the whole subject.
//!
//! # Verdicts
//!
//! For an (issuer, subject) pair: if no file names the issuer, there is no
//! policy ([`PolicyVerdict::NoPolicy`]; whether that is acceptable is the
//! caller's decision). If namespaces rules name the issuer, the subject must
//! match at least one `PERMIT` and no `DENY`. If signing-policy blocks name
//! the issuer, one of them must permit the subject. When a CA has both kinds
//! (the usual IGTF distribution ships both), **both must permit**: the two
//! files are meant to express the same namespace, so a disagreement means
//! one of them is more restrictive, and honouring the more restrictive one
//! is the safe reading.
//!
//! # Limits
//!
//! A policy file comes from the trust directory, but a broken or hostile
//! one must not exhaust memory or time: files are limited to
//! [`MAX_FILE_BYTES`], to [`MAX_RULES_PER_FILE`] rules (namespaces rules or
//! signing-policy patterns), each pattern to [`MAX_PATTERN_BYTES`], and each
//! compiled regular expression to [`REGEX_SIZE_LIMIT`] bytes (the regex
//! crate matches in linear time, so no pattern can make matching slow).
//! Adding a file is all-or-nothing: on error nothing from it is kept.
//!
//! # Layout
//!
//! This module holds what both formats share: [`PolicySet`] and its
//! verdicts, the errors, the limits and the anchored pattern compiler. The
//! parsers live in `signing_policy.rs` and `namespaces.rs`, each with its
//! own tests; `tests.rs` holds the tests across both (real IGTF files,
//! limits, fuzzing).

mod namespaces;
mod signing_policy;

use std::collections::BTreeMap;
use std::fmt;

use regex::{Regex, RegexBuilder};

use namespaces::{NamespaceRule, parse_namespaces};
use signing_policy::{SigningBlock, parse_signing_policy};

/// Largest policy file accepted. Real ones are a few hundred bytes.
pub const MAX_FILE_BYTES: usize = 256 * 1024;

/// Most rules (namespaces rules, or signing-policy subject patterns) one
/// file may hold. Real ones have a handful.
pub const MAX_RULES_PER_FILE: usize = 256;

/// Longest single subject pattern or DN accepted.
pub const MAX_PATTERN_BYTES: usize = 2048;

/// Upper bound on the compiled size of one regular expression, and on its
/// lazy-DFA cache. A Unicode `\w` alone costs about 50 KiB, so this leaves
/// room for realistic patterns while bounding a file to
/// `MAX_RULES_PER_FILE * REGEX_SIZE_LIMIT` in the worst case.
pub const REGEX_SIZE_LIMIT: usize = 256 * 1024;

/// Nesting depth allowed in a regular expression.
const REGEX_NEST_LIMIT: u32 = 32;

/// The outcome of checking a subject against the issuer's policies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PolicyVerdict {
    /// No policy file names this issuer.
    NoPolicy,
    /// Every policy that names the issuer permits the subject.
    Permitted,
    /// A policy names the issuer and does not permit the subject.
    Denied {
        /// Which rule or file refused it, for the operator.
        reason: String,
    },
}

/// A policy file that could not be used, with where the problem is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyError {
    /// The `source` name given when adding the file.
    pub file: String,
    /// 1-based line of the problem; 0 when it concerns the whole file.
    pub line: usize,
    /// What is wrong.
    pub kind: PolicyErrorKind,
}

impl fmt::Display for PolicyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}: {}", self.file, self.kind)
        } else {
            write!(f, "{}:{}: {}", self.file, self.line, self.kind)
        }
    }
}

impl std::error::Error for PolicyError {}

/// The ways a policy file can be malformed or too big.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyErrorKind {
    /// The file exceeds [`MAX_FILE_BYTES`].
    #[error("file is {size} bytes, more than the {limit} accepted")]
    FileTooLarge {
        /// Size of the file.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// The file holds more than [`MAX_RULES_PER_FILE`] rules.
    #[error("more than {limit} rules")]
    TooManyRules {
        /// The limit.
        limit: usize,
    },
    /// A quoted string does not end.
    #[error("unterminated {quote} quote")]
    UnterminatedQuote {
        /// The quote character.
        quote: char,
    },
    /// A statement starts with a keyword this format does not have (or
    /// that we do not support, such as `access_id_HOST`).
    #[error("unknown keyword {keyword:?}")]
    UnknownKeyword {
        /// The offending word.
        keyword: String,
    },
    /// The statement does not follow the grammar.
    #[error("syntax error: {0}")]
    Syntax(String),
    /// A pattern is too long, is not a valid regular expression, or
    /// compiles to more than [`REGEX_SIZE_LIMIT`].
    #[error("pattern {pattern:?} rejected: {reason}")]
    BadPattern {
        /// The pattern as written (possibly shortened).
        pattern: String,
        /// Why.
        reason: String,
    },
    /// `TO Issuer SELF` was used but the CA's own DN was not supplied
    /// (see [`PolicySet::add_namespaces_with_self`]).
    #[error("`TO Issuer SELF` needs the DN of the CA this file belongs to")]
    SelfUnknown,
    /// A `#NAMESPACES-VERSION:` other than 1.0.
    #[error("unsupported namespaces version {0:?} (expected 1.0)")]
    UnsupportedVersion(String),
}

/// Where a rule came from, for verdict reasons.
#[derive(Debug, Clone)]
struct Origin {
    file: String,
    line: usize,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.file, self.line)
    }
}

/// A compiled, anchored subject pattern with the text it came from.
#[derive(Debug, Clone)]
struct Pattern {
    text: String,
    regex: Regex,
    origin: Origin,
}

/// All namespace policies of a trust store, keyed by issuer DN.
///
/// Built empty with [`PolicySet::default`], then fed files with
/// [`add_signing_policy`](Self::add_signing_policy) and
/// [`add_namespaces`](Self::add_namespaces); rules for the same issuer from
/// several files accumulate (IGTF directories often hold the same policy
/// under an old and a new hash name, which is harmless).
#[derive(Debug, Clone, Default)]
pub struct PolicySet {
    namespaces: BTreeMap<String, Vec<NamespaceRule>>,
    signing: BTreeMap<String, Vec<SigningBlock>>,
}

impl PolicySet {
    /// True if no policy has been added.
    pub fn is_empty(&self) -> bool {
        self.namespaces.is_empty() && self.signing.is_empty()
    }

    /// The issuer DNs some policy names, sorted, without duplicates.
    pub fn issuers(&self) -> Vec<&str> {
        let mut issuers: Vec<&str> = self
            .namespaces
            .keys()
            .chain(self.signing.keys())
            .map(String::as_str)
            .collect();
        issuers.sort_unstable();
        issuers.dedup();
        issuers
    }

    /// Parses a Globus `.signing_policy` file and adds its blocks.
    /// `source` names the file in errors and verdict reasons.
    pub fn add_signing_policy(&mut self, text: &str, source: &str) -> Result<(), PolicyError> {
        let blocks = parse_signing_policy(text, source)?;
        for (issuer, block) in blocks {
            self.signing.entry(issuer).or_default().push(block);
        }
        Ok(())
    }

    /// Parses an EUGridPMA `.namespaces` file and adds its rules. A file
    /// using `TO Issuer SELF` is refused with
    /// [`PolicyErrorKind::SelfUnknown`]; use
    /// [`add_namespaces_with_self`](Self::add_namespaces_with_self) for it.
    pub fn add_namespaces(&mut self, text: &str, source: &str) -> Result<(), PolicyError> {
        self.add_namespaces_inner(text, source, None)
    }

    /// Like [`add_namespaces`](Self::add_namespaces), with `self_dn` (the
    /// one-line subject of the CA the file belongs to, i.e. the CA whose
    /// hash names the file) standing for `SELF`.
    pub fn add_namespaces_with_self(
        &mut self,
        text: &str,
        source: &str,
        self_dn: &str,
    ) -> Result<(), PolicyError> {
        self.add_namespaces_inner(text, source, Some(self_dn))
    }

    fn add_namespaces_inner(
        &mut self,
        text: &str,
        source: &str,
        self_dn: Option<&str>,
    ) -> Result<(), PolicyError> {
        let rules = parse_namespaces(text, source, self_dn)?;
        for (issuer, rule) in rules {
            self.namespaces.entry(issuer).or_default().push(rule);
        }
        Ok(())
    }

    /// Decides whether `issuer_dn` may certify `subject_dn` (both one-line
    /// DNs, compared case-sensitively). See the module documentation for
    /// the semantics.
    pub fn check(&self, issuer_dn: &str, subject_dn: &str) -> PolicyVerdict {
        let namespaces = self.namespaces.get(issuer_dn);
        let signing = self.signing.get(issuer_dn);
        if namespaces.is_none() && signing.is_none() {
            return PolicyVerdict::NoPolicy;
        }
        if let Some(rules) = namespaces {
            if let Some(deny) = rules
                .iter()
                .find(|rule| !rule.permit && rule.pattern.regex.is_match(subject_dn))
            {
                return PolicyVerdict::Denied {
                    reason: format!(
                        "namespaces DENY rule {:?} ({}) matches the subject",
                        deny.pattern.text, deny.pattern.origin
                    ),
                };
            }
            let permitted = rules
                .iter()
                .any(|rule| rule.permit && rule.pattern.regex.is_match(subject_dn));
            if !permitted {
                return PolicyVerdict::Denied {
                    reason: format!(
                        "no namespaces PERMIT rule for this issuer matches the subject (rules from {})",
                        sources(rules.iter().map(|rule| &rule.pattern.origin))
                    ),
                };
            }
        }
        if let Some(blocks) = signing {
            let permitted = blocks.iter().any(|block| {
                block.may_sign
                    && block
                        .subjects
                        .iter()
                        .any(|pattern| pattern.regex.is_match(subject_dn))
            });
            if !permitted {
                return PolicyVerdict::Denied {
                    reason: format!(
                        "no signing_policy cond_subjects pattern for this issuer matches the subject (blocks from {})",
                        sources(blocks.iter().map(|block| &block.origin))
                    ),
                };
            }
        }
        PolicyVerdict::Permitted
    }
}

/// The distinct files among some origins, for messages.
fn sources<'a>(origins: impl Iterator<Item = &'a Origin>) -> String {
    let mut files: Vec<&str> = origins.map(|origin| origin.file.as_str()).collect();
    files.sort_unstable();
    files.dedup();
    files.join(", ")
}

/// Builds errors for one file.
struct ErrorAt<'a> {
    file: &'a str,
}

impl ErrorAt<'_> {
    fn at(&self, line: usize, kind: PolicyErrorKind) -> PolicyError {
        PolicyError {
            file: self.file.to_owned(),
            line,
            kind,
        }
    }

    fn syntax(&self, line: usize, message: impl Into<String>) -> PolicyError {
        self.at(line, PolicyErrorKind::Syntax(message.into()))
    }
}

fn check_file_size(text: &str, errors: &ErrorAt<'_>) -> Result<(), PolicyError> {
    if text.len() > MAX_FILE_BYTES {
        return Err(errors.at(
            0,
            PolicyErrorKind::FileTooLarge {
                size: text.len(),
                limit: MAX_FILE_BYTES,
            },
        ));
    }
    Ok(())
}

/// Whether `regex` has a `(?` group other than the plain non-capturing
/// `(?:` (escaped characters skipped; a `(?` inside a class counts too, on
/// the safe side).
fn has_inline_flags(regex: &str) -> bool {
    let bytes = regex.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 2,
            b'(' if bytes.get(i + 1) == Some(&b'?') && bytes.get(i + 2) != Some(&b':') => {
                return true;
            }
            _ => i += 1,
        }
    }
    false
}

/// Compiles `regex` (already a regular expression, not anchored) into an
/// anchored matcher with the size limits applied.
///
/// The pattern is first compiled on its own: only a well-formed expression
/// has balanced groups, so wrapping it in `^(?:...)$` cannot be escaped by
/// something like `a)|(b`, which would otherwise leave one alternative
/// unanchored.
fn compile(
    shown: &str,
    regex: &str,
    origin: Origin,
    errors: &ErrorAt<'_>,
) -> Result<Pattern, PolicyError> {
    let bad = |reason: String| {
        errors.at(
            origin.line,
            PolicyErrorKind::BadPattern {
                pattern: shorten(shown),
                reason,
            },
        )
    };
    if regex.len() > MAX_PATTERN_BYTES {
        return Err(bad(format!("longer than {MAX_PATTERN_BYTES} bytes")));
    }
    if has_inline_flags(regex) {
        // `(?i)` and friends would loosen a trust policy (case-insensitive
        // DNs); whether the regex crate accepts them depends on its enabled
        // features, so they are refused here, explicitly.
        return Err(bad("inline flags such as (?i) are not allowed".into()));
    }
    let build = |source: &str| {
        RegexBuilder::new(source)
            .size_limit(REGEX_SIZE_LIMIT)
            .dfa_size_limit(REGEX_SIZE_LIMIT)
            .nest_limit(REGEX_NEST_LIMIT)
            .build()
    };
    build(regex).map_err(|err| bad(first_line(&err.to_string())))?;
    let anchored =
        build(&format!("^(?:{regex})$")).map_err(|err| bad(first_line(&err.to_string())))?;
    Ok(Pattern {
        text: shown.to_owned(),
        regex: anchored,
        origin,
    })
}

/// The regex crate's messages span several lines (with a caret diagram);
/// keep the informative last line.
fn first_line(message: &str) -> String {
    message
        .lines()
        .rev()
        .find(|line| line.starts_with("error:"))
        .or_else(|| message.lines().find(|line| !line.trim().is_empty()))
        .unwrap_or(message)
        .trim()
        .to_owned()
}

/// Keeps error messages small even for a huge hostile pattern.
fn shorten(text: &str) -> String {
    const SHOWN: usize = 120;
    if text.len() <= SHOWN {
        return text.to_owned();
    }
    let mut end = SHOWN;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &text[..end])
}

#[cfg(test)]
mod tests;
