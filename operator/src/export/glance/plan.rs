//! The pure decision: given the image that should be in Glance and the
//! Glance images found by their `vmli_list` and `vmli_identifier`
//! properties, what to do next. The runner executes the actions and plans
//! again with what Glance then shows, until nothing is left to do, so that
//! every step (create, fill, verify, retire the older versions) is decided
//! here from Glance's own view and a rerun finds the same images again.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::api::export::{GlanceExportState, GlanceRetirePolicy};

/// The property that names the list (`namespace/name`).
pub const PROP_LIST: &str = "vmli_list";
/// The property that names the image (`dc:identifier`).
pub const PROP_IDENTIFIER: &str = "vmli_identifier";
/// The property that holds the image's sha512 (hex, lower case).
pub const PROP_SHA512: &str = "vmli_sha512";

/// A Glance image as the planner needs it.
#[derive(Debug, Clone, PartialEq)]
pub struct Found {
    pub id: String,
    /// `queued`, `saving`, `uploading`, `importing`, `active`,
    /// `deactivated`, `killed`, `deleted`, `pending_delete`.
    pub status: String,
    pub hidden: bool,
    pub visibility: String,
    /// Every other field of the image (properties included).
    pub fields: BTreeMap<String, Value>,
}

impl Found {
    /// A field as text.
    pub fn text(&self, name: &str) -> Option<&str> {
        self.fields.get(name).and_then(Value::as_str)
    }

    /// The digest the image was created for.
    pub fn sha512(&self) -> Option<&str> {
        self.text(PROP_SHA512)
    }

    /// Whether Glance's own hash of the stored data is `sha512`.
    fn hash_matches(&self, sha512: &str) -> bool {
        self.text("os_hash_algo") == Some("sha512")
            && self
                .text("os_hash_value")
                .is_some_and(|value| value.eq_ignore_ascii_case(sha512))
    }

    /// A failed `web-download` left its mark (`os_glance_failed_import`).
    fn import_failed(&self) -> bool {
        self.text("os_glance_failed_import")
            .is_some_and(|stores| !stores.trim().is_empty())
            || (self.status == "queued" && self.text("os_glance_import_task").is_some())
    }

    fn in_progress(&self) -> bool {
        matches!(self.status.as_str(), "saving" | "uploading" | "importing")
    }
}

/// What should be in Glance for one (list, image identifier).
#[derive(Debug, Clone, PartialEq)]
pub enum Desired<'a> {
    /// This verified version, with these mutable fields (name, visibility,
    /// mapped and extra properties: `field -> value`).
    Current {
        sha512: &'a str,
        fields: &'a BTreeMap<String, Value>,
        /// Whether Glance can fetch the data itself (`web-download`
        /// enabled and an artifact URL to give it).
        web_download: bool,
    },
    /// A new version is not verified yet: leave Glance as it is (the
    /// previous version stays published until the new one is).
    Wait,
    /// The image expired or was withdrawn.
    Retire,
}

/// How the data gets into a new image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fill {
    Upload,
    WebDownload,
}

/// One step.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Create the image record (the runner adds the `vmli_*` and the
    /// immutable fields).
    Create,
    /// Put the data into a queued image.
    Fill {
        id: String,
        how: Fill,
    },
    /// Wait for Glance to finish storing the data.
    AwaitImport {
        id: String,
    },
    /// Set these fields (JSON patch; `os_hidden: false` included when the
    /// image was hidden).
    Update {
        id: String,
        set: Vec<(String, Value, bool)>,
    },
    Reactivate {
        id: String,
    },
    Hide {
        id: String,
    },
    Deactivate {
        id: String,
    },
    Delete {
        id: String,
    },
}

/// The plan, and where the export stands after it.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub actions: Vec<Action>,
    /// The image of the current version, if there is one.
    pub current: Option<String>,
    pub state: GlanceExportState,
    /// Why the export failed (the runner reports it).
    pub error: Option<String>,
}

