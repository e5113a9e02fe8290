#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;
use crate::api::export::KubeVirtStorage;

const NS: &str = "vms";
const IMG: &str = "cernvm";

fn hex(c: char) -> String {
    std::iter::repeat_n(c, 128).collect()
}

fn verified(c: char) -> ImageState {
    ImageState::Available(Verified {
        sha512: hex(c),
        url: format!("http://vmlisub:8080/images/{NS}/site/img-{c}"),
        version: format!("v{c}"),
        virtual_size: Some(10 * MIB + 1),
    })
}

fn dv(c: char, phase: &str, created: &str) -> ObservedDataVolume {
    ObservedDataVolume {
        name: data_volume_name(IMG, &hex(c)),
        sha512: hex(c),
        created: created.to_string(),
        phase: phase.to_string(),
        claim_name: (phase == "Succeeded").then(|| data_volume_name(IMG, &hex(c))),
        deleting: false,
        message: String::new(),
    }
}

fn pointing_at(c: Option<char>) -> Option<ObservedDataSource> {
    Some(ObservedDataSource {
        ours: true,
        pvc: c.map(|c| (NS.to_string(), data_volume_name(IMG, &hex(c)))),
    })
}

fn input<'a>(
    config: &'a KubeVirtExport,
    image: ImageState,
    dvs: Vec<ObservedDataVolume>,
    ds: Option<ObservedDataSource>,
) -> ExportInput<'a> {
    ExportInput {
        cdi_installed: true,
        config,
        namespace: NS,
        image_name: IMG,
        image,
        needs_token: false,
        data_volumes: dvs,
        data_source: ds,
    }
}

fn name(c: char) -> String {
    data_volume_name(IMG, &hex(c))
}

fn deleted(plan: &ExportPlan) -> Vec<String> {
    plan.actions
        .iter()
        .filter_map(|a| match a {
            ExportAction::DeleteDataVolume(n) => Some(n.clone()),
            _ => None,
        })
        .collect()
}

#[test]
fn without_cdi_nothing_happens_and_the_condition_says_why() {
    let config = KubeVirtExport::default();
    let mut input = input(&config, verified('a'), vec![], None);
    input.cdi_installed = false;
    let plan = plan(&input);
    assert!(plan.actions.is_empty());
    assert!(!plan.condition.ok);
    assert_eq!(plan.condition.reason, "CDINotInstalled");
    assert_eq!(plan.status.phase, "Unavailable");
    assert_eq!(plan.status.data_source, IMG);
}

#[test]
fn a_foreign_data_source_is_never_touched() {
    let config = KubeVirtExport {
        data_source: Some("shared".into()),
        ..KubeVirtExport::default()
    };
    let plan = plan(&input(
        &config,
        verified('a'),
        vec![],
        Some(ObservedDataSource {
            ours: false,
            pvc: None,
        }),
    ));
    assert!(plan.actions.is_empty());
    assert_eq!(plan.condition.reason, "DataSourceConflict");
    assert_eq!(plan.status.data_source, "shared");
}

#[test]
fn first_publication_creates_the_data_volume_and_an_empty_data_source() {
    let config = KubeVirtExport::default();
    let plan = plan(&input(&config, verified('a'), vec![], None));
    assert_eq!(
        plan.actions,
        vec![
            ExportAction::CreateDataVolume(NewDataVolume {
                name: name('a'),
                sha512: hex('a'),
                url: format!("http://vmlisub:8080/images/{NS}/site/img-a"),
                version: "va".into(),
                size: "11Mi".into(),
            }),
            ExportAction::CreateDataSource { pvc: None },
        ]
    );
    assert_eq!(plan.condition.reason, "Importing");
    assert_eq!(plan.status.phase, "Importing");
    assert_eq!(plan.status.importing, name('a'));
    assert!(plan.status.pvc.is_empty());
}

