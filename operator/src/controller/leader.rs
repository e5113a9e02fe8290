//! Leader election with a `coordination.k8s.io/v1` Lease, as client-go
//! does it: one holder at a time, taken over only after the holder stopped
//! renewing for a whole lease duration, released on graceful shutdown.
//! Every write carries the resourceVersion it read, so two replicas racing
//! for the Lease cannot both win (the loser gets a 409 and tries later).

use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use kube::Api;
use kube::api::{ObjectMeta, PostParams};

/// Where the Lease lives and who we are.
#[derive(Debug, Clone)]
pub struct LeaderConfig {
    pub namespace: String,
    pub name: String,
    /// This replica's identity (the pod name).
    pub identity: String,
    pub lease_duration: Duration,
    /// How often the holder renews (well under the duration).
    pub renew_period: Duration,
    /// How often a candidate retries.
    pub retry_period: Duration,
}

impl LeaderConfig {
    /// client-go's defaults: 15 s lease, renewed every 5 s, retried every 2 s.
    pub fn new(namespace: String, name: String, identity: String) -> Self {
        Self {
            namespace,
            name,
            identity,
            lease_duration: Duration::from_secs(15),
            renew_period: Duration::from_secs(5),
            retry_period: Duration::from_secs(2),
        }
    }
}

/// Why leadership was lost.
#[derive(Debug, Clone, thiserror::Error)]
pub enum LeaderError {
    #[error("Lease {0} is held by {1}")]
    Lost(String, String),
    #[error("Lease {name} not renewed for {seconds} s: {message}")]
    RenewFailed {
        name: String,
        seconds: u64,
        message: String,
    },
}

/// Candidate for the Lease.
pub struct Elector {
    api: Api<Lease>,
    config: LeaderConfig,
}

/// The Lease, held: renewed in the background until released or lost.
pub struct Held {
    api: Api<Lease>,
    config: LeaderConfig,
    lost: tokio::sync::watch::Receiver<Option<LeaderError>>,
    renewer: tokio::task::JoinHandle<()>,
}

fn now() -> MicroTime {
    MicroTime(jiff::Timestamp::now())
}

enum Attempt {
    Acquired,
    HeldBy(String),
    Retry(String),
}

impl Elector {
    pub fn new(client: kube::Client, config: LeaderConfig) -> Self {
        Self {
            api: Api::namespaced(client, &config.namespace),
            config,
        }
    }

    /// Waits until this replica holds the Lease.
    pub async fn acquire(self) -> Result<Held, LeaderError> {
        let mut last_holder = String::new();
        loop {
            match try_take(&self.api, &self.config).await {
                Attempt::Acquired => {
                    tracing::info!(lease = %self.config.name, identity = %self.config.identity, "leader election: acquired");
                    break;
                }
                Attempt::HeldBy(holder) => {
                    if holder != last_holder {
                        tracing::info!(lease = %self.config.name, %holder, "leader election: waiting for the holder");
                        last_holder = holder;
                    }
                }
                Attempt::Retry(message) => {
                    tracing::warn!(lease = %self.config.name, %message, "leader election: retrying");
                }
            }
            tokio::time::sleep(self.config.retry_period).await;
        }
        let (lost_tx, lost_rx) = tokio::sync::watch::channel(None);
        let api = self.api.clone();
        let config = self.config.clone();
        let renewer = tokio::spawn(async move {
            let mut last_renewal = tokio::time::Instant::now();
            loop {
                tokio::time::sleep(config.renew_period).await;
                match try_take(&api, &config).await {
                    Attempt::Acquired => last_renewal = tokio::time::Instant::now(),
                    Attempt::HeldBy(holder) => {
                        let _ = lost_tx.send(Some(LeaderError::Lost(config.name.clone(), holder)));
                        return;
                    }
                    Attempt::Retry(message) => {
                        // Stop before another replica may take over.
                        if last_renewal.elapsed() + config.renew_period >= config.lease_duration {
                            let _ = lost_tx.send(Some(LeaderError::RenewFailed {
                                name: config.name.clone(),
                                seconds: config.lease_duration.as_secs(),
                                message,
                            }));
                            return;
                        }
                    }
                }
            }
        });
        Ok(Held {
            api: self.api,
            config: self.config,
            lost: lost_rx,
            renewer,
        })
    }
}