/// Decides the next steps. `on_new_version` applies to images of other
/// digests once the current one is exported; `on_expiry` to every image
/// when the image is retired.
pub fn plan(
    desired: &Desired<'_>,
    found: &[Found],
    on_new_version: GlanceRetirePolicy,
    on_expiry: GlanceRetirePolicy,
) -> Plan {
    let live: Vec<&Found> = found
        .iter()
        .filter(|f| !matches!(f.status.as_str(), "deleted" | "pending_delete"))
        .collect();
    match desired {
        Desired::Wait => Plan {
            actions: Vec::new(),
            current: None,
            state: GlanceExportState::Pending,
            error: None,
        },
        Desired::Retire => {
            let actions: Vec<Action> = live.iter().filter_map(|f| retire(f, on_expiry)).collect();
            Plan {
                actions,
                current: None,
                state: GlanceExportState::Retired,
                error: None,
            }
        }
        Desired::Current {
            sha512,
            fields,
            web_download,
        } => plan_current(sha512, fields, *web_download, &live, on_new_version),
    }
}

fn plan_current(
    sha512: &str,
    fields: &BTreeMap<String, Value>,
    web_download: bool,
    live: &[&Found],
    on_new_version: GlanceRetirePolicy,
) -> Plan {
    let mut actions = Vec::new();
    let (mine, others): (Vec<&Found>, Vec<&Found>) = live
        .iter()
        .partition(|f| f.sha512().is_some_and(|s| s.eq_ignore_ascii_case(sha512)));

    // Stored data that is not the verified image: never leave it usable.
    let mut error = None;
    let mut candidates = Vec::new();
    for f in &mine {
        let stored = matches!(f.status.as_str(), "active" | "deactivated");
        if stored && !f.hash_matches(sha512) {
            error = Some(format!(
                "Glance image {} holds other data than the verified image: its {} hash is {}, expected sha512 {sha512}; deleted",
                f.id,
                f.text("os_hash_algo").unwrap_or("(none)"),
                f.text("os_hash_value").unwrap_or("(none)")
            ));
            actions.push(Action::Delete { id: f.id.clone() });
        } else if f.status == "killed" {
            actions.push(Action::Delete { id: f.id.clone() });
        } else {
            candidates.push(*f);
        }
    }
    if error.is_some() {
        // Retry on the next run, not in a loop within this one.
        return Plan {
            actions,
            current: None,
            state: GlanceExportState::Failed,
            error,
        };
    }
    // The best candidate: stored data first, then an import under way,
    // then an empty record; duplicates (two concurrent first runs) go.
    candidates.sort_by_key(|f| {
        (
            match f.status.as_str() {
                "active" => 0,
                "deactivated" => 1,
                _ if f.in_progress() => 2,
                _ => 3,
            },
            f.id.clone(),
        )
    });
    let Some((best, duplicates)) = candidates.split_first() else {
        actions.push(Action::Create);
        return Plan {
            actions,
            current: None,
            state: GlanceExportState::Importing,
            error: None,
        };
    };
    for duplicate in duplicates {
        actions.push(Action::Delete {
            id: duplicate.id.clone(),
        });
    }
    let id = best.id.clone();
    let state = match best.status.as_str() {
        "active" | "deactivated" => {
            if best.status == "deactivated" {
                actions.push(Action::Reactivate { id: id.clone() });
            }
            let set = drift(best, fields);
            if !set.is_empty() {
                actions.push(Action::Update {
                    id: id.clone(),
                    set,
                });
            }
            // Only now that the new version is usable do the older go.
            actions.extend(others.iter().filter_map(|f| retire(f, on_new_version)));
            GlanceExportState::Exported
        }
        _ if best.in_progress() => {
            actions.push(Action::AwaitImport { id: id.clone() });
            GlanceExportState::Importing
        }
        _ => {
            // queued: fill it; after a failed web-download, upload instead.
            let how = if web_download && !best.import_failed() {
                Fill::WebDownload
            } else {
                Fill::Upload
            };
            actions.push(Action::Fill {
                id: id.clone(),
                how,
            });
            GlanceExportState::Importing
        }
    };
    Plan {
        actions,
        current: Some(id),
        state,
        error: None,
    }
}

