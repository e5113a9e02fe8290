//! The generated vmlisub CRDs (crds/vmlisub.yaml) on the real API server:
//! they install and become Established, the schema defaults apply, and the
//! structural and CEL validations refuse bad manifests.

use anyhow::{Result, ensure};
use kube::api::{Api, DynamicObject, GroupVersionKind, Patch, PatchParams};
use kube::discovery::ApiResource;
use serde_json::json;
use vmlisub_e2e::{Cluster, cluster_or_skip, crate_path, status_code};

fn api(cluster: &Cluster, ns: &str, kind: &str) -> Api<DynamicObject> {
    let gvk = GroupVersionKind::gvk("vmli.hepix.org", "v1alpha1", kind);
    Api::namespaced_with(cluster.client(), ns, &ApiResource::from_gvk(&gvk))
}

async fn apply(
    api: &Api<DynamicObject>,
    manifest: serde_json::Value,
) -> Result<DynamicObject, kube::Error> {
    let obj: DynamicObject = serde_json::from_value(manifest).map_err(kube::Error::SerdeError)?;
    let name = obj.metadata.name.clone().unwrap_or_default();
    api.patch(
        &name,
        &PatchParams::apply("vmlisub-e2e").force(),
        &Patch::Apply(&obj),
    )
    .await
}