#[test]
fn an_import_in_progress_waits() {
    let config = KubeVirtExport::default();
    for phase in ["", "Pending", "ImportScheduled", "ImportInProgress"] {
        let plan = plan(&input(
            &config,
            verified('a'),
            vec![dv('a', phase, "1")],
            pointing_at(None),
        ));
        assert!(plan.actions.is_empty(), "{phase}: {:?}", plan.actions);
        assert_eq!(plan.condition.reason, "Importing");
        assert!(!plan.condition.ok);
    }
}

#[test]
fn success_points_the_data_source_at_the_pvc_once() {
    let config = KubeVirtExport::default();
    let first = plan(&input(
        &config,
        verified('a'),
        vec![dv('a', "Succeeded", "1")],
        pointing_at(None),
    ));
    assert_eq!(
        first.actions,
        vec![ExportAction::PointDataSource {
            pvc: Some(name('a'))
        }]
    );
    assert!(first.condition.ok);
    assert_eq!(first.condition.reason, "Exported");
    assert_eq!(first.status.phase, "Published");
    assert_eq!(first.status.pvc, name('a'));
    assert_eq!(first.status.data_volume, name('a'));
    assert_eq!(first.status.digest, format!("sha512:{}", hex('a')));
    assert!(first.status.importing.is_empty());
    // Done: nothing more to do.
    let again = plan(&input(
        &config,
        verified('a'),
        vec![dv('a', "Succeeded", "1")],
        pointing_at(Some('a')),
    ));
    assert!(again.actions.is_empty());
    assert_eq!(again.condition, first.condition);
    // A missing DataSource is created already pointing.
    let created = plan(&input(
        &config,
        verified('a'),
        vec![dv('a', "Succeeded", "1")],
        None,
    ));
    assert_eq!(
        created.actions,
        vec![ExportAction::CreateDataSource {
            pvc: Some(name('a'))
        }]
    );
}

#[test]
fn a_custom_claim_name_is_what_the_data_source_points_at() {
    let config = KubeVirtExport::default();
    let mut imported = dv('a', "Succeeded", "1");
    imported.claim_name = Some("other-pvc".into());
    let plan = plan(&input(
        &config,
        verified('a'),
        vec![imported],
        pointing_at(None),
    ));
    assert_eq!(
        plan.actions,
        vec![ExportAction::PointDataSource {
            pvc: Some("other-pvc".into())
        }]
    );
}

#[test]
fn a_new_version_imports_while_the_old_one_is_served() {
    let config = KubeVirtExport::default();
    let plan = plan(&input(
        &config,
        verified('b'),
        vec![dv('a', "Succeeded", "1")],
        pointing_at(Some('a')),
    ));
    assert!(matches!(
        plan.actions.as_slice(),
        [ExportAction::CreateDataVolume(new)] if new.name == name('b')
    ));
    assert_eq!(plan.condition.reason, "Importing");
    assert!(plan.condition.message.contains(&name('a')));
    assert_eq!(plan.status.pvc, name('a'));
    assert_eq!(plan.status.importing, name('b'));
}

#[test]
fn after_the_new_version_succeeds_the_data_source_moves_and_the_oldest_go() {
    let config = KubeVirtExport::default(); // keep 2
    let plan = plan(&input(
        &config,
        verified('d'),
        vec![
            dv('b', "Succeeded", "2"),
            dv('a', "Succeeded", "1"),
            dv('d', "Succeeded", "4"),
            dv('c', "Succeeded", "3"),
        ],
        pointing_at(Some('c')),
    ));
    assert_eq!(
        plan.actions,
        vec![
            ExportAction::PointDataSource {
                pvc: Some(name('d'))
            },
            ExportAction::DeleteDataVolume(name('b')),
            ExportAction::DeleteDataVolume(name('a')),
        ]
    );
    assert!(plan.condition.ok);
    let keep_one = KubeVirtExport {
        imports_to_keep: Some(1),
        ..KubeVirtExport::default()
    };
    let plan = super::plan(&input(
        &keep_one,
        verified('b'),
        vec![dv('a', "Succeeded", "1"), dv('b', "Succeeded", "2")],
        pointing_at(Some('b')),
    ));
    assert_eq!(
        plan.actions,
        vec![ExportAction::DeleteDataVolume(name('a'))]
    );
}