/// The fields of `found` that differ from `fields` (the bool says whether
/// the field exists already: `replace` rather than `add`), and `os_hidden`
/// back to false.
fn drift(found: &Found, fields: &BTreeMap<String, Value>) -> Vec<(String, Value, bool)> {
    let mut set = Vec::new();
    for (name, value) in fields {
        let current = match name.as_str() {
            "visibility" => Some(Value::String(found.visibility.clone())),
            _ => found.fields.get(name).cloned(),
        };
        if current.as_ref() != Some(value) {
            set.push((name.clone(), value.clone(), current.is_some()));
        }
    }
    if found.hidden {
        set.push(("os_hidden".into(), Value::Bool(false), true));
    }
    set
}

/// What `policy` does to an image that is no longer current (nothing when
/// it is done already). Images that never held data are deleted.
fn retire(found: &Found, policy: GlanceRetirePolicy) -> Option<Action> {
    let id = found.id.clone();
    let stored = matches!(found.status.as_str(), "active" | "deactivated");
    if !stored && !found.in_progress() {
        return Some(Action::Delete { id });
    }
    match policy {
        GlanceRetirePolicy::Delete => Some(Action::Delete { id }),
        GlanceRetirePolicy::Hide => (!found.hidden).then_some(Action::Hide { id }),
        GlanceRetirePolicy::Deactivate => {
            (found.status == "active").then_some(Action::Deactivate { id })
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use GlanceRetirePolicy::{Deactivate, Delete, Hide};

    const A: &str = "aa";
    const B: &str = "bb";

    fn image(id: &str, status: &str, sha: &str, hash: Option<&str>) -> Found {
        let mut fields = BTreeMap::new();
        fields.insert(PROP_SHA512.into(), Value::String(sha.into()));
        fields.insert("name".into(), Value::String("Image".into()));
        if let Some(hash) = hash {
            fields.insert("os_hash_algo".into(), "sha512".into());
            fields.insert("os_hash_value".into(), hash.into());
        }
        Found {
            id: id.into(),
            status: status.into(),
            hidden: false,
            visibility: "private".into(),
            fields,
        }
    }

    fn wanted() -> BTreeMap<String, Value> {
        [
            ("name".to_string(), Value::String("Image".into())),
            ("visibility".to_string(), Value::String("private".into())),
        ]
        .into()
    }

    fn current<'a>(sha: &'a str, fields: &'a BTreeMap<String, Value>) -> Desired<'a> {
        Desired::Current {
            sha512: sha,
            fields,
            web_download: false,
        }
    }

    #[test]
    fn creates_when_nothing_is_there_and_fills_a_queued_image() {
        let fields = wanted();
        let plan = plan(&current(A, &fields), &[], Hide, Deactivate);
        assert_eq!(plan.actions, vec![Action::Create]);
        assert_eq!(plan.state, GlanceExportState::Importing);

        let queued = image("1", "queued", A, None);
        let plan = super::plan(
            &current(A, &fields),
            std::slice::from_ref(&queued),
            Hide,
            Deactivate,
        );
        assert_eq!(
            plan.actions,
            vec![Action::Fill {
                id: "1".into(),
                how: Fill::Upload
            }]
        );
        let web = Desired::Current {
            sha512: A,
            fields: &fields,
            web_download: true,
        };
        let plan = super::plan(&web, std::slice::from_ref(&queued), Hide, Deactivate);
        assert_eq!(
            plan.actions,
            vec![Action::Fill {
                id: "1".into(),
                how: Fill::WebDownload
            }]
        );
        // After a failed web-download, upload.
        let mut failed = queued;
        failed
            .fields
            .insert("os_glance_failed_import".into(), "fs".into());
        let plan = super::plan(&web, &[failed], Hide, Deactivate);
        assert_eq!(
            plan.actions,
            vec![Action::Fill {
                id: "1".into(),
                how: Fill::Upload
            }]
        );
    }

    #[test]
    fn an_exported_image_with_the_same_fields_needs_nothing() {
        let fields = wanted();
        let plan = plan(
            &current(A, &fields),
            &[image("1", "active", A, Some(A))],
            Hide,
            Deactivate,
        );
        assert_eq!(plan.actions, vec![]);
        assert_eq!(plan.state, GlanceExportState::Exported);
        assert_eq!(plan.current.as_deref(), Some("1"));
    }

    #[test]
    fn drift_is_patched_and_a_hidden_or_deactivated_current_comes_back() {
        let mut fields = wanted();
        fields.insert("os_distro".into(), "centos".into());
        fields.insert("name".into(), "New name".into());
        let mut found = image("1", "deactivated", A, Some(A));
        found.hidden = true;
        let plan = plan(&current(A, &fields), &[found], Hide, Deactivate);
        assert_eq!(
            plan.actions,
            vec![
                Action::Reactivate { id: "1".into() },
                Action::Update {
                    id: "1".into(),
                    set: vec![
                        ("name".into(), "New name".into(), true),
                        ("os_distro".into(), "centos".into(), false),
                        ("os_hidden".into(), false.into(), true),
                    ]
                }
            ]
        );
    }

    #[test]
    fn older_versions_are_retired_only_once_the_new_one_is_exported() {
        let fields = wanted();
        let old = image("old", "active", B, Some(B));
        // New version not there yet: create it, leave the old alone.
        let plan = plan(
            &current(A, &fields),
            std::slice::from_ref(&old),
            Hide,
            Deactivate,
        );
        assert_eq!(plan.actions, vec![Action::Create]);
        // Importing: still leave it.
        let mut importing = image("new", "importing", A, None);
        let plan = super::plan(
            &current(A, &fields),
            &[old.clone(), importing.clone()],
            Hide,
            Deactivate,
        );
        assert_eq!(plan.actions, vec![Action::AwaitImport { id: "new".into() }]);
        importing = image("new", "active", A, Some(A));
        for (policy, expected) in [
            (Hide, Action::Hide { id: "old".into() }),
            (Deactivate, Action::Deactivate { id: "old".into() }),
            (Delete, Action::Delete { id: "old".into() }),
        ] {
            let plan = super::plan(
                &current(A, &fields),
                &[old.clone(), importing.clone()],
                policy,
                Deactivate,
            );
            assert_eq!(plan.actions, vec![expected], "{policy:?}");
        }
        // Already hidden: nothing more.
        let mut hidden = old;
        hidden.hidden = true;
        let plan = super::plan(&current(A, &fields), &[hidden, importing], Hide, Deactivate);
        assert_eq!(plan.actions, vec![]);
    }

    #[test]
    fn a_hash_mismatch_deletes_the_image_and_fails() {
        let fields = wanted();
        let plan = plan(
            &current(A, &fields),
            &[
                image("bad", "active", A, Some("ff")),
                image("old", "active", B, Some(B)),
            ],
            Hide,
            Deactivate,
        );
        assert_eq!(plan.actions, vec![Action::Delete { id: "bad".into() }]);
        assert_eq!(plan.state, GlanceExportState::Failed);
        assert!(plan.error.unwrap().contains("ff"));
    }

    #[test]
    fn duplicates_and_killed_images_are_removed() {
        let fields = wanted();
        let plan = plan(
            &current(A, &fields),
            &[
                image("2", "queued", A, None),
                image("1", "active", A, Some(A)),
                image("3", "killed", A, None),
            ],
            Hide,
            Deactivate,
        );
        assert_eq!(
            plan.actions,
            vec![
                Action::Delete { id: "3".into() },
                Action::Delete { id: "2".into() }
            ]
        );
        assert_eq!(plan.current.as_deref(), Some("1"));
    }

    #[test]
    fn retiring_follows_the_expiry_policy_and_is_idempotent() {
        let active = image("1", "active", A, Some(A));
        let deactivated = image("2", "deactivated", B, Some(B));
        let queued = image("3", "queued", B, None);
        let all = [active, deactivated, queued];
        let plan = plan(&Desired::Retire, &all, Hide, Deactivate);
        assert_eq!(
            plan.actions,
            vec![
                Action::Deactivate { id: "1".into() },
                Action::Delete { id: "3".into() }
            ]
        );
        assert_eq!(plan.state, GlanceExportState::Retired);
        let plan = super::plan(&Desired::Retire, &all, Hide, Delete);
        assert_eq!(plan.actions.len(), 3);
        assert!(
            super::plan(&Desired::Retire, &all[1..2], Hide, Deactivate)
                .actions
                .is_empty()
        );
        assert!(
            super::plan(&Desired::Wait, &all, Hide, Delete)
                .actions
                .is_empty()
        );
    }
}
