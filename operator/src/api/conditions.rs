//! kstatus-style conditions.
//!
//! `Ready` is always present; `Reconciling` and `Stalled` only while true;
//! domain conditions (`SignatureVerified`, `Endorsed`, `Available`, ...)
//! carry specific reasons. The transition time only moves when the status
//! flips, so that watchers can tell how long a state has lasted.

use jiff::Timestamp;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The condition types vmlisub publishes (kstatus: `Ready` always,
/// `Reconciling` and `Stalled` only while true).
pub mod types {
    pub const READY: &str = "Ready";
    pub const RECONCILING: &str = "Reconciling";
    pub const STALLED: &str = "Stalled";
    /// A list's signature and certificate path verify.
    pub const SIGNATURE_VERIFIED: &str = "SignatureVerified";
    /// A list's signer is one of its Endorsers.
    pub const ENDORSED: &str = "Endorsed";
    /// `autoEndorse` recorded the first signer (trust on first use).
    pub const AUTO_ENDORSED: &str = "AutoEndorsed";
    /// An image is cached and verified.
    pub const AVAILABLE: &str = "Available";
    /// An image's `spec.export.kubevirt` DataSource serves its current
    /// verified version.
    pub const EXPORTED: &str = "Exported";
}

/// The status of a condition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[schemars(description = "status of the condition, one of True, False, Unknown.")]
pub enum ConditionStatus {
    True,
    False,
    Unknown,
}

/// One condition, with the schema of Kubernetes' `metav1.Condition` (the
/// same fields, formats, patterns and limits), so that `kubectl wait
/// --for=condition=...`, kstatus readers and GitOps tools read it as theirs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    /// type of condition in CamelCase, e.g. `Ready`, `SignatureVerified`,
    /// `Available`.
    #[serde(rename = "type")]
    #[schemars(
        length(max = 316),
        regex(
            pattern = r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])$"
        )
    )]
    pub type_: String,
    pub status: ConditionStatus,
    /// reason contains a programmatic identifier indicating the reason for
    /// the condition's last transition: the CamelCase form of a stable
    /// reason code, e.g. `SignatureInvalid` (docs/reason-codes.md).
    #[schemars(
        length(min = 1, max = 1024),
        regex(pattern = r"^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$")
    )]
    pub reason: String,
    /// message is a human readable message indicating details about the
    /// transition. This may be an empty string.
    #[serde(default)]
    #[schemars(required, length(max = 32768))]
    pub message: String,
    /// lastTransitionTime is the last time the condition transitioned from
    /// one status to another (RFC 3339).
    #[schemars(extend("format" = "date-time"))]
    pub last_transition_time: String,
    /// observedGeneration represents the .metadata.generation that the
    /// condition was set based upon.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub observed_generation: Option<i64>,
}

/// The longest condition message kept (metav1.Condition's limit).
pub const MAX_MESSAGE_BYTES: usize = 32768;

/// `message`, cut at a character boundary to [`MAX_MESSAGE_BYTES`].
fn bounded(mut message: String) -> String {
    if message.len() > MAX_MESSAGE_BYTES {
        let mut end = MAX_MESSAGE_BYTES - 3;
        while !message.is_char_boundary(end) {
            end -= 1;
        }
        message.truncate(end);
        message.push_str("...");
    }
    message
}

impl Condition {
    pub fn new(
        type_: &str,
        status: ConditionStatus,
        reason: &str,
        message: impl Into<String>,
        now: Timestamp,
    ) -> Self {
        Self {
            type_: type_.to_string(),
            status,
            reason: reason.to_string(),
            message: bounded(message.into()),
            last_transition_time: now.strftime("%Y-%m-%dT%H:%M:%SZ").to_string(),
            observed_generation: None,
        }
    }
}

/// Inserts or replaces `condition` in `conditions`, keeping the previous
/// transition time when the status did not change. Returns whether anything
/// a user would notice (status, reason or message) changed: only then is an
/// event worth emitting.
pub fn set_condition(conditions: &mut Vec<Condition>, mut condition: Condition) -> bool {
    match conditions
        .iter_mut()
        .find(|existing| existing.type_ == condition.type_)
    {
        Some(existing) => {
            let changed = existing.status != condition.status
                || existing.reason != condition.reason
                || existing.message != condition.message;
            if existing.status == condition.status {
                condition.last_transition_time = existing.last_transition_time.clone();
            }
            *existing = condition;
            changed
        }
        None => {
            conditions.push(condition);
            true
        }
    }
}

