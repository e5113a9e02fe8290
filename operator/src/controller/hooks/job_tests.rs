#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::*;
use crate::hooks::{Event, EventType};

fn hooks(spec: Value) -> Hooks {
    serde_json::from_value(json!({"jobTemplate": {"spec": spec}})).unwrap()
}

fn template() -> Value {
    json!({
        "backoffLimit": 0,
        "activeDeadlineSeconds": 99999,
        "template": {"spec": {
            "initContainers": [{"name": "init", "image": "busybox", "command": ["true"]}],
            "containers": [{
                "name": "handler",
                "image": "registry.example/glancepush:1",
                "command": ["sh", "-c", "exec /usr/bin/handler \"$VMILS_EVENT_TYPE\""],
                "args": ["--cloud", "$(OS_CLOUD)", "$$(VMILS_EVENT_DC_TITLE)"],
                "env": [
                    {"name": "OS_CLOUD", "value": "site"},
                    {"name": "VMILS_EVENT_TYPE", "value": "Forged"},
                    {"name": "VMILS_EVENT_DC_TITLE", "value": "stands in"},
                    {"name": "VMCATCHER_EVENT_X", "value": "stands in"},
                    {"name": "VMLISUB_LIST", "value": "other"},
                    {"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "s", "key": "t"}}},
                ],
            }],
        }},
    })
}

fn values(image: &Value) -> Event {
    Event::image_value(
        EventType::AvailablePostfix,
        image,
        "list-identifier",
        Some("vo.example"),
        "/cache/endorsed/ns/site/img/image",
    )
}

fn request<'a>(values: &'a Event, event: HookEvent) -> HookRequest<'a> {
    HookRequest {
        namespace: "tenant",
        list_name: "site",
        list_uid: "8e2b6a7c-0000-4000-8000-000000000001",
        image_subscription: "one",
        event,
        values,
        identifier: "img-one",
        sha512: "ab",
        marker: "",
        artifact_url: Some("http://vmlisub.example/images/tenant/site/img-one"),
        fired_at: Timestamp::from_second(1_700_000_000).unwrap(),
    }
}

