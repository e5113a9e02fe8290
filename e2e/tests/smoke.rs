//! Smoke tests of the e2e harness against a real control plane: CRDs, watch,
//! server-side apply, the status subresource, Events, RBAC with a
//! ServiceAccount token, and the controller-manager's garbage collector and
//! namespace controller. They use a throw-away CRD (testdata/smoke-crd.yaml),
//! nothing of vmlisub itself.

use anyhow::{Context as _, Result, bail, ensure};
use futures::{StreamExt as _, TryStreamExt as _};
use k8s_openapi::api::authentication::v1::SelfSubjectReview;
use k8s_openapi::api::core::v1::{
    ConfigMap, Event, EventSource, Namespace, ObjectReference, Secret,
};
use k8s_openapi::api::rbac::v1::{PolicyRule, Role, RoleBinding, RoleRef, Subject};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::api::{
    Api, DeleteParams, ListParams, Patch, PatchParams, PostParams, WatchEvent, WatchParams,
};
use kube::{CustomResource, Resource as _, ResourceExt as _};
use serde::{Deserialize, Serialize};
use serde_json::json;
use vmlisub_e2e::{
    Cluster, TIMEOUT, apply, cluster_or_skip, crate_path, create, eventually, merge_patch,
    merge_patch_status, status_code, wait_deleted,
};

/// Rust side of testdata/smoke-crd.yaml (the schema lives in the YAML).
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "smoke.e2e.vmli.hepix.org",
    version = "v1",
    kind = "Smoke",
    namespaced,
    status = "SmokeStatus",
    schema = "disabled"
)]
#[serde(rename_all = "camelCase")]
struct SmokeSpec {
    message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    replicas: Option<i64>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
struct SmokeStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    phase: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    observed_generation: Option<i64>,
}

/// Applies the smoke CRD and makes a namespace for one test.
async fn setup(cluster: &Cluster, prefix: &str) -> Result<(String, Api<Smoke>)> {
    let crds = cluster
        .apply_crds(crate_path("testdata/smoke-crd.yaml"))
        .await?;
    ensure!(crds.len() == 1, "expected one CRD, got {}", crds.len());
    let ns = cluster.create_namespace(prefix).await?;
    let smokes = Api::namespaced(cluster.client(), &ns);
    Ok((ns, smokes))
}

fn smoke(name: &str, message: &str) -> Smoke {
    Smoke::new(
        name,
        SmokeSpec {
            message: message.to_owned(),
            replicas: None,
        },
    )
}

#[tokio::test]
async fn watch_sees_create_and_namespace_deletion_completes() -> Result<()> {
    let cluster = cluster_or_skip!();
    let (ns, smokes) = setup(&cluster, "watch").await?;

    let rv = smokes
        .list_metadata(&ListParams::default())
        .await?
        .metadata
        .resource_version
        .context("list has no resourceVersion")?;
    let mut events = smokes
        .watch(&WatchParams::default().timeout(120), &rv)
        .await?
        .boxed();
    let created = create(&smokes, &smoke("first", "hello")).await?;

    let seen = tokio::time::timeout(TIMEOUT, async {
        while let Some(event) = events.try_next().await? {
            match event {
                WatchEvent::Added(obj) if obj.name_any() == "first" => return Ok(obj),
                WatchEvent::Error(e) => bail!("watch error: {e:?}"),
                _ => {}
            }
        }
        bail!("watch ended before the create was seen")
    })
    .await
    .context("no ADDED event within the timeout")??;
    ensure!(seen.uid() == created.uid(), "watch saw another object");
    ensure!(seen.spec.message == "hello");

    // The namespace controller (kube-controller-manager) empties the
    // namespace, custom resources included, and removes it.
    cluster.delete_namespace(&ns).await?;
    let namespaces: Api<Namespace> = Api::all(cluster.client());
    wait_deleted(&namespaces, &ns, TIMEOUT * 2).await?;
    Ok(())
}