/// Removes a condition (kstatus: `Reconciling`/`Stalled` exist only while true).
pub fn remove_condition(conditions: &mut Vec<Condition>, type_: &str) -> bool {
    let before = conditions.len();
    conditions.retain(|condition| condition.type_ != type_);
    before != conditions.len()
}

/// The condition of the given type, if any.
pub fn find<'a>(conditions: &'a [Condition], type_: &str) -> Option<&'a Condition> {
    conditions.iter().find(|condition| condition.type_ == type_)
}

/// kstatus summary of an object whose Ready follows one domain condition
/// (`Available` for an image): while `Reconciling` is True, Ready is False
/// with its reason (work in progress); otherwise Ready mirrors the domain
/// condition, True with `ready_reason`, or False with its reason and
/// message. A missing domain condition leaves Ready as it is.
pub fn summarize_ready(
    conditions: &mut Vec<Condition>,
    domain: &str,
    ready_reason: &str,
    now: Timestamp,
) {
    let source = find(conditions, types::RECONCILING)
        .filter(|c| c.status == ConditionStatus::True)
        .map(|c| (ConditionStatus::False, c.reason.clone(), c.message.clone()))
        .or_else(|| {
            find(conditions, domain).map(|c| match c.status {
                ConditionStatus::True => (
                    ConditionStatus::True,
                    ready_reason.to_string(),
                    String::new(),
                ),
                status => (status, c.reason.clone(), c.message.clone()),
            })
        });
    if let Some((status, reason, message)) = source {
        set_condition(
            conditions,
            Condition::new(types::READY, status, &reason, message, now),
        );
    }
}

/// Whether the `Ready` condition is True.
pub fn is_ready(conditions: &[Condition]) -> bool {
    find(conditions, types::READY).is_some_and(|ready| ready.status == ConditionStatus::True)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn at(seconds: i64) -> Timestamp {
        Timestamp::from_second(seconds).unwrap()
    }

    #[test]
    fn transition_time_moves_only_on_status_change() {
        let mut conditions = Vec::new();
        assert!(set_condition(
            &mut conditions,
            Condition::new("Ready", ConditionStatus::False, "FetchFailed", "x", at(0))
        ));
        assert!(set_condition(
            &mut conditions,
            Condition::new("Ready", ConditionStatus::False, "FetchFailed", "y", at(10))
        ));
        assert_eq!(conditions[0].last_transition_time, "1970-01-01T00:00:00Z");
        assert!(!set_condition(
            &mut conditions,
            Condition::new("Ready", ConditionStatus::False, "FetchFailed", "y", at(20))
        ));
        assert!(set_condition(
            &mut conditions,
            Condition::new("Ready", ConditionStatus::True, "Succeeded", "", at(30))
        ));
        assert_eq!(conditions[0].last_transition_time, "1970-01-01T00:00:30Z");
        assert!(is_ready(&conditions));
        assert!(remove_condition(&mut conditions, "Ready"));
        assert!(!is_ready(&conditions));
    }

    #[test]
    fn ready_summarizes_the_domain_condition_and_work_in_progress() {
        let mut conditions = Vec::new();
        summarize_ready(&mut conditions, types::AVAILABLE, "Available", at(0));
        assert!(find(&conditions, types::READY).is_none());
        set_condition(
            &mut conditions,
            Condition::new(
                types::AVAILABLE,
                ConditionStatus::False,
                "DigestMismatch",
                "bad",
                at(1),
            ),
        );
        summarize_ready(&mut conditions, types::AVAILABLE, "Available", at(1));
        let ready = find(&conditions, types::READY).unwrap();
        assert_eq!(
            (ready.status, ready.reason.as_str(), ready.message.as_str()),
            (ConditionStatus::False, "DigestMismatch", "bad")
        );
        set_condition(
            &mut conditions,
            Condition::new(
                types::RECONCILING,
                ConditionStatus::True,
                "Downloading",
                "",
                at(2),
            ),
        );
        summarize_ready(&mut conditions, types::AVAILABLE, "Available", at(2));
        assert_eq!(
            find(&conditions, types::READY).unwrap().reason,
            "Downloading"
        );
        remove_condition(&mut conditions, types::RECONCILING);
        set_condition(
            &mut conditions,
            Condition::new(
                types::AVAILABLE,
                ConditionStatus::True,
                "Verified",
                "",
                at(3),
            ),
        );
        summarize_ready(&mut conditions, types::AVAILABLE, "Available", at(3));
        assert!(is_ready(&conditions));
        assert_eq!(find(&conditions, types::READY).unwrap().reason, "Available");
    }
}
