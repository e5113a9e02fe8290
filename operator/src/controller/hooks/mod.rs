//! Event hooks in operator mode: `spec.hooks` of an ImageListSubscription
//! runs a Kubernetes Job for the original's image events.
//!
//! * [`fire`] is called by the image reconcile where it records the
//!   event's Kubernetes Event (DownloadStarted = AvailablePrefix,
//!   Available = AvailablePostfix, Expiring = ExpirePrefix, Expired =
//!   ExpirePostfix). It creates the Job (named deterministically, so that
//!   a retry finds it: AlreadyExists is done) and never fails the image:
//!   a refusal is an Event on the list and `status.hooks.lastError`.
//! * [`reconcile`], a controller of lists with `spec.hooks` that watches
//!   the Jobs they own, prunes finished Jobs beyond `historyLimit` and
//!   writes `status.hooks` (its own field manager, so the list reconcile's
//!   status writes leave it alone).
//!
//! The pure parts (name, environment, Job, pruning, status) are in [`job`].

pub mod job;

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::api::batch::v1::Job;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use kube::runtime::reflector::ObjectRef;
use kube::{Api, ResourceExt as _};

use super::{Context, ControllerError, key_of};
use crate::api::hooks::{HOOK_JOBS_CONDITION, HookEvent, HookFailure, HookStatus};
use crate::api::{Condition, ImageListSubscription, ImageSubscription, LIST_LABEL};
use crate::imagelist;
use crate::store::ImageRecord;
use crate::subscription::ObjectKey;
use job::{HOOK_EVENT_LABEL, HookRequest, JobSummary, TemplateError};

/// The field manager of `status.hooks`.
pub const MANAGER: &str = "vmlisub-hooks";
/// How often a list with hooks is looked at without a Job change.
const RESYNC: Duration = Duration::from_secs(600);

/// What the image reconciles tell the hooks controller: the last failure
/// to create a Job per list, and a wake-up.
pub struct HookState {
    failures: Mutex<HashMap<ObjectKey, HookFailure>>,
    wake: tokio::sync::mpsc::UnboundedSender<ObjectRef<ImageListSubscription>>,
    woken: Mutex<Option<tokio::sync::mpsc::UnboundedReceiver<ObjectRef<ImageListSubscription>>>>,
}

impl Default for HookState {
    fn default() -> Self {
        let (wake, woken) = tokio::sync::mpsc::unbounded_channel();
        Self {
            failures: Mutex::new(HashMap::new()),
            wake,
            woken: Mutex::new(Some(woken)),
        }
    }
}

impl HookState {
    /// The lists to reconcile because a hook failed (taken once, by the
    /// controller).
    pub fn wake_ups(
        &self,
    ) -> Option<tokio::sync::mpsc::UnboundedReceiver<ObjectRef<ImageListSubscription>>> {
        self.woken
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
    }

    fn failure(&self, key: &ObjectKey) -> Option<HookFailure> {
        self.failures
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(key)
            .cloned()
    }

    /// Records `failure`; true when it differs from the last one (so its
    /// Event is a change).
    fn record(&self, key: &ObjectKey, failure: HookFailure) -> bool {
        let mut failures = self.failures.lock().unwrap_or_else(PoisonError::into_inner);
        let changed = failures
            .get(key)
            .is_none_or(|old| (&old.reason, &old.message) != (&failure.reason, &failure.message));
        failures.insert(key.clone(), failure);
        changed
    }

    fn clear(&self, key: &ObjectKey) {
        self.failures
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(key);
    }

    fn wake(&self, key: &ObjectKey) {
        let _ = self
            .wake
            .send(ObjectRef::new(&key.name).within(&key.namespace));
    }
}

/// One event of one image, as the image reconcile saw it.
pub struct Fired<'a> {
    pub image: &'a ImageSubscription,
    pub list_key: &'a ObjectKey,
    pub event: HookEvent,
    /// The image's record (for AvailablePrefix, the one it will have).
    pub record: &'a ImageRecord,
    /// Where the file is (or will be) in the cache.
    pub path: &'a Path,
    /// The newest expiry in the ImageSubscription's history before this
    /// event (see [`HookRequest::marker`]).
    pub marker: &'a str,
}

/// The marker of an ImageSubscription's current life: its newest expiry.
pub fn marker_of(status: &crate::api::ImageSubscriptionStatus) -> String {
    status
        .history
        .first()
        .map(|h| h.expired_at.clone())
        .unwrap_or_default()
}

fn failure_reason(err: &kube::Error) -> &'static str {
    match err {
        kube::Error::Api(status) if status.code == 403 => "HookJobForbidden",
        kube::Error::Api(status) if status.code == 422 || status.code == 400 => "HookJobRejected",
        _ => "HookJobCreateFailed",
    }
}

