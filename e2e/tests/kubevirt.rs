//! The KubeVirt export on the real control plane, with KubeVirt CDI's own
//! CRDs (v1.66.0, from `../shared/testdata/kubevirt-cdi`, applied in place)
//! so that the API server validates every DataVolume and DataSource the
//! operator writes exactly as a cluster with CDI would.
//!
//! What is real: the API server (CRD validation, status subresource,
//! ownerReferences), the garbage collector of kube-controller-manager, the
//! operator binary with the chart's RBAC, the signed lists and the
//! download. What the test plays: CDI's importer, and only by doing what
//! CDI does to a DataVolume: patching its status (phase ImportScheduled,
//! ImportInProgress, Succeeded; conditions Bound, Ready, Running;
//! `claimName`) and creating the PVC it fills, owned by the DataVolume.
//!
//! Both exports on one ImageSubscription (`spec.export.kubevirt` and
//! `spec.export.glance`, the latter against the real Keystone and Glance of
//! operator/tests/support/openstack.rs): the one `Exported` condition stays
//! not True, with KubeVirt's reason and both messages, while Glance has the
//! image and the DataVolume is still importing, and turns True only once
//! CDI's import has succeeded too.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../../operator/tests/support/live.rs"]
#[allow(dead_code)]
mod live;
#[path = "../../operator/tests/support/openstack.rs"]
#[allow(dead_code)]
mod openstack;

use std::time::Duration;

use anyhow::{Context as _, Result};
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Secret};
use kube::api::{Api, DeleteParams, DynamicObject, GroupVersionKind, ListParams};
use kube::discovery::ApiResource;
use serde_json::{Value, json};
use sha2::Digest as _;
use vmlisub_e2e::operator::{OperatorRun, Publisher};
use vmlisub_e2e::{Cluster, Process, eventually, uninstall_chart_rbac};

const LIST_ID: &str = "6a0e7c52-9a41-4d1e-b6a0-5c2d8e9f1a02";
const WAIT: Duration = Duration::from_secs(60);

fn vmli(kind: &str, plural: &str) -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("vmli.hepix.org", "v1alpha1", kind),
        plural,
    )
}

fn cdi(kind: &str, plural: &str) -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("cdi.kubevirt.io", "v1beta1", kind),
        plural,
    )
}

/// A qcow2 image: a v3 header saying `virtual` bytes (no backing file, no
/// feature bits, so Glance's format inspector accepts it), then `fill`.
fn qcow2(virtual_size: u64, fill: u8) -> Vec<u8> {
    let mut image = vec![fill; 20_000];
    image[..512].fill(0);
    image[..4].copy_from_slice(b"QFI\xfb");
    image[4..8].copy_from_slice(&3u32.to_be_bytes());
    image[20..24].copy_from_slice(&16u32.to_be_bytes());
    image[24..32].copy_from_slice(&virtual_size.to_be_bytes());
    image[96..100].copy_from_slice(&4u32.to_be_bytes());
    image[100..104].copy_from_slice(&104u32.to_be_bytes());
    image
}

fn sha512_hex(bytes: &[u8]) -> String {
    sha2::Sha512::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn condition<'a>(status: &'a Value, type_: &str) -> Option<&'a Value> {
    status["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == type_)
}

fn exported_is(status: &Value, value: &str, reason: &str) -> bool {
    condition(status, "Exported").is_some_and(|c| c["status"] == value && c["reason"] == reason)
}

struct Test {
    cluster: Cluster,
    ns: String,
    images: Api<DynamicObject>,
    lists: Api<DynamicObject>,
    data_volumes: Api<DynamicObject>,
    data_sources: Api<DynamicObject>,
    pvcs: Api<PersistentVolumeClaim>,
}

/// vmlisub's CRDs and CDI's (used in place from `../shared`).
async fn install_crds(cluster: &Cluster) -> Result<()> {
    cluster
        .apply_crds(vmlisub_e2e::repo_path("crds/vmlisub.yaml"))
        .await?;
    let cdi_dir = vmlisub_e2e::repo_path("../shared/testdata/kubevirt-cdi");
    for crd in ["datavolume-crd.yaml", "datasource-crd.yaml"] {
        let path = cdi_dir.join(crd);
        anyhow::ensure!(
            path.exists(),
            "CDI's CRDs are expected at {} (third-party test data, used in place)",
            path.display()
        );
        cluster.apply_crds(&path).await?;
    }
    Ok(())
}

