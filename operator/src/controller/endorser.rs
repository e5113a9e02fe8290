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
use crate::api::{Endorser, ImageListSubscription};
use crate::subscription::status;

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
    let current = endorser.status.clone();
    let name = endorser.name_any();
    let auto_for = endorser.labels().get(crate::api::LIST_LABEL).cloned();
    let lists = context.lists.state();
    let names: Vec<String> = lists.iter().map(|list| list.name_any()).collect();
    let in_namespace = lists
        .iter()
        .zip(&names)
        .filter(|(list, _)| list.namespace() == endorser.namespace())
        .map(|(list, name)| (name.as_str(), &**list));
    let authorises = status::authorises(&name, auto_for.as_deref(), in_namespace);
    let status = status::endorser_status(current.as_ref(), endorser, authorises, Timestamp::now());
    let was_ready = current
        .as_ref()
        .map(|s| conditions::is_ready(&s.conditions));
    let ready = conditions::is_ready(&status.conditions);
    context
        .apply_status(endorser, current.as_ref(), &status)
        .await?;
    if was_ready != Some(ready)
        && !ready
        && let Some(condition) = conditions::find(&status.conditions, conditions::types::READY)
    {
        context.event(
            endorser,
            EventType::Warning,
            &condition.reason,
            "Validate",
            condition.message.clone(),
        );
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
