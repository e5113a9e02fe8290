//! The pure parts of hook Jobs: the Job's name, its environment, the Job
//! itself from the template, which finished Jobs to prune, and
//! `status.hooks` from the Jobs there are. Everything an image author
//! controls (titles, descriptions, keys) reaches the Job only as `env`
//! values, escaped so that Kubernetes' `$(VAR)` expansion leaves them as
//! they are.

use std::collections::BTreeMap;
use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::api::batch::v1::{Job, JobSpec};
use k8s_openapi::api::core::v1::{Container, EnvVar};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use sha2::Digest as _;

use crate::api::{Condition, LIST_LABEL};

use crate::api::hooks::{
    DEFAULT_HOOK_TIMEOUT, HOOK_JOBS_CONDITION, HookEvent, HookFailure, HookHistoryLimit,
    HookJobPhase, HookRun, HookStatus, Hooks,
};

/// Marks a hook Job; the value is its event (`AvailablePostfix`, ...).
pub const HOOK_EVENT_LABEL: &str = "vmli.hepix.org/hook-event";
/// The image's `dc:identifier` as a label value (hashed when it is not one).
pub const IMAGE_LABEL: &str = "vmli.hepix.org/image";
/// The image's `dc:identifier`, verbatim.
pub const IMAGE_ANNOTATION: &str = "vmli.hepix.org/image-identifier";
/// The image's sha512 (hex).
pub const SHA512_ANNOTATION: &str = "vmli.hepix.org/image-sha512";
/// When the event fired, to the nanosecond: orders a list's Jobs where
/// `creationTimestamp` (whole seconds) ties.
pub const FIRED_AT_ANNOTATION: &str = "vmli.hepix.org/fired-at";
const MANAGED_BY_LABEL: &str = "app.kubernetes.io/managed-by";
/// The prefix of the variables only the operator sets (namespace, list,
/// ImageSubscription, artifact URL).
pub const OPERATOR_PREFIX: &str = "VMLISUB_";
/// A Job name is also a label value on its pods: at most 63 characters.
const MAX_JOB_NAME: usize = 63;
/// Bounds of `timeout`.
const MIN_TIMEOUT: Duration = Duration::from_secs(10);
const MAX_TIMEOUT: Duration = Duration::from_secs(24 * 3600);

/// Why the template cannot make a Job.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TemplateError {
    #[error("jobTemplate.spec is not a batch/v1 JobSpec: {0}")]
    Spec(String),
    #[error("jobTemplate.spec.template.spec has no containers")]
    NoContainers,
    #[error(
        "container {container}: {field} references $({name}), which Kubernetes would substitute \
         into the command line: event values reach hooks only in their environment; let the \
         program read {name}, or write sh -c '... \"${name}\"'"
    )]
    Reference {
        container: String,
        field: &'static str,
        name: String,
    },
    #[error("the ImageListSubscription has no metadata.uid")]
    MissingUid,
}

/// What one hook Job is for.
#[derive(Debug, Clone)]
pub struct HookRequest<'a> {
    pub namespace: &'a str,
    pub list_name: &'a str,
    pub list_uid: &'a str,
    /// The ImageSubscription whose reconcile saw the event.
    pub image_subscription: &'a str,
    pub event: HookEvent,
    /// The event's values, as the CLI's hooks get them.
    pub values: &'a crate::hooks::Event,
    /// The image's `dc:identifier`.
    pub identifier: &'a str,
    /// The image's sha512 (hex).
    pub sha512: &'a str,
    /// Tells apart two lives of one image and digest (the newest expiry
    /// before this event, empty if none): a retried reconcile gives the
    /// same name, an image that comes back after an expiry a new one.
    pub marker: &'a str,
    /// The image's URL on the artifact server, once it is Available.
    pub artifact_url: Option<&'a str>,
    /// When the event fired.
    pub fired_at: Timestamp,
}