/// One attempt to create, renew or take over the Lease.
async fn try_take(api: &Api<Lease>, config: &LeaderConfig) -> Attempt {
    let duration_secs = i32::try_from(config.lease_duration.as_secs()).unwrap_or(15);
    let existing = match api.get_opt(&config.name).await {
        Ok(existing) => existing,
        Err(err) => return Attempt::Retry(err.to_string()),
    };
    let Some(mut lease) = existing else {
        let lease = Lease {
            metadata: ObjectMeta {
                name: Some(config.name.clone()),
                namespace: Some(config.namespace.clone()),
                ..ObjectMeta::default()
            },
            spec: Some(LeaseSpec {
                holder_identity: Some(config.identity.clone()),
                lease_duration_seconds: Some(duration_secs),
                acquire_time: Some(now()),
                renew_time: Some(now()),
                lease_transitions: Some(0),
                ..LeaseSpec::default()
            }),
        };
        return match api.create(&PostParams::default(), &lease).await {
            Ok(_) => Attempt::Acquired,
            Err(err) => Attempt::Retry(err.to_string()),
        };
    };
    let spec = lease.spec.clone().unwrap_or_default();
    let holder = spec.holder_identity.clone().unwrap_or_default();
    let ours = holder == config.identity;
    if !ours && !holder.is_empty() {
        let held_for = i64::from(spec.lease_duration_seconds.unwrap_or(duration_secs));
        let renewed = spec
            .renew_time
            .as_ref()
            .map(|t| t.0)
            .unwrap_or(jiff::Timestamp::UNIX_EPOCH);
        let expired = jiff::Timestamp::now().as_second() > renewed.as_second() + held_for;
        if !expired {
            return Attempt::HeldBy(holder);
        }
    }
    let mut new_spec = spec.clone();
    new_spec.holder_identity = Some(config.identity.clone());
    new_spec.lease_duration_seconds = Some(duration_secs);
    new_spec.renew_time = Some(now());
    if !ours {
        new_spec.acquire_time = Some(now());
        new_spec.lease_transitions = Some(spec.lease_transitions.unwrap_or(0).saturating_add(1));
    }
    lease.spec = Some(new_spec);
    match api
        .replace(&config.name, &PostParams::default(), &lease)
        .await
    {
        Ok(_) => Attempt::Acquired,
        Err(kube::Error::Api(status)) if status.code == 409 => {
            Attempt::Retry("conflict: another replica wrote the Lease".into())
        }
        Err(err) => Attempt::Retry(err.to_string()),
    }
}

impl Held {
    /// Resolves when the Lease is lost (another holder, or renewals failed
    /// for too long): the caller must stop reconciling at once.
    pub async fn lost(&self) -> LeaderError {
        let mut lost = self.lost.clone();
        let ended = || LeaderError::RenewFailed {
            name: self.config.name.clone(),
            seconds: self.config.lease_duration.as_secs(),
            message: "renewal task ended".into(),
        };
        match lost.wait_for(Option::is_some).await {
            Ok(value) => value.clone().unwrap_or_else(ended),
            Err(_) => ended(),
        }
    }

    /// Gives the Lease up so that another replica takes over at once.
    pub async fn release(self) {
        self.renewer.abort();
        let Ok(Some(mut lease)) = self.api.get_opt(&self.config.name).await else {
            return;
        };
        let Some(spec) = lease.spec.as_mut() else {
            return;
        };
        if spec.holder_identity.as_deref() != Some(self.config.identity.as_str()) {
            return;
        }
        spec.holder_identity = None;
        spec.lease_duration_seconds = Some(1);
        match self
            .api
            .replace(&self.config.name, &PostParams::default(), &lease)
            .await
        {
            Ok(_) => tracing::info!(lease = %self.config.name, "leader election: released"),
            Err(err) => {
                tracing::warn!(lease = %self.config.name, error = %err, "leader election: release failed")
            }
        }
    }
}
