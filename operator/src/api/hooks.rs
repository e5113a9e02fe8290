//! `spec.hooks` and `status.hooks` of an ImageListSubscription: the
//! original's event hooks in operator mode, as Kubernetes Jobs.
//!
//! For each selected event of one of the list's images the operator creates
//! a Job from `jobTemplate` in the list's namespace, owned by the list, with
//! the event's `VMILS_EVENT_*`/`VMCATCHER_EVENT_*` values as environment
//! variables of every container (never in its command or arguments). See
//! `controller::hooks` and docs/operator.md#event-hooks-as-jobs.

use std::collections::BTreeMap;

use kube::KubeSchema;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The condition of a list with `spec.hooks`: True once a Job was
/// created, False with the reason of the last failure to create one.
/// Written, like `status.hooks`, by the hooks step alone.
pub const HOOK_JOBS_CONDITION: &str = "HookJobs";
/// The default `timeout` of a hook Job.
pub const DEFAULT_HOOK_TIMEOUT: &str = "10m";
/// The default number of succeeded and of failed Jobs kept per list.
pub const DEFAULT_HOOK_HISTORY: i32 = 3;

/// The moments of an image's life a hook Job runs for: the original's
/// image events. (Its `ProcessPrefix`/`ProcessPostfix` bracket a
/// `vmlisub sync` pass; the operator has no passes.)
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
pub enum HookEvent {
    /// A download starts (the operator's `DownloadStarted` Event).
    AvailablePrefix,
    /// The image is verified and in the cache (`Available`).
    AvailablePostfix,
    /// The image is about to leave the cache (`Expiring`).
    ExpirePrefix,
    /// The image has left the cache (`Expired`).
    ExpirePostfix,
}

impl HookEvent {
    /// Every event, the default of `events`.
    pub const ALL: [HookEvent; 4] = [
        Self::AvailablePrefix,
        Self::AvailablePostfix,
        Self::ExpirePrefix,
        Self::ExpirePostfix,
    ];

    /// The name in `VMILS_EVENT_TYPE` and in the `hook-event` label.
    pub fn as_str(self) -> &'static str {
        self.kind().as_str()
    }

    /// The CLI's event type of the same moment.
    pub fn kind(self) -> crate::hooks::EventType {
        use crate::hooks::EventType;
        match self {
            Self::AvailablePrefix => EventType::AvailablePrefix,
            Self::AvailablePostfix => EventType::AvailablePostfix,
            Self::ExpirePrefix => EventType::ExpirePrefix,
            Self::ExpirePostfix => EventType::ExpirePostfix,
        }
    }

    /// The event named `value` (a `hook-event` label), if any.
    pub fn parse(value: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|event| event.as_str() == value)
    }
}

fn all_events() -> Vec<HookEvent> {
    HookEvent::ALL.to_vec()
}

/// Labels and annotations of the hook Jobs.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct HookJobMetadata {
    /// Labels added to each Job (the `vmli.hepix.org/*` and
    /// `app.kubernetes.io/managed-by` labels are vmlisub's and win).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// Annotations added to each Job.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

/// A Job template, as a CronJob's `jobTemplate`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct HookJobTemplate {
    /// Labels and annotations of each Job.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<HookJobMetadata>,
    /// A batch/v1 JobSpec (`template` with at least one container;
    /// `restartPolicy` defaults to `Never`). `activeDeadlineSeconds` is
    /// replaced by the hook's `timeout`. Kept as given: the API server
    /// validates it when the Job is created, and a refusal is reported in
    /// `status.hooks.lastError`.
    #[schemars(schema_with = "job_spec_schema")]
    pub spec: serde_json::Value,
}

/// The embedded JobSpec is schemaless here (`x-kubernetes-preserve-unknown-fields`):
/// a full PodSpec schema would add about 400 kB to the CRD and pin it to
/// one Kubernetes version; the API server validates the real Job instead.
fn job_spec_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "type": "object",
        "description": "A batch/v1 JobSpec (`template` with at least one container; `restartPolicy` defaults to `Never`). `activeDeadlineSeconds` is replaced by the hook's `timeout`. Kept as given: the API server validates it when the Job is created, and a refusal is reported in `status.hooks.lastError`.",
        "x-kubernetes-preserve-unknown-fields": true,
    })
}

