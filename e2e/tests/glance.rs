//! The operator's Glance export (`spec.export.glance`) on the real control
//! plane against a real Keystone and Glance from PyPI
//! (operator/tests/support/openstack.rs): a credentials Secret without the
//! opt-in label is refused by name and nothing reaches Glance; labelled, the
//! image is exported (status.export.glance, the Exported condition); a new
//! list version exports the new image and hides the old one.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../../operator/tests/support/live.rs"]
#[allow(dead_code)]
mod live;
#[path = "../../operator/tests/support/openstack.rs"]
#[allow(dead_code)]
mod openstack;

use std::time::Duration;

use anyhow::Result;
use k8s_openapi::api::core::v1::Secret;
use kube::api::Api;
use serde_json::{Value, json};
use sha2::Digest as _;
use vmlisub_e2e::operator::{OperatorRun, Publisher};
use vmlisub_e2e::{
    Cluster, Process, eventually, request_reconcile, uninstall_chart_rbac, vmli_api,
};

const LIST_ID: &str = "7d1e2c52-9a41-4d1e-b6a0-5c2d8e9f1a02";

async fn wait_image(
    cluster: &Cluster,
    ns: &str,
    what: &str,
    operator: &Process,
    check: impl Fn(&Value) -> bool,
) -> Result<Value> {
    let images = vmli_api(cluster, ns, "ImageSubscription");
    let result = eventually(Duration::from_secs(120), what, || async {
        let object = images.get("one").await?;
        let status = object.data["status"].clone();
        Ok(check(&status).then_some(status))
    })
    .await;
    if result.is_err() {
        eprintln!("--- operator log ---\n{}", operator.logs());
        if let Ok(object) = images.get("one").await {
            eprintln!("--- status ---\n{:#}", object.data["status"]);
        }
    }
    result
}

fn exported(status: &Value) -> Option<(String, String)> {
    status["conditions"].as_array()?.iter().find_map(|c| {
        (c["type"] == "Exported").then(|| {
            (
                c["status"].as_str().unwrap_or_default().to_string(),
                c["reason"].as_str().unwrap_or_default().to_string(),
            )
        })
    })
}