#[test]
fn keep_counts_the_served_and_the_importing_one_and_never_deletes_them() {
    let keep_one = KubeVirtExport {
        imports_to_keep: Some(1),
        ..KubeVirtExport::default()
    };
    // Served 'b', importing 'c', old 'a': only 'a' goes.
    let plan = plan(&input(
        &keep_one,
        verified('c'),
        vec![
            dv('a', "Succeeded", "1"),
            dv('b', "Succeeded", "2"),
            dv('c', "ImportInProgress", "3"),
        ],
        pointing_at(Some('b')),
    ));
    assert_eq!(deleted(&plan), vec![name('a')]);
    // The served one is older than an abandoned import: still kept.
    let keep_two = KubeVirtExport::default();
    let plan = super::plan(&input(
        &keep_two,
        verified('d'),
        vec![
            dv('a', "Succeeded", "1"),
            dv('b', "ImportInProgress", "2"),
            dv('c', "Failed", "3"),
            dv('d', "ImportScheduled", "4"),
        ],
        pointing_at(Some('a')),
    ));
    assert_eq!(deleted(&plan), vec![name('c'), name('b')]);
}

#[test]
fn a_failed_import_is_reported_and_not_recreated() {
    let config = KubeVirtExport::default();
    let mut failed = dv('a', "Failed", "1");
    failed.message = "checksum mismatch".into();
    let plan = plan(&input(
        &config,
        verified('a'),
        vec![failed],
        pointing_at(None),
    ));
    assert!(plan.actions.is_empty());
    assert_eq!(plan.condition.reason, "ImportFailed");
    assert!(plan.condition.message.contains("checksum mismatch"));
    assert_eq!(plan.status.phase, "Failed");
}

#[test]
fn a_data_volume_being_deleted_is_waited_for_not_recreated_over() {
    let config = KubeVirtExport::default();
    let mut going = dv('a', "Succeeded", "1");
    going.deleting = true;
    let plan = plan(&input(
        &config,
        verified('a'),
        vec![going],
        pointing_at(None),
    ));
    assert!(plan.actions.is_empty(), "{:?}", plan.actions);
    assert_eq!(plan.condition.reason, "Importing");
    assert!(plan.condition.message.contains("deletion"));
}

#[test]
fn what_blocks_a_data_volume_is_said() {
    let mut no_url = verified('a');
    if let ImageState::Available(v) = &mut no_url {
        v.url.clear();
    }
    let config = KubeVirtExport::default();
    let plan1 = plan(&input(&config, no_url, vec![], pointing_at(None)));
    assert_eq!(plan1.condition.reason, "NoArtifactURL");
    assert!(plan1.actions.is_empty());

    let mut token = input(&config, verified('a'), vec![], pointing_at(None));
    token.needs_token = true;
    assert_eq!(plan(&token).condition.reason, "ArtifactTokenMissing");
    let with_secret = KubeVirtExport {
        secret_extra_headers: vec!["vmlisub-token".into()],
        ..KubeVirtExport::default()
    };
    let mut token = input(&with_secret, verified('a'), vec![], pointing_at(None));
    token.needs_token = true;
    assert!(matches!(
        plan(&token).actions.as_slice(),
        [ExportAction::CreateDataVolume(_)]
    ));

    let mut unsized_image = verified('a');
    if let ImageState::Available(v) = &mut unsized_image {
        v.virtual_size = None;
    }
    let blocked = plan(&input(
        &config,
        unsized_image.clone(),
        vec![],
        pointing_at(None),
    ));
    assert_eq!(blocked.condition.reason, "SizeUnknown");
    assert_eq!(blocked.status.phase, "Unavailable");
    let sized = KubeVirtExport {
        storage: KubeVirtStorage {
            size: Some("20Gi".into()),
            ..KubeVirtStorage::default()
        },
        ..KubeVirtExport::default()
    };
    assert!(matches!(
        plan(&input(&sized, unsized_image, vec![], pointing_at(None))).actions.as_slice(),
        [ExportAction::CreateDataVolume(new)] if new.size == "20Gi"
    ));
}

