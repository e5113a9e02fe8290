//! `crds/vmlisub.yaml` must be exactly what `vmlisub crds` prints: the
//! CRDs are generated from the Rust types and never edited by hand.
//! Regenerate with `cargo run -p vmlisub -- crds > crds/vmlisub.yaml`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

#[test]
fn committed_crds_match_the_code() {
    let output = Command::new(env!("CARGO_BIN_EXE_vmlisub"))
        .arg("crds")
        .output()
        .expect("run vmlisub crds");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let generated = String::from_utf8(output.stdout).unwrap();
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../crds/vmlisub.yaml");
    let committed = std::fs::read_to_string(path).expect("crds/vmlisub.yaml");
    assert!(
        generated == committed,
        "crds/vmlisub.yaml is stale: run `cargo run -p vmlisub -- crds > crds/vmlisub.yaml`"
    );
}

#[test]
fn crds_declare_the_three_kinds_with_status_and_category() {
    let committed =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../crds/vmlisub.yaml"))
            .unwrap();
    for kind in ["Endorser", "ImageListSubscription", "ImageSubscription"] {
        assert!(committed.contains(&format!("kind: {kind}\n")), "{kind}");
    }
    assert_eq!(
        committed.matches("status: {}").count(),
        3,
        "status subresource on each"
    );
    assert_eq!(
        committed.matches("- vmli\n").count(),
        3,
        "vmli category on each"
    );
}

/// Every `conditions` array has metav1.Condition's schema: a map list keyed
/// by `type`, and each item with its required fields, formats, patterns
/// and limits (as `kubectl explain` and kstatus readers expect).
#[test]
fn conditions_have_the_metav1_condition_schema() {
    let committed =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../crds/vmlisub.yaml"))
            .unwrap();
    let mut found = 0;
    for document in committed.split("\n---\n") {
        let crd: serde_json::Value = serde_saphyr::from_str(document).unwrap();
        let kind = crd["spec"]["names"]["kind"].as_str().unwrap().to_string();
        let status = &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["status"]
            ["properties"];
        let conditions = &status["conditions"];
        assert_eq!(conditions["x-kubernetes-list-type"], "map", "{kind}");
        assert_eq!(
            conditions["x-kubernetes-list-map-keys"],
            serde_json::json!(["type"]),
            "{kind}"
        );
        let item = &conditions["items"];
        let required: Vec<&str> = item["required"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        for field in ["lastTransitionTime", "reason", "status", "type"] {
            assert!(required.contains(&field), "{kind}: {field} not required");
        }
        let props = &item["properties"];
        assert_eq!(props["lastTransitionTime"]["format"], "date-time", "{kind}");
        assert_eq!(props["type"]["maxLength"], 316, "{kind}");
        assert_eq!(props["reason"]["maxLength"], 1024, "{kind}");
        assert_eq!(props["reason"]["minLength"], 1, "{kind}");
        assert_eq!(
            props["reason"]["pattern"], "^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$",
            "{kind}"
        );
        assert_eq!(props["message"]["maxLength"], 32768, "{kind}");
        assert_eq!(
            props["status"]["enum"],
            serde_json::json!(["True", "False", "Unknown"]),
            "{kind}"
        );
        found += 1;
    }
    assert_eq!(found, 3);
}

/// `kubectl explain` has something to say about every kind and field: the
/// walk fails on any property of the generated schemas without a
/// description (and on a kind described by kube's placeholder).
#[test]
fn every_kind_and_field_is_documented() {
    fn walk(path: &str, schema: &serde_json::Value, missing: &mut Vec<String>) {
        if let Some(props) = schema["properties"].as_object() {
            for (name, prop) in props {
                let here = format!("{path}.{name}");
                let described = prop["description"]
                    .as_str()
                    .is_some_and(|d| !d.trim().is_empty());
                if !described {
                    missing.push(here.clone());
                }
                walk(&here, prop, missing);
            }
        }
        if schema["items"].is_object() {
            walk(&format!("{path}[]"), &schema["items"], missing);
        }
    }
    let committed =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../crds/vmlisub.yaml"))
            .unwrap();
    let mut missing = Vec::new();
    for document in committed.split("\n---\n") {
        let crd: serde_json::Value = serde_saphyr::from_str(document).unwrap();
        let kind = crd["spec"]["names"]["kind"].as_str().unwrap().to_string();
        let root = &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"];
        let description = root["description"].as_str().unwrap_or_default();
        if description.is_empty() || description.contains("Auto-generated derived type") {
            missing.push(format!("{kind} (kind): {description:?}"));
        }
        for part in ["spec", "status"] {
            let schema = &root["properties"][part];
            if schema["description"].as_str().is_none_or(str::is_empty) {
                missing.push(format!("{kind}.{part}"));
            }
            walk(&format!("{kind}.{part}"), schema, &mut missing);
        }
    }
    assert!(missing.is_empty(), "undocumented: {missing:#?}");
}
