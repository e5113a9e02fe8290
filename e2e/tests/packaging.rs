//! Delivery: the Dockerfile, the Helm chart (charts/vmlisub), the kustomize
//! bases (config/) and the recipes (docs/recipes).
//!
//! The first tests need nothing but the files. The others need the pinned
//! helm (built by e2e/build-control-plane.sh), kubectl and a cluster, and so
//! run under `make e2e` (they skip without a cluster, like every e2e test).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;

use anyhow::{Context as _, Result, bail, ensure};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Service, ServiceAccount};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};
use kube::api::{Api, DynamicObject, GroupVersionKind};
use kube::discovery::ApiResource;
use serde_json::{Value, json};
use vmlisub_e2e::{
    TIMEOUT, can_i, cluster_or_skip, eventually, helm, install_chart_rbac, install_chart_rbac_with,
    kubectl, merge_patch_status, parse_yaml_documents, read_yaml_documents, render_chart,
    repo_path, status_code, uninstall_chart_rbac, wait_deleted,
};

// ------------------------------------------------------------------ helpers

fn read(rel: &str) -> String {
    std::fs::read_to_string(repo_path(rel)).unwrap_or_else(|e| panic!("reading {rel}: {e}"))
}

fn docs_of_kind<'a>(docs: &'a [Value], kind: &str) -> Vec<&'a Value> {
    docs.iter().filter(|d| d["kind"] == kind).collect()
}

fn one_of_kind<'a>(docs: &'a [Value], kind: &str) -> &'a Value {
    let found = docs_of_kind(docs, kind);
    assert_eq!(found.len(), 1, "expected one {kind}, found {}", found.len());
    found[0]
}