#[test]
fn withdrawal_unpublishes_or_deletes() {
    let withdrawn = ImageState::Withdrawn {
        reason: "RemovedFromList".into(),
        message: "gone".into(),
    };
    let unpublish = KubeVirtExport::default();
    let dvs = vec![dv('a', "Succeeded", "1"), dv('b', "Succeeded", "2")];
    let plan1 = plan(&input(
        &unpublish,
        withdrawn.clone(),
        dvs.clone(),
        pointing_at(Some('b')),
    ));
    assert_eq!(
        plan1.actions,
        vec![ExportAction::PointDataSource { pvc: None }]
    );
    assert_eq!(plan1.condition.reason, "RemovedFromList");
    assert!(!plan1.condition.ok);
    assert_eq!(plan1.status.phase, "Unpublished");
    assert!(plan1.status.pvc.is_empty());
    // Already unpublished: nothing to do.
    let again = plan(&input(
        &unpublish,
        withdrawn.clone(),
        dvs.clone(),
        pointing_at(None),
    ));
    assert!(again.actions.is_empty());

    let delete = KubeVirtExport {
        on_withdraw: OnWithdraw::Delete,
        ..KubeVirtExport::default()
    };
    let mut going = dv('c', "Succeeded", "3");
    going.deleting = true;
    let mut all = dvs.clone();
    all.push(going);
    let plan2 = plan(&input(
        &delete,
        withdrawn.clone(),
        all,
        pointing_at(Some('b')),
    ));
    assert_eq!(
        plan2.actions,
        vec![
            ExportAction::DeleteDataSource,
            ExportAction::DeleteDataVolume(name('a')),
            ExportAction::DeleteDataVolume(name('b')),
        ]
    );
    assert_eq!(plan2.status.phase, "Deleted");
    // Nothing left: nothing to do.
    assert!(
        plan(&input(&delete, withdrawn, vec![], None))
            .actions
            .is_empty()
    );
    // A withdrawal without a reason still has one.
    let plan3 = plan(&input(
        &unpublish,
        ImageState::Withdrawn {
            reason: String::new(),
            message: String::new(),
        },
        vec![],
        None,
    ));
    assert_eq!(plan3.condition.reason, "Withdrawn");
}

#[test]
fn while_the_image_is_pending_nothing_moves() {
    let config = KubeVirtExport::default();
    let same = plan(&input(
        &config,
        ImageState::Pending {
            sha512: Some(hex('a')),
        },
        vec![dv('a', "Succeeded", "1")],
        pointing_at(Some('a')),
    ));
    assert!(same.actions.is_empty());
    assert!(same.condition.ok);
    assert_eq!(same.status.phase, "Published");
    let newer = plan(&input(
        &config,
        ImageState::Pending {
            sha512: Some(hex('b')),
        },
        vec![dv('a', "Succeeded", "1")],
        pointing_at(Some('a')),
    ));
    assert!(newer.actions.is_empty());
    assert_eq!(newer.condition.reason, "WaitingForImage");
    assert_eq!(newer.status.pvc, name('a'));
    let nothing = plan(&input(
        &config,
        ImageState::Pending { sha512: None },
        vec![],
        None,
    ));
    assert!(nothing.actions.is_empty());
    assert_eq!(nothing.status.phase, "Pending");
}