impl Test {
    /// The CRDs, a fresh namespace `vmlisub-e2e-<prefix>-xxxxx` and the APIs
    /// in it.
    async fn new(cluster: Cluster, prefix: &str) -> Result<Test> {
        install_crds(&cluster).await?;
        let ns = cluster.create_namespace(prefix).await?;
        let namespaced =
            |resource: &ApiResource| Api::namespaced_with(cluster.client(), &ns, resource);
        Ok(Test {
            images: namespaced(&vmli("ImageSubscription", "imagesubscriptions")),
            lists: namespaced(&vmli("ImageListSubscription", "imagelistsubscriptions")),
            data_volumes: namespaced(&cdi("DataVolume", "datavolumes")),
            data_sources: namespaced(&cdi("DataSource", "datasources")),
            pvcs: Api::namespaced(cluster.client(), &ns),
            ns: ns.clone(),
            cluster,
        })
    }

    /// Server-side applies `doc` in the test's namespace.
    async fn apply(&self, doc: Value) -> Result<()> {
        let obj: DynamicObject = serde_json::from_value(doc)?;
        self.cluster.apply_dynamic(&obj, Some(&self.ns)).await?;
        Ok(())
    }

    /// Asks for a reconcile of the ImageListSubscription `site` (the
    /// annotation Flux's `reconcile` sets).
    async fn refresh(&self, token: &str) -> Result<()> {
        vmlisub_e2e::merge_patch(
            &self.lists,
            "site",
            &json!({"metadata": {"annotations": {"reconcile.fluxcd.io/requestedAt": token}}}),
        )
        .await?;
        Ok(())
    }

    /// Creates a Secret from `doc` (a JSON Secret without apiVersion/kind).
    async fn create_secret(&self, doc: Value) -> Result<()> {
        let secrets: Api<Secret> = Api::namespaced(self.cluster.client(), &self.ns);
        vmlisub_e2e::create(&secrets, &serde_json::from_value(doc)?).await?;
        Ok(())
    }

    async fn image_status(&self, name: &str) -> Result<Value> {
        Ok(self
            .images
            .get(name)
            .await?
            .data
            .get("status")
            .cloned()
            .unwrap_or(Value::Null))
    }

    async fn wait_image(
        &self,
        name: &str,
        what: &str,
        operator: &Process,
        check: impl Fn(&Value) -> bool,
    ) -> Result<Value> {
        let result = eventually(WAIT, what, || async {
            let status = self.image_status(name).await?;
            Ok(check(&status).then_some(status))
        })
        .await;
        if result.is_err() {
            eprintln!("--- operator log ---\n{}", operator.logs());
            eprintln!("--- {name} ---\n{:#}", self.image_status(name).await?);
        }
        result
    }

    /// The DataVolume of `sha512` (owned by the export), once it exists.
    async fn wait_data_volume(&self, sha512: &str, operator: &Process) -> Result<DynamicObject> {
        let what = format!("a DataVolume for sha512:{}", &sha512[..12]);
        let result = eventually(WAIT, &what, || async {
            let list = self
                .data_volumes
                .list(&ListParams::default().labels("vmli.hepix.org/export=kubevirt"))
                .await?;
            Ok(list.items.into_iter().find(|dv| {
                dv.metadata
                    .annotations
                    .as_ref()
                    .and_then(|a| a.get("vmli.hepix.org/sha512"))
                    .is_some_and(|s| s == sha512)
            }))
        })
        .await;
        if result.is_err() {
            eprintln!("--- operator log ---\n{}", operator.logs());
        }
        result
    }

    async fn data_volume_names(&self) -> Result<Vec<String>> {
        let mut names: Vec<String> = self
            .data_volumes
            .list(&ListParams::default())
            .await?
            .items
            .into_iter()
            .filter_map(|dv| dv.metadata.name)
            .collect();
        names.sort();
        Ok(names)
    }

    /// Waits until the DataSource's `spec.source` is `source`.
    async fn wait_source(&self, name: &str, source: Value, operator: &Process) -> Result<()> {
        let what = format!("DataSource {name} source {source}");
        let result = eventually(WAIT, &what, || async {
            let ds = match self.data_sources.get_opt(name).await? {
                Some(ds) => ds,
                None => return Ok(None),
            };
            Ok((ds.data["spec"]["source"] == source).then_some(()))
        })
        .await;
        if result.is_err() {
            eprintln!("--- operator log ---\n{}", operator.logs());
        }
        result
    }