fn named<'a>(docs: &'a [Value], kind: &str, name: &str) -> &'a Value {
    docs.iter()
        .find(|d| d["kind"] == kind && d["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("no {kind} {name}"))
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// RBAC rules flattened to (apiGroup, resource, verb) triples: equal sets
/// mean equal permissions, however the rules are grouped.
fn rule_triples(rules: &Value) -> BTreeSet<(String, String, String)> {
    let mut out = BTreeSet::new();
    for rule in rules.as_array().into_iter().flatten() {
        assert!(
            rule.get("resourceNames").is_none() && rule.get("nonResourceURLs").is_none(),
            "unexpected rule shape {rule}"
        );
        for group in strings(&rule["apiGroups"]) {
            for resource in strings(&rule["resources"]) {
                for verb in strings(&rule["verbs"]) {
                    assert!(
                        verb != "*" && resource != "*" && group != "*",
                        "wildcard in {rule}"
                    );
                    out.insert((group.clone(), resource.clone(), verb));
                }
            }
        }
    }
    out
}

fn triples(list: &[(&str, &[&str], &[&str])]) -> BTreeSet<(String, String, String)> {
    let mut out = BTreeSet::new();
    for (group, resources, verbs) in list {
        for r in *resources {
            for v in *verbs {
                out.insert(((*group).to_owned(), (*r).to_owned(), (*v).to_owned()));
            }
        }
    }
    out
}

/// The operator's API contract (what it does with the API), written out
/// independently of both the chart and config/rbac, so that they cannot
/// drift together.
fn contract_manager_rules() -> BTreeSet<(String, String, String)> {
    triples(&[
        (
            "vmli.hepix.org",
            &["endorsers"],
            &["get", "list", "watch", "patch", "create"],
        ),
        (
            "vmli.hepix.org",
            &["imagelistsubscriptions"],
            &["get", "list", "watch", "patch"],
        ),
        (
            "vmli.hepix.org",
            &["imagesubscriptions"],
            &["get", "list", "watch", "patch", "create", "delete"],
        ),
        (
            "vmli.hepix.org",
            &[
                "endorsers/status",
                "imagelistsubscriptions/status",
                "imagesubscriptions/status",
            ],
            &["get", "patch"],
        ),
        (
            "vmli.hepix.org",
            &[
                "imagelistsubscriptions/finalizers",
                "imagesubscriptions/finalizers",
            ],
            &["update"],
        ),
        ("", &["secrets", "configmaps"], &["get"]),
        ("events.k8s.io", &["events"], &["create", "patch"]),
        // The KubeVirt export.
        (
            "cdi.kubevirt.io",
            &["datavolumes"],
            &["list", "watch", "create", "delete"],
        ),
        (
            "cdi.kubevirt.io",
            &["datasources"],
            &["get", "list", "watch", "create", "patch", "delete"],
        ),
        (
            "batch",
            &["jobs"],
            &["create", "get", "list", "watch", "delete"],
        ),
    ])
}

/// The artifact server's token check (`--artifact-auth token`).
fn contract_artifact_auth_rules() -> BTreeSet<(String, String, String)> {
    triples(&[
        ("authentication.k8s.io", &["tokenreviews"], &["create"]),
        (
            "authorization.k8s.io",
            &["subjectaccessreviews"],
            &["create"],
        ),
    ])
}

fn contract_lease_rules() -> BTreeSet<(String, String, String)> {
    triples(&[(
        "coordination.k8s.io",
        &["leases"],
        &["get", "create", "update"],
    )])
}

fn render(args: &[&str]) -> Vec<Value> {
    let yaml = render_chart(args).unwrap();
    parse_yaml_documents(&yaml).unwrap()
}

fn kustomize(dir: &str) -> Vec<Value> {
    let path = repo_path(dir);
    let out = kubectl(&["kustomize", path.to_str().unwrap()], None).unwrap();
    parse_yaml_documents(&out.stdout).unwrap()
}

fn deployment_container(docs: &[Value]) -> &Value {
    let deploy = one_of_kind(docs, "Deployment");
    let containers = deploy["spec"]["template"]["spec"]["containers"]
        .as_array()
        .unwrap();
    assert_eq!(containers.len(), 1);
    &containers[0]
}

fn args_of(container: &Value) -> Vec<String> {
    strings(&container["args"])
}

/// `kubectl apply --dry-run=server` of a list of objects; returns stderr
/// (warnings).
fn dry_run_apply(objects: &[Value], namespace: &str) -> Result<String> {
    let list = json!({"apiVersion": "v1", "kind": "List", "items": objects});
    let out = kubectl(
        &["apply", "--dry-run=server", "-n", namespace, "-f", "-"],
        Some(&list.to_string()),
    )?;
    Ok(out.stderr)
}

// ------------------------------------------------------- files only (no tools)

#[test]
fn crd_copies_are_byte_identical_to_the_generated_crds() {
    let generated = read("crds/vmlisub.yaml");
    assert!(generated.contains("kind: CustomResourceDefinition"));
    for copy in [
        "charts/vmlisub/crds/vmlisub.yaml",
        "config/crd/bases/vmlisub.yaml",
    ] {
        assert!(
            read(copy) == generated,
            "{copy} differs from crds/vmlisub.yaml: run `make crds` (it refreshes the copies) \
             or cp crds/vmlisub.yaml {copy}"
        );
    }
}

#[test]
fn dockerfile_is_multi_stage_locked_nonroot_and_labelled() {
    let text = read("Dockerfile");
    let instrs = vmlisub_e2e::dockerfile_instructions(&text);
    let froms: Vec<&(usize, String, String)> = instrs.iter().filter(|i| i.1 == "FROM").collect();
    assert!(froms.len() >= 2, "not multi-stage: {froms:?}");
    let last = froms.last().unwrap().0;
    let build_stage_runs: Vec<&String> = instrs
        .iter()
        .filter(|i| i.0 < last && i.1 == "RUN")
        .map(|i| &i.2)
        .collect();
    // The same locked build CI runs (Makefile `build`).
    let build_cmd = "cargo build --release --locked -p vmlisub";
    assert!(
        build_stage_runs.iter().any(|r| r.contains(build_cmd)),
        "no `{build_cmd}` in the build stage: {build_stage_runs:?}"
    );
    assert!(
        read("Makefile").contains(&build_cmd.replace("cargo", "$(CARGO)")),
        "the Makefile's build target no longer runs `{build_cmd}`: keep the Dockerfile in step"
    );
    let runtime: Vec<&(usize, String, String)> = instrs.iter().filter(|i| i.0 == last).collect();
    let base = &runtime[0].2;
    assert!(
        base.starts_with("gcr.io/distroless/") && base.ends_with(":nonroot"),
        "runtime base is not distroless nonroot: {base}"
    );
    assert!(
        !runtime.iter().any(|i| i.1 == "RUN" || i.1 == "SHELL"),
        "the runtime stage runs commands (it has no shell)"
    );
    // Only the binary is added, from the build stage.
    let copies: Vec<&String> = runtime
        .iter()
        .filter(|i| i.1 == "COPY" || i.1 == "ADD")
        .map(|i| &i.2)
        .collect();
    assert_eq!(
        copies.len(),
        1,
        "runtime stage copies more than the binary: {copies:?}"
    );
    assert!(copies[0].starts_with("--from=build") && copies[0].ends_with("/usr/local/bin/vmlisub"));
    // Numeric, non-root user (and group) as the last USER.
    let user = runtime
        .iter()
        .rev()
        .find(|i| i.1 == "USER")
        .expect("no USER in runtime stage");
    let mut ids = user.2.split(':');
    let uid: u32 = ids.next().unwrap().parse().expect("USER is not numeric");
    assert!(uid != 0, "runs as root");
    if let Some(gid) = ids.next() {
        assert!(
            gid.parse::<u32>().is_ok_and(|g| g != 0),
            "group not numeric non-root: {gid}"
        );
    }
    let exec_form = |name: &str| -> Vec<String> {
        let i = runtime
            .iter()
            .rev()
            .find(|i| i.1 == name)
            .unwrap_or_else(|| panic!("no {name}"));
        serde_json::from_str(&i.2)
            .unwrap_or_else(|_| panic!("{name} is not in exec (JSON) form: {}", i.2))
    };
    assert_eq!(exec_form("ENTRYPOINT"), ["/usr/local/bin/vmlisub"]);
    assert_eq!(exec_form("CMD"), ["operator"]);
    let labels: String = runtime
        .iter()
        .filter(|i| i.1 == "LABEL")
        .map(|i| i.2.as_str())
        .collect::<Vec<_>>()
        .join(" ");
    for key in [
        "org.opencontainers.image.title",
        "org.opencontainers.image.description",
        "org.opencontainers.image.licenses",
        "org.opencontainers.image.version",
        "org.opencontainers.image.revision",
        "org.opencontainers.image.source",
    ] {
        assert!(
            labels.contains(&format!("{key}=")),
            "missing OCI label {key}"
        );
    }
    // The build context: everything excluded but what the build copies.
    let ignore = read(".dockerignore");
    assert_eq!(
        ignore
            .lines()
            .find(|l| !l.trim().is_empty() && !l.starts_with('#')),
        Some("*"),
        ".dockerignore must start by excluding everything"
    );
}

#[test]
fn dockerfile_parser_sees_a_bad_dockerfile() {
    // The property test above must be able to fail: a root, shell-form,
    // single-stage Dockerfile parses into what it would reject.
    let bad = "FROM rust:1.95\nRUN cargo build --release\nUSER root\nCMD vmlisub operator\n";
    let instrs = vmlisub_e2e::dockerfile_instructions(bad);
    assert_eq!(instrs.iter().filter(|i| i.1 == "FROM").count(), 1);
    assert_eq!(instrs.last().unwrap().2, "vmlisub operator");
    assert!(serde_json::from_str::<Vec<String>>(&instrs.last().unwrap().2).is_err());
    let joined = vmlisub_e2e::dockerfile_instructions("FROM a AS b\nRUN x \\\n  && y\n");
    assert_eq!(joined[1], (0, "RUN".to_owned(), "x  && y".to_owned()));
}

#[test]
fn kubevirt_recipe_documents_have_the_cdi_and_kubevirt_shape() {
    // The shapes as documents (e2e/tests/kubevirt.rs also submits the
    // DataVolume parts to CDI's CRDs; no KubeVirt CRD is available here).
    let dv_docs = read_yaml_documents(repo_path("docs/recipes/kubevirt-datavolume.yaml")).unwrap();
    let dv = one_of_kind(&dv_docs, "DataVolume");
    assert_eq!(dv["apiVersion"], "cdi.kubevirt.io/v1beta1");
    let http = &dv["spec"]["source"]["http"];
    let keys: BTreeSet<&str> = http
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    // The fields of CDI's DataVolumeSourceHTTP (checksum: CDI v1.65+).
    let known: BTreeSet<&str> = [
        "url",
        "secretRef",
        "certConfigMap",
        "extraHeaders",
        "secretExtraHeaders",
        "checksum",
    ]
    .into();
    assert!(
        keys.is_subset(&known),
        "unknown http source fields {keys:?}"
    );
    let url = http["url"].as_str().unwrap();
    let ns = dv["metadata"]["namespace"].as_str().unwrap();
    assert!(
        url.starts_with(&format!(
            "http://vmlisub.vmlisub-system.svc:8080/images/{ns}/"
        )),
        "url {url} is not an artifact URL of the config/default install for namespace {ns}"
    );
    let checksum = http["checksum"].as_str().unwrap();
    let hex = checksum
        .strip_prefix("sha512:")
        .expect("checksum is not sha512:<hex>");
    assert!(
        hex.len() == 128
            && hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    );
    assert!(dv["spec"]["storage"]["resources"]["requests"]["storage"].is_string());

    // The VM clones from the DataSource the export keeps up to date.
    let sub_docs =
        read_yaml_documents(repo_path("docs/recipes/kubevirt-imagesubscription.yaml")).unwrap();
    let sub = one_of_kind(&sub_docs, "ImageSubscription");
    let data_source = &sub["spec"]["export"]["kubevirt"]["dataSource"];
    let vm_docs = read_yaml_documents(repo_path("docs/recipes/kubevirt-vm.yaml")).unwrap();
    let vm = one_of_kind(&vm_docs, "VirtualMachine");
    assert_eq!(vm["apiVersion"], "kubevirt.io/v1");
    assert_eq!(vm["metadata"]["namespace"], dv["metadata"]["namespace"]);
    assert_eq!(vm["metadata"]["namespace"], sub["metadata"]["namespace"]);
    let template = &vm["spec"]["dataVolumeTemplates"][0];
    assert_eq!(
        template["spec"]["sourceRef"],
        json!({"kind": "DataSource", "name": data_source})
    );
    let spec = &vm["spec"]["template"]["spec"];
    let volumes = spec["volumes"].as_array().unwrap();
    let disks = spec["domain"]["devices"]["disks"].as_array().unwrap();
    let dv_volume = volumes
        .iter()
        .find(|v| v["dataVolume"]["name"] == template["metadata"]["name"])
        .expect("the VM does not use its dataVolumeTemplates entry");
    assert!(
        disks.iter().any(|d| d["name"] == dv_volume["name"]),
        "no disk for volume {}",
        dv_volume["name"]
    );
    for v in volumes {
        assert!(
            disks.iter().any(|d| d["name"] == v["name"]),
            "volume {} has no disk",
            v["name"]
        );
    }
}

#[test]
fn recipe_scripts_parse() {
    for script in [
        "docs/recipes/kubevirt-datavolume.sh",
        "docs/recipes/grid-ca-configmap.sh",
    ] {
        let status = std::process::Command::new("bash")
            .arg("-n")
            .arg(repo_path(script))
            .status()
            .unwrap();
        assert!(status.success(), "{script} does not parse");
    }
}

// ------------------------------------------------------ helm / kubectl, no API

#[tokio::test]
async fn chart_lints_in_every_mode_and_refuses_bad_values() -> Result<()> {
    let _cluster = cluster_or_skip!(); // helm comes with the e2e tool set
    let chart = repo_path("charts/vmlisub");
    let chart = chart.to_str().unwrap();
    let modes: &[&[&str]] = &[
        &[],
        &["--set", "watchNamespace=team-a"],
        &["--set", "leaderElection.enabled=false"],
        &[
            "--set",
            "replicaCount=2",
            "--set",
            "persistence.accessModes={ReadWriteMany}",
        ],
        &[
            "--set",
            "trust.source=configMap",
            "--set",
            "trust.configMap.name=grid-ca",
        ],
        &[
            "--set",
            "trust.source=volume",
            "--set",
            "trust.volume.persistentVolumeClaim.claimName=grid-ca",
        ],
        &[
            "--set",
            "trust.source=secret",
            "--set",
            "trust.secret.name=grid-ca",
        ],
        &[
            "--set",
            "trust.source=projected",
            "--set",
            "trust.projected.sources[0].configMap.name=grid-ca-0",
            "--set",
            "trust.projected.sources[1].configMap.name=grid-ca-1",
        ],
        &[
            "--set",
            "trust.source=hostPath",
            "--set",
            "crlRefresh.enabled=false",
        ],
        &[
            "--set",
            "metrics.serviceMonitor.enabled=true",
            "--set",
            "metrics.prometheusRule.enabled=true",
            "--set",
            "networkPolicy.egress.restrict=true",
            "--set",
            "persistence.enabled=false",
        ],
        &["--set", "artifactAuth.mode=none"],
        &[
            "--set",
            "artifactAuth.audience=vmlisub",
            "--set",
            "serverLimits.headerReadTimeout=30s",
        ],
    ];
    for mode in modes {
        let mut args = vec!["lint", "--strict", chart];
        args.extend_from_slice(mode);
        let out = helm(&args).with_context(|| format!("helm lint {mode:?}"))?;
        ensure!(
            out.stdout.contains("0 chart(s) failed"),
            "helm lint {mode:?}: {}",
            out.stdout
        );
    }
    // Values the chart must refuse (schema or template checks).
    let bad: &[(&[&str], &str)] = &[
        (&["--set", "bogus=1"], "additional properties"),
        (&["--set", "replicaCount=2"], "ReadWriteMany"),
        (
            &[
                "--set",
                "replicaCount=2",
                "--set",
                "leaderElection.enabled=false",
                "--set",
                "persistence.accessModes={ReadWriteMany}",
            ],
            "leaderElection",
        ),
        (&["--set", "trust.source=secret"], "trust.secret.name"),
        (
            &["--set", "trust.source=projected"],
            "trust.projected.sources",
        ),
        (&["--set", "trust.source=nfs"], "trust"),
        (&["--set", "crlRefresh.interval=6"], "interval"),
        // The operator's parser knows h, m, s (Go style), not days.
        (&["--set", "crlRefresh.interval=1d"], "interval"),
        (&["--set", "logFormat=xml"], "logFormat"),
        (&["--set", "image.repository="], "repository"),
        (&["--set", "artifactAuth.mode=basic"], "artifactAuth"),
        (&["--set", "serverLimits.idleTimeout=60"], "idleTimeout"),
        (&["--set", "serverLimits.idleTimeout=0s"], "idleTimeout"),
        (
            &["--set", "serverLimits.headerReadTimeout=0m0s"],
            "headerReadTimeout",
        ),
        (
            &["--set", "serverLimits.maxConnections=0"],
            "maxConnections",
        ),
    ];
    for (values, why) in bad {
        let mut args = vec!["rel", "--namespace", "ops"];
        args.extend_from_slice(values);
        match render_chart(&args) {
            Ok(_) => bail!("the chart accepted {values:?}"),
            Err(e) => ensure!(
                format!("{e:#}").contains(why),
                "{values:?} refused for another reason: {e:#}"
            ),
        }
    }
    Ok(())
}

#[tokio::test]
async fn chart_rbac_equals_kustomize_rbac_and_the_contract() -> Result<()> {
    let _cluster = cluster_or_skip!();
    let kustomized = kustomize("config/rbac");
    let k_cluster_role = named(&kustomized, "ClusterRole", "vmlisub-manager");
    let k_rules = rule_triples(&k_cluster_role["rules"]);
    assert_eq!(
        k_rules,
        contract_manager_rules(),
        "config/rbac differs from the operator's contract"
    );
    let k_lease = one_of_kind(&kustomized, "Role");
    assert_eq!(rule_triples(&k_lease["rules"]), contract_lease_rules());
    assert_eq!(k_lease["metadata"]["namespace"], "vmlisub-system");
    let k_auth = named(&kustomized, "ClusterRole", "vmlisub-artifact-auth");
    assert_eq!(
        rule_triples(&k_auth["rules"]),
        contract_artifact_auth_rules(),
        "config/rbac artifact-auth differs from the contract"
    );
    let k_auth_binding = named(&kustomized, "ClusterRoleBinding", "vmlisub-artifact-auth");
    assert_eq!(k_auth_binding["roleRef"]["name"], "vmlisub-artifact-auth");
    assert_eq!(
        k_auth_binding["subjects"],
        json!([{"kind": "ServiceAccount", "name": "vmlisub", "namespace": "vmlisub-system"}])
    );

    // Cluster mode.
    let docs = render(&["rel", "--namespace", "ops"]);
    let cr = named(&docs, "ClusterRole", "rel-vmlisub-manager");
    // The tenant roles: the same rules and aggregation labels as config/rbac.
    for role in ["view", "edit"] {
        let chart = named(&docs, "ClusterRole", &format!("rel-vmlisub-{role}"));
        let kustomized = named(&kustomized, "ClusterRole", &format!("vmlisub-{role}"));
        assert_eq!(
            rule_triples(&chart["rules"]),
            rule_triples(&kustomized["rules"])
        );
        let aggregation = |r: &Value| -> BTreeSet<String> {
            r["metadata"]["labels"]
                .as_object()
                .into_iter()
                .flatten()
                .filter(|(k, _)| k.starts_with("rbac.authorization.k8s.io/aggregate-to-"))
                .map(|(k, v)| format!("{k}={v}"))
                .collect()
        };
        assert_eq!(aggregation(chart), aggregation(kustomized), "{role}");
        assert!(!aggregation(chart).is_empty(), "{role}");
    }
    let tenant_rules = rule_triples(&named(&docs, "ClusterRole", "rel-vmlisub-edit")["rules"]);
    assert!(
        tenant_rules
            .iter()
            .all(|(group, _, _)| group == "vmli.hepix.org"),
        "tenant roles grant only the three kinds: {tenant_rules:?}"
    );
    assert_eq!(
        rule_triples(&cr["rules"]),
        k_rules,
        "chart ClusterRole != config/rbac ClusterRole"
    );
    let crb = named(&docs, "ClusterRoleBinding", "rel-vmlisub-manager");
    assert_eq!(crb["roleRef"]["name"], cr["metadata"]["name"]);
    let sa = one_of_kind(&docs, "ServiceAccount");
    let subjects =
        json!([{"kind": "ServiceAccount", "name": sa["metadata"]["name"], "namespace": "ops"}]);
    assert_eq!(crb["subjects"], subjects);
    let auth = named(&docs, "ClusterRole", "rel-vmlisub-artifact-auth");
    assert_eq!(
        rule_triples(&auth["rules"]),
        rule_triples(&k_auth["rules"]),
        "chart artifact-auth ClusterRole != config/rbac"
    );
    let auth_binding = named(&docs, "ClusterRoleBinding", "rel-vmlisub-artifact-auth");
    assert_eq!(auth_binding["roleRef"]["name"], "rel-vmlisub-artifact-auth");
    assert_eq!(auth_binding["subjects"], subjects);
    let lease = one_of_kind(&docs, "Role");
    assert_eq!(lease["metadata"]["namespace"], "ops");
    assert_eq!(
        rule_triples(&lease["rules"]),
        rule_triples(&k_lease["rules"])
    );
    let lease_binding = one_of_kind(&docs, "RoleBinding");
    assert_eq!(lease_binding["roleRef"]["name"], lease["metadata"]["name"]);

    // Watch-namespace mode: no cluster-wide grant on any object; only the
    // reviews of the token check are cluster-scoped.
    let docs = render(&[
        "rel",
        "--namespace",
        "ops",
        "--set",
        "watchNamespace=team-a",
    ]);
    // Cluster-scoped: the (unbound) tenant roles, and the reviews of the
    // token check, the only binding.
    assert!(docs_of_kind(&docs, "ClusterRole").iter().all(|r| {
        [
            "rel-vmlisub-view",
            "rel-vmlisub-edit",
            "rel-vmlisub-artifact-auth",
        ]
        .contains(&r["metadata"]["name"].as_str().unwrap_or_default())
    }));
    let bindings = docs_of_kind(&docs, "ClusterRoleBinding");
    assert_eq!(bindings.len(), 1);
    assert_eq!(bindings[0]["roleRef"]["name"], "rel-vmlisub-artifact-auth");
    assert_eq!(
        rule_triples(&named(&docs, "ClusterRole", "rel-vmlisub-artifact-auth")["rules"]),
        contract_artifact_auth_rules()
    );
    let roles = docs_of_kind(&docs, "Role");
    assert_eq!(roles.len(), 2);
    let manager = roles
        .iter()
        .find(|r| r["metadata"]["namespace"] == "team-a")
        .expect("no Role in team-a");
    assert_eq!(
        rule_triples(&manager["rules"]),
        k_rules,
        "chart Role != config/rbac ClusterRole"
    );
    let lease = roles
        .iter()
        .find(|r| r["metadata"]["namespace"] == "ops")
        .expect("no lease Role in ops");
    assert_eq!(rule_triples(&lease["rules"]), contract_lease_rules());
    for binding in docs_of_kind(&docs, "RoleBinding") {
        assert_eq!(binding["subjects"][0]["namespace"], "ops");
    }
    let args = args_of(deployment_container(&docs));
    assert!(
        args.contains(&"--watch-namespace=team-a".to_owned()),
        "{args:?}"
    );

    // Without token access: no review permission, no cluster-wide grant.
    let docs = render(&[
        "rel",
        "--namespace",
        "ops",
        "--set",
        "watchNamespace=team-a",
        "--set",
        "artifactAuth.mode=none",
    ]);
    assert!(docs_of_kind(&docs, "ClusterRoleBinding").is_empty());
    assert!(
        docs_of_kind(&docs, "ClusterRole")
            .iter()
            .all(|r| r["metadata"]["name"] != "rel-vmlisub-artifact-auth")
    );
    assert!(args_of(deployment_container(&docs)).contains(&"--artifact-auth=none".to_owned()));

    // Without leader election: no Lease permission.
    let docs = render(&[
        "rel",
        "--namespace",
        "ops",
        "--set",
        "leaderElection.enabled=false",
    ]);
    assert!(
        docs_of_kind(&docs, "Role").is_empty() && docs_of_kind(&docs, "RoleBinding").is_empty()
    );
    assert!(!args_of(deployment_container(&docs)).contains(&"--leader-elect".to_owned()));
    Ok(())
}

#[tokio::test]
async fn chart_deployment_is_restricted_and_wired_to_the_operator_flags() -> Result<()> {
    let _cluster = cluster_or_skip!();
    let docs = render(&["rel", "--namespace", "ops"]);
    let deploy = one_of_kind(&docs, "Deployment");
    let pod = &deploy["spec"]["template"]["spec"];
    let c = deployment_container(&docs);
    // Restricted Pod Security Standard fields.
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    assert_eq!(
        pod["securityContext"]["seccompProfile"]["type"],
        "RuntimeDefault"
    );
    let sc = &c["securityContext"];
    assert_eq!(sc["runAsNonRoot"], true);
    assert_eq!(sc["runAsUser"], 65532);
    assert_eq!(sc["readOnlyRootFilesystem"], true);
    assert_eq!(sc["allowPrivilegeEscalation"], false);
    assert_eq!(sc["capabilities"]["drop"], json!(["ALL"]));
    assert_eq!(sc["seccompProfile"]["type"], "RuntimeDefault");
    assert!(
        c["resources"]["requests"]["memory"].is_string()
            && c["resources"]["limits"]["memory"].is_string()
    );
    assert_eq!(c["livenessProbe"]["httpGet"]["path"], "/healthz");
    assert_eq!(c["readinessProbe"]["httpGet"]["path"], "/readyz");
    assert_eq!(
        c["ports"],
        json!([{"name": "http", "containerPort": 8080, "protocol": "TCP"},
               {"name": "metrics", "containerPort": 9090, "protocol": "TCP"}])
    );
    // Flags of `vmlisub operator`.
    let args = args_of(c);
    assert_eq!(args[0], "operator");
    for want in [
        "--cache-dir=/var/cache/vmimages",
        "--ca-dir=/etc/grid-security/certificates",
        "--listen=0.0.0.0:8080",
        "--metrics-listen=0.0.0.0:9090",
        "--artifact-base-url=http://rel-vmlisub.ops.svc:8080",
        "--artifact-auth=token",
        "--header-read-timeout=10s",
        "--idle-timeout=60s",
        "--max-connections=128",
        "--leader-elect",
        "--leader-election-namespace=$(POD_NAMESPACE)",
        "--leader-election-name=vmlisub-leader",
        "--max-concurrent-downloads=4",
        "--crl-refresh-interval=6h",
    ] {
        assert!(
            args.contains(&want.to_owned()),
            "missing {want} in {args:?}"
        );
    }
    assert!(!args.iter().any(|a| a.starts_with("--watch-namespace")));
    assert!(
        !args
            .iter()
            .any(|a| a.starts_with("--artifact-token-audience"))
    );
    // The CRL directory is the operator's default, on the cache volume.
    assert!(!args.iter().any(|a| a.starts_with("--crl-dir")));
    assert!(!args.contains(&"--no-crl-refresh".to_owned()));
    // Hook Jobs are off unless asked for (see hooks.enabled).
    assert!(!args.contains(&"--hook-jobs".to_owned()));
    let env = c["env"].as_array().unwrap();
    let log_format = env.iter().find(|e| e["name"] == "VMLISUB_LOG_FORMAT");
    assert_eq!(log_format.unwrap()["value"], "json");
    for (name, path) in [
        ("POD_NAME", "metadata.name"),
        ("POD_NAMESPACE", "metadata.namespace"),
    ] {
        let var = env
            .iter()
            .find(|e| e["name"] == name)
            .unwrap_or_else(|| panic!("no {name}"));
        assert_eq!(var["valueFrom"]["fieldRef"]["fieldPath"], path);
    }
    // Volumes: cache PVC (kept on uninstall), read-only ConfigMap trust
    // (no hostPath anywhere by default), /tmp.
    let mounts = c["volumeMounts"].as_array().unwrap();
    let trust_mount = mounts.iter().find(|m| m["name"] == "trust").unwrap();
    assert_eq!(trust_mount["readOnly"], true);
    let volumes = pod["volumes"].as_array().unwrap();
    assert!(
        volumes.iter().all(|v| v.get("hostPath").is_none()),
        "hostPath volume by default: {volumes:?}"
    );
    let trust = volumes.iter().find(|v| v["name"] == "trust").unwrap();
    assert_eq!(
        trust,
        &json!({"name": "trust", "configMap": {"name": "rel-vmlisub-grid-ca", "optional": false}})
    );
    let cache = volumes.iter().find(|v| v["name"] == "cache").unwrap();
    let pvc = one_of_kind(&docs, "PersistentVolumeClaim");
    assert_eq!(
        cache["persistentVolumeClaim"]["claimName"],
        pvc["metadata"]["name"]
    );
    assert_eq!(
        pvc["metadata"]["annotations"]["helm.sh/resource-policy"],
        "keep"
    );
    assert_eq!(
        deploy["spec"]["strategy"]["type"], "Recreate",
        "RWO cache needs Recreate"
    );
    let svc = one_of_kind(&docs, "Service");
    assert_eq!(svc["metadata"]["name"], "rel-vmlisub");
    assert_eq!(
        svc["spec"]["ports"],
        json!([{"name": "http", "port": 8080, "targetPort": "http", "protocol": "TCP"},
               {"name": "metrics", "port": 9090, "targetPort": "metrics", "protocol": "TCP"}])
    );
    let np = one_of_kind(&docs, "NetworkPolicy");
    assert_eq!(
        np["spec"]["policyTypes"],
        json!(["Ingress"]),
        "egress must be open by default"
    );
    // Artifacts and metrics: separate rules, each open to any source by
    // default.
    assert_eq!(
        np["spec"]["ingress"],
        json!([{"ports": [{"port": "http", "protocol": "TCP"}]},
               {"ports": [{"port": "metrics", "protocol": "TCP"}]}])
    );
    let docs_restricted = render(&[
        "rel",
        "--namespace",
        "ops",
        "--set",
        "networkPolicy.ingress.from[0].namespaceSelector.matchLabels.vms=yes",
        "--set",
        "networkPolicy.ingress.metricsFrom[0].namespaceSelector.matchLabels.monitoring=yes",
        "--set",
        "artifactAuth.audience=vmlisub",
        "--set",
        "serverLimits.maxConnections=16",
        "--set",
        "service.metricsPort=9191",
    ]);
    let np = one_of_kind(&docs_restricted, "NetworkPolicy");
    assert_eq!(
        np["spec"]["ingress"][0]["from"],
        json!([{"namespaceSelector": {"matchLabels": {"vms": "yes"}}}])
    );
    assert_eq!(np["spec"]["ingress"][1]["ports"][0]["port"], "metrics");
    assert_eq!(
        np["spec"]["ingress"][1]["from"],
        json!([{"namespaceSelector": {"matchLabels": {"monitoring": "yes"}}}])
    );
    let args = args_of(deployment_container(&docs_restricted));
    for want in ["--artifact-token-audience=vmlisub", "--max-connections=16"] {
        assert!(
            args.contains(&want.to_owned()),
            "missing {want} in {args:?}"
        );
    }
    assert_eq!(
        one_of_kind(&docs_restricted, "Service")["spec"]["ports"][1]["port"],
        9191
    );
    assert!(docs_of_kind(&docs, "PodDisruptionBudget").is_empty());

    // Other trust sources and an explicit artifact URL.
    let docs = render(&[
        "rel",
        "--namespace",
        "ops",
        "--set",
        "trust.source=configMap",
        "--set",
        "trust.configMap.name=grid-ca",
        "--set",
        "artifactBaseUrl=https://images.example.org/",
    ]);
    let c = deployment_container(&docs);
    assert!(args_of(c).contains(&"--artifact-base-url=https://images.example.org".to_owned()));
    let pod = &one_of_kind(&docs, "Deployment")["spec"]["template"]["spec"];
    let trust = pod["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == "trust")
        .unwrap();
    assert_eq!(trust["configMap"]["name"], "grid-ca");

    // The other trust sources, each the only trust volume.
    let trust_volume = |set: &[&str]| -> Value {
        let mut args = vec!["rel", "--namespace", "ops"];
        for s in set {
            args.extend(["--set", s]);
        }
        let docs = render(&args);
        let pod = &one_of_kind(&docs, "Deployment")["spec"]["template"]["spec"];
        let trust: Vec<&Value> = pod["volumes"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|v| v["name"] == "trust")
            .collect();
        assert_eq!(trust.len(), 1, "{set:?}");
        trust[0].clone()
    };
    assert_eq!(
        trust_volume(&["trust.source=secret", "trust.secret.name=grid-ca"]),
        json!({"name": "trust", "secret": {"secretName": "grid-ca", "optional": false}})
    );
    assert_eq!(
        trust_volume(&[
            "trust.source=projected",
            "trust.projected.sources[0].configMap.name=grid-ca-0",
            "trust.projected.sources[1].secret.name=grid-ca-1",
        ]),
        json!({"name": "trust", "projected": {"sources": [
            {"configMap": {"name": "grid-ca-0"}}, {"secret": {"name": "grid-ca-1"}}]}})
    );
    assert_eq!(
        trust_volume(&["trust.configMap.optional=true"]),
        json!({"name": "trust", "configMap": {"name": "rel-vmlisub-grid-ca", "optional": true}})
    );
    assert_eq!(
        trust_volume(&[
            "trust.source=volume",
            "trust.volume.persistentVolumeClaim.claimName=grid-ca"
        ]),
        json!({"name": "trust", "persistentVolumeClaim": {"claimName": "grid-ca"}})
    );
    assert_eq!(
        trust_volume(&["trust.source=hostPath"]),
        json!({"name": "trust", "hostPath":
            {"path": "/etc/grid-security/certificates", "type": "Directory"}})
    );

    // CRL refresh: the interval, or off.
    let docs = render(&[
        "rel",
        "--namespace",
        "ops",
        "--set",
        "crlRefresh.interval=30m",
    ]);
    let args = args_of(deployment_container(&docs));
    assert!(args.contains(&"--crl-refresh-interval=30m".to_owned()));
    let docs = render(&[
        "rel",
        "--namespace",
        "ops",
        "--set",
        "crlRefresh.enabled=false",
    ]);
    let args = args_of(deployment_container(&docs));
    assert!(args.contains(&"--no-crl-refresh".to_owned()), "{args:?}");
    assert!(!args.iter().any(|a| a.starts_with("--crl-refresh-interval")));
    let docs = render(&["rel", "--namespace", "ops", "--set", "hooks.enabled=true"]);
    let args = args_of(deployment_container(&docs));
    assert!(args.contains(&"--hook-jobs".to_owned()), "{args:?}");

    // Restricted egress still reaches lists, images and CRLs on 80/443.
    let docs = render(&[
        "rel",
        "--namespace",
        "ops",
        "--set",
        "networkPolicy.egress.restrict=true",
    ]);
    let np = one_of_kind(&docs, "NetworkPolicy");
    assert_eq!(np["spec"]["policyTypes"], json!(["Ingress", "Egress"]));
    let egress = np["spec"]["egress"].as_array().unwrap();
    let web = egress
        .iter()
        .find(|r| r["ports"][0]["port"] == 80)
        .expect("no egress rule for http/https");
    assert_eq!(
        web["ports"],
        json!([{"port": 80, "protocol": "TCP"}, {"port": 443, "protocol": "TCP"}])
    );
    assert_eq!(
        web["to"],
        json!([{"ipBlock": {"cidr": "0.0.0.0/0"}}, {"ipBlock": {"cidr": "::/0"}}])
    );

    // Two replicas: PDB, shared volume, rolling update.
    let docs = render(&[
        "rel",
        "--namespace",
        "ops",
        "--set",
        "replicaCount=2",
        "--set",
        "persistence.accessModes={ReadWriteMany}",
    ]);
    let pdb = one_of_kind(&docs, "PodDisruptionBudget");
    assert_eq!(pdb["spec"]["minAvailable"], 1);
    assert_eq!(
        pdb["spec"]["selector"]["matchLabels"],
        one_of_kind(&docs, "Deployment")["spec"]["selector"]["matchLabels"]
    );
    assert!(
        one_of_kind(&docs, "Deployment")["spec"]
            .get("strategy")
            .is_none()
    );

    // Alerts: every rule names one of the operator's metrics.
    let docs = render(&[
        "rel",
        "--namespace",
        "ops",
        "--set",
        "metrics.prometheusRule.enabled=true",
        "--set",
        "metrics.serviceMonitor.enabled=true",
    ]);
    let rule = one_of_kind(&docs, "PrometheusRule");
    let rules = rule["spec"]["groups"][0]["rules"].as_array().unwrap();
    let alerts: BTreeSet<&str> = rules.iter().map(|r| r["alert"].as_str().unwrap()).collect();
    for want in [
        "VmlisubImageListExpiringSoon",
        "VmlisubImageListStale",
        "VmlisubCRLStale",
        "VmlisubCRLExpiringSoon",
        "VmlisubCRLRefreshFailing",
        "VmlisubSignerCertificateExpiringSoon",
        "VmlisubDownloadsFailing",
        "VmlisubVerificationFailures",
    ] {
        assert!(alerts.contains(want), "missing alert {want}");
    }
    let by_name = |n: &str| {
        rules.iter().find(|r| r["alert"] == n).unwrap()["expr"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    assert!(
        by_name("VmlisubImageListStale").contains("vmlisub_list_last_success_timestamp_seconds")
            && by_name("VmlisubImageListStale").ends_with("> 86400")
    );
    assert!(
        by_name("VmlisubImageListExpiringSoon").contains("vmlisub_list_expiry_timestamp_seconds")
            && by_name("VmlisubImageListExpiringSoon").ends_with("< 86400")
    );
    assert!(
        by_name("VmlisubSignerCertificateExpiringSoon")
            .contains("vmlisub_list_signer_not_after_timestamp_seconds")
            && by_name("VmlisubSignerCertificateExpiringSoon").ends_with("< 1209600")
    );
    assert!(
        by_name("VmlisubCRLStale").contains("vmlisub_crl_next_update_timestamp_seconds) < time()")
    );
    // 1.25 x the 6h refresh interval: every attempt falls in one window.
    assert_eq!(
        by_name("VmlisubCRLRefreshFailing"),
        "sum by (issuer, reason) (increase(vmlisub_crl_refresh_failures_total[27000s])) > 0"
    );
    let failing = rules
        .iter()
        .find(|r| r["alert"] == "VmlisubCRLRefreshFailing")
        .unwrap();
    assert_eq!(failing["for"], "27000s");
    let soon = by_name("VmlisubCRLExpiringSoon");
    assert!(
        soon.contains("vmlisub_crl_next_update_timestamp_seconds) - time()) < 86400")
            && soon.contains("increase(vmlisub_crl_refresh_failures_total[27000s])"),
        "{soon}"
    );
    for rule in rules {
        let text = rule["annotations"]["description"].as_str().unwrap();
        if rule["alert"].as_str().unwrap().starts_with("VmlisubCRL") {
            assert!(!text.contains("fetch-crl"), "{text}");
        }
    }
    assert!(by_name("VmlisubDownloadsFailing").contains("vmlisub_download_failures_total"));
    assert!(by_name("VmlisubVerificationFailures").contains("vmlisub_verification_failures_total"));
    let sm = one_of_kind(&docs, "ServiceMonitor");
    assert_eq!(sm["spec"]["endpoints"][0]["port"], "metrics");
    assert_eq!(sm["spec"]["endpoints"][0]["honorLabels"], true);

    // Without the built-in refresh: no refresh-failure alert; the CRL
    // alerts point at whatever keeps the directory current.
    let docs = render(&[
        "rel",
        "--namespace",
        "ops",
        "--set",
        "metrics.prometheusRule.enabled=true",
        "--set",
        "crlRefresh.enabled=false",
    ]);
    let rule = one_of_kind(&docs, "PrometheusRule");
    let rules = rule["spec"]["groups"][0]["rules"].as_array().unwrap();
    assert!(
        !rules
            .iter()
            .any(|r| r["alert"] == "VmlisubCRLRefreshFailing")
    );
    let soon = rules
        .iter()
        .find(|r| r["alert"] == "VmlisubCRLExpiringSoon")
        .unwrap();
    assert!(!soon["expr"].as_str().unwrap().contains("refresh_failures"));
    assert!(
        soon["annotations"]["description"]
            .as_str()
            .unwrap()
            .contains("fetch-crl")
    );
    Ok(())
}

// ------------------------------------------------------------ real API server

/// The PodSecurity warning when the hostPath trust volume is the only
/// violation of the restricted standard.
const HOSTPATH_ONLY: &str = "would violate PodSecurity \"restricted:latest\": \
    restricted volume types (volume \"trust\" uses restricted volume type \"hostPath\")";

/// Server-side dry run of the rendered chart, in each mode, in a namespace
/// that warns on the restricted Pod Security Standard.
#[tokio::test]
async fn chart_and_kustomize_manifests_pass_server_side_dry_run() -> Result<()> {
    let cluster = cluster_or_skip!();
    cluster.apply_crds(repo_path("crds/vmlisub.yaml")).await?;
    let ns = cluster.create_namespace("dryrun").await?;
    let restricted = json!({"metadata": {"labels": {
        "pod-security.kubernetes.io/warn": "restricted",
        "pod-security.kubernetes.io/warn-version": "latest"}}});
    vmlisub_e2e::merge_patch(
        &Api::<k8s_openapi::api::core::v1::Namespace>::all(cluster.client()),
        &ns,
        &restricted,
    )
    .await?;

    let modes: &[&[&str]] = &[
        &[],
        &["--set", &format!("watchNamespace={ns}")],
        &[
            "--set",
            "replicaCount=3",
            "--set",
            "persistence.accessModes={ReadWriteMany}",
            "--set",
            "networkPolicy.egress.restrict=true",
        ],
        &[
            "--set",
            "trust.configMap.name=grid-ca",
            "--set",
            "trust.configMap.optional=true",
            "--set",
            "persistence.enabled=false",
            "--set",
            "leaderElection.enabled=false",
        ],
        &[
            "--set",
            "trust.source=secret",
            "--set",
            "trust.secret.name=grid-ca",
        ],
        &[
            "--set",
            "trust.source=projected",
            "--set",
            "trust.projected.sources[0].configMap.name=grid-ca-0",
            "--set",
            "trust.projected.sources[1].secret.name=grid-ca-1",
            "--set",
            "crlRefresh.enabled=false",
        ],
        &[
            "--set",
            "trust.source=volume",
            "--set",
            "trust.volume.persistentVolumeClaim.claimName=grid-ca",
        ],
        // An image volume holding the IGTF distribution.
        &[
            "--set",
            "trust.source=volume",
            "--set",
            "trust.volume.image.reference=registry.example.org/igtf-ca:1.140",
        ],
        // The one explicit choice that leaves restricted.
        &["--set", "trust.source=hostPath"],
    ];
    for mode in modes {
        let mut args = vec!["dry", "--namespace", ns.as_str()];
        args.extend_from_slice(mode);
        let docs = render(&args);
        let warnings =
            dry_run_apply(&docs, &ns).with_context(|| format!("dry run of chart {mode:?}"))?;
        let hostpath = mode.contains(&"trust.source=hostPath");
        let psa: Vec<&str> = warnings
            .lines()
            .filter(|l| l.contains("PodSecurity"))
            .collect();
        if hostpath {
            // The hostPath trust volume is the only violation.
            ensure!(
                psa.len() == 1 && psa[0].ends_with(HOSTPATH_ONLY),
                "{mode:?}: {warnings}"
            );
        } else {
            ensure!(psa.is_empty(), "{mode:?} is not restricted: {warnings}");
        }
    }

    // config/default (restricted) and config/hostpath (exactly the hostPath
    // violation), moved into the test namespace (the Namespace object itself
    // is not applied: dry-run objects cannot live in it).
    for (base, want_hostpath) in [("config/default", false), ("config/hostpath", true)] {
        let mut objects = Vec::new();
        for mut doc in kustomize(base) {
            if doc["kind"] == "Namespace" {
                assert_eq!(doc["metadata"]["name"], "vmlisub-system");
                let labels = &doc["metadata"]["labels"];
                assert_eq!(labels["pod-security.kubernetes.io/warn"], "restricted");
                assert_eq!(
                    labels["pod-security.kubernetes.io/enforce"],
                    if want_hostpath {
                        "privileged"
                    } else {
                        "restricted"
                    }
                );
                continue;
            }
            if doc["metadata"]["namespace"] == "vmlisub-system" {
                doc["metadata"]["namespace"] = json!(ns);
            }
            if let Some(subjects) = doc["subjects"].as_array_mut() {
                for s in subjects {
                    s["namespace"] = json!(ns);
                }
            }
            // Dry-run names must not clash with a real install on an external cluster.
            if doc["kind"] == "ClusterRole"
                || doc["kind"] == "ClusterRoleBinding"
                || doc["kind"] == "CustomResourceDefinition"
            {
                continue;
            }
            objects.push(doc);
        }
        ensure!(
            objects.len() == 6,
            "{base}: expected 6 namespaced objects, got {}",
            objects.len()
        );
        let warnings =
            dry_run_apply(&objects, &ns).with_context(|| format!("dry run of {base}"))?;
        let psa: Vec<&str> = warnings
            .lines()
            .filter(|l| l.contains("PodSecurity"))
            .collect();
        if want_hostpath {
            ensure!(
                psa.len() == 1 && psa[0].ends_with(HOSTPATH_ONLY),
                "{base}: {warnings}"
            );
        } else {
            ensure!(psa.is_empty(), "{base} is not restricted: {warnings}");
        }
    }
    // The cluster-scoped part of config/default, dry-run on the server as it is.
    let cluster_scoped: Vec<Value> = kustomize("config/default")
        .into_iter()
        .filter(|d| {
            d["kind"] == "ClusterRole"
                || d["kind"] == "ClusterRoleBinding"
                || d["kind"] == "CustomResourceDefinition"
        })
        .collect();
    ensure!(
        cluster_scoped.len() == 9,
        "expected 3 CRDs, the manager and artifact-auth ClusterRoles with their bindings, 2 tenant ClusterRoles"
    );
    dry_run_apply(&cluster_scoped, &ns).context("dry run of config/default (cluster-scoped)")?;

    // config/samples, after the CRDs are installed.
    let samples = kustomize("config/samples");
    let kinds: BTreeSet<&str> = samples
        .iter()
        .map(|d| d["kind"].as_str().unwrap())
        .collect();
    ensure!(
        kinds
            == [
                "ConfigMap",
                "Endorser",
                "ImageListSubscription",
                "ImageSubscription"
            ]
            .into(),
        "{kinds:?}"
    );
    let policies: BTreeSet<&str> = docs_of_kind(&samples, "ImageListSubscription")
        .iter()
        .map(|d| d["spec"]["imagePolicy"].as_str().unwrap())
        .collect();
    ensure!(policies == ["AutoSubscribe", "Manual"].into());
    let subs = docs_of_kind(&samples, "ImageSubscription");
    ensure!(
        subs.iter().any(|s| s["spec"]["identifier"].is_string())
            && subs.iter().any(|s| s["spec"]["sha512"].is_string())
    );
    let out = kubectl(
        &[
            "apply",
            "--dry-run=server",
            "-n",
            &ns,
            "-k",
            repo_path("config/samples").to_str().unwrap(),
        ],
        None,
    )?;
    ensure!(
        out.stdout.lines().count() == samples.len(),
        "{}",
        out.stdout
    );
    ensure!(!out.stderr.contains("unknown field"), "{}", out.stderr);
    // And the server really validates here: a broken sample is refused.
    let mut broken = subs[0].clone();
    broken["spec"]["sha512"] = json!("not-hex");
    ensure!(
        dry_run_apply(&[broken], &ns).is_err(),
        "a bad ImageSubscription passed the dry run"
    );

    cluster.delete_namespace(&ns).await?;
    Ok(())
}

#[tokio::test]
async fn helm_install_creates_and_uninstall_removes_the_release() -> Result<()> {
    let cluster = cluster_or_skip!();
    let ns = cluster.create_namespace("helm").await?;
    let release = format!("it-{}", &ns[ns.len() - 5..]);
    let chart = repo_path("charts/vmlisub");
    helm(&[
        "install",
        &release,
        chart.to_str().unwrap(),
        "--namespace",
        &ns,
        "--set",
        "podDisruptionBudget.enabled=true",
    ])?;
    let name = format!("{release}-vmlisub");
    let c = cluster.client();
    let deploy: Api<Deployment> = Api::namespaced(c.clone(), &ns);
    let d = deploy.get(&name).await?;
    let pod = d.spec.as_ref().unwrap().template.spec.as_ref().unwrap();
    ensure!(pod.service_account_name.as_deref() == Some(name.as_str()));
    let svc: Api<Service> = Api::namespaced(c.clone(), &ns);
    svc.get(&name).await?;
    let sa: Api<ServiceAccount> = Api::namespaced(c.clone(), &ns);
    sa.get(&name).await?;
    let pvcs: Api<PersistentVolumeClaim> = Api::namespaced(c.clone(), &ns);
    pvcs.get(&format!("{name}-cache")).await?;
    let nps: Api<NetworkPolicy> = Api::namespaced(c.clone(), &ns);
    nps.get(&name).await?;
    let pdbs: Api<k8s_openapi::api::policy::v1::PodDisruptionBudget> =
        Api::namespaced(c.clone(), &ns);
    pdbs.get(&name).await?;
    let roles: Api<Role> = Api::namespaced(c.clone(), &ns);
    roles.get(&format!("{name}-leader-election")).await?;
    let rbs: Api<RoleBinding> = Api::namespaced(c.clone(), &ns);
    rbs.get(&format!("{name}-leader-election")).await?;
    let crs: Api<ClusterRole> = Api::all(c.clone());
    crs.get(&format!("{name}-manager")).await?;
    let crbs: Api<ClusterRoleBinding> = Api::all(c.clone());
    crbs.get(&format!("{name}-manager")).await?;
    crs.get(&format!("{name}-artifact-auth")).await?;
    crbs.get(&format!("{name}-artifact-auth")).await?;
    // The controller-manager acts on the Deployment (no node runs its pods).
    let deploy_name = name.clone();
    eventually(TIMEOUT, "a ReplicaSet for the Deployment", || {
        let rs: Api<k8s_openapi::api::apps::v1::ReplicaSet> = Api::namespaced(c.clone(), &ns);
        let deploy_name = deploy_name.clone();
        async move {
            let list = rs.list(&Default::default()).await?;
            Ok(list
                .items
                .iter()
                .any(|r| {
                    r.metadata
                        .owner_references
                        .iter()
                        .flatten()
                        .any(|o| o.name == deploy_name)
                })
                .then_some(()))
        }
    })
    .await?;
    let listed = helm(&["list", "--namespace", &ns, "--short"])?;
    ensure!(
        listed.stdout.lines().any(|l| l.trim() == release),
        "{}",
        listed.stdout
    );

    helm(&["uninstall", &release, "--namespace", &ns, "--wait"])?;
    wait_deleted(&deploy, &name, TIMEOUT).await?;
    for gone in [
        svc.get_opt(&name).await?.is_none(),
        sa.get_opt(&name).await?.is_none(),
        nps.get_opt(&name).await?.is_none(),
        pdbs.get_opt(&name).await?.is_none(),
        roles
            .get_opt(&format!("{name}-leader-election"))
            .await?
            .is_none(),
        rbs.get_opt(&format!("{name}-leader-election"))
            .await?
            .is_none(),
        crs.get_opt(&format!("{name}-manager")).await?.is_none(),
        crbs.get_opt(&format!("{name}-manager")).await?.is_none(),
        crs.get_opt(&format!("{name}-artifact-auth"))
            .await?
            .is_none(),
        crbs.get_opt(&format!("{name}-artifact-auth"))
            .await?
            .is_none(),
    ] {
        ensure!(gone, "an object of the release survived helm uninstall");
    }
    // The cache is kept (helm.sh/resource-policy: keep), and so are the CRDs.
    ensure!(
        pvcs.get_opt(&format!("{name}-cache")).await?.is_some(),
        "the cache PVC was deleted"
    );
    let crds: Api<k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition> = Api::all(c.clone());
    ensure!(
        crds.get_opt("imagesubscriptions.vmli.hepix.org")
            .await?
            .is_some()
    );
    cluster.delete_namespace(&ns).await?;
    Ok(())
}

/// The chart's RBAC on the real authorizer: what the operator needs is
/// allowed, nothing more.
#[tokio::test]
async fn chart_rbac_grants_exactly_the_operator_permissions() -> Result<()> {
    let cluster = cluster_or_skip!();
    let ns = cluster.create_namespace("rbac-cluster").await?;
    let other = cluster.create_namespace("rbac-other").await?;
    let release = format!("rb-{}", &ns[ns.len() - 5..]);

    // Cluster mode.
    let sa = install_chart_rbac(&cluster, &ns, &release).await?;
    let client = cluster.service_account_client(&ns, &sa).await?;
    for (verb, resource, where_) in [
        ("watch", "imagelistsubscriptions", ""),
        ("list", "endorsers", other.as_str()),
        ("create", "imagesubscriptions", other.as_str()),
        ("delete", "imagesubscriptions", other.as_str()),
        ("patch", "imagesubscriptions/status", other.as_str()),
        (
            "update",
            "imagelistsubscriptions/finalizers",
            other.as_str(),
        ),
        ("create", "endorsers", other.as_str()),
        ("get", "secrets", other.as_str()),
        ("get", "configmaps", other.as_str()),
        ("create", "events", other.as_str()),
        ("create", "leases", ns.as_str()),
        ("update", "leases", ns.as_str()),
        ("create", "tokenreviews", ""),
        ("create", "subjectaccessreviews", ""),
    ] {
        ensure!(
            can_i(client.clone(), verb, resource, where_).await?,
            "cluster mode: cannot {verb} {resource} in {where_:?}"
        );
    }
    for (verb, resource, where_) in [
        ("list", "secrets", other.as_str()),
        ("watch", "configmaps", other.as_str()),
        ("delete", "imagelistsubscriptions", other.as_str()),
        ("delete", "endorsers", other.as_str()),
        ("update", "imagesubscriptions", other.as_str()),
        ("create", "leases", other.as_str()),
        ("delete", "leases", ns.as_str()),
        ("create", "pods", ns.as_str()),
    ] {
        ensure!(
            !can_i(client.clone(), verb, resource, where_).await?,
            "cluster mode: may {verb} {resource} in {where_:?}"
        );
    }
    // A real request too: reading a missing Secret is a 404 (allowed), listing them a 403.
    let secrets: Api<k8s_openapi::api::core::v1::Secret> = Api::namespaced(client.clone(), &other);
    let got = secrets.get("nope").await.err();
    ensure!(got.as_ref().and_then(status_code) == Some(404), "{got:?}");
    let listed = secrets.list(&Default::default()).await.err();
    ensure!(
        listed.as_ref().and_then(status_code) == Some(403),
        "{listed:?}"
    );
    uninstall_chart_rbac(&cluster, &release).await?;
    let crs: Api<ClusterRole> = Api::all(cluster.client());
    ensure!(
        crs.get_opt(&format!("{release}-vmlisub-manager"))
            .await?
            .is_none()
    );

    // Watch-namespace mode, in a fresh namespace: only `other` is visible.
    let ns2 = cluster.create_namespace("rbac-watch").await?;
    let release2 = format!("rw-{}", &ns2[ns2.len() - 5..]);
    let watch = format!("watchNamespace={other}");
    let sa2 = install_chart_rbac_with(&cluster, &ns2, &release2, &["--set", &watch]).await?;
    let client2 = cluster.service_account_client(&ns2, &sa2).await?;
    ensure!(can_i(client2.clone(), "watch", "imagesubscriptions", &other).await?);
    ensure!(can_i(client2.clone(), "create", "leases", &ns2).await?);
    // The token check of the artifact server works in watch mode too.
    ensure!(can_i(client2.clone(), "create", "tokenreviews", "").await?);
    ensure!(can_i(client2.clone(), "create", "subjectaccessreviews", "").await?);
    ensure!(
        !can_i(client2.clone(), "watch", "imagesubscriptions", "").await?,
        "watch mode may watch all namespaces"
    );
    ensure!(!can_i(client2.clone(), "list", "imagelistsubscriptions", &ns).await?);
    ensure!(!can_i(client2.clone(), "get", "secrets", &ns2).await?);
    let crbs: Api<ClusterRoleBinding> = Api::all(cluster.client());
    ensure!(
        crbs.get_opt(&format!("{release2}-vmlisub-manager"))
            .await?
            .is_none()
    );

    uninstall_chart_rbac(&cluster, &release2).await?;
    for n in [&ns, &other, &ns2] {
        cluster.delete_namespace(n).await?;
    }
    Ok(())
}

/// docs/recipes/kubevirt-datavolume.sh against a real ImageSubscription
/// status: the DataVolume it prints carries status.artifact.url and digest.
#[tokio::test]
async fn kubevirt_recipe_script_fills_the_datavolume_from_status() -> Result<()> {
    let cluster = cluster_or_skip!();
    cluster.apply_crds(repo_path("crds/vmlisub.yaml")).await?;
    let ns = cluster.create_namespace("recipe").await?;
    let gvk = GroupVersionKind::gvk("vmli.hepix.org", "v1alpha1", "ImageSubscription");
    let api: Api<DynamicObject> =
        Api::namespaced_with(cluster.client(), &ns, &ApiResource::from_gvk(&gvk));
    cluster
        .apply_yaml(
            repo_path("config/samples/imagesubscription_by_identifier.yaml"),
            Some(&ns),
        )
        .await?;
    let script = repo_path("docs/recipes/kubevirt-datavolume.sh");
    let script = script.to_str().unwrap();
    let run = |args: Vec<String>| {
        let mut cmd = std::process::Command::new("bash");
        cmd.arg(script).args(&args);
        if let Some(k) = vmlisub_e2e::kubeconfig_path() {
            cmd.env("KUBECONFIG", k);
        }
        cmd.output().unwrap()
    };
    // Not Available yet: refused, nothing printed.
    let out = run(vec!["-n".into(), ns.clone(), "cernvm-4".into()]);
    ensure!(!out.status.success() && out.stdout.is_empty(), "{out:?}");

    let hex = "ab".repeat(64);
    // The artifact server's route: /images/<namespace>/<list>/<identifier>
    // (the sample's list is `cernvm`).
    let url = format!(
        "http://rel-vmlisub.ops.svc:8080/images/{ns}/cernvm/858a817e-0ca2-473f-89d3-d5bdfc51968e"
    );
    merge_patch_status(
        &api,
        "cernvm-4",
        &json!({"status": {
        "phase": "Available",
        "artifact": {"url": url, "digest": format!("sha512:{hex}"), "path": "endorsed/x/image",
                     "size": 1024, "lastUpdateTime": "2026-01-01T00:00:00Z"}}}),
    )
    .await?;
    let out = run(vec![
        "-n".into(),
        ns.clone(),
        "cernvm-4".into(),
        "dv-cernvm".into(),
        "30Gi".into(),
    ]);
    ensure!(
        out.status.success(),
        "script failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let docs = parse_yaml_documents(&String::from_utf8_lossy(&out.stdout))?;
    let dv = one_of_kind(&docs, "DataVolume");
    ensure!(dv["metadata"]["name"] == "dv-cernvm" && dv["metadata"]["namespace"] == json!(ns));
    ensure!(dv["spec"]["source"]["http"]["url"] == json!(url));
    ensure!(dv["spec"]["source"]["http"]["checksum"] == json!(format!("sha512:{hex}")));
    ensure!(dv["spec"]["storage"]["resources"]["requests"]["storage"] == "30Gi");
    // Same shape as the documented DataVolume.
    let documented = read_yaml_documents(repo_path("docs/recipes/kubevirt-datavolume.yaml"))?;
    let documented = one_of_kind(&documented, "DataVolume");
    ensure!(dv["apiVersion"] == documented["apiVersion"]);
    let keys = |v: &Value| {
        v.as_object()
            .map(|o| o.keys().cloned().collect::<BTreeSet<_>>())
    };
    ensure!(keys(&dv["spec"]["source"]["http"]) == keys(&documented["spec"]["source"]["http"]));
    // -t: the Secret with the artifact server's bearer token, as CDI's
    // secretExtraHeaders.
    let out = run(vec![
        "-n".into(),
        ns.clone(),
        "-t".into(),
        "vmlisub-token".into(),
        "cernvm-4".into(),
    ]);
    ensure!(
        out.status.success(),
        "script -t failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let docs = parse_yaml_documents(&String::from_utf8_lossy(&out.stdout))?;
    let http = &one_of_kind(&docs, "DataVolume")["spec"]["source"]["http"];
    ensure!(http["secretExtraHeaders"] == json!(["vmlisub-token"]) && http["url"] == json!(url));

    // A URL whose path is not the artifact server's route for this
    // ImageSubscription's list (e.g. the ImageSubscription's own name in
    // the list's place) is refused.
    merge_patch_status(
        &api,
        "cernvm-4",
        &json!({"status": {"artifact": {"url": url.replace("/cernvm/", "/cernvm-4/")}}}),
    )
    .await?;
    let out = run(vec!["-n".into(), ns.clone(), "cernvm-4".into()]);
    ensure!(!out.status.success() && out.stdout.is_empty(), "{out:?}");
    merge_patch_status(
        &api,
        "cernvm-4",
        &json!({"status": {"artifact": {"url": url}}}),
    )
    .await?;

    // A digest that is not sha512 hex is refused.
    merge_patch_status(
        &api,
        "cernvm-4",
        &json!({"status": {"artifact": {"digest": "sha256:abc"}}}),
    )
    .await?;
    let out = run(vec!["-n".into(), ns.clone(), "cernvm-4".into()]);
    ensure!(!out.status.success() && out.stdout.is_empty());
    cluster.delete_namespace(&ns).await?;
    Ok(())
}

/// Leaf keys of the chart's values (objects that are Kubernetes structures
/// passed through, like `resources`, count as leaves).
fn value_keys(v: &Value, prefix: &str, out: &mut Vec<String>) {
    const OPAQUE: [&str; 4] = [
        "podSecurityContext",
        "securityContext",
        "resources",
        "trust.volume",
    ];
    match v.as_object() {
        Some(map) if !map.is_empty() && !OPAQUE.contains(&prefix) => {
            for (k, child) in map {
                let key = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                value_keys(child, &key, out);
            }
        }
        _ => out.push(prefix.to_owned()),
    }
}

#[test]
fn chart_readme_documents_every_value_and_the_schema_knows_it() {
    let values = read_yaml_documents(repo_path("charts/vmlisub/values.yaml")).unwrap();
    let mut keys = Vec::new();
    value_keys(&values[0], "", &mut keys);
    assert!(keys.len() > 60, "too few values found: {keys:?}");
    let readme = read("charts/vmlisub/README.md");
    let schema: Value = serde_json::from_str(&read("charts/vmlisub/values.schema.json")).unwrap();
    for key in &keys {
        let parent_glob = key.rsplit_once('.').map(|(p, _)| format!("`{p}.*`"));
        assert!(
            readme.contains(&format!("`{key}`"))
                || parent_glob.is_some_and(|g| readme.contains(&g)),
            "charts/vmlisub/README.md does not document `{key}`"
        );
        let mut node = &schema;
        for part in key.split('.') {
            node = &node["properties"][part];
        }
        assert!(
            node.is_object(),
            "values.schema.json does not describe `{key}`"
        );
    }
}

/// The operator binary accepts the arguments the chart and config/manager
/// give it (a flag the binary lacks would crash-loop the pod). Needs
/// target/debug/vmlisub (`cargo build -p vmlisub`; `make unit` builds it).
#[tokio::test]
async fn deployment_arguments_are_accepted_by_the_operator_binary() -> Result<()> {
    let _cluster = cluster_or_skip!();
    let binary = vmlisub_e2e::workspace_binary("vmlisub")?;
    let mut cases: Vec<(String, Vec<Value>)> = Vec::new();
    for mode in [
        vec!["rel", "--namespace", "ops"],
        vec![
            "rel",
            "--namespace",
            "ops",
            "--set",
            "watchNamespace=team-a",
            "--set",
            "leaderElection.enabled=false",
            "--set",
            "artifactBaseUrl=https://img.example.org",
            "--set",
            "crlRefresh.enabled=false",
        ],
        vec![
            "rel",
            "--namespace",
            "ops",
            "--set",
            "crlRefresh.interval=1h30m",
            "--set",
            "hooks.enabled=true",
        ],
        vec![
            "rel",
            "--namespace",
            "ops",
            "--set",
            "artifactAuth.mode=none",
            "--set",
            "serverLimits.headerReadTimeout=1m30s",
            "--set",
            "serverLimits.idleTimeout=5m",
            "--set",
            "serverLimits.maxConnections=1000",
        ],
        vec![
            "rel",
            "--namespace",
            "ops",
            "--set",
            "artifactAuth.audience=vmlisub",
        ],
    ] {
        cases.push((format!("chart {mode:?}"), render(&mode)));
    }
    cases.push(("config/default".to_owned(), kustomize("config/default")));
    cases.push(("config/hostpath".to_owned(), kustomize("config/hostpath")));
    for (what, docs) in cases {
        let c = deployment_container(&docs);
        let args: Vec<String> = args_of(c)
            .into_iter()
            .map(|a| a.replace("$(POD_NAMESPACE)", "ops"))
            .collect();
        // --help after the real arguments: clap still rejects an unknown
        // flag or a bad value before it prints the help.
        let out = std::process::Command::new(&binary)
            .args(&args)
            .arg("--help")
            .output()?;
        ensure!(
            out.status.success(),
            "{what}: `vmlisub {}` is refused: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
        let bad = std::process::Command::new(&binary)
            .args(&args)
            .args(["--no-such-flag", "--help"])
            .output()?;
        ensure!(
            !bad.status.success(),
            "the binary accepts unknown flags: this test proves nothing"
        );
    }
    Ok(())
}

/// docs/recipes/grid-ca-configmap.sh on an IGTF-layout directory (alias
/// files, hash symlinks, an old-style hash alias, a CRL, a stray file):
/// the ConfigMap holds exactly the hash-named CA files, no CRL; mounted the
/// way the kubelet mounts a ConfigMap (`..data` symlinks), the verifier
/// accepts a real list through it; the API server accepts the object;
/// --split packs the CAs into several ConfigMaps.
#[tokio::test]
async fn grid_ca_recipe_builds_the_trust_configmap_the_verifier_reads() -> Result<()> {
    use std::os::unix::fs::symlink;
    let cluster = cluster_or_skip!();
    let real = repo_path("../shared/testdata/real-lists");
    let tmp = tempfile::tempdir()?;
    let igtf = tmp.path().join("certificates");
    std::fs::create_dir(&igtf)?;
    for (hash, alias) in [("dd4b34ea", "GermanGrid"), ("772dbd1c", "SEE-GRID-CA-2013")] {
        std::fs::copy(
            real.join(format!("ca/{hash}.0")),
            igtf.join(format!("{alias}.pem")),
        )?;
        symlink(format!("{alias}.pem"), igtf.join(format!("{hash}.0")))?;
        for ext in ["info", "namespaces", "signing_policy"] {
            std::fs::copy(
                real.join(format!("ca/{hash}.{ext}")),
                igtf.join(format!("{alias}.{ext}")),
            )?;
            symlink(format!("{alias}.{ext}"), igtf.join(format!("{hash}.{ext}")))?;
        }
        // .crl_url only under the alias: found through the .0 link.
        std::fs::write(
            igtf.join(format!("{alias}.crl_url")),
            "http://crl.example.org/x.crl\n",
        )?;
    }
    symlink("GermanGrid.pem", igtf.join("0f0e0d0c.0"))?; // another hash, same CA
    std::fs::write(igtf.join("dd4b34ea.r0"), "a CRL fetch-crl wrote\n")?;
    std::fs::write(igtf.join("README"), "not CA material\n")?;

    let run = |args: &[&str]| -> std::process::Output {
        let mut cmd = std::process::Command::new("bash");
        cmd.arg(repo_path("docs/recipes/grid-ca-configmap.sh"))
            .args(args);
        if let Some(k) = vmlisub_e2e::kubeconfig_path() {
            cmd.env("KUBECONFIG", k);
        }
        cmd.output().unwrap()
    };
    let dir = igtf.to_str().unwrap();
    let out = run(&["-n", "ops", "vmlisub-grid-ca", dir]);
    ensure!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let docs = parse_yaml_documents(&String::from_utf8_lossy(&out.stdout))?;
    let cm = one_of_kind(&docs, "ConfigMap");
    ensure!(cm["metadata"]["name"] == "vmlisub-grid-ca" && cm["metadata"]["namespace"] == "ops");
    let data = cm["data"].as_object().unwrap();
    let keys: BTreeSet<&str> = data.keys().map(String::as_str).collect();
    let mut want = BTreeSet::new();
    for hash in ["dd4b34ea", "772dbd1c"] {
        for ext in ["0", "info", "namespaces", "signing_policy", "crl_url"] {
            want.insert(format!("{hash}.{ext}"));
        }
    }
    ensure!(
        keys == want.iter().map(String::as_str).collect(),
        "keys {keys:?}"
    );
    ensure!(
        data["dd4b34ea.0"]
            .as_str()
            .unwrap()
            .contains("BEGIN CERTIFICATE")
    );
    ensure!(data["772dbd1c.crl_url"] == "http://crl.example.org/x.crl\n");
    let stderr = String::from_utf8_lossy(&out.stderr);
    ensure!(stderr.contains("2 CAs"), "{stderr}");

    // The kubelet's ConfigMap volume: files in a timestamped directory,
    // `..data` pointing at it, one symlink per key.
    let mount = tmp.path().join("mount");
    let stamp = mount.join("..2026_01_01_00_00_00.000000001");
    std::fs::create_dir_all(&stamp)?;
    for (key, value) in data {
        std::fs::write(stamp.join(key), value.as_str().unwrap())?;
        symlink(format!("..data/{key}"), mount.join(key))?;
    }
    symlink("..2026_01_01_00_00_00.000000001", mount.join("..data"))?;
    let binary = vmlisub_e2e::workspace_binary("vmlisub")?;
    let verify = |ca_dir: &std::path::Path| {
        std::process::Command::new(&binary)
            .arg("verify")
            .arg("--ca-dir")
            .arg(ca_dir)
            .args([
                "--at",
                "2011-03-11T00:00:00Z",
                "--allow-sha1",
                "--crl-policy",
                "ignore",
            ])
            .arg(real.join("hepixvmitrust-README-gridka-2011-03-legacyformat.smime"))
            .output()
            .unwrap()
    };
    let out = verify(&mount);
    ensure!(
        out.status.success(),
        "the verifier refuses the ConfigMap layout: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    // An empty mount (trust.configMap.optional and no ConfigMap yet).
    let empty = tmp.path().join("empty");
    std::fs::create_dir(&empty)?;
    let out = verify(&empty);
    ensure!(
        !out.status.success()
            && String::from_utf8_lossy(&out.stderr).contains("trust-store-unavailable"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // The API server takes it.
    let ns = cluster.create_namespace("gridca").await?;
    let mut cm = cm.clone();
    cm["metadata"]["namespace"] = json!(ns);
    dry_run_apply(&[cm], &ns).context("dry run of the grid CA ConfigMap")?;
    cluster.delete_namespace(&ns).await?;

    // Split: one CA per ConfigMap at this size, the projected sources named.
    let out = run(&["--split", "3000", "grid-ca", dir]);
    ensure!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let docs = parse_yaml_documents(&String::from_utf8_lossy(&out.stdout))?;
    let names: Vec<&str> = docs
        .iter()
        .map(|d| d["metadata"]["name"].as_str().unwrap())
        .collect();
    ensure!(names == ["grid-ca-0", "grid-ca-1"], "{names:?}");
    ensure!(
        docs.iter()
            .all(|d| d["data"].as_object().unwrap().len() == 5)
    );
    ensure!(String::from_utf8_lossy(&out.stderr).contains("configMap: {name: grid-ca-1}"));
    // A split smaller than one CA, and a directory without CAs: refused.
    ensure!(!run(&["--split", "100", "grid-ca", dir]).status.success());
    ensure!(
        !run(&["grid-ca", tmp.path().join("empty").to_str().unwrap()])
            .status
            .success()
    );
    Ok(())
}

/// The chart's tenant ClusterRoles reach namespace users through Kubernetes'
/// own roles (aggregation by the real kube-controller-manager): `edit`
/// manages subscriptions in its namespace only and cannot forge their
/// status; `view` reads them.
#[tokio::test]
async fn tenant_roles_aggregate_into_view_and_edit() -> Result<()> {
    let cluster = cluster_or_skip!();
    let ns = cluster.create_namespace("tenants").await?;
    let other = cluster.create_namespace("tenants-other").await?;
    let release = format!("tr-{}", &ns[ns.len() - 5..]);
    install_chart_rbac(&cluster, &ns, &release).await?;
    let bindings: Api<RoleBinding> = Api::namespaced(cluster.client(), &ns);
    for (who, role) in [("alice", "edit"), ("bob", "view")] {
        cluster.service_account_token(&ns, who).await?;
        let binding: RoleBinding = serde_json::from_value(json!({
            "metadata": {"name": format!("{who}-{role}")},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
            "subjects": [{"kind": "ServiceAccount", "name": who, "namespace": ns}],
        }))?;
        vmlisub_e2e::create(&bindings, &binding).await?;
    }
    let alice = cluster.service_account_client(&ns, "alice").await?;
    let bob = cluster.service_account_client(&ns, "bob").await?;
    eventually(TIMEOUT, "edit to include the vmlisub kinds", || {
        let alice = alice.clone();
        let ns = ns.clone();
        async move {
            Ok(can_i(alice, "create", "imagelistsubscriptions", &ns)
                .await?
                .then_some(()))
        }
    })
    .await?;
    for (verb, resource) in [
        ("delete", "endorsers"),
        ("patch", "imagesubscriptions"),
        ("list", "imagelistsubscriptions"),
    ] {
        ensure!(
            can_i(alice.clone(), verb, resource, &ns).await?,
            "edit cannot {verb} {resource}"
        );
    }
    ensure!(
        !can_i(alice.clone(), "create", "imagelistsubscriptions", &other).await?,
        "edit in one namespace reaches another"
    );
    ensure!(
        !can_i(alice.clone(), "patch", "imagesubscriptions/status", &ns).await?,
        "a tenant may forge status"
    );
    eventually(TIMEOUT, "view to include the vmlisub kinds", || {
        let bob = bob.clone();
        let ns = ns.clone();
        async move {
            Ok(can_i(bob, "list", "imagesubscriptions", &ns)
                .await?
                .then_some(()))
        }
    })
    .await?;
    ensure!(can_i(bob.clone(), "watch", "endorsers", &ns).await?);
    ensure!(
        !can_i(bob.clone(), "create", "imagesubscriptions", &ns).await?,
        "view may create"
    );
    uninstall_chart_rbac(&cluster, &release).await?;
    for n in [&ns, &other] {
        cluster.delete_namespace(n).await?;
    }
    Ok(())
}
