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

use std::collections::BTreeMap;
use std::fmt;

use regex::{Regex, RegexBuilder};

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

/// One `TO Issuer ... PERMIT|DENY Subject "..."` rule.
#[derive(Debug, Clone)]
struct NamespaceRule {
    permit: bool,
    pattern: Pattern,
}

/// One `access_id_CA` block of a signing policy.
#[derive(Debug, Clone)]
struct SigningBlock {
    /// `pos_rights globus CA:sign` present (and no `neg_rights`).
    may_sign: bool,
    subjects: Vec<Pattern>,
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

// ---------------------------------------------------------------------------
// .signing_policy

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

fn parse_signing_policy(
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

// ---------------------------------------------------------------------------
// .namespaces

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

fn parse_namespaces(
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

    const CA_DIR: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/testdata/real-lists/ca"
    );

    const GRIDKA: &str = "/C=DE/O=GermanGrid/CN=GridKa-CA";

    /// Whether an error kind is the expected one.
    type KindCheck = fn(&PolicyErrorKind) -> bool;
    const SEEGRID: &str = "/DC=ORG/DC=SEE-GRID/CN=SEE-GRID CA 2013";

    fn real(file: &str) -> String {
        std::fs::read_to_string(format!("{CA_DIR}/{file}")).unwrap()
    }

    fn real_set(files: &[&str]) -> PolicySet {
        let mut set = PolicySet::default();
        for file in files {
            let text = real(file);
            if file.ends_with(".signing_policy") {
                set.add_signing_policy(&text, file).unwrap();
            } else {
                set.add_namespaces(&text, file).unwrap();
            }
        }
        set
    }

    fn namespaces(text: &str) -> PolicySet {
        let mut set = PolicySet::default();
        set.add_namespaces(text, "test.namespaces").unwrap();
        set
    }

    fn signing(text: &str) -> PolicySet {
        let mut set = PolicySet::default();
        set.add_signing_policy(text, "test.signing_policy").unwrap();
        set
    }

    fn namespaces_error(text: &str) -> PolicyError {
        PolicySet::default()
            .add_namespaces(text, "bad.namespaces")
            .unwrap_err()
    }

    fn signing_error(text: &str) -> PolicyError {
        PolicySet::default()
            .add_signing_policy(text, "bad.signing_policy")
            .unwrap_err()
    }

    fn permitted(set: &PolicySet, issuer: &str, subject: &str) -> bool {
        match set.check(issuer, subject) {
            PolicyVerdict::Permitted => true,
            PolicyVerdict::Denied { .. } => false,
            PolicyVerdict::NoPolicy => panic!("no policy for {issuer}"),
        }
    }

    #[test]
    fn real_igtf_policies() {
        let all = [
            "dd4b34ea.signing_policy",
            "dd4b34ea.namespaces",
            "772dbd1c.signing_policy",
            "772dbd1c.namespaces",
        ];
        // Each file alone, and all together, must agree on these.
        let sets = [
            real_set(&all),
            real_set(&all[..1]),
            real_set(&all[1..2]),
            real_set(&all[2..3]),
            real_set(&all[3..]),
        ];
        for (index, set) in sets.iter().enumerate() {
            let gridka = index <= 2;
            let seegrid = index == 0 || index >= 3;
            if gridka {
                assert!(permitted(
                    set,
                    GRIDKA,
                    "/C=DE/O=GermanGrid/OU=DESY/CN=Owen Synge"
                ));
                assert!(permitted(
                    set,
                    GRIDKA,
                    "/O=GermanGrid/OU=KIT/CN=host.kit.edu"
                ));
                assert!(!permitted(set, GRIDKA, "/C=FR/O=Evil/CN=x"));
                // Case matters, and the whole subject must match.
                assert!(!permitted(set, GRIDKA, "/C=de/O=GermanGrid/CN=x"));
                assert!(!permitted(set, GRIDKA, "/C=FR/C=DE/O=GermanGrid/CN=x"));
                // A CA outside its namespace.
                assert!(!permitted(
                    set,
                    GRIDKA,
                    "/DC=EU/DC=EGI/C=NL/O=Hosts/O=EGI.eu/CN=appdb.egi.eu"
                ));
            } else {
                assert_eq!(
                    set.check(GRIDKA, "/C=DE/O=GermanGrid/CN=x"),
                    PolicyVerdict::NoPolicy
                );
            }
            if seegrid {
                assert!(permitted(
                    set,
                    SEEGRID,
                    "/DC=EU/DC=EGI/C=NL/O=Hosts/O=EGI.eu/CN=appdb.egi.eu"
                ));
                assert!(permitted(
                    set,
                    SEEGRID,
                    "/DC=ORG/DC=SEE-GRID/O=People/CN=Someone"
                ));
                assert!(!permitted(set, SEEGRID, "/C=FR/O=Evil/CN=x"));
                assert!(!permitted(set, SEEGRID, "/DC=ORG/DC=SEE-GRIDX/CN=x"));
            } else {
                assert_eq!(
                    set.check(SEEGRID, "/DC=EU/DC=EGI/CN=x"),
                    PolicyVerdict::NoPolicy
                );
            }
            assert_eq!(
                set.check("/C=FR/O=Evil/CN=Evil CA", "/C=FR/O=Evil/CN=x"),
                PolicyVerdict::NoPolicy
            );
            // The issuer is an exact string, not a pattern.
            assert_eq!(
                set.check(
                    "/C=DE/O=GermanGrid/CN=GridKa-CA ",
                    "/C=DE/O=GermanGrid/CN=x"
                ),
                PolicyVerdict::NoPolicy
            );
        }
        assert_eq!(sets[0].issuers(), vec![GRIDKA, SEEGRID]);
        let PolicyVerdict::Denied { reason } = sets[0].check(GRIDKA, "/C=FR/O=Evil/CN=x") else {
            panic!("expected a denial");
        };
        assert!(reason.contains("dd4b34ea.namespaces"), "{reason}");
    }

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
    fn both_kinds_must_permit() {
        let mut set = namespaces("TO Issuer \"/O=CA\" PERMIT Subject \"/O=A/.*\"");
        set.add_signing_policy(
            "access_id_CA X509 '/O=CA'\npos_rights globus CA:sign\ncond_subjects globus '\"/O=A/*\" \"/O=B/*\"'",
            "ca.signing_policy",
        )
        .unwrap();
        assert!(permitted(&set, "/O=CA", "/O=A/CN=x"));
        let PolicyVerdict::Denied { reason } = set.check("/O=CA", "/O=B/CN=x") else {
            panic!("the namespaces file does not permit /O=B");
        };
        assert!(reason.contains("namespaces"), "{reason}");
        let mut set = namespaces("TO Issuer \"/O=CA\" PERMIT Subject \"/O=(A|B)/.*\"");
        set.add_signing_policy(
            "access_id_CA X509 '/O=CA'\npos_rights globus CA:sign\ncond_subjects globus '\"/O=A/*\"'",
            "ca.signing_policy",
        )
        .unwrap();
        let PolicyVerdict::Denied { reason } = set.check("/O=CA", "/O=B/CN=x") else {
            panic!("the signing policy does not permit /O=B");
        };
        assert!(reason.contains("ca.signing_policy"), "{reason}");
    }

    #[test]
    fn files_accumulate_and_empty_files_are_fine() {
        let mut set = PolicySet::default();
        set.add_namespaces("# empty\n", "empty.namespaces").unwrap();
        set.add_signing_policy("", "empty.signing_policy").unwrap();
        assert!(set.is_empty());
        // The same policy under an old and a new hash name.
        set.add_namespaces(&real("dd4b34ea.namespaces"), "dd4b34ea.namespaces")
            .unwrap();
        set.add_namespaces(&real("dd4b34ea.namespaces"), "1b2c3d4e.namespaces")
            .unwrap();
        assert!(permitted(&set, GRIDKA, "/C=DE/O=GermanGrid/CN=x"));
        assert!(!permitted(&set, GRIDKA, "/C=DE/O=Other/CN=x"));
        assert_eq!(set.issuers(), vec![GRIDKA]);
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

    #[test]
    fn hostile_files_are_bounded() {
        // A regular expression that compiles to far more than the limit.
        let error = namespaces_error(r#"TO Issuer "/O=CA" PERMIT Subject "\w{1000}\w{1000}""#);
        let PolicyErrorKind::BadPattern { reason, .. } = &error.kind else {
            panic!("{error}");
        };
        assert!(
            reason.contains("size limit") || reason.contains("exceeds"),
            "{reason}"
        );
        let error =
            namespaces_error(r#"TO Issuer "/O=CA" PERMIT Subject "((((a{100}){100}){100}){100})""#);
        assert!(
            matches!(error.kind, PolicyErrorKind::BadPattern { .. }),
            "{error}"
        );
        // Deep nesting.
        let deep = format!("{}a{}", "(".repeat(200), ")".repeat(200));
        let error = namespaces_error(&format!("TO Issuer \"/O=CA\" PERMIT Subject \"{deep}\""));
        assert!(
            matches!(error.kind, PolicyErrorKind::BadPattern { .. }),
            "{error}"
        );
        // An over-long pattern, shortened in the error.
        let long = "a".repeat(MAX_PATTERN_BYTES + 1);
        let error = namespaces_error(&format!("TO Issuer \"/O=CA\" PERMIT Subject \"{long}\""));
        let PolicyErrorKind::BadPattern { pattern, .. } = &error.kind else {
            panic!("{error}");
        };
        assert!(pattern.len() < 200);
        let error = signing_error(&format!(
            "access_id_CA X509 '/O=CA'\ncond_subjects globus '\"{long}\"'\n"
        ));
        assert!(
            matches!(error.kind, PolicyErrorKind::BadPattern { .. }),
            "{error}"
        );
        let error = signing_error(&format!("access_id_CA X509 '{long}'\n"));
        assert!(
            matches!(error.kind, PolicyErrorKind::BadPattern { .. }),
            "{error}"
        );
        // Too many rules.
        let rule = "TO Issuer \"/O=CA\" PERMIT Subject \"/O=CA/.*\"\n";
        let error = namespaces_error(&rule.repeat(MAX_RULES_PER_FILE + 1));
        assert_eq!(
            error.kind,
            PolicyErrorKind::TooManyRules {
                limit: MAX_RULES_PER_FILE
            }
        );
        assert_eq!(error.line, MAX_RULES_PER_FILE + 1);
        namespaces(&rule.repeat(MAX_RULES_PER_FILE));
        let subjects = "\"/O=CA/*\" ".repeat(MAX_RULES_PER_FILE + 1);
        let error = signing_error(&format!(
            "access_id_CA X509 '/O=CA'\ncond_subjects globus '{subjects}'\n"
        ));
        assert!(
            matches!(error.kind, PolicyErrorKind::TooManyRules { .. }),
            "{error}"
        );
        // Too big a file, refused before parsing.
        let huge = "#".repeat(MAX_FILE_BYTES + 1);
        let error = namespaces_error(&huge);
        assert_eq!(error.line, 0);
        assert!(matches!(error.kind, PolicyErrorKind::FileTooLarge { .. }));
        assert!(
            error.to_string().starts_with("bad.namespaces: file is"),
            "{error}"
        );
        let error = signing_error(&huge);
        assert!(matches!(error.kind, PolicyErrorKind::FileTooLarge { .. }));
        // Many stars collapse, so a glob cannot be inflated that way.
        let stars = format!("/O=CA/{}", "*".repeat(1000));
        let set = signing(&format!(
            "access_id_CA X509 '/O=CA'\npos_rights globus CA:sign\ncond_subjects globus '\"{stars}\"'\n"
        ));
        assert!(permitted(&set, "/O=CA", "/O=CA/CN=x"));
    }

    #[test]
    fn a_bad_file_adds_nothing() {
        let mut set = PolicySet::default();
        let error = set
            .add_namespaces(
                "TO Issuer \"/O=CA\" PERMIT Subject \"/O=CA/.*\"\nTO Issuer \"/O=CA\" PERMIT Subject \"(\"\n",
                "half.namespaces",
            )
            .unwrap_err();
        assert_eq!(error.line, 2);
        assert!(set.is_empty());
        let error = set
            .add_signing_policy(
                "access_id_CA X509 '/O=CA'\npos_rights globus CA:sign\ncond_subjects globus '\"/O=CA/*\"'\nbogus x y\n",
                "half.signing_policy",
            )
            .unwrap_err();
        assert_eq!(error.line, 4);
        assert!(set.is_empty());
        assert_eq!(set.check("/O=CA", "/O=CA/CN=x"), PolicyVerdict::NoPolicy);
    }

    #[test]
    fn arbitrary_text_never_panics() {
        // Deterministic fuzzing: splice characters that matter to the
        // parsers into the real files.
        let seeds = [
            real("dd4b34ea.signing_policy"),
            real("dd4b34ea.namespaces"),
            real("772dbd1c.signing_policy"),
            real("772dbd1c.namespaces"),
        ];
        let alphabet = [
            '\'', '"', '\\', '#', '\n', ' ', '*', '?', '(', ')', '[', 'ü', '{', '|',
        ];
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for seed in &seeds {
            let chars: Vec<char> = seed.chars().collect();
            for _ in 0..150 {
                let mut mutated = chars.clone();
                for _ in 0..(next() % 4 + 1) {
                    let at = (next() as usize) % (mutated.len() + 1);
                    let ch = alphabet[(next() as usize) % alphabet.len()];
                    match next() % 3 {
                        0 => mutated.insert(at, ch),
                        1 if at < mutated.len() => mutated[at] = ch,
                        _ if at < mutated.len() => {
                            mutated.remove(at);
                        }
                        _ => {}
                    }
                }
                let text: String = mutated.into_iter().collect();
                let mut set = PolicySet::default();
                let _ = set.add_signing_policy(&text, "fuzz");
                let _ = set.add_namespaces(&text, "fuzz");
                let _ = set.add_namespaces_with_self(&text, "fuzz", "/O=SELF");
                let _ = set.check(GRIDKA, "/C=DE/O=GermanGrid/CN=x");
            }
        }
    }
}