/// The hook's timeout: `timeout` within 10 s to 24 h, default 10 m.
pub fn timeout_of(hooks: &Hooks) -> Duration {
    let default = || {
        crate::api::duration::parse_duration(DEFAULT_HOOK_TIMEOUT)
            .unwrap_or(Duration::from_secs(600))
    };
    hooks
        .timeout
        .as_deref()
        .and_then(|t| crate::api::duration::parse_duration(t).ok())
        .unwrap_or_else(default)
        .clamp(MIN_TIMEOUT, MAX_TIMEOUT)
}

fn sha256_hex(parts: &[&str]) -> String {
    let mut hasher = sha2::Sha256::new();
    for part in parts {
        // Length-prefixed, so that no two part lists hash alike.
        hasher.update(part.len().to_string().as_bytes());
        hasher.update(b":");
        hasher.update(part.as_bytes());
    }
    hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn event_slug(event: HookEvent) -> &'static str {
    match event {
        HookEvent::AvailablePrefix => "avail-pre",
        HookEvent::AvailablePostfix => "avail-post",
        HookEvent::ExpirePrefix => "expire-pre",
        HookEvent::ExpirePostfix => "expire-post",
    }
}

/// `<list>-<event>-<hash>`, at most 63 characters, a DNS-1123 name: the
/// list's name is cut to fit; the hash (40 bits of SHA-256 over the list's
/// uid, the image, its digest, the event and the marker) keeps it unique.
pub fn job_name(request: &HookRequest<'_>) -> String {
    let hash = sha256_hex(&[
        request.list_uid,
        request.identifier,
        request.sha512,
        request.event.as_str(),
        request.marker,
    ]);
    let suffix = format!("-{}-{}", event_slug(request.event), &hash[..10]);
    let room = MAX_JOB_NAME - suffix.len();
    let mut prefix: String = request
        .list_name
        .chars()
        .map(|c| c.to_ascii_lowercase())
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '.')
        .take(room)
        .collect();
    while prefix.ends_with(['-', '.']) {
        prefix.pop();
    }
    while prefix.starts_with(['-', '.']) {
        prefix.remove(0);
    }
    if prefix.is_empty() {
        prefix.push_str("hook");
    }
    format!("{prefix}{suffix}")
}

/// `value` if it is a valid label value, else `sha256-<32 hex>` of it.
pub fn label_value(value: &str) -> String {
    let bytes = value.as_bytes();
    let valid = value.len() <= 63
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        && bytes.first().is_none_or(u8::is_ascii_alphanumeric)
        && bytes.last().is_none_or(u8::is_ascii_alphanumeric);
    if valid {
        value.to_string()
    } else {
        format!("sha256-{}", &sha256_hex(&[value])[..32])
    }
}

/// Kubernetes expands `$(NAME)` in `env` values (to an earlier variable's
/// value) and turns `$$` into `$`; doubling every `$` makes the value
/// arrive exactly as it was.
pub fn escape_env_value(value: &str) -> String {
    value.replace('$', "$$")
}

/// Whether `name` is one vmlisub sets (the template's entries of these
/// names are dropped).
pub fn is_hook_variable(name: &str) -> bool {
    crate::hooks::PREFIXES
        .iter()
        .chain(std::iter::once(&OPERATOR_PREFIX))
        .any(|prefix| name.starts_with(prefix))
}