#[test]
fn every_combination_keeps_the_invariants() {
    // Up to three DataVolumes (digests a, b, c) in every phase, the
    // DataSource absent / empty / at each, every image state, keep 1..3,
    // both withdrawal policies.
    let phases = ["", "ImportInProgress", "Succeeded", "Failed"];
    let images = [
        verified('a'),
        verified('b'),
        verified('d'),
        ImageState::Pending { sha512: None },
        ImageState::Pending {
            sha512: Some(hex('a')),
        },
        ImageState::Withdrawn {
            reason: "ImageExpired".into(),
            message: String::new(),
        },
    ];
    let mut cases = 0;
    for keep in 1..=3u32 {
        for on_withdraw in [OnWithdraw::Unpublish, OnWithdraw::Delete] {
            let config = KubeVirtExport {
                imports_to_keep: Some(keep),
                on_withdraw,
                ..KubeVirtExport::default()
            };
            for mask in 0..(5usize.pow(3)) {
                let mut dvs = Vec::new();
                for (i, c) in ['a', 'b', 'c'].into_iter().enumerate() {
                    let state = (mask / 5usize.pow(i as u32)) % 5;
                    if state < 4 {
                        dvs.push(dv(c, phases[state], &i.to_string()));
                    }
                }
                for ds in [
                    None,
                    pointing_at(None),
                    pointing_at(Some('a')),
                    pointing_at(Some('b')),
                ] {
                    for image in &images {
                        cases += 1;
                        let input = input(&config, image.clone(), dvs.clone(), ds.clone());
                        let plan = plan(&input);
                        check(&input, &plan);
                    }
                }
            }
        }
    }
    assert!(cases > 10_000);
}

fn check(input: &ExportInput<'_>, plan: &ExportPlan) {
    let creates: Vec<&NewDataVolume> = plan
        .actions
        .iter()
        .filter_map(|a| match a {
            ExportAction::CreateDataVolume(n) => Some(n),
            _ => None,
        })
        .collect();
    assert!(creates.len() <= 1);
    let deletes = deleted(plan);
    let points: Vec<&Option<String>> = plan
        .actions
        .iter()
        .filter_map(|a| match a {
            ExportAction::PointDataSource { pvc } | ExportAction::CreateDataSource { pvc } => {
                Some(pvc)
            }
            _ => None,
        })
        .collect();
    assert!(points.len() <= 1);
    // Only ever points at the PVC of a DataVolume that succeeded.
    for pvc in points.iter().copied().flatten() {
        assert!(
            input
                .data_volumes
                .iter()
                .any(|dv| dv.claim() == pvc && dv.phase == "Succeeded"),
            "{pvc}"
        );
    }
    // Created DataVolumes are new and named for the image's digest.
    for new in &creates {
        let ImageState::Available(v) = &input.image else {
            panic!("created while not available");
        };
        assert_eq!(new.sha512, v.sha512);
        assert!(input.data_volumes.iter().all(|dv| dv.sha512 != new.sha512));
        assert!(new.name.len() <= 63);
    }
    match &input.image {
        ImageState::Withdrawn { .. } => {
            assert!(!plan.condition.ok);
            assert!(creates.is_empty());
            if input.config.on_withdraw == OnWithdraw::Unpublish {
                assert!(deletes.is_empty());
                assert!(points.iter().all(|p| p.is_none()));
            } else {
                assert_eq!(deletes.len(), input.data_volumes.len());
            }
        }
        ImageState::Pending { .. } => assert!(plan.actions.is_empty()),
        ImageState::Available(v) => {
            // What the DataSource serves after the plan is never deleted,
            // nor the image's own DataVolume.
            let served = points.first().map(|p| (*p).clone()).unwrap_or_else(|| {
                input
                    .data_source
                    .as_ref()
                    .and_then(|ds| ds.pvc.clone())
                    .map(|(_, n)| n)
            });
            if let Some(served) = &served {
                assert!(!deletes.contains(served), "deleted the served {served}");
            }
            assert!(!deletes.contains(&data_volume_name(IMG, &v.sha512)));
            // Keep-N holds once the plan is applied (the protected ones
            // may exceed it).
            let remaining = input.data_volumes.len() + creates.len() - deletes.len();
            assert!(remaining <= imports_to_keep(input.config).max(3));
            // Exported exactly when the current digest is served.
            let current = input
                .data_volumes
                .iter()
                .find(|dv| dv.sha512 == v.sha512)
                .filter(|dv| dv.phase == "Succeeded")
                .map(|dv| dv.claim().to_string());
            assert_eq!(plan.condition.ok, current.is_some() && served == current);
        }
    }
}