#[tokio::test]
async fn server_side_apply_tracks_field_managers() -> Result<()> {
    let cluster = cluster_or_skip!();
    let (ns, smokes) = setup(&cluster, "ssa").await?;
    let api_version = Smoke::api_version(&());
    let kind = Smoke::kind(&());

    let alice = json!({
        "apiVersion": api_version, "kind": kind, "metadata": { "name": "ssa" },
        "spec": { "message": "from alice", "replicas": 1 },
    });
    let applied = apply(&smokes, "ssa", "e2e-alice", &alice).await?;
    ensure!(applied.spec.message == "from alice" && applied.spec.replicas == Some(1));
    let owned_by = |obj: &Smoke, manager: &str| -> Vec<String> {
        obj.managed_fields()
            .iter()
            .filter(|m| {
                m.manager.as_deref() == Some(manager) && m.operation.as_deref() == Some("Apply")
            })
            .filter_map(|m| m.fields_v1.as_ref())
            .filter_map(|f| f.0.get("f:spec"))
            .filter_map(|spec| spec.as_object())
            .flat_map(|spec| spec.keys().cloned())
            .collect()
    };
    let mut alice_fields = owned_by(&applied, "e2e-alice");
    alice_fields.sort();
    ensure!(
        alice_fields == ["f:message", "f:replicas"],
        "managedFields of e2e-alice: {:?}",
        applied.managed_fields()
    );

    // Another manager may not take a field over without force: 409 Conflict.
    let bob = json!({
        "apiVersion": api_version, "kind": kind, "metadata": { "name": "ssa" },
        "spec": { "message": "from bob" },
    });
    let conflict = smokes
        .patch("ssa", &PatchParams::apply("e2e-bob"), &Patch::Apply(&bob))
        .await;
    match conflict {
        Err(e) if status_code(&e) == Some(409) => {}
        other => bail!("expected a 409 conflict, got {other:?}"),
    }

    // With force it may; alice keeps the field bob did not apply.
    let forced = apply(&smokes, "ssa", "e2e-bob", &bob).await?;
    ensure!(forced.spec.message == "from bob" && forced.spec.replicas == Some(1));
    ensure!(owned_by(&forced, "e2e-bob") == ["f:message"]);
    ensure!(owned_by(&forced, "e2e-alice") == ["f:replicas"]);

    cluster.delete_namespace(&ns).await?;
    Ok(())
}

#[tokio::test]
async fn status_subresource_and_events() -> Result<()> {
    let cluster = cluster_or_skip!();
    let (ns, smokes) = setup(&cluster, "status").await?;
    let created = create(&smokes, &smoke("st", "status please")).await?;
    let generation = created.metadata.generation.context("no generation")?;
    ensure!(created.status.is_none());

    let patched = merge_patch_status(
        &smokes,
        "st",
        &json!({ "status": { "phase": "Ready", "observedGeneration": generation } }),
    )
    .await?;
    let want = SmokeStatus {
        phase: Some("Ready".into()),
        observed_generation: Some(generation),
    };
    ensure!(
        patched.status.as_ref() == Some(&want),
        "status: {:?}",
        patched.status
    );
    ensure!(
        patched.metadata.generation == Some(generation),
        "a status write bumped the generation"
    );

    // The status subresource ignores spec, the main resource ignores status.
    let via_status =
        merge_patch_status(&smokes, "st", &json!({ "spec": { "message": "sneaky" } })).await?;
    ensure!(via_status.spec.message == "status please");
    let via_main = merge_patch(&smokes, "st", &json!({ "status": { "phase": "Failed" } })).await?;
    ensure!(
        via_main.status.as_ref() == Some(&want),
        "status: {:?}",
        via_main.status
    );

    // The CRD's schema is enforced on the status subresource too.
    let invalid = smokes
        .patch_status(
            "st",
            &PatchParams::default(),
            &Patch::Merge(json!({ "status": { "phase": "Bogus" } })),
        )
        .await;
    match invalid {
        Err(e) if status_code(&e) == Some(422) => {}
        other => bail!("expected 422 Invalid, got {other:?}"),
    }

    // Events about the object are found by its uid.
    let events: Api<Event> = Api::namespaced(cluster.client(), &ns);
    let event = Event {
        metadata: ObjectMeta {
            generate_name: Some("st-".into()),
            ..ObjectMeta::default()
        },
        involved_object: ObjectReference {
            api_version: Some(Smoke::api_version(&()).into_owned()),
            kind: Some(Smoke::kind(&()).into_owned()),
            name: Some("st".into()),
            namespace: Some(ns.clone()),
            uid: created.metadata.uid.clone(),
            ..ObjectReference::default()
        },
        reason: Some("SmokeTested".into()),
        message: Some("the harness can read this".into()),
        type_: Some("Normal".into()),
        source: Some(EventSource {
            component: Some("vmlisub-e2e".into()),
            ..EventSource::default()
        }),
        ..Event::default()
    };
    events.create(&PostParams::default(), &event).await?;
    let found = cluster.events_for(&created).await?;
    ensure!(
        found.len() == 1 && found[0].reason.as_deref() == Some("SmokeTested"),
        "events: {found:?}"
    );

    cluster.delete_namespace(&ns).await?;
    Ok(())
}