/// Kubernetes' `$(VAR)` expansion of env values (k8s.io/kubernetes
/// third_party/forked/golang/expansion): `$$` is `$`, `$(NAME)` an earlier
/// variable's value (left as is when undefined), any other `$` itself.
fn kubelet_expand(value: &str, defined: &BTreeMap<String, String>) -> String {
    let mut out = String::new();
    let mut rest = value;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        if let Some(next) = after.strip_prefix('$') {
            out.push('$');
            rest = next;
        } else if let Some(open) = after.strip_prefix('(')
            && let Some(end) = open.find(')')
        {
            let name = &open[..end];
            match defined.get(name) {
                Some(v) => out.push_str(v),
                None => {
                    out.push_str("$(");
                    out.push_str(name);
                    out.push(')');
                }
            }
            rest = &open[end + 1..];
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

/// What each container's process would see: env entries in order, each
/// value expanded against the earlier ones.
fn container_env(container: &Container) -> BTreeMap<String, String> {
    let mut defined = BTreeMap::new();
    for var in container.env.iter().flatten() {
        if let Some(value) = &var.value {
            let expanded = kubelet_expand(value, &defined);
            defined.insert(var.name.clone(), expanded);
        }
    }
    defined
}

fn is_dns1123_label(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 63
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && name.as_bytes()[0].is_ascii_alphanumeric()
        && name.as_bytes()[name.len() - 1].is_ascii_alphanumeric()
}

#[test]
fn job_names_are_bounded_deterministic_and_tell_events_and_lives_apart() {
    let event = values(&json!({"dc:identifier": "img-one"}));
    let base = request(&event, HookEvent::AvailablePostfix);
    let name = job_name(&base);
    let retry = HookRequest {
        fired_at: Timestamp::from_second(1_800_000_000).unwrap(),
        ..base.clone()
    };
    assert_eq!(name, job_name(&retry), "a retry gives the same name");
    assert!(name.starts_with("site-avail-post-"), "{name}");
    assert!(is_dns1123_label(&name), "{name}");

    let mut names = std::collections::BTreeSet::new();
    names.insert(name);
    for event_kind in [
        HookEvent::AvailablePrefix,
        HookEvent::ExpirePrefix,
        HookEvent::ExpirePostfix,
    ] {
        assert!(names.insert(job_name(&HookRequest {
            event: event_kind,
            ..base.clone()
        })));
    }
    assert!(names.insert(job_name(&HookRequest {
        sha512: "cd",
        ..base.clone()
    })));
    assert!(names.insert(job_name(&HookRequest {
        identifier: "img-two",
        ..base.clone()
    })));
    assert!(names.insert(job_name(&HookRequest {
        marker: "2026-01-01T00:00:00Z",
        ..base.clone()
    })));
    assert!(names.insert(job_name(&HookRequest {
        list_uid: "another-uid",
        ..base.clone()
    })));
    // Length-prefixed hashing: moving a character between fields changes it.
    assert_ne!(
        job_name(&HookRequest {
            identifier: "a",
            sha512: "bc",
            ..base.clone()
        }),
        job_name(&HookRequest {
            identifier: "ab",
            sha512: "c",
            ..base.clone()
        })
    );

    // The longest list names, with dots and dashes where the cut falls.
    let long = format!("{}.{}", "a".repeat(40), "b-".repeat(100));
    for list_name in [long.as_str(), "x.y.z", "----", "a-", "A.B"] {
        let name = job_name(&HookRequest {
            list_name,
            ..base.clone()
        });
        assert!(name.len() <= 63, "{name}");
        assert!(
            name.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.'),
            "{name}"
        );
        assert!(name.as_bytes()[0].is_ascii_alphanumeric(), "{name}");
        assert!(!name.contains(".-") && !name.contains("-."), "{name}");
    }
}

#[test]
fn label_values_are_kept_or_hashed() {
    assert_eq!(label_value("img-one_2.x"), "img-one_2.x");
    assert_eq!(label_value(""), "");
    for odd in [
        "urn:uuid:1234",
        "a@b+c",
        "-leading",
        "trailing.",
        &"x".repeat(64),
        "é",
    ] {
        let value = label_value(odd);
        assert!(value.starts_with("sha256-") && value.len() == 39, "{value}");
        assert_eq!(value, label_value(odd));
    }
    assert_ne!(label_value("a:b"), label_value("a:c"));
}

#[test]
fn the_job_carries_the_event_in_env_and_is_labelled_and_owned() {
    let event = values(&json!({"dc:identifier": "img-one", "sl:os": "Linux"}));
    let mut hooks = hooks(template());
    hooks.job_template.metadata = Some(crate::api::hooks::HookJobMetadata {
        labels: BTreeMap::from([
            ("team".into(), "cloud".into()),
            (HOOK_EVENT_LABEL.into(), "Forged".into()),
        ]),
        annotations: BTreeMap::from([("note".into(), "kept".into())]),
    });
    let job = build_job(&hooks, &request(&event, HookEvent::AvailablePostfix)).unwrap();
    let meta = &job.metadata;
    assert_eq!(
        meta.name.as_deref(),
        Some(job_name(&request(&event, HookEvent::AvailablePostfix)).as_str())
    );
    assert_eq!(meta.namespace.as_deref(), Some("tenant"));
    let labels = meta.labels.clone().unwrap();
    assert_eq!(labels["team"], "cloud");
    assert_eq!(
        labels[HOOK_EVENT_LABEL], "AvailablePostfix",
        "vmlisub's labels win"
    );
    assert_eq!(labels[LIST_LABEL], "site");
    assert_eq!(labels[IMAGE_LABEL], "img-one");
    assert_eq!(labels[MANAGED_BY_LABEL], "vmlisub");
    let annotations = meta.annotations.clone().unwrap();
    assert_eq!(annotations["note"], "kept");
    assert_eq!(annotations[IMAGE_ANNOTATION], "img-one");
    assert_eq!(annotations[SHA512_ANNOTATION], "ab");
    assert_eq!(annotations[FIRED_AT_ANNOTATION], "2023-11-14T22:13:20Z");
    // Read back, the Job sorts by that time (not the whole-second
    // creationTimestamp).
    let mut read_back = Job {
        metadata: job.metadata.clone(),
        ..Job::default()
    };
    read_back.metadata.annotations.as_mut().unwrap().insert(
        FIRED_AT_ANNOTATION.into(),
        "2023-11-14T22:13:20.123456789Z".into(),
    );
    assert_eq!(
        summarize(&read_back).unwrap().created,
        "2023-11-14T22:13:20.123456789Z"
            .parse::<Timestamp>()
            .unwrap()
    );
    let owner = &meta.owner_references.as_ref().unwrap()[0];
    assert_eq!(
        (
            owner.kind.as_str(),
            owner.name.as_str(),
            owner.api_version.as_str()
        ),
        ("ImageListSubscription", "site", "vmli.hepix.org/v1alpha1")
    );
    assert_eq!(owner.uid, "8e2b6a7c-0000-4000-8000-000000000001");
    assert_eq!(
        (owner.controller, owner.block_owner_deletion),
        (Some(true), Some(true))
    );

    let spec = job.spec.unwrap();
    assert_eq!(
        spec.active_deadline_seconds,
        Some(600),
        "timeout replaces the template's"
    );
    assert_eq!(spec.backoff_limit, Some(0));
    let pod_labels = spec.template.metadata.unwrap().labels.unwrap();
    assert_eq!(pod_labels[HOOK_EVENT_LABEL], "AvailablePostfix");
    let pod = spec.template.spec.unwrap();
    assert_eq!(pod.restart_policy.as_deref(), Some("Never"));
    let handler = &pod.containers[0];
    assert_eq!(
        handler.command.as_deref().unwrap(),
        ["sh", "-c", "exec /usr/bin/handler \"$VMILS_EVENT_TYPE\""]
    );
    let env = container_env(handler);
    assert_eq!(env["VMILS_EVENT_TYPE"], "AvailablePostfix");
    assert_eq!(env["VMCATCHER_EVENT_TYPE"], "AvailablePostfix");
    assert_eq!(env["VMILS_EVENT_DC_IDENTIFIER"], "img-one");
    assert_eq!(env["VMILS_EVENT_SL_OS"], "Linux");
    assert_eq!(env["VMILS_EVENT_IL_DC_IDENTIFIER"], "list-identifier");
    assert_eq!(env["VMILS_EVENT_VO"], "vo.example");
    assert_eq!(
        env["VMILS_EVENT_FILENAME"],
        "/cache/endorsed/ns/site/img/image"
    );
    assert_eq!(env["VMLISUB_NAMESPACE"], "tenant");
    assert_eq!(env["VMLISUB_LIST"], "site");
    assert_eq!(env["VMLISUB_IMAGE_SUBSCRIPTION"], "one");
    assert_eq!(env["VMLISUB_IMAGE_SHA512"], "ab");
    assert_eq!(
        env["VMLISUB_ARTIFACT_URL"],
        "http://vmlisub.example/images/tenant/site/img-one"
    );
    assert_eq!(env["OS_CLOUD"], "site", "the template's own variables stay");
    // The template's entries of vmlisub's names are gone: an unset event
    // field stays unset, a set one is vmlisub's.
    assert!(!env.contains_key("VMILS_EVENT_DC_TITLE"));
    assert!(!env.contains_key("VMCATCHER_EVENT_X"));
    let names: Vec<&str> = handler
        .env
        .iter()
        .flatten()
        .map(|v| v.name.as_str())
        .collect();
    let unique: std::collections::BTreeSet<_> = names.iter().collect();
    assert_eq!(unique.len(), names.len(), "one entry per name: {names:?}");
    assert!(
        handler
            .env
            .iter()
            .flatten()
            .any(|v| v.name == "TOKEN" && v.value_from.is_some()),
        "valueFrom entries are kept"
    );
    // The template's own come first (they cannot refer to the event's).
    assert_eq!(names[0], "OS_CLOUD");
    // Init containers get the event too.
    assert_eq!(
        container_env(&pod.init_containers.unwrap()[0])["VMILS_EVENT_TYPE"],
        "AvailablePostfix"
    );
}

/// Titles, descriptions and keys with quotes, `;`, `$()`, `$(VAR)`,
/// backticks, newlines and NUL: they land in `env` values only (never in
/// command, args, names, labels or annotations), and what the process sees
/// after Kubernetes' expansion is exactly the text of the list.
#[test]
fn hostile_values_land_only_in_env_values_and_arrive_verbatim() {
    let hostile = [
        "x\"; touch /pwned; \"",
        "x'; touch /pwned; '",
        "$(touch /pwned)",
        "$(OS_CLOUD)",
        "$(TOKEN)",
        "$$(OS_CLOUD)",
        "`touch /pwned`",
        "a\ntouch /pwned\n",
        "${IFS}touch${IFS}/pwned",
        "cost: 5$",
        "trailing $(",
    ];
    for value in hostile {
        let reversed: String = value.chars().rev().collect();
        let mut image = serde_json::Map::new();
        image.insert("dc:identifier".into(), json!("img-one"));
        image.insert("dc:title".into(), json!(value));
        image.insert("dc:description".into(), json!(reversed));
        image.insert("sl:comment".into(), json!(format!("before\u{0}{value}")));
        for key in [
            value.to_string(),
            format!("k; {value}"),
            "a\u{0}b".to_string(),
            "type".to_string(),
            "il:dc:identifier".to_string(),
        ] {
            image.insert(key, json!(value));
        }
        let event = values(&Value::Object(image));
        let job = build_job(
            &hooks(template()),
            &request(&event, HookEvent::AvailablePostfix),
        )
        .unwrap();

        // Where the hostile text is in the Job's JSON: env values only.
        let json = serde_json::to_value(&job).unwrap();
        let mut places = Vec::new();
        fn walk(path: &str, v: &Value, needle: &str, places: &mut Vec<String>) {
            match v {
                Value::String(s) if s.contains(needle) => places.push(path.to_string()),
                Value::Array(items) => {
                    for (i, item) in items.iter().enumerate() {
                        walk(&format!("{path}[{i}]"), item, needle, places);
                    }
                }
                Value::Object(map) => {
                    for (k, item) in map {
                        assert!(!k.contains(needle), "{k:?} at {path}");
                        walk(&format!("{path}.{k}"), item, needle, places);
                    }
                }
                _ => {}
            }
        }
        let needle = escape_env_value(value);
        walk("", &json, &needle, &mut places);
        assert!(!places.is_empty());
        for place in &places {
            assert!(
                place.contains(".env[") && place.ends_with("].value"),
                "{value:?} at {place}"
            );
        }
        assert!(!json.to_string().contains('\u{0}'), "no NUL anywhere");

        let pod = job.spec.unwrap().template.spec.unwrap();
        let handler = &pod.containers[0];
        assert_eq!(
            handler.args.as_deref().unwrap(),
            ["--cloud", "$(OS_CLOUD)", "$$(VMILS_EVENT_DC_TITLE)"],
            "args are the template's"
        );
        let env = container_env(handler);
        assert_eq!(env["VMILS_EVENT_DC_TITLE"], value, "{value:?}");
        assert_eq!(env["VMCATCHER_EVENT_DC_TITLE"], value);
        assert_eq!(env["VMILS_EVENT_DC_DESCRIPTION"], reversed);
        assert_eq!(env["VMILS_EVENT_TYPE"], "AvailablePostfix");
        assert_eq!(env["VMILS_EVENT_IL_DC_IDENTIFIER"], "list-identifier");
        assert!(
            !env.contains_key("VMILS_EVENT_SL_COMMENT"),
            "a NUL leaves it unset"
        );
        for name in env.keys() {
            assert!(
                name.bytes()
                    .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_'),
                "{name:?}"
            );
        }
    }
}

#[test]
fn event_references_in_command_or_args_are_refused() {
    for (field, text) in [
        ("command", "echo $(VMILS_EVENT_DC_TITLE)"),
        ("args", "$(VMCATCHER_EVENT_TYPE)"),
        ("args", "x $$$(VMLISUB_LIST)"),
    ] {
        let mut spec = template();
        spec["template"]["spec"]["containers"][0][field] = json!(["sh", text]);
        let event = values(&json!({"dc:identifier": "img-one"}));
        let err =
            build_job(&hooks(spec), &request(&event, HookEvent::AvailablePostfix)).unwrap_err();
        assert!(
            matches!(&err, TemplateError::Reference { container, field: f, .. } if container == "handler" && *f == field),
            "{err}"
        );
    }
    // Init containers too.
    let mut spec = template();
    spec["template"]["spec"]["initContainers"][0]["command"] =
        json!(["echo", "$(VMILS_EVENT_FILENAME)"]);
    let event = values(&json!({"dc:identifier": "img-one"}));
    assert!(matches!(
        build_job(&hooks(spec), &request(&event, HookEvent::ExpirePrefix)),
        Err(TemplateError::Reference { .. })
    ));
    // Escaped, shell-quoted, other variables, unclosed: fine.
    for text in [
        "$$(VMILS_EVENT_DC_TITLE)",
        "echo \"$VMILS_EVENT_DC_TITLE\"",
        "$(HOME) ${VMILS_EVENT_TYPE}",
        "$(VMILS_EVENT_TYPE",
    ] {
        let mut spec = template();
        spec["template"]["spec"]["containers"][0]["args"] = json!([text]);
        build_job(&hooks(spec), &request(&event, HookEvent::AvailablePostfix)).unwrap();
    }
}

#[test]
fn templates_that_make_no_job_are_refused() {
    let event = values(&json!({"dc:identifier": "img-one"}));
    let req = request(&event, HookEvent::AvailablePostfix);
    assert!(matches!(
        build_job(
            &hooks(json!({"template": {"spec": {"containers": []}}})),
            &req
        ),
        Err(TemplateError::NoContainers)
    ));
    assert!(matches!(
        build_job(&hooks(json!({"template": {}})), &req),
        Err(TemplateError::NoContainers)
    ));
    assert!(matches!(
        build_job(
            &hooks(json!({"backoffLimit": "many", "template": {}})),
            &req
        ),
        Err(TemplateError::Spec(_))
    ));
    assert!(matches!(
        build_job(
            &hooks(template()),
            &HookRequest {
                list_uid: "",
                ..req
            }
        ),
        Err(TemplateError::MissingUid)
    ));
}

#[test]
fn restart_policy_and_timeout() {
    let event = values(&json!({"dc:identifier": "img-one"}));
    let mut spec = template();
    spec["template"]["spec"]["restartPolicy"] = json!("OnFailure");
    let mut h = hooks(spec);
    for (timeout, seconds) in [
        (None, 600),
        (Some("30s"), 30),
        (Some("1h30m"), 5400),
        (Some("1s"), 10),
        (Some("48h"), 86400),
        (Some("bogus"), 600),
    ] {
        h.timeout = timeout.map(String::from);
        let job = build_job(&h, &request(&event, HookEvent::ExpirePostfix)).unwrap();
        let spec = job.spec.unwrap();
        assert_eq!(spec.active_deadline_seconds, Some(seconds), "{timeout:?}");
        assert_eq!(
            spec.template.spec.unwrap().restart_policy.as_deref(),
            Some("OnFailure")
        );
    }
}

#[test]
fn the_spec_defaults_to_every_event_and_three_of_each() {
    let h = hooks(template());
    assert_eq!(h.events, HookEvent::ALL);
    assert_eq!(
        h.history_limit,
        HookHistoryLimit {
            successful: 3,
            failed: 3
        }
    );
    for event in HookEvent::ALL {
        assert_eq!(HookEvent::parse(event.as_str()), Some(event));
    }
    assert_eq!(HookEvent::parse("ProcessPrefix"), None);
}

fn summary(name: &str, second: i64, phase: HookJobPhase) -> JobSummary {
    JobSummary {
        name: name.into(),
        created: Timestamp::from_second(second).unwrap(),
        event: "AvailablePostfix".into(),
        image: "img".into(),
        phase,
        succeeded: i32::from(phase == HookJobPhase::Succeeded),
        failed: i32::from(phase == HookJobPhase::Failed),
        finished: phase
            .finished()
            .then(|| Timestamp::from_second(second + 5).unwrap()),
    }
}

#[test]
fn pruning_keeps_the_newest_finished_and_never_touches_running_jobs() {
    use HookJobPhase::*;
    let jobs = vec![
        summary("s1", 1, Succeeded),
        summary("f2", 2, Failed),
        summary("s3", 3, Succeeded),
        summary("r4", 4, Running),
        summary("f5", 5, Failed),
        summary("s6", 6, Succeeded),
        summary("p7", 7, Pending),
        summary("f8", 8, Failed),
        summary("r0", 0, Running),
    ];
    let limit = |successful, failed| HookHistoryLimit { successful, failed };
    let mut pruned = to_prune(&jobs, limit(2, 1));
    pruned.sort();
    assert_eq!(pruned, ["f2", "f5", "s1"]);
    let mut pruned = to_prune(&jobs, limit(0, 0));
    pruned.sort();
    assert_eq!(pruned, ["f2", "f5", "f8", "s1", "s3", "s6"]);
    assert!(to_prune(&jobs, limit(3, 3)).is_empty());
    assert!(to_prune(&[], limit(0, 0)).is_empty());
    // Equal creation times: the name decides, the same way every time.
    let tied = vec![summary("b", 1, Failed), summary("a", 1, Failed)];
    assert_eq!(to_prune(&tied, limit(0, 1)), ["a"]);
}

#[test]
fn status_shows_the_newest_job_and_a_failure_until_a_newer_job() {
    use HookJobPhase::*;
    assert_eq!(hook_status(&[], None, None), None);
    let jobs = vec![summary("old", 10, Succeeded), summary("new", 20, Failed)];
    let status = hook_status(&jobs, None, None).unwrap();
    let run = status.last_run.clone().unwrap();
    assert_eq!(run.job_name, "new");
    assert_eq!(run.phase, Failed);
    assert_eq!((run.succeeded, run.failed), (0, 1));
    assert_eq!(run.created, "1970-01-01T00:00:20Z");
    assert_eq!(run.finished.as_deref(), Some("1970-01-01T00:00:25Z"));

    let failure = |second: i64| HookFailure {
        reason: "HookJobForbidden".into(),
        message: "no".into(),
        event: "AvailablePostfix".into(),
        image: "img".into(),
        time: crate::imagelist::format_timestamp(Timestamp::from_second(second).unwrap()),
    };
    // A failure after the newest Job is shown...
    let status = hook_status(&jobs, Some(&failure(30)), None).unwrap();
    assert_eq!(status.last_error, Some(failure(30)));
    // ...kept from the status when the operator restarted...
    let carried = hook_status(&jobs, None, Some(&status)).unwrap();
    assert_eq!(carried.last_error, Some(failure(30)));
    // ...and cleared by a newer Job.
    let newer = vec![summary("newest", 40, Pending)];
    assert_eq!(
        hook_status(&newer, None, Some(&status)).unwrap().last_error,
        None
    );
    // No Job at all: the failure alone.
    let only = hook_status(&[], Some(&failure(1)), None).unwrap();
    assert_eq!((only.last_run, only.last_error), (None, Some(failure(1))));
}

#[test]
fn finish_events_only_on_change() {
    use HookJobPhase::*;
    let status = |name: &str, phase| hook_status(&[summary(name, 1, phase)], None, None);
    let running = status("a", Running);
    let done = status("a", Succeeded);
    let failed = status("b", Failed);
    assert_eq!(finish_event(None, running.as_ref()), None);
    let (warning, reason, note) = finish_event(running.as_ref(), done.as_ref()).unwrap();
    assert_eq!((warning, reason), (false, "HookJobSucceeded"));
    assert!(note.contains("Job a (AvailablePostfix of img)"), "{note}");
    assert_eq!(finish_event(done.as_ref(), done.as_ref()), None);
    assert_eq!(
        finish_event(done.as_ref(), failed.as_ref()).map(|(w, r, _)| (w, r)),
        Some((true, "HookJobFailed"))
    );
    assert_eq!(finish_event(done.as_ref(), None), None);
}

#[test]
fn summaries_read_job_conditions() {
    let job: Job = serde_json::from_value(json!({
        "metadata": {
            "name": "site-avail-post-0123456789",
            "creationTimestamp": "2026-01-01T00:00:00Z",
            "labels": {HOOK_EVENT_LABEL: "AvailablePostfix", IMAGE_LABEL: "sha256-x"},
            "annotations": {IMAGE_ANNOTATION: "urn:img:1"},
        },
        "status": {
            "succeeded": 1,
            "completionTime": "2026-01-01T00:01:00Z",
            "conditions": [
                {"type": "SuccessCriteriaMet", "status": "True"},
                {"type": "Complete", "status": "True"},
            ],
        },
    }))
    .unwrap();
    let s = summarize(&job).unwrap();
    assert_eq!(s.phase, HookJobPhase::Succeeded);
    assert_eq!(s.image, "urn:img:1");
    assert_eq!(s.event, "AvailablePostfix");
    assert_eq!(s.succeeded, 1);
    assert_eq!(
        s.finished
            .map(crate::imagelist::format_timestamp)
            .as_deref(),
        Some("2026-01-01T00:01:00Z")
    );
    let failed: Job = serde_json::from_value(json!({
        "metadata": {"name": "j"},
        "status": {"failed": 1, "conditions": [
            {"type": "Failed", "status": "True", "reason": "DeadlineExceeded",
             "lastTransitionTime": "2026-01-01T00:02:00Z"},
        ]},
    }))
    .unwrap();
    assert_eq!(summarize(&failed).unwrap().phase, HookJobPhase::Failed);
    let running: Job =
        serde_json::from_value(json!({"metadata": {"name": "j"}, "status": {"active": 1}}))
            .unwrap();
    assert_eq!(summarize(&running).unwrap().phase, HookJobPhase::Running);
    let pending: Job = serde_json::from_value(json!({"metadata": {"name": "j"}})).unwrap();
    assert_eq!(summarize(&pending).unwrap().phase, HookJobPhase::Pending);
    assert_eq!(summarize(&Job::default()), None);
}

#[test]
fn the_hook_jobs_condition_follows_the_status() {
    use HookJobPhase::*;
    let t = |s| Timestamp::from_second(s).unwrap();
    assert_eq!(hook_condition(None, &[], t(1)), None);
    let ran = hook_status(&[summary("a", 1, Running)], None, None);
    let ok = hook_condition(ran.as_ref(), &[], t(5)).unwrap();
    assert_eq!(ok.type_, "HookJobs");
    assert_eq!(ok.status, crate::api::ConditionStatus::True);
    assert_eq!(ok.reason, "JobCreated");
    assert_eq!(ok.message, "Job a (AvailablePostfix of img)");
    // The same status later: the transition time stays.
    let later = hook_condition(ran.as_ref(), std::slice::from_ref(&ok), t(50)).unwrap();
    assert_eq!(later.last_transition_time, ok.last_transition_time);
    let failure = HookFailure {
        reason: "HookTemplateInvalid".into(),
        message: "container handler: command references $(VMILS_EVENT_DC_TITLE)".into(),
        event: "AvailablePrefix".into(),
        image: "img".into(),
        time: crate::imagelist::format_timestamp(t(60)),
    };
    let failed = hook_status(&[summary("a", 1, Running)], Some(&failure), None);
    let bad = hook_condition(failed.as_ref(), std::slice::from_ref(&ok), t(60)).unwrap();
    assert_eq!(bad.status, crate::api::ConditionStatus::False);
    assert_eq!(bad.reason, "HookTemplateInvalid");
    assert_ne!(bad.last_transition_time, ok.last_transition_time);
}