/// The environment vmlisub adds to every container: the CLI's
/// `VMILS_EVENT_*`/`VMCATCHER_EVENT_*` set and `VMLISUB_*`, each value
/// escaped against `$(...)` expansion.
pub fn event_env(request: &HookRequest<'_>) -> Vec<EnvVar> {
    let mut env: Vec<(String, String)> = request.values.environment();
    env.push(("VMLISUB_NAMESPACE".into(), request.namespace.into()));
    env.push(("VMLISUB_LIST".into(), request.list_name.into()));
    env.push((
        "VMLISUB_IMAGE_SUBSCRIPTION".into(),
        request.image_subscription.into(),
    ));
    env.push(("VMLISUB_IMAGE_SHA512".into(), request.sha512.into()));
    if let Some(url) = request.artifact_url.filter(|u| !u.is_empty()) {
        env.push(("VMLISUB_ARTIFACT_URL".into(), url.into()));
    }
    env.into_iter()
        // The environment cannot carry a NUL (hooks::Event never has one;
        // the names above come from Kubernetes objects).
        .filter(|(_, value)| !value.contains('\0'))
        .map(|(name, value)| EnvVar {
            name,
            value: Some(escape_env_value(&value)),
            value_from: None,
        })
        .collect()
}

/// The `$(NAME)` references Kubernetes would expand in `text` (`$$`
/// escapes one).
fn references(text: &str) -> Vec<&str> {
    let mut found = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find('$') {
        let after = &rest[at + 1..];
        if let Some(next) = after.strip_prefix('$') {
            rest = next;
        } else if let Some(open) = after.strip_prefix('(') {
            match open.find(')') {
                Some(end) => {
                    found.push(&open[..end]);
                    rest = &open[end + 1..];
                }
                None => break,
            }
        } else {
            rest = after;
        }
    }
    found
}

fn check_container(container: &Container) -> Result<(), TemplateError> {
    let fields = [
        ("command", container.command.as_deref()),
        ("args", container.args.as_deref()),
    ];
    for (field, values) in fields {
        for value in values.unwrap_or_default() {
            if let Some(name) = references(value).into_iter().find(|n| is_hook_variable(n)) {
                return Err(TemplateError::Reference {
                    container: container.name.clone(),
                    field,
                    name: name.to_string(),
                });
            }
        }
    }
    Ok(())
}

fn add_env(container: &mut Container, env: &[EnvVar]) {
    let mut merged: Vec<EnvVar> = container
        .env
        .take()
        .unwrap_or_default()
        .into_iter()
        .filter(|var| !is_hook_variable(&var.name))
        .collect();
    // After the template's own: theirs cannot refer to ours.
    merged.extend(env.iter().cloned());
    container.env = Some(merged);
}

/// The labels vmlisub puts on a hook Job and its pods.
pub fn hook_labels(
    list_name: &str,
    identifier: &str,
    event: HookEvent,
) -> BTreeMap<String, String> {
    BTreeMap::from([
        (MANAGED_BY_LABEL.to_string(), "vmlisub".to_string()),
        (LIST_LABEL.to_string(), label_value(list_name)),
        (IMAGE_LABEL.to_string(), label_value(identifier)),
        (HOOK_EVENT_LABEL.to_string(), event.as_str().to_string()),
    ])
}