#[tokio::test]
async fn rbac_denies_an_unprivileged_service_account() -> Result<()> {
    let cluster = cluster_or_skip!();
    let ns = cluster.create_namespace("rbac").await?;
    let sa_client = cluster.service_account_client(&ns, "nobody").await?;

    // The token authenticates (so a later 403 is RBAC, not authentication).
    let review = Api::<SelfSubjectReview>::all(sa_client.clone())
        .create(&PostParams::default(), &SelfSubjectReview::default())
        .await?;
    let username = review
        .status
        .and_then(|s| s.user_info)
        .and_then(|u| u.username);
    ensure!(
        username.as_deref() == Some(format!("system:serviceaccount:{ns}:nobody").as_str()),
        "authenticated as {username:?}"
    );

    let cms: Api<ConfigMap> = Api::namespaced(sa_client.clone(), &ns);
    match cms.list(&ListParams::default()).await {
        Err(e) if status_code(&e) == Some(403) => {}
        other => bail!("expected 403 Forbidden listing configmaps, got {other:?}"),
    }

    // Grant read access to configmaps only; RBAC picks it up shortly.
    let admin = cluster.client();
    let role = Role {
        metadata: ObjectMeta {
            name: Some("configmap-reader".into()),
            ..ObjectMeta::default()
        },
        rules: Some(vec![PolicyRule {
            api_groups: Some(vec![String::new()]),
            resources: Some(vec!["configmaps".into()]),
            verbs: vec!["get".into(), "list".into()],
            ..PolicyRule::default()
        }]),
    };
    create(&Api::<Role>::namespaced(admin.clone(), &ns), &role).await?;
    let binding = RoleBinding {
        metadata: ObjectMeta {
            name: Some("nobody-reads-configmaps".into()),
            ..ObjectMeta::default()
        },
        role_ref: RoleRef {
            api_group: Some("rbac.authorization.k8s.io".into()),
            kind: "Role".into(),
            name: "configmap-reader".into(),
        },
        subjects: Some(vec![Subject {
            kind: "ServiceAccount".into(),
            name: "nobody".into(),
            namespace: Some(ns.clone()),
            ..Subject::default()
        }]),
    };
    create(&Api::<RoleBinding>::namespaced(admin, &ns), &binding).await?;
    eventually(
        TIMEOUT,
        "the RoleBinding to allow listing configmaps",
        || async {
            match cms.list(&ListParams::default()).await {
                Ok(_) => Ok(Some(())),
                Err(e) if status_code(&e) == Some(403) => Ok(None),
                Err(e) => Err(e.into()),
            }
        },
    )
    .await?;

    // ... and nothing more.
    let secrets: Api<Secret> = Api::namespaced(sa_client, &ns);
    match secrets.list(&ListParams::default()).await {
        Err(e) if status_code(&e) == Some(403) => {}
        other => bail!("expected 403 Forbidden listing secrets, got {other:?}"),
    }

    cluster.delete_namespace(&ns).await?;
    Ok(())
}

fn owned_config_map(
    name: &str,
    owner: &ConfigMap,
    block_owner_deletion: bool,
) -> Result<ConfigMap> {
    Ok(ConfigMap {
        metadata: ObjectMeta {
            name: Some(name.into()),
            owner_references: Some(vec![OwnerReference {
                api_version: "v1".into(),
                kind: "ConfigMap".into(),
                name: owner.name_any(),
                uid: owner.uid().context("owner has no uid")?,
                block_owner_deletion: Some(block_owner_deletion),
                ..OwnerReference::default()
            }]),
            ..ObjectMeta::default()
        },
        data: Some([("owned".to_owned(), "yes".to_owned())].into()),
        ..ConfigMap::default()
    })
}

fn config_map(name: &str) -> ConfigMap {
    ConfigMap {
        metadata: ObjectMeta {
            name: Some(name.into()),
            ..ObjectMeta::default()
        },
        ..ConfigMap::default()
    }
}

#[tokio::test]
async fn garbage_collector_cascades_owner_deletion() -> Result<()> {
    let cluster = cluster_or_skip!();
    let ns = cluster.create_namespace("gc").await?;
    let cms: Api<ConfigMap> = Api::namespaced(cluster.client(), &ns);

    // Background propagation: the owner goes at once, the GC removes the dependent.
    let owner = create(&cms, &config_map("owner")).await?;
    create(&cms, &owned_config_map("owned", &owner, false)?).await?;
    cms.delete("owner", &DeleteParams::background()).await?;
    wait_deleted(&cms, "owned", TIMEOUT)
        .await
        .context("the garbage collector did not delete the dependent")?;

    // Foreground propagation: the owner waits for its blocking dependent.
    let owner = create(&cms, &config_map("fg-owner")).await?;
    create(&cms, &owned_config_map("fg-owned", &owner, true)?).await?;
    cms.delete("fg-owner", &DeleteParams::foreground()).await?;
    wait_deleted(&cms, "fg-owned", TIMEOUT).await?;
    wait_deleted(&cms, "fg-owner", TIMEOUT).await?;

    // Orphan propagation: the dependent stays, without the owner reference.
    let owner = create(&cms, &config_map("orphan-owner")).await?;
    create(&cms, &owned_config_map("orphan", &owner, false)?).await?;
    cms.delete("orphan-owner", &DeleteParams::orphan()).await?;
    wait_deleted(&cms, "orphan-owner", TIMEOUT).await?;
    let orphan = cms.get("orphan").await?;
    ensure!(
        orphan.owner_references().is_empty(),
        "orphan kept {:?}",
        orphan.owner_references()
    );

    cluster.delete_namespace(&ns).await?;
    Ok(())
}
