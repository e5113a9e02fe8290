//! `spec.export.glance` in the operator: the same export as `vmlisub
//! sync` (crate::export::glance), with its Secrets read through the API
//! under the opt-in label rule (`vmli.hepix.org/credentials: "true"`).

use jiff::Timestamp;
use kube::ResourceExt as _;

use super::super::inputs::fetch_secrets;
use super::super::{Context, ControllerError, key_of};
use crate::api::conditions::set_condition;
use crate::api::export::{GlanceExportState, GlanceExportStatus};
use crate::api::{
    CREDENTIALS_LABEL, Condition, ConditionStatus, ImageSubscription, ImageSubscriptionStatus,
};
use crate::export::glance::{self, GlanceError};
use crate::imagelist::Image;
use crate::subscription::inputs::SourceKind;
use crate::subscription::{Fetched, SecretData};

/// Runs the Glance export of `image` (if it has one) against what
/// `status` says of the cache, and records it in `status.export.glance`
/// and the `Exported` condition. Returns the export's state.
pub async fn glance(
    image: &ImageSubscription,
    status: &mut ImageSubscriptionStatus,
    listed: Option<&Image>,
    context: &Context,
    now: Timestamp,
) -> Result<Option<GlanceExportState>, ControllerError> {
    let Some(spec) = image.spec.export.as_ref().and_then(|e| e.glance.as_ref()) else {
        return Ok(None);
    };
    let Some((identifier, target)) = glance::target_of(status, listed) else {
        return Ok(None);
    };
    let key = key_of(image);
    let previous = status.export.as_ref().and_then(|e| e.glance.clone());
    let mut fetched = Fetched::default();
    let mut names = vec![spec.credentials_secret_ref.name.clone()];
    names.extend(spec.ca_secret_ref.as_ref().map(|r| r.name.clone()));
    fetch_secrets(&mut fetched, names, &key, context).await?;
    let secret = |name: &str| -> Result<&SecretData, GlanceError> {
        if fetched
            .not_opted_in
            .contains(&(SourceKind::Secret, name.to_string()))
        {
            return Err(GlanceError::Config {
                detail: format!(
                    "Secret {}/{name} does not carry the label {CREDENTIALS_LABEL}=\"true\"; the operator reads only Secrets labelled for it",
                    key.namespace
                ),
            });
        }
        fetched
            .secrets
            .get(name)
            .ok_or_else(|| GlanceError::Config {
                detail: format!("Secret {}/{name} not found", key.namespace),
            })
    };
    let connected = async {
        let credentials = secret(&spec.credentials_secret_ref.name)?;
        let ca = spec
            .ca_secret_ref
            .as_ref()
            .map(|r| secret(&r.name))
            .transpose()?;
        let connection = glance::connection(spec, credentials, ca)?;
        glance::Glance::connect(&connection, &context.core.config().transfer).await
    }
    .await;
    let list = format!("{}/{}", key.namespace, image.spec.subscription_ref.name);
    let exported: GlanceExportStatus = match connected {
        Ok(client) => {
            let source = glance::Source {
                list: &list,
                identifier,
                target,
            };
            glance::export(
                &client,
                spec,
                &source,
                previous.as_ref(),
                &glance::Timing::default(),
                now,
            )
            .await
        }
        Err(error) => {
            tracing::warn!(image = %image.name_any(), %error, "Glance export: cannot connect");
            glance::failed_status(previous.as_ref(), &error, now)
        }
    };
    let state = exported.state;
    set_condition(
        &mut status.conditions,
        glance::exported_condition(&exported, now),
    );
    status.export.get_or_insert_with(Default::default).glance = Some(exported);
    Ok(Some(state))
}

/// The one `Exported` condition when both KubeVirt and Glance exports are
/// configured: True only when both are, with the first failing export's
/// reason, and both messages.
pub fn both_exported(kubevirt: &Condition, glance: &Condition) -> Condition {
    if kubevirt == glance {
        return kubevirt.clone();
    }
    let ok = kubevirt.status == ConditionStatus::True && glance.status == ConditionStatus::True;
    let reason = if kubevirt.status != ConditionStatus::True {
        &kubevirt.reason
    } else if glance.status != ConditionStatus::True {
        &glance.reason
    } else {
        &kubevirt.reason
    };
    let mut both = kubevirt.clone();
    both.status = if ok {
        ConditionStatus::True
    } else {
        ConditionStatus::False
    };
    both.reason = reason.clone();
    both.message = format!("KubeVirt: {}; Glance: {}", kubevirt.message, glance.message);
    both
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    fn condition(ok: bool, reason: &str, message: &str) -> Condition {
        let now = Timestamp::from_second(1_800_000_000).unwrap();
        let status = if ok {
            ConditionStatus::True
        } else {
            ConditionStatus::False
        };
        Condition::new("Exported", status, reason, message.to_string(), now)
    }

    #[test]
    fn both_exports_must_be_done_for_exported_true() {
        let done_kv = condition(true, "Exported", "DataSource points at pvc-1");
        let done_g = condition(true, "Exported", "Glance image abc is active");
        let importing_g = condition(false, "Importing", "Glance is importing image abc");
        let failed_kv = condition(false, "CDINotInstalled", "no CDI");

        let both = both_exported(&done_kv, &done_g);
        assert_eq!(both.status, ConditionStatus::True);
        assert_eq!(
            both.message,
            "KubeVirt: DataSource points at pvc-1; Glance: Glance image abc is active"
        );

        let waiting = both_exported(&done_kv, &importing_g);
        assert_eq!(waiting.status, ConditionStatus::False);
        assert_eq!(waiting.reason, "Importing");

        let first_failure = both_exported(&failed_kv, &importing_g);
        assert_eq!(first_failure.reason, "CDINotInstalled");
        assert_eq!(first_failure.status, ConditionStatus::False);

        // Glance did not run (no verified image yet): the one condition
        // there is stays as it is.
        assert_eq!(both_exported(&done_kv, &done_kv), done_kv);
    }
}