    /// Plays CDI's importer for `dv`: the phases and conditions CDI's
    /// DataVolume controller writes, the PVC it creates (owned by the
    /// DataVolume, as CDI makes it), and `Succeeded`.
    async fn play_cdi_import(&self, dv: &DynamicObject) -> Result<String> {
        let name = dv.metadata.name.clone().context("DataVolume name")?;
        let uid = dv.metadata.uid.clone().context("DataVolume uid")?;
        let at = "2026-01-01T00:00:00Z";
        let cond = |type_: &str, status: &str, reason: &str| {
            json!({"type": type_, "status": status, "reason": reason, "message": "",
                   "lastTransitionTime": at, "lastHeartbeatTime": at})
        };
        let pvc = PersistentVolumeClaim {
            metadata: kube::api::ObjectMeta {
                name: Some(name.clone()),
                owner_references: Some(vec![
                    k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference {
                        api_version: "cdi.kubevirt.io/v1beta1".into(),
                        kind: "DataVolume".into(),
                        name: name.clone(),
                        uid,
                        controller: Some(true),
                        block_owner_deletion: Some(true),
                    },
                ]),
                ..Default::default()
            },
            spec: Some(k8s_openapi::api::core::v1::PersistentVolumeClaimSpec {
                access_modes: Some(vec!["ReadWriteOnce".into()]),
                resources: Some(k8s_openapi::api::core::v1::VolumeResourceRequirements {
                    requests: Some(
                        [(
                            "storage".to_string(),
                            k8s_openapi::apimachinery::pkg::api::resource::Quantity(
                                dv.data["spec"]["storage"]["resources"]["requests"]["storage"]
                                    .as_str()
                                    .unwrap_or("1Mi")
                                    .into(),
                            ),
                        )]
                        .into(),
                    ),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        };
        vmlisub_e2e::create(&self.pvcs, &pvc).await?;
        for status in [
            json!({"phase": "ImportScheduled", "claimName": name, "progress": "N/A",
                   "conditions": [cond("Bound", "False", "Pending"), cond("Ready", "False", "ImportScheduled"), cond("Running", "False", "")]}),
            json!({"phase": "ImportInProgress", "claimName": name, "progress": "47.00%",
                   "conditions": [cond("Bound", "True", "Bound"), cond("Ready", "False", "TransferRunning"), cond("Running", "True", "Pod is running")]}),
            json!({"phase": "Succeeded", "claimName": name, "progress": "100.0%",
                   "conditions": [cond("Bound", "True", "Bound"), cond("Ready", "True", ""), cond("Running", "False", "Completed")]}),
        ] {
            vmlisub_e2e::merge_patch_status(&self.data_volumes, &name, &json!({"status": status}))
                .await?;
        }
        Ok(name)
    }
}

/// The site around the operator: a publisher, a PKI, the chart's RBAC and
/// the operator's settings, plus the Endorser `publisher` and the
/// ImageListSubscription `site` of the published list.
struct Site {
    dir: tempfile::TempDir,
    pki: live::LivePki,
    publisher: Publisher,
    release: String,
    run: OperatorRun,
}

impl Site {
    async fn new(t: &Test) -> Result<Site> {
        let dir = tempfile::Builder::new()
            .prefix(&format!("{}-", t.ns))
            .tempdir()?;
        let pki_dir = dir.path().join("pki");
        std::fs::create_dir_all(&pki_dir)?;
        let pki = live::LivePki::new(&pki_dir);
        let publisher = Publisher::start(&dir.path().join("www"))?;
        let (run, release) =
            OperatorRun::as_chart(&t.cluster, &t.ns, dir.path(), &pki.ca_dir, false).await?;
        Ok(Site {
            dir,
            pki,
            publisher,
            release,
            run,
        })
    }

    /// Publishes version `version` of the signed list with `images`
    /// (identifier, bytes).
    fn publish(&self, version: &str, images: &[(&str, &[u8])]) -> Result<()> {
        let entries: Vec<(String, String, &[u8])> = images
            .iter()
            .map(|(id, bytes)| Ok((id.to_string(), self.publisher.put(id, bytes)?, *bytes)))
            .collect::<Result<_>>()?;
        let refs: Vec<(&str, &str, &[u8])> = entries
            .iter()
            .map(|(id, uri, bytes)| (id.as_str(), uri.as_str(), *bytes))
            .collect();
        self.publisher
            .put("image.list", &self.pki.list(LIST_ID, version, &refs))?;
        Ok(())
    }

    /// The Endorser `publisher` and the ImageListSubscription `site`.
    async fn subscribe(&self, t: &Test) -> Result<()> {
        t.apply(vmlisub_e2e::publisher_endorser(
            &self.pki.subject,
            &self.pki.issuer,
        ))
        .await?;
        t.apply(json!({
            "apiVersion": "vmli.hepix.org/v1alpha1", "kind": "ImageListSubscription",
            "metadata": {"name": "site"},
            "spec": {"url": format!("{}/image.list", self.publisher.url), "interval": "1h",
                     "endorsers": [{"name": "publisher"}]},
        }))
        .await
    }

    /// Stops the operator, removes the chart's RBAC and the namespace.
    /// As operator.rs's `Site::finish`: the vmlisub objects go while the
    /// operator runs, so no finalizer is left for a later test's operator.
    async fn tear_down(self, t: Test, mut operator: Process) -> Result<()> {
        let emptied = vmlisub_e2e::delete_vmli_objects(&t.cluster, &t.ns).await;
        if emptied.is_err() {
            eprintln!("--- operator log ---\n{}", operator.logs());
        }
        emptied?;
        operator.terminate(Duration::from_secs(10)).await?;
        uninstall_chart_rbac(&t.cluster, &self.release).await?;
        t.cluster.delete_namespace(&t.ns).await?;
        drop(self.dir);
        Ok(())
    }
}

#[tokio::test]
async fn kubevirt_export_lifecycle_with_cdi_crds() -> Result<()> {
    let cluster = vmlisub_e2e::cluster_or_skip!();
    let t = Test::new(cluster, "kubevirt").await?;
    let ns = t.ns.clone();
    let cluster = &t.cluster;
    let site = Site::new(&t).await?;
    let run = &site.run;
    let publish = |version: &str, images: &[(&str, &[u8])]| site.publish(version, images);
    let refresh = |token: &'static str| t.refresh(token);
    let apply = |doc: Value| t.apply(doc);

    let v1 = qcow2(64 << 20, 1);
    let two = qcow2(8 << 20, 2);
    publish("1", &[("img-one", &v1), ("img-two", &two)])?;
    site.subscribe(&t).await?;
    // The token CDI's importer would send (the operator only names it).
    t.create_secret(json!({
        "metadata": {"name": "vmlisub-token"},
        "stringData": {"authorization": "Authorization: Bearer not-used-here"},
    }))
    .await?;
    // First without the token Secret: the export says what is missing.
    apply(json!({
        "apiVersion": "vmli.hepix.org/v1alpha1", "kind": "ImageSubscription",
        "metadata": {"name": "one"},
        "spec": {"subscriptionRef": {"name": "site"}, "identifier": "img-one",
                 "export": {"kubevirt": {"dataSource": "cernvm"}}},
    }))
    .await?;
    let mut operator = run.start("operator-kubevirt").await?;
    // Logged once CDI's kinds are discovered, after /readyz is served.
    operator
        .wait_for_log("KubeVirt export: on", Duration::from_secs(30))
        .await?;
    t.wait_image("one", "ArtifactTokenMissing", &operator, |s| {
        exported_is(s, "False", "ArtifactTokenMissing")
    })
    .await?;
    assert!(t.data_volume_names().await?.is_empty());

    // With the Secret named: the DataVolume of version 1.
    apply(json!({
        "apiVersion": "vmli.hepix.org/v1alpha1", "kind": "ImageSubscription",
        "metadata": {"name": "one"},
        "spec": {"subscriptionRef": {"name": "site"}, "identifier": "img-one",
                 "export": {"kubevirt": {"dataSource": "cernvm",
                                         "secretExtraHeaders": ["vmlisub-token"],
                                         "storage": {"accessModes": ["ReadWriteOnce"]}}}},
    }))
    .await?;
    let status = t
        .wait_image("one", "importing v1", &operator, |s| {
            exported_is(s, "False", "Importing")
        })
        .await?;
    let artifact = &status["artifact"];
    assert_eq!(artifact["format"], "qcow2");
    assert_eq!(artifact["virtualSize"], 64u64 << 20);
    let sum1 = sha512_hex(&v1);
    let dv1 = t.wait_data_volume(&sum1, &operator).await?;
    let dv1_name = dv1.metadata.name.clone().unwrap();
    assert_eq!(dv1_name, format!("one-{}", &sum1[..12]));
    let http = &dv1.data["spec"]["source"]["http"];
    assert_eq!(http["url"], artifact["url"]);
    assert_eq!(
        http["url"].as_str().unwrap(),
        format!("{}/images/{ns}/site/img-one", run.base_url())
    );
    assert_eq!(http["checksum"], format!("sha512:{sum1}"));
    assert_eq!(http["checksum"], artifact["digest"]);
    assert_eq!(http["secretExtraHeaders"], json!(["vmlisub-token"]));
    assert_eq!(
        dv1.data["spec"]["storage"],
        json!({"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "64Mi"}}})
    );
    let labels = dv1.metadata.labels.clone().unwrap();
    assert_eq!(labels["vmli.hepix.org/list"], "site");
    assert_eq!(labels["vmli.hepix.org/image-subscription"], "one");
    assert_eq!(labels["vmli.hepix.org/sha512-prefix"], &sum1[..16]);
    assert!(labels.contains_key("vmli.hepix.org/version"));
    let owner = &dv1.metadata.owner_references.clone().unwrap()[0];
    let one = t.images.get("one").await?;
    assert_eq!(
        (
            owner.kind.as_str(),
            owner.name.as_str(),
            &owner.uid,
            owner.controller
        ),
        (
            "ImageSubscription",
            "one",
            one.metadata.uid.as_ref().unwrap(),
            Some(true)
        )
    );
    // The DataSource exists, owned, with no source yet.
    t.wait_source("cernvm", json!({}), &operator).await?;
    let ds = t.data_sources.get("cernvm").await?;
    assert_eq!(
        ds.metadata.owner_references.as_ref().unwrap()[0].uid,
        *one.metadata.uid.as_ref().unwrap()
    );

    // CDI imports v1: the DataSource points at its PVC.
    let pvc1 = t.play_cdi_import(&dv1).await?;
    t.wait_source(
        "cernvm",
        json!({"pvc": {"namespace": ns, "name": pvc1}}),
        &operator,
    )
    .await?;
    let status = t
        .wait_image("one", "Exported v1", &operator, |s| {
            exported_is(s, "True", "Exported")
        })
        .await?;
    let export = &status["export"]["kubevirt"];
    assert_eq!(export["phase"], "Published");
    assert_eq!(export["dataSource"], "cernvm");
    assert_eq!(export["pvc"], pvc1);
    assert_eq!(export["dataVolume"], dv1_name);
    assert_eq!(export["digest"], format!("sha512:{sum1}"));

    // Version 2 under the same identifier: a new DataVolume; the
    // DataSource keeps serving v1 until it is imported.
    let v2 = qcow2(64 << 20, 3);
    let sum2 = sha512_hex(&v2);
    publish("2", &[("img-one", &v2), ("img-two", &two)])?;
    refresh("v2").await?;
    let dv2 = t.wait_data_volume(&sum2, &operator).await?;
    let status = t
        .wait_image("one", "importing v2", &operator, |s| {
            exported_is(s, "False", "Importing")
                && s["artifact"]["digest"] == format!("sha512:{sum2}")
        })
        .await?;
    assert_eq!(status["export"]["kubevirt"]["pvc"], pvc1);
    assert_eq!(
        status["export"]["kubevirt"]["importing"],
        dv2.metadata.name.clone().unwrap()
    );
    let pvc2 = t.play_cdi_import(&dv2).await?;
    t.wait_source(
        "cernvm",
        json!({"pvc": {"namespace": ns, "name": pvc2}}),
        &operator,
    )
    .await?;
    t.wait_image("one", "Exported v2", &operator, |s| {
        exported_is(s, "True", "Exported")
    })
    .await?;
    // importsToKeep 2: v1 stays.
    assert_eq!(t.data_volume_names().await?.len(), 2);

    // Version 3: once imported, v1 (the oldest) goes, and the real garbage
    // collector takes its PVC with it.
    let v3 = qcow2(64 << 20, 4);
    let sum3 = sha512_hex(&v3);
    publish("3", &[("img-one", &v3), ("img-two", &two)])?;
    refresh("v3").await?;
    let dv3 = t.wait_data_volume(&sum3, &operator).await?;
    let pvc3 = t.play_cdi_import(&dv3).await?;
    t.wait_source(
        "cernvm",
        json!({"pvc": {"namespace": ns, "name": pvc3}}),
        &operator,
    )
    .await?;
    vmlisub_e2e::wait_deleted(&t.data_volumes, &dv1_name, WAIT).await?;
    vmlisub_e2e::wait_deleted(&t.pvcs, &pvc1, WAIT).await?;
    let mut left = vec![pvc2.clone(), pvc3.clone()];
    left.sort();
    assert_eq!(t.data_volume_names().await?, left);

    // Withdrawal (version 4 drops img-one): Unpublish clears the source,
    // the DataVolumes stay.
    publish("4", &[("img-two", &two)])?;
    refresh("v4").await?;
    t.wait_source("cernvm", json!({}), &operator).await?;
    let status = t
        .wait_image("one", "unpublished", &operator, |s| {
            s["export"]["kubevirt"]["phase"] == "Unpublished"
        })
        .await?;
    let exported = condition(&status, "Exported").unwrap();
    assert_eq!(exported["status"], "False");
    assert_eq!(
        exported["reason"],
        condition(&status, "Ready").unwrap()["reason"]
    );
    assert_eq!(t.data_volume_names().await?, left);

    // The Delete variant: the DataSource and every DataVolume go.
    vmlisub_e2e::merge_patch(
        &t.images,
        "one",
        &json!({"spec": {"export": {"kubevirt": {"onWithdraw": "Delete"}}}}),
    )
    .await?;
    vmlisub_e2e::wait_deleted(&t.data_sources, "cernvm", WAIT).await?;
    for name in &left {
        vmlisub_e2e::wait_deleted(&t.data_volumes, name, WAIT).await?;
    }
    t.wait_image("one", "deleted", &operator, |s| {
        s["export"]["kubevirt"]["phase"] == "Deleted"
    })
    .await?;

    // Deleting an exporting ImageSubscription: the garbage collector
    // removes its DataVolume and DataSource (ownerReferences).
    apply(json!({
        "apiVersion": "vmli.hepix.org/v1alpha1", "kind": "ImageSubscription",
        "metadata": {"name": "two"},
        "spec": {"subscriptionRef": {"name": "site"}, "identifier": "img-two",
                 "export": {"kubevirt": {"secretExtraHeaders": ["vmlisub-token"]}}},
    }))
    .await?;
    let sum_two = sha512_hex(&two);
    let dv_two = t.wait_data_volume(&sum_two, &operator).await?;
    assert_eq!(
        dv_two.data["spec"]["storage"]["resources"]["requests"]["storage"],
        "8Mi"
    );
    let pvc_two = t.play_cdi_import(&dv_two).await?;
    t.wait_source(
        "two",
        json!({"pvc": {"namespace": ns, "name": pvc_two}}),
        &operator,
    )
    .await?;
    t.images.delete("two", &DeleteParams::background()).await?;
    vmlisub_e2e::wait_deleted(&t.images, "two", WAIT).await?;
    vmlisub_e2e::wait_deleted(&t.data_volumes, &pvc_two, WAIT).await?;
    vmlisub_e2e::wait_deleted(&t.data_sources, "two", WAIT).await?;
    vmlisub_e2e::wait_deleted(&t.pvcs, &pvc_two, WAIT).await?;

    // AutoSubscribe: the list's imageExport is copied onto the
    // ImageSubscriptions it creates, and kept in line when it changes.
    let image_export = |keep: u32| json!({"kubevirt": {"importsToKeep": keep, "secretExtraHeaders": ["vmlisub-token"]}});
    apply(json!({
        "apiVersion": "vmli.hepix.org/v1alpha1", "kind": "ImageListSubscription",
        "metadata": {"name": "auto"},
        "spec": {"url": format!("{}/image.list", site.publisher.url), "interval": "1h",
                 "endorsers": [{"name": "publisher"}], "imagePolicy": "AutoSubscribe",
                 "imageExport": image_export(1)},
    }))
    .await?;
    let owned = "auto-img-two";
    let what = format!("{owned} with the list's export");
    eventually(WAIT, &what, || async {
        let Some(image) = t.images.get_opt(owned).await? else {
            return Ok(None);
        };
        let export = &image.data["spec"]["export"]["kubevirt"];
        Ok((export["importsToKeep"] == 1
            && export["secretExtraHeaders"] == json!(["vmlisub-token"]))
        .then_some(()))
    })
    .await?;
    let dv_auto = t.wait_data_volume(&sum_two, &operator).await?;
    assert_eq!(
        dv_auto.metadata.owner_references.as_ref().unwrap()[0].name,
        owned
    );
    assert_eq!(
        dv_auto.metadata.name.as_deref(),
        Some(format!("{owned}-{}", &sum_two[..12]).as_str())
    );
    vmlisub_e2e::merge_patch(
        &t.lists,
        "auto",
        &json!({"spec": {"imageExport": image_export(3)}}),
    )
    .await?;
    eventually(
        WAIT,
        "the changed imageExport on the owned ImageSubscription",
        || async {
            let image = t.images.get(owned).await?;
            Ok((image.data["spec"]["export"]["kubevirt"]["importsToKeep"] == 3).then_some(()))
        },
    )
    .await?;

    // Events name each step.
    let steps = [
        "DataVolumeCreated",
        "DataSourcePublished",
        "DataVolumeDeleted",
        "DataSourceUnpublished",
        "DataSourceDeleted",
    ];
    cluster
        .events_until(&one, "an Event for each export step", |events| {
            steps
                .iter()
                .all(|step| events.iter().any(|e| e.reason.as_deref() == Some(*step)))
        })
        .await?;

    site.tear_down(t, operator).await
}

/// Both exports on one ImageSubscription: KubeVirt (CDI played as above)
/// and Glance (a real Keystone and Glance). The one `Exported` condition is
/// not True while Glance has the image but the DataVolume is importing
/// (KubeVirt's reason, both messages), and True once both are done.
#[tokio::test]
async fn kubevirt_and_glance_exports_share_one_exported_condition() -> Result<()> {
    let cluster = vmlisub_e2e::cluster_or_skip!();
    let Some(venv) = openstack::venv() else {
        return Ok(());
    };
    let stack = openstack::OpenStack::start(&venv);
    let t = Test::new(cluster, "kubevirt-glance").await?;
    let site = Site::new(&t).await?;
    let bytes = qcow2(64 << 20, 5);
    let sum = sha512_hex(&bytes);
    site.publish("1", &[("img-both", &bytes)])?;
    site.subscribe(&t).await?;
    t.create_secret(json!({
        "metadata": {"name": "vmlisub-token"},
        "stringData": {"authorization": "Authorization: Bearer not-used-here"},
    }))
    .await?;
    t.create_secret(json!({
        "metadata": {"name": "glance-token",
                     "labels": {"vmli.hepix.org/credentials": "true"}},
        "stringData": {"token": stack.admin_token},
    }))
    .await?;
    t.apply(json!({
        "apiVersion": "vmli.hepix.org/v1alpha1", "kind": "ImageSubscription",
        "metadata": {"name": "both"},
        "spec": {"subscriptionRef": {"name": "site"}, "identifier": "img-both",
                 "export": {
                     "kubevirt": {"dataSource": "both-ds",
                                  "secretExtraHeaders": ["vmlisub-token"]},
                     "glance": {"endpoint": stack.glance,
                                "credentialsSecretRef": {"name": "glance-token"},
                                "method": "Upload"}}},
    }))
    .await?;
    let operator = site.run.start("operator-kubevirt-glance").await?;
    let list = format!("{}/site", t.ns);

    // Glance has the image; the DataVolume exists but CDI has not imported
    // it: Exported is not True, with KubeVirt's reason and both messages.
    let dv = t.wait_data_volume(&sum, &operator).await?;
    let status = t
        .wait_image(
            "both",
            "Glance exported, KubeVirt importing",
            &operator,
            |s| {
                s["export"]["glance"]["state"] == "Exported"
                    && condition(s, "Exported")
                        .and_then(|c| c["message"].as_str())
                        .is_some_and(|m| m.contains("; Glance: "))
            },
        )
        .await?;
    let combined_while_importing = |status: &Value| {
        assert_eq!(status["phase"], "Available", "{status:#}");
        assert_eq!(
            status["export"]["glance"]["state"], "Exported",
            "{status:#}"
        );
        let exported = condition(status, "Exported").unwrap();
        assert!(
            exported["status"] == "False" || exported["status"] == "Unknown",
            "Glance alone made Exported {}: {status:#}",
            exported["status"]
        );
        assert_eq!(exported["reason"], "Importing", "{status:#}");
        let message = exported["message"].as_str().unwrap();
        assert!(
            message.starts_with("KubeVirt: ") && message.contains("; Glance: "),
            "{message}"
        );
        assert!(status["export"]["kubevirt"]["pvc"].is_null(), "{status:#}");
    };
    combined_while_importing(&status);
    let images = stack.images_of(&list);
    assert_eq!(images.len(), 1, "{images:#?}");
    let glance_image = images[0].clone();
    assert_eq!(glance_image["status"], "active");
    assert_eq!(glance_image["os_hash_value"], sum.as_str());
    assert_eq!(status["export"]["glance"]["imageId"], glance_image["id"]);
    // And it stays so: another reconcile (Glance already done) changes
    // nothing while the DataVolume has not succeeded.
    vmlisub_e2e::merge_patch(
        &t.images,
        "both",
        &json!({"metadata": {"annotations": {"reconcile.fluxcd.io/requestedAt": "again"}}}),
    )
    .await?;
    tokio::time::sleep(Duration::from_secs(5)).await;
    combined_while_importing(&t.image_status("both").await?);

    // CDI imports: the DataSource points at the PVC and Exported is True,
    // both parts reported.
    let pvc = t.play_cdi_import(&dv).await?;
    t.wait_source(
        "both-ds",
        json!({"pvc": {"namespace": t.ns, "name": pvc}}),
        &operator,
    )
    .await?;
    let status = t
        .wait_image("both", "Exported by both", &operator, |s| {
            exported_is(s, "True", "Exported")
        })
        .await?;
    let exported = condition(&status, "Exported").unwrap();
    let message = exported["message"].as_str().unwrap();
    assert!(
        message.starts_with("KubeVirt: ") && message.contains("; Glance: "),
        "{message}"
    );
    let kubevirt = &status["export"]["kubevirt"];
    assert_eq!(kubevirt["phase"], "Published", "{status:#}");
    assert_eq!(kubevirt["dataSource"], "both-ds");
    assert_eq!(kubevirt["pvc"], pvc);
    assert_eq!(kubevirt["dataVolume"], dv.metadata.name.clone().unwrap());
    assert_eq!(kubevirt["digest"], format!("sha512:{sum}"));
    let glance = &status["export"]["glance"];
    assert_eq!(glance["state"], "Exported", "{status:#}");
    assert_eq!(glance["imageId"], glance_image["id"]);
    assert_eq!(glance["digest"], format!("sha512:{sum}"));
    let images = stack.images_of(&list);
    assert_eq!(images.len(), 1, "{images:#?}");
    assert_eq!(images[0]["id"], glance_image["id"]);
    assert_eq!(images[0]["os_hash_value"], sum.as_str());
    // The list's hv:format (the test lists say raw), not the sniffed qcow2.
    assert_eq!(images[0]["disk_format"], "raw");

    site.tear_down(t, operator).await
}

/// The recipe's objects pass the real API server's validation against
/// vmlisub's and CDI's CRDs (server-side dry run, nothing is stored): the
/// exporting ImageSubscription, the fallback DataVolume, and the
/// VirtualMachine's `dataVolumeTemplates` entry as the DataVolume KubeVirt
/// makes from it (no KubeVirt CRD here, so the VM itself is checked as a
/// document by `e2e/tests/packaging.rs`).
#[tokio::test]
async fn kubevirt_recipe_objects_pass_crd_validation() -> Result<()> {
    let cluster = vmlisub_e2e::cluster_or_skip!();
    install_crds(&cluster).await?;
    let ns = cluster.create_namespace("kubevirt-recipe").await?;
    let dry_run = kube::api::PostParams {
        dry_run: true,
        ..Default::default()
    };
    let recipe = |name: &str| -> Result<Vec<Value>> {
        vmlisub_e2e::read_yaml_documents(vmlisub_e2e::repo_path(format!("docs/recipes/{name}")))
    };
    let in_ns = |mut doc: Value| {
        doc["metadata"]["namespace"] = json!(ns);
        serde_json::from_value::<DynamicObject>(doc)
    };
    let images: Api<DynamicObject> = Api::namespaced_with(
        cluster.client(),
        &ns,
        &vmli("ImageSubscription", "imagesubscriptions"),
    );
    let data_volumes: Api<DynamicObject> =
        Api::namespaced_with(cluster.client(), &ns, &cdi("DataVolume", "datavolumes"));
    for doc in recipe("kubevirt-imagesubscription.yaml")? {
        images
            .create(&dry_run, &in_ns(doc)?)
            .await
            .context("kubevirt-imagesubscription.yaml")?;
    }
    for doc in recipe("kubevirt-datavolume.yaml")? {
        data_volumes
            .create(&dry_run, &in_ns(doc)?)
            .await
            .context("kubevirt-datavolume.yaml")?;
    }
    let vm = recipe("kubevirt-vm.yaml")?
        .into_iter()
        .find(|d| d["kind"] == "VirtualMachine")
        .context("no VirtualMachine")?;
    let templates = vm["spec"]["dataVolumeTemplates"]
        .as_array()
        .context("no dataVolumeTemplates")?;
    anyhow::ensure!(!templates.is_empty());
    for template in templates {
        let mut dv = template.clone();
        dv["apiVersion"] = json!("cdi.kubevirt.io/v1beta1");
        dv["kind"] = json!("DataVolume");
        data_volumes
            .create(&dry_run, &in_ns(dv)?)
            .await
            .context("kubevirt-vm.yaml dataVolumeTemplates entry")?;
    }
    // And the API server does refuse what CDI's schema does not know.
    let mut bad = templates[0].clone();
    bad["apiVersion"] = json!("cdi.kubevirt.io/v1beta1");
    bad["kind"] = json!("DataVolume");
    bad["spec"]["sourceRef"] = json!("cernvm-4");
    let refused = data_volumes.create(&dry_run, &in_ns(bad)?).await;
    anyhow::ensure!(
        refused.as_ref().err().and_then(vmlisub_e2e::status_code) == Some(422),
        "a malformed sourceRef was accepted: {refused:?}"
    );
    cluster.delete_namespace(&ns).await?;
    Ok(())
}