/// The Job for `request` from the list's template.
pub fn build_job(hooks: &Hooks, request: &HookRequest<'_>) -> Result<Job, TemplateError> {
    if request.list_uid.is_empty() {
        return Err(TemplateError::MissingUid);
    }
    let mut spec: JobSpec = serde_json::from_value(hooks.job_template.spec.clone())
        .map_err(|err| TemplateError::Spec(err.to_string()))?;
    let labels = hook_labels(request.list_name, request.identifier, request.event);
    let env = event_env(request);
    let pod_meta = spec
        .template
        .metadata
        .get_or_insert_with(ObjectMeta::default);
    pod_meta
        .labels
        .get_or_insert_with(BTreeMap::new)
        .extend(labels.clone());
    let pod = spec
        .template
        .spec
        .as_mut()
        .filter(|pod| !pod.containers.is_empty())
        .ok_or(TemplateError::NoContainers)?;
    for container in pod
        .containers
        .iter_mut()
        .chain(pod.init_containers.iter_mut().flatten())
    {
        check_container(container)?;
        add_env(container, &env);
    }
    if pod.restart_policy.is_none() {
        pod.restart_policy = Some("Never".into());
    }
    spec.active_deadline_seconds = i64::try_from(timeout_of(hooks).as_secs()).ok();

    let template_meta = hooks.job_template.metadata.clone().unwrap_or_default();
    let mut job_labels = template_meta.labels;
    job_labels.extend(labels);
    let mut annotations = template_meta.annotations;
    annotations.insert(IMAGE_ANNOTATION.into(), request.identifier.into());
    annotations.insert(SHA512_ANNOTATION.into(), request.sha512.into());
    annotations.insert(FIRED_AT_ANNOTATION.into(), request.fired_at.to_string());
    Ok(Job {
        metadata: ObjectMeta {
            name: Some(job_name(request)),
            namespace: Some(request.namespace.into()),
            labels: Some(job_labels),
            annotations: Some(annotations),
            owner_references: Some(vec![OwnerReference {
                api_version: crate::api::API_VERSION.into(),
                kind: "ImageListSubscription".into(),
                name: request.list_name.into(),
                uid: request.list_uid.into(),
                controller: Some(true),
                block_owner_deletion: Some(true),
            }]),
            ..ObjectMeta::default()
        },
        spec: Some(spec),
        status: None,
    })
}

/// A hook Job as `status.hooks` and the pruning see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobSummary {
    pub name: String,
    pub created: Timestamp,
    pub event: String,
    pub image: String,
    pub phase: HookJobPhase,
    pub succeeded: i32,
    pub failed: i32,
    pub finished: Option<Timestamp>,
}

/// Reads a Job: its phase from its conditions (Complete, Failed) and
/// active pods.
pub fn summarize(job: &Job) -> Option<JobSummary> {
    let name = job.metadata.name.clone()?;
    let annotation = |key: &str| {
        job.metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(key))
            .cloned()
    };
    let created = annotation(FIRED_AT_ANNOTATION)
        .and_then(|t| t.parse::<Timestamp>().ok())
        .or(job.metadata.creation_timestamp.as_ref().map(|t| t.0))
        .unwrap_or(Timestamp::UNIX_EPOCH);
    let status = job.status.clone().unwrap_or_default();
    let condition = |type_: &str| {
        status
            .conditions
            .iter()
            .flatten()
            .find(|c| c.type_ == type_ && c.status == "True")
    };
    let (phase, finished) = if let Some(done) = condition("Complete") {
        (
            HookJobPhase::Succeeded,
            status
                .completion_time
                .as_ref()
                .map(|t| t.0)
                .or(done.last_transition_time.as_ref().map(|t| t.0)),
        )
    } else if let Some(failed) = condition("Failed") {
        (
            HookJobPhase::Failed,
            failed.last_transition_time.as_ref().map(|t| t.0),
        )
    } else if status.active.unwrap_or(0) > 0 {
        (HookJobPhase::Running, None)
    } else {
        (HookJobPhase::Pending, None)
    };
    let label = |key: &str| {
        job.metadata
            .labels
            .as_ref()
            .and_then(|l| l.get(key))
            .cloned()
    };
    let image = annotation(IMAGE_ANNOTATION)
        .or_else(|| label(IMAGE_LABEL))
        .unwrap_or_default();
    Some(JobSummary {
        name,
        created,
        event: label(HOOK_EVENT_LABEL).unwrap_or_default(),
        image,
        phase,
        succeeded: status.succeeded.unwrap_or(0),
        failed: status.failed.unwrap_or(0),
        finished,
    })
}

/// Newest first (by the event's time, then name).
fn newest_first(jobs: &[JobSummary]) -> Vec<&JobSummary> {
    let mut sorted: Vec<&JobSummary> = jobs.iter().collect();
    sorted.sort_by(|a, b| b.created.cmp(&a.created).then(b.name.cmp(&a.name)));
    sorted
}