#[test]
fn data_volume_names_are_bounded_dns_labels_and_distinct() {
    let digest = hex('A');
    assert_eq!(
        data_volume_name("cernvm-4", &digest),
        "cernvm-4-aaaaaaaaaaaa"
    );
    assert_eq!(
        data_volume_name("site.cernvm", &hex('0')),
        "site-cernvm-000000000000"
    );
    let long_a = format!("{}a", "x".repeat(200));
    let long_b = format!("{}b", "x".repeat(200));
    let a = data_volume_name(&long_a, &digest);
    let b = data_volume_name(&long_b, &digest);
    assert_ne!(a, b);
    for name in [
        a.as_str(),
        b.as_str(),
        &data_volume_name(&"y".repeat(50), &digest),
        &data_volume_name(&"z-".repeat(40), &digest),
        &data_volume_name("-", &digest),
        &data_volume_name(&"a.".repeat(100), &digest),
    ] {
        assert!(name.len() <= 63, "{name}");
        assert!(crate::api::names::is_valid_namespace(name), "{name}");
    }
    // Exactly 63 stays unhashed; one more gets the hash.
    let fits = "f".repeat(63 - 13);
    assert_eq!(
        data_volume_name(&fits, &digest),
        format!("{fits}-aaaaaaaaaaaa")
    );
    assert_ne!(
        data_volume_name(&format!("{fits}g"), &digest),
        format!("{fits}g-aaaaaaaaaaaa")
    );
}

#[test]
fn label_values_are_valid_or_absent() {
    assert_eq!(label_value("4.7.1").as_deref(), Some("4.7.1"));
    assert_eq!(
        label_value("CernVM 4 (beta)").as_deref(),
        Some("CernVM_4__beta")
    );
    assert_eq!(label_value("--"), None);
    assert_eq!(label_value(""), None);
    let long = label_value(&"v".repeat(100)).unwrap();
    assert_eq!(long.len(), 63);
    assert_eq!(
        label_value(&format!("{}-x", "a".repeat(62))).as_deref(),
        Some(&*"a".repeat(62))
    );
}

#[test]
fn storage_defaults_to_the_virtual_size_in_whole_mib() {
    let config = KubeVirtExport::default();
    assert_eq!(storage_size(&config, Some(0)).as_deref(), Some("1Mi"));
    assert_eq!(storage_size(&config, Some(1)).as_deref(), Some("1Mi"));
    assert_eq!(storage_size(&config, Some(MIB)).as_deref(), Some("1Mi"));
    assert_eq!(storage_size(&config, Some(MIB + 1)).as_deref(), Some("2Mi"));
    assert_eq!(
        storage_size(&config, Some(10 << 30)).as_deref(),
        Some("10240Mi")
    );
    assert_eq!(
        storage_size(&config, Some(MAX_DEFAULT_VIRTUAL_SIZE)).as_deref(),
        Some("1073741824Mi")
    );
    // A hostile header is not believed.
    assert_eq!(
        storage_size(&config, Some(MAX_DEFAULT_VIRTUAL_SIZE + 1)),
        None
    );
    assert_eq!(storage_size(&config, Some(u64::MAX)), None);
    let sized = KubeVirtExport {
        storage: KubeVirtStorage {
            size: Some("2Ti".into()),
            ..KubeVirtStorage::default()
        },
        ..KubeVirtExport::default()
    };
    assert_eq!(storage_size(&sized, Some(u64::MAX)).as_deref(), Some("2Ti"));
    assert_eq!(storage_size(&config, None), None);
}

