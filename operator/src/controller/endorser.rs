//! The Endorser reconciler: reports which subscriptions an Endorser
//! authorises, and whether its credentials are well-formed one-line DNs.
//! (Lists re-evaluate themselves when an Endorser they name changes; see
//! `list::lists_using`.)

use kube::runtime::events::EventType;
use std::sync::Arc;
use std::time::Instant;

use jiff::Timestamp;
use kube::ResourceExt as _;
use kube::runtime::controller::Action;
use kube::runtime::reflector::{ObjectRef, Store};

use super::{Context, ControllerError, key_of};
use crate::api::conditions;
use crate::api::{Endorser, EndorserStatus, ImageListSubscription};
use crate::sync::engine::set;

pub async fn reconcile(
    endorser: Arc<Endorser>,
    context: Arc<Context>,
) -> Result<Action, ControllerError> {
    context.wait_for_caches().await;
    let started = Instant::now();
    let result = apply(&endorser, &context).await;
    context.metrics.reconciled("Endorser", started, &result);
    result
}

pub fn error_policy(
    endorser: Arc<Endorser>,
    error: &ControllerError,
    context: Arc<Context>,
) -> Action {
    context.backoff(&key_of(&*endorser), error)
}

/// The Endorsers in a list's namespace: any of them may gain or lose it.
pub fn endorsers_of(
    endorsers: &Store<Endorser>,
    list: &ImageListSubscription,
) -> Vec<ObjectRef<Endorser>> {
    let namespace = list.namespace();
    endorsers
        .state()
        .iter()
        .filter(|endorser| endorser.namespace() == namespace)
        .map(|endorser| ObjectRef::from_obj(&**endorser))
        .collect()
}

async fn apply(endorser: &Endorser, context: &Context) -> Result<Action, ControllerError> {
    let now = Timestamp::now();
    let current = endorser.status.clone();
    let mut status: EndorserStatus = current.clone().unwrap_or_default();
    status.observed_generation = endorser.metadata.generation;
    status.credential_count = endorser.spec.credentials.len() as i64;
    let name = endorser.name_any();
    let auto_for = endorser.labels().get(super::list::LIST_LABEL).cloned();
    let mut authorises: Vec<String> = context
        .lists
        .state()
        .iter()
        .filter(|list| list.namespace() == endorser.namespace())
        .filter(|list| {
            list.spec.endorsers.iter().any(|e| e.name == name)
                || (list.spec.auto_endorse && auto_for.as_deref() == Some(list.name_any().as_str()))
        })
        .map(|list| list.name_any())
        .collect();
    authorises.sort();
    status.authorises = authorises;
    let malformed: Vec<&str> = endorser
        .spec
        .credentials
        .iter()
        .filter(|c| {
            !crate::trust::dn::is_one_line_dn(&c.subject)
                || !crate::trust::dn::is_one_line_dn(&c.issuer)
        })
        .map(|c| c.subject.as_str())
        .collect();
    let was_ready = current
        .as_ref()
        .map(|s| conditions::is_ready(&s.conditions));
    if malformed.is_empty() && !endorser.spec.credentials.is_empty() {
        set(
            &mut status.conditions,
            "Ready",
            true,
            "CredentialsValid",
            "",
            now,
        );
    } else if endorser.spec.credentials.is_empty() {
        set(
            &mut status.conditions,
            "Ready",
            false,
            "NoCredentials",
            "no credentials: this Endorser authorises nobody",
            now,
        );
    } else {
        set(
            &mut status.conditions,
            "Ready",
            false,
            "CredentialsInvalid",
            &format!("not one-line DNs: {}", malformed.join(", ")),
            now,
        );
    }
    let ready = conditions::is_ready(&status.conditions);
    context
        .apply_status(endorser, current.as_ref(), &status)
        .await?;
    if was_ready != Some(ready)
        && !ready
        && let Some(condition) = conditions::find(&status.conditions, "Ready")
    {
        context
            .event(
                endorser,
                EventType::Warning,
                &condition.reason,
                "Validate",
                condition.message.clone(),
            )
            .await;
    }
    context.clear_failures(&key_of(endorser));
    Ok(Action::await_change())
}

#[cfg(test)]
mod tests {
    use crate::trust::dn::is_one_line_dn;

    #[test]
    fn one_line_dns() {
        assert!(is_one_line_dn(
            "/DC=ch/DC=cern/CN=CERN Trusted Certification Authority"
        ));
        assert!(is_one_line_dn(
            "/C=UK/O=eScience/OU=Oxford/L=OeSC/CN=host.example.org"
        ));
        assert!(!is_one_line_dn("CN=Alice,O=Example"));
        assert!(!is_one_line_dn("/"));
        assert!(is_one_line_dn(
            "/DC=ch/DC=cern/OU=computers/CN=host/node.cern.ch"
        ));
        assert!(!is_one_line_dn("/nothing"));
        assert!(!is_one_line_dn("/=x"));
    }
}