/// How many finished Jobs of a list are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct HookHistoryLimit {
    /// Succeeded Jobs kept (newest first; default 3, at most 100).
    #[serde(default = "default_history")]
    #[schemars(range(min = 0, max = 100))]
    pub successful: i32,
    /// Failed Jobs kept (newest first; default 3, at most 100).
    #[serde(default = "default_history")]
    #[schemars(range(min = 0, max = 100))]
    pub failed: i32,
}

impl Default for HookHistoryLimit {
    fn default() -> Self {
        Self {
            successful: DEFAULT_HOOK_HISTORY,
            failed: DEFAULT_HOOK_HISTORY,
        }
    }
}

fn default_history() -> i32 {
    DEFAULT_HOOK_HISTORY
}

/// Event hooks: a Job per event of one of the list's images (operator
/// only; `vmlisub sync` runs `--event-command` instead).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct Hooks {
    /// The Job to create per event. Every container (init containers
    /// too) gets the event's `VMILS_EVENT_*` and `VMCATCHER_EVENT_*`
    /// variables and `VMLISUB_*` (namespace, list, ImageSubscription,
    /// artifact URL) in its `env`; the template's own entries of those
    /// names are dropped. Values never reach `command` or `args`: a
    /// template whose command or arguments reference them as `$(...)` is
    /// refused.
    pub job_template: HookJobTemplate,
    /// The events that run a Job (default: all four).
    #[serde(default = "all_events")]
    #[schemars(length(min = 1, max = 4), extend("x-kubernetes-list-type" = "set"))]
    pub events: Vec<HookEvent>,
    /// How long a Job may run, retries included: its
    /// `activeDeadlineSeconds` (Go duration, `10s` to `24h`; default
    /// `10m`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$"), length(max = 64))]
    #[x_kube(validation = Rule::new("duration(self) >= duration('10s') && duration(self) <= duration('24h')").message("timeout must be between 10s and 24h"))]
    pub timeout: Option<String>,
    /// Finished Jobs kept per list; older ones are deleted with their pods.
    #[serde(default)]
    pub history_limit: HookHistoryLimit,
}

/// A hook Job's state, from its status.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum HookJobPhase {
    /// Created, no pod running yet.
    #[default]
    Pending,
    /// A pod is running.
    Running,
    /// The Job is Complete.
    Succeeded,
    /// The Job Failed (a pod failed beyond `backoffLimit`, or the
    /// timeout passed).
    Failed,
}

impl HookJobPhase {
    pub fn finished(self) -> bool {
        matches!(self, Self::Succeeded | Self::Failed)
    }
}

/// The newest hook Job of the list.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HookRun {
    /// The Job's name.
    pub job_name: String,
    /// The event it ran for (`AvailablePostfix`, ...).
    pub event: String,
    /// The image's `dc:identifier`.
    pub image: String,
    /// Pending, Running, Succeeded or Failed.
    pub phase: HookJobPhase,
    /// Pods that succeeded.
    #[serde(default)]
    pub succeeded: i32,
    /// Pods that failed.
    #[serde(default)]
    pub failed: i32,
    /// When the Job was created (RFC 3339).
    pub created: String,
    /// When it finished (RFC 3339), once it has.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished: Option<String>,
}

/// The last hook Job the operator could not create.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HookFailure {
    /// `HookTemplateInvalid`, `HookJobForbidden`, `HookJobRejected`,
    /// `HookJobCreateFailed` or `HooksDisabled` (docs/operator.md).
    pub reason: String,
    /// What exactly went wrong.
    pub message: String,
    /// The event whose Job was not created.
    pub event: String,
    /// The image's `dc:identifier`.
    pub image: String,
    /// When (RFC 3339). Cleared by the next Job created.
    pub time: String,
}

/// What the hooks did last.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HookStatus {
    /// The newest Job of the list, and how it went.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_run: Option<HookRun>,
    /// Why the last Job could not be created, until one is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<HookFailure>,
}
