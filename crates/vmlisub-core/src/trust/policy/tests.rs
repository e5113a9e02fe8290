//! Tests across both formats: real IGTF files, both kinds for one CA,
//! limits and fuzzing. Shared helpers for the per-format tests too.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;

const CA_DIR: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../../shared/testdata/real-lists/ca"
);

const GRIDKA: &str = "/C=DE/O=GermanGrid/CN=GridKa-CA";

/// Whether an error kind is the expected one.
pub(super) type KindCheck = fn(&PolicyErrorKind) -> bool;
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

pub(super) fn namespaces(text: &str) -> PolicySet {
    let mut set = PolicySet::default();
    set.add_namespaces(text, "test.namespaces").unwrap();
    set
}

pub(super) fn signing(text: &str) -> PolicySet {
    let mut set = PolicySet::default();
    set.add_signing_policy(text, "test.signing_policy").unwrap();
    set
}

pub(super) fn namespaces_error(text: &str) -> PolicyError {
    PolicySet::default()
        .add_namespaces(text, "bad.namespaces")
        .unwrap_err()
}

pub(super) fn signing_error(text: &str) -> PolicyError {
    PolicySet::default()
        .add_signing_policy(text, "bad.signing_policy")
        .unwrap_err()
}

pub(super) fn permitted(set: &PolicySet, issuer: &str, subject: &str) -> bool {
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