/// Creates the hook Job of `fired` if the list asks for one. Never fails:
/// what goes wrong is logged, an Event on the list and
/// `status.hooks.lastError`.
pub async fn fire(context: &Context, fired: Fired<'_>) {
    let Some(list) = context
        .lists
        .get(&ObjectRef::new(&fired.list_key.name).within(&fired.list_key.namespace))
    else {
        return;
    };
    let Some(hooks) = &list.spec.hooks else {
        return;
    };
    if !hooks.events.contains(&fired.event) {
        return;
    }
    let identifier = fired.record.key.image.as_str();
    let fail = |reason: &'static str, message: String| HookFailure {
        reason: reason.into(),
        message: bounded(message),
        event: fired.event.as_str().into(),
        image: identifier.into(),
        time: imagelist::format_timestamp(Timestamp::now()),
    };
    if !context.config.hook_jobs {
        let failure = fail("HooksDisabled", disabled_message());
        report_failure(context, &list, fired.list_key, failure).await;
        return;
    }
    let values = crate::hooks::Event::of_record(fired.event.kind(), fired.record, fired.path);
    let artifact_url = (fired.event == HookEvent::AvailablePostfix)
        .then(|| {
            crate::subscription::status::artifact(
                context.config.artifact_base_url.as_deref(),
                fired.path,
                &fired.record.key,
                &fired.record.sha512,
                fired.record.size,
                Timestamp::now(),
            )
            .url
        })
        .filter(|url| !url.is_empty());
    let uid = list.uid().unwrap_or_default();
    let image_subscription = fired.image.name_any();
    let request = HookRequest {
        namespace: &fired.list_key.namespace,
        list_name: &fired.list_key.name,
        list_uid: &uid,
        image_subscription: &image_subscription,
        event: fired.event,
        values: &values,
        identifier,
        sha512: fired.record.sha512.as_str(),
        marker: fired.marker,
        artifact_url: artifact_url.as_deref(),
        fired_at: Timestamp::now(),
    };
    let job = match job::build_job(hooks, &request) {
        Ok(job) => job,
        Err(err) => {
            let reason = match err {
                TemplateError::MissingUid => "HookJobCreateFailed",
                _ => "HookTemplateInvalid",
            };
            report_failure(
                context,
                &list,
                fired.list_key,
                fail(reason, err.to_string()),
            )
            .await;
            return;
        }
    };
    let name = job.name_any();
    let api: Api<Job> = Api::namespaced(context.client.clone(), &fired.list_key.namespace);
    match api.create(&PostParams::default(), &job).await {
        Ok(_) => {
            tracing::info!(list = %fired.list_key, job = %name, event = fired.event.as_str(), image = %identifier, "hook Job created");
            context.hooks.clear(fired.list_key);
            context.event(
                &*list,
                EventType::Normal,
                "HookJobCreated",
                "Hook",
                format!("Job {name} for {} of {identifier}", fired.event.as_str()),
            );
        }
        Err(kube::Error::Api(status)) if status.code == 409 => {
            tracing::debug!(list = %fired.list_key, job = %name, "hook Job exists already");
        }
        Err(err) => {
            let reason = failure_reason(&err);
            let failure = fail(reason, format!("Job {name}: {err}"));
            report_failure(context, &list, fired.list_key, failure).await;
        }
    }
}

/// A failure message as kept in the status: at most 1 kB.
fn bounded(mut message: String) -> String {
    const MAX: usize = 1024;
    if message.len() > MAX {
        let mut cut = MAX;
        while !message.is_char_boundary(cut) {
            cut -= 1;
        }
        message.truncate(cut);
    }
    message
}

fn disabled_message() -> String {
    "spec.hooks is set but the operator runs without --hook-jobs (chart: hooks.enabled=true): no Job is created".into()
}

async fn report_failure(
    context: &Context,
    list: &ImageListSubscription,
    key: &ObjectKey,
    failure: HookFailure,
) {
    tracing::warn!(list = %key, reason = %failure.reason, event = %failure.event, image = %failure.image, error = %failure.message, "hook Job not created");
    let (reason, note) = (failure.reason.clone(), failure.message.clone());
    if context.hooks.record(key, failure) {
        context.event(list, EventType::Warning, &reason, "Hook", note);
    }
    context.hooks.wake(key);
}