#[test]
fn manifests_carry_source_checksum_storage_labels_and_owner() {
    let config = KubeVirtExport {
        secret_extra_headers: vec!["vmlisub-token".into()],
        cert_config_map: Some("artifact-ca".into()),
        storage: KubeVirtStorage {
            storage_class_name: Some("fast".into()),
            access_modes: vec!["ReadWriteMany".into()],
            size: None,
        },
        ..KubeVirtExport::default()
    };
    let new = NewDataVolume {
        name: name('a'),
        sha512: hex('a'),
        url: "http://x/images/vms/site/img".into(),
        version: "4.7 beta".into(),
        size: "11Mi".into(),
    };
    let owner = json!({"apiVersion": "vmli.hepix.org/v1alpha1", "kind": "ImageSubscription", "name": IMG, "uid": "u-1", "controller": true});
    let dv = data_volume_manifest(
        &new,
        &config,
        NS,
        IMG,
        "site",
        &owner,
        "2026-01-01T00:00:00.5Z",
    );
    assert_eq!(dv["apiVersion"], CDI_API_VERSION);
    assert_eq!(dv["metadata"]["name"], name('a'));
    assert_eq!(dv["metadata"]["ownerReferences"][0], owner);
    let http = &dv["spec"]["source"]["http"];
    assert_eq!(http["url"], "http://x/images/vms/site/img");
    assert_eq!(http["checksum"], format!("sha512:{}", hex('a')));
    assert_eq!(http["secretExtraHeaders"], json!(["vmlisub-token"]));
    assert_eq!(http["certConfigMap"], "artifact-ca");
    let storage = &dv["spec"]["storage"];
    assert_eq!(storage["resources"]["requests"]["storage"], "11Mi");
    assert_eq!(storage["storageClassName"], "fast");
    assert_eq!(storage["accessModes"], json!(["ReadWriteMany"]));
    let labels = &dv["metadata"]["labels"];
    assert_eq!(labels[EXPORT_LABEL], EXPORT_LABEL_VALUE);
    assert_eq!(labels[LIST_LABEL], "site");
    assert_eq!(labels[IMAGE_LABEL], IMG);
    assert_eq!(labels[VERSION_LABEL], "4.7_beta");
    assert_eq!(labels[DIGEST_LABEL], &hex('a')[..16]);
    let annotations = &dv["metadata"]["annotations"];
    assert_eq!(annotations[SHA512_ANNOTATION], hex('a'));
    assert_eq!(annotations[VERSION_ANNOTATION], "4.7 beta");
    assert_eq!(annotations[CDI_KEEP_ANNOTATION], "false");
    // Without optional settings, the fields are absent (not null).
    let plain = data_volume_manifest(
        &new,
        &KubeVirtExport::default(),
        NS,
        IMG,
        "site",
        &owner,
        "t",
    );
    assert!(
        plain["spec"]["source"]["http"]
            .get("secretExtraHeaders")
            .is_none()
    );
    assert!(
        plain["spec"]["source"]["http"]
            .get("certConfigMap")
            .is_none()
    );
    assert!(plain["spec"]["storage"].get("storageClassName").is_none());

    let ds = data_source_manifest("cernvm", NS, IMG, Some("pvc-1"), &owner);
    assert_eq!(
        ds["spec"]["source"],
        json!({"pvc": {"namespace": NS, "name": "pvc-1"}})
    );
    assert_eq!(ds["metadata"]["ownerReferences"][0], owner);
    let cleared = data_source_manifest("cernvm", NS, IMG, None, &owner);
    assert_eq!(cleared["spec"]["source"], json!({}));
}