#[tokio::test]
async fn vmlisub_crds_install_default_and_validate() -> Result<()> {
    let cluster = cluster_or_skip!();
    let crds = cluster
        .apply_crds(crate_path("../crds/vmlisub.yaml"))
        .await?;
    ensure!(crds.len() == 3, "expected 3 CRDs, got {}", crds.len());
    let ns = cluster.create_namespace("crds").await?;

    let endorsers = api(&cluster, &ns, "Endorser");
    apply(&endorsers, json!({
        "apiVersion": "vmli.hepix.org/v1alpha1", "kind": "Endorser",
        "metadata": {"name": "cernvm"},
        "spec": {"credentials": [{
            "subject": "/DC=ch/DC=cern/OU=Organic Units/OU=Users/CN=buncic/CN=379010/CN=Predrag Buncic",
            "issuer": "/DC=ch/DC=cern/CN=CERN Trusted Certification Authority"}]}
    })).await?;
    let bad_dn = apply(
        &endorsers,
        json!({
            "apiVersion": "vmli.hepix.org/v1alpha1", "kind": "Endorser",
            "metadata": {"name": "bad"},
            "spec": {"credentials": [{"subject": "CN=not one-line", "issuer": "/CN=x"}]}
        }),
    )
    .await;
    ensure!(
        bad_dn.as_ref().err().and_then(status_code) == Some(422),
        "DN shape not validated: {bad_dn:?}"
    );

    let lists = api(&cluster, &ns, "ImageListSubscription");
    let list = apply(&lists, json!({
        "apiVersion": "vmli.hepix.org/v1alpha1", "kind": "ImageListSubscription",
        "metadata": {"name": "cernvm"},
        "spec": {"url": "https://cernvm.example.org/image.list", "endorsers": [{"name": "cernvm"}]}
    })).await?;
    ensure!(
        list.data["spec"]["interval"] == "6h",
        "interval not defaulted: {:?}",
        list.data["spec"]
    );
    ensure!(
        list.data["spec"]["imagePolicy"] == "Manual",
        "imagePolicy not defaulted"
    );
    // Artifacts are not public unless the subscription says so.
    ensure!(
        list.data["spec"]["publicArtifacts"] == false,
        "publicArtifacts not defaulted to false"
    );
    for (field, value) in [
        ("url", json!("ftp://x/y")),
        ("interval", json!("6 hours")),
        // Floors and bounds (CEL on the real API server).
        ("interval", json!("1ms")),
        ("interval", json!("59s")),
        ("timeout", json!("500ms")),
        ("timeout", json!("2h")),
        ("imageSelector", json!({"titlePattern": "a".repeat(257)})),
    ] {
        let mut spec = json!({"url": "https://x/y"});
        spec[field] = value;
        let refused = apply(
            &lists,
            json!({
                "apiVersion": "vmli.hepix.org/v1alpha1", "kind": "ImageListSubscription",
                "metadata": {"name": "bad"}, "spec": spec
            }),
        )
        .await;
        ensure!(
            refused.as_ref().err().and_then(status_code) == Some(422),
            "{field} not validated: {refused:?}"
        );
    }

    // The bounds themselves are accepted.
    apply(
        &lists,
        json!({
            "apiVersion": "vmli.hepix.org/v1alpha1", "kind": "ImageListSubscription",
            "metadata": {"name": "edges"},
            "spec": {"url": "https://x/y", "interval": "1m", "timeout": "1s"}
        }),
    )
    .await?;

    let images = api(&cluster, &ns, "ImageSubscription");
    apply(&images, json!({
        "apiVersion": "vmli.hepix.org/v1alpha1", "kind": "ImageSubscription",
        "metadata": {"name": "cernvm-4"},
        "spec": {"subscriptionRef": {"name": "cernvm"}, "identifier": "858a817e-0ca2-473f-89d3-d5bdfc51968e"}
    })).await?;
    let both = apply(&images, json!({
        "apiVersion": "vmli.hepix.org/v1alpha1", "kind": "ImageSubscription",
        "metadata": {"name": "both"},
        "spec": {"subscriptionRef": {"name": "cernvm"}, "identifier": "a", "sha512": "a".repeat(128)}
    })).await;
    let message = format!("{both:?}");
    ensure!(
        both.as_ref().err().and_then(status_code) == Some(422)
            && message.contains("exactly one of identifier and sha512"),
        "CEL rule not enforced: {message}"
    );
    let neither = apply(
        &images,
        json!({
            "apiVersion": "vmli.hepix.org/v1alpha1", "kind": "ImageSubscription",
            "metadata": {"name": "neither"}, "spec": {"subscriptionRef": {"name": "cernvm"}}
        }),
    )
    .await;
    ensure!(
        neither.as_ref().err().and_then(status_code) == Some(422),
        "CEL rule not enforced: {neither:?}"
    );
    let bad_sum = apply(&images, json!({
        "apiVersion": "vmli.hepix.org/v1alpha1", "kind": "ImageSubscription",
        "metadata": {"name": "badsum"}, "spec": {"subscriptionRef": {"name": "cernvm"}, "sha512": "xyz"}
    })).await;
    ensure!(
        bad_sum.as_ref().err().and_then(status_code) == Some(422),
        "sha512 not validated: {bad_sum:?}"
    );

    // kubectl: distinct short names, Ready (and with -o wide the Ready
    // message and Suspended) on every kind, and `explain` has a word for
    // the kinds and their fields.
    for (short, columns) in [
        ("endo", &["READY", "MESSAGE", "CREDENTIALS"][..]),
        (
            "ils",
            &["READY", "VERSION", "IMAGES", "SUSPENDED", "MESSAGE"][..],
        ),
        (
            "imgsub",
            &["READY", "PHASE", "SIZE", "SUSPENDED", "MESSAGE"][..],
        ),
    ] {
        let out = vmlisub_e2e::kubectl(&["get", short, "-n", &ns, "-o", "wide"], None)?;
        let header = out.stdout.lines().next().unwrap_or_default().to_string();
        for column in columns {
            ensure!(
                header.contains(column),
                "{short}: no {column} in {header:?}"
            );
        }
    }
    let explained = vmlisub_e2e::eventually(
        std::time::Duration::from_secs(30),
        "kubectl explain to know the CRDs",
        || async {
            Ok(vmlisub_e2e::kubectl(
                &["explain", "imagelistsubscriptions.status.artifact.size"],
                None,
            )
            .ok()
            .filter(|out| out.stdout.contains("Size in bytes"))
            .map(|out| out.stdout))
        },
    )
    .await?;
    ensure!(explained.contains("Size in bytes"), "{explained}");
    let kind = vmlisub_e2e::kubectl(&["explain", "endorsers"], None)?.stdout;
    ensure!(
        kind.contains("An Endorser: the certificate identities")
            && !kind.contains("Auto-generated"),
        "{kind}"
    );
    cluster.delete_namespace(&ns).await?;
    Ok(())
}