/// The hooks controller's reconcile of one list.
pub async fn reconcile(
    list: Arc<ImageListSubscription>,
    context: Arc<Context>,
) -> Result<Action, ControllerError> {
    context.wait_for_caches().await;
    let key = key_of(&*list);
    let current = list.status.as_ref().and_then(|s| s.hooks.as_ref());
    let Some(hooks) = &list.spec.hooks else {
        let conditions = list.status.as_ref().map(|s| s.conditions.as_slice());
        let has_condition = conditions
            .is_some_and(|c| crate::api::conditions::find(c, HOOK_JOBS_CONDITION).is_some());
        if current.is_some() || has_condition {
            apply_hook_status(&context, &list, None, None).await?;
        }
        return Ok(Action::await_change());
    };
    if list.metadata.deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    let (jobs, failure) = if context.config.hook_jobs {
        let jobs = list_jobs(&context, &list).await?;
        let prune = job::to_prune(&jobs, hooks.history_limit);
        let api: Api<Job> = Api::namespaced(context.client.clone(), &key.namespace);
        for name in &prune {
            match api.delete(name, &DeleteParams::background()).await {
                Ok(_) => tracing::info!(list = %key, job = %name, "hook Job pruned (historyLimit)"),
                Err(kube::Error::Api(status)) if status.code == 404 => {}
                Err(err) => return Err(err.into()),
            }
        }
        let jobs: Vec<JobSummary> = jobs
            .into_iter()
            .filter(|job| !prune.contains(&job.name))
            .collect();
        (jobs, context.hooks.failure(&key))
    } else {
        // Said once, without watching or listing Jobs.
        let failure = current
            .and_then(|c| c.last_error.clone())
            .filter(|e| e.reason == "HooksDisabled")
            .unwrap_or_else(|| HookFailure {
                reason: "HooksDisabled".into(),
                message: disabled_message(),
                event: String::new(),
                image: String::new(),
                time: imagelist::format_timestamp(Timestamp::now()),
            });
        (Vec::new(), Some(failure))
    };
    let status = job::hook_status(&jobs, failure.as_ref(), current);
    let conditions = list
        .status
        .as_ref()
        .map(|s| s.conditions.as_slice())
        .unwrap_or_default();
    let condition = job::hook_condition(status.as_ref(), conditions, Timestamp::now());
    let current_condition = crate::api::conditions::find(conditions, HOOK_JOBS_CONDITION);
    if status.as_ref() != current || condition.as_ref() != current_condition {
        apply_hook_status(&context, &list, status.as_ref(), condition.as_ref()).await?;
        if let Some((warning, reason, note)) = job::finish_event(current, status.as_ref()) {
            let type_ = if warning {
                EventType::Warning
            } else {
                EventType::Normal
            };
            context.event(&*list, type_, reason, "Hook", note);
        }
    }
    Ok(Action::requeue(RESYNC))
}

/// A failed hooks reconcile is tried again in 30 s (apart from the list
/// reconcile's backoff: hooks never slow the list down).
pub fn error_policy(
    list: Arc<ImageListSubscription>,
    error: &ControllerError,
    _context: Arc<Context>,
) -> Action {
    tracing::warn!(list = %key_of(&*list), error = %error, "hooks reconcile failed");
    Action::requeue(Duration::from_secs(30))
}

/// The hook Jobs this list owns (by label, then by owner uid).
async fn list_jobs(
    context: &Context,
    list: &ImageListSubscription,
) -> Result<Vec<JobSummary>, ControllerError> {
    let key = key_of(list);
    let uid = list.uid().unwrap_or_default();
    let api: Api<Job> = Api::namespaced(context.client.clone(), &key.namespace);
    let selector = format!(
        "{HOOK_EVENT_LABEL},{LIST_LABEL}={}",
        job::label_value(&key.name)
    );
    let jobs = api.list(&ListParams::default().labels(&selector)).await?;
    Ok(jobs
        .items
        .iter()
        .filter(|job| job.owner_references().iter().any(|o| o.uid == uid))
        .filter_map(job::summarize)
        .collect())
}

/// Writes `status.hooks` and the `HookJobs` condition alone, under
/// [`MANAGER`] (what is None is removed: server-side apply drops the fields
/// this manager applied before and leaves out now; the other conditions
/// are the list reconcile's entries of the map list and stay).
async fn apply_hook_status(
    context: &Context,
    list: &ImageListSubscription,
    status: Option<&HookStatus>,
    condition: Option<&Condition>,
) -> Result<(), ControllerError> {
    let key = key_of(list);
    let api: Api<ImageListSubscription> = Api::namespaced(context.client.clone(), &key.namespace);
    let mut body = serde_json::Map::new();
    if let Some(status) = status {
        body.insert("hooks".into(), serde_json::json!(status));
    }
    if let Some(condition) = condition {
        body.insert("conditions".into(), serde_json::json!([condition]));
    }
    let patch = serde_json::json!({
        "apiVersion": crate::api::API_VERSION,
        "kind": "ImageListSubscription",
        "status": body,
    });
    api.patch_status(
        &key.name,
        &PatchParams::apply(MANAGER).force(),
        &Patch::Apply(&patch),
    )
    .await?;
    Ok(())
}