/// The finished Jobs beyond the history limits (oldest go first); running
/// and pending Jobs are never pruned.
pub fn to_prune(jobs: &[JobSummary], limit: HookHistoryLimit) -> Vec<String> {
    let mut kept_succeeded = 0;
    let mut kept_failed = 0;
    let mut prune = Vec::new();
    for job in newest_first(jobs) {
        let (kept, max) = match job.phase {
            HookJobPhase::Succeeded => (&mut kept_succeeded, limit.successful),
            HookJobPhase::Failed => (&mut kept_failed, limit.failed),
            HookJobPhase::Pending | HookJobPhase::Running => continue,
        };
        if *kept < max {
            *kept += 1;
        } else {
            prune.push(job.name.clone());
        }
    }
    prune
}

fn rfc3339(time: Timestamp) -> String {
    crate::imagelist::format_timestamp(time)
}

/// `status.hooks` from the list's Jobs (after pruning), the last failure
/// to create one (this run's, else the recorded one): a failure stays
/// until a Job newer than it exists.
pub fn hook_status(
    jobs: &[JobSummary],
    failure: Option<&HookFailure>,
    current: Option<&HookStatus>,
) -> Option<HookStatus> {
    let newest = newest_first(jobs).into_iter().next();
    let last_run = newest.map(|job| HookRun {
        job_name: job.name.clone(),
        event: job.event.clone(),
        image: job.image.clone(),
        phase: job.phase,
        succeeded: job.succeeded,
        failed: job.failed,
        created: rfc3339(job.created),
        finished: job.finished.map(rfc3339),
    });
    let last_error = failure
        .or_else(|| current.and_then(|c| c.last_error.as_ref()))
        .filter(|error| {
            let when = crate::imagelist::parse_timestamp(&error.time).ok();
            match (newest, when) {
                (Some(job), Some(when)) => job.created < when,
                _ => true,
            }
        })
        .cloned();
    (last_run.is_some() || last_error.is_some()).then_some(HookStatus {
        last_run,
        last_error,
    })
}

/// The `HookJobs` condition for `status` (none without one), keeping the
/// transition time of the `current` one while its status stays.
pub fn hook_condition(
    status: Option<&HookStatus>,
    current: &[Condition],
    now: Timestamp,
) -> Option<Condition> {
    let status = status?;
    let (ok, reason, message) = match (&status.last_error, &status.last_run) {
        (Some(error), _) => (false, error.reason.as_str(), error.message.clone()),
        (None, Some(run)) => (
            true,
            "JobCreated",
            format!("Job {} ({} of {})", run.job_name, run.event, run.image),
        ),
        (None, None) => return None,
    };
    let mut conditions: Vec<Condition> = current
        .iter()
        .filter(|c| c.type_ == HOOK_JOBS_CONDITION)
        .cloned()
        .collect();
    crate::subscription::status::set(
        &mut conditions,
        HOOK_JOBS_CONDITION,
        ok,
        reason,
        &message,
        now,
    );
    conditions.pop()
}

/// The Event of a change of the last run: it finished, one way or the
/// other. `(warning, reason, note)`.
pub fn finish_event(
    before: Option<&HookStatus>,
    after: Option<&HookStatus>,
) -> Option<(bool, &'static str, String)> {
    let run = after?.last_run.as_ref()?;
    let was = before.and_then(|b| b.last_run.as_ref());
    if was.is_some_and(|w| w.job_name == run.job_name && w.phase == run.phase) {
        return None;
    }
    let note = format!("Job {} ({} of {})", run.job_name, run.event, run.image);
    match run.phase {
        HookJobPhase::Succeeded => Some((false, "HookJobSucceeded", note)),
        HookJobPhase::Failed => Some((true, "HookJobFailed", note)),
        HookJobPhase::Pending | HookJobPhase::Running => None,
    }
}

#[cfg(test)]
#[path = "job_tests.rs"]
mod tests;