fn sha512_hex(bytes: &[u8]) -> String {
    sha2::Sha512::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[tokio::test]
async fn operator_exports_to_glance_with_an_opted_in_secret() -> Result<()> {
    let cluster = vmlisub_e2e::cluster_or_skip!();
    let Some(venv) = openstack::venv() else {
        return Ok(());
    };
    let stack = openstack::OpenStack::start(&venv);
    let ns = cluster.create_namespace("operator-glance").await?;
    cluster
        .apply_crds(&vmlisub_e2e::repo_path("crds/vmlisub.yaml"))
        .await?;
    let dir = tempfile::Builder::new()
        .prefix("vmlisub-e2e-glance-")
        .tempdir()?;
    std::fs::create_dir_all(dir.path().join("pki"))?;
    let pki = live::LivePki::new(&dir.path().join("pki"));
    let publisher = Publisher::start(&dir.path().join("www"))?;
    let (run, release) =
        OperatorRun::as_chart(&cluster, &ns, dir.path(), &pki.ca_dir, false).await?;
    let publish = |version: &str, bytes: &[u8]| -> Result<String> {
        let uri = publisher.put(&format!("img-one-{version}"), bytes)?;
        let signed = pki.list(LIST_ID, version, &[("img-one", &uri, bytes)]);
        publisher.put("image.list", &signed)
    };
    let v1 = vec![7u8; 20_000];
    let v2 = vec![8u8; 30_000];
    let url = publish("1", &v1)?;

    let secrets: Api<Secret> = Api::namespaced(cluster.client(), &ns);
    let secret: Secret = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "glance-token"},
        "stringData": {"token": stack.admin_token},
    }))?;
    vmlisub_e2e::create(&secrets, &secret).await?;
    cluster
        .apply_json(
            &ns,
            vmlisub_e2e::publisher_endorser(&pki.subject, &pki.issuer),
        )
        .await?;
    cluster
        .apply_json(&ns, vmlisub_e2e::publisher_list("site", &url, false))
        .await?;
    cluster
        .apply_json(
            &ns,
            json!({
                "apiVersion": "vmli.hepix.org/v1alpha1", "kind": "ImageSubscription",
                "metadata": {"name": "one"},
                "spec": {"subscriptionRef": {"name": "site"}, "identifier": "img-one",
                         "export": {"glance": {"endpoint": stack.glance,
                            "credentialsSecretRef": {"name": "glance-token"}, "method": "Upload",
                            "properties": {"hw_disk_bus": "virtio"}}}},
            }),
        )
        .await?;
    let operator = run.start("operator-glance").await?;
    let list = format!("{ns}/site");

    // Without the opt-in label: refused by name, nothing in Glance.
    let status = wait_image(&cluster, &ns, "export refused", &operator, |s| {
        s["export"]["glance"]["state"] == "Failed"
    })
    .await?;
    let error = status["export"]["glance"]["lastError"]
        .as_str()
        .unwrap_or_default();
    assert!(
        error.starts_with("glance-config") && error.contains("vmli.hepix.org/credentials"),
        "{status:#}"
    );
    assert_eq!(
        exported(&status),
        Some(("False".into(), "ExportFailed".into()))
    );
    assert_eq!(
        status["phase"], "Available",
        "the cache is not affected: {status:#}"
    );
    assert!(stack.images_of(&list).is_empty());
    assert!(!operator.logs().contains(&stack.admin_token));

    // Labelled: exported on the next (requested) reconcile.
    vmlisub_e2e::merge_patch(
        &secrets,
        "glance-token",
        &json!({"metadata": {"labels": {"vmli.hepix.org/credentials": "true"}}}),
    )
    .await?;
    request_reconcile(&cluster, &ns, "ImageSubscription", "one", "opted-in").await?;
    let status = wait_image(&cluster, &ns, "exported", &operator, |s| {
        exported(s) == Some(("True".into(), "Exported".into()))
    })
    .await?;
    let images = stack.images_of(&list);
    assert_eq!(images.len(), 1, "{images:#?}");
    let first = &images[0];
    assert_eq!(status["export"]["glance"]["imageId"], first["id"]);
    assert_eq!(status["export"]["glance"]["method"], "upload");
    assert_eq!(first["os_hash_value"], sha512_hex(&v1).as_str());
    assert_eq!(first["hw_disk_bus"], "virtio");
    assert_eq!(first["vmli_identifier"], "img-one");

    // Version 2: the new image is exported, the old one hidden.
    let _ = publish("2", &v2)?;
    request_reconcile(&cluster, &ns, "ImageListSubscription", "site", "v2").await?;
    let v2_sha = sha512_hex(&v2);
    let status = wait_image(&cluster, &ns, "version 2 exported", &operator, |s| {
        s["export"]["glance"]["digest"] == format!("sha512:{v2_sha}").as_str()
            && s["export"]["glance"]["state"] == "Exported"
    })
    .await?;
    let images = stack.images_of(&list);
    assert_eq!(images.len(), 2, "{images:#?}");
    for image in &images {
        if image["id"] == first["id"] {
            assert_eq!(image["os_hidden"], true, "{image:#}");
        } else {
            assert_eq!(image["id"], status["export"]["glance"]["imageId"]);
            assert_eq!(image["os_hash_value"], v2_sha.as_str());
            assert_eq!(image["os_hidden"], false);
        }
    }

    let mut operator = operator;
    operator.terminate(Duration::from_secs(10)).await?;
    uninstall_chart_rbac(&cluster, &release).await?;
    cluster.delete_namespace(&ns).await?;
    Ok(())
}
