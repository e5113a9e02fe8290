//! The list step: fetch when due (or forced), verify, authorise and decide;
//! otherwise re-check the stored list now. A refused update never touches
//! the last good list; a stored list that no longer stands withdraws its
//! images.

use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use sha2::{Digest as _, Sha512};

use super::failure::{Concern, Failure, FailureClass};
use super::inputs::ListInputs;
use super::state::{ListState, write_atomically};
use super::status::{self, Refused};
use super::view::{GoodList, ListRefresh, ListView};
use super::{Subscriptions, lock, select};
use crate::api::ImageListSubscription;
use crate::api::conditions::{self, types};
use crate::decision::{
    self, Credential, DecisionInput, HighWaterMark, SignerIdentity, StoredList, Verdict,
};
use crate::imagelist::{self, Sha512Hex};
use crate::store::ExpireReason;
use crate::transfer::{ListFetch, Validators};
use crate::trust::{self, CrlPolicy, TrustStore, VerifyOptions};

fn rfc3339(at: Timestamp) -> String {
    imagelist::format_timestamp(at)
}

fn sha512_hex(bytes: &[u8]) -> Sha512Hex {
    let digest: [u8; 64] = Sha512::digest(bytes).into();
    Sha512Hex::from_digest(&digest)
}

fn verify_options(list: &ImageListSubscription, now: Timestamp) -> VerifyOptions {
    let trust = list.spec.trust.as_ref();
    VerifyOptions {
        at: now,
        crl_policy: trust
            .and_then(|t| t.crl_policy.as_deref())
            .and_then(|p| p.parse::<CrlPolicy>().ok())
            .unwrap_or_default(),
        allow_sha1: trust.is_some_and(|t| t.allow_sha1),
    }
}

fn next_fetch_of(entry: Option<&ListState>) -> Option<Timestamp> {
    entry
        .and_then(|e| e.next_fetch.as_deref())
        .and_then(|next| imagelist::parse_timestamp(next).ok())
}

impl Subscriptions {
    /// One list: fetched when due (or `force`d), else the stored list
    /// re-checked now (a stored list that no longer stands is fetched at
    /// once). The caller saves the state.
    pub async fn refresh_list(
        &self,
        inputs: &ListInputs,
        force: bool,
        now: Timestamp,
    ) -> ListRefresh {
        let key = &inputs.key;
        let entry = lock(&self.state).lists.get(&key.to_string()).cloned();
        let next_fetch = next_fetch_of(entry.as_ref());
        if !force && next_fetch.is_some_and(|next| next > now) {
            let status = entry.map(|e| e.status).unwrap_or_default();
            match self.recheck_stored(inputs, now) {
                Ok(good) => {
                    return ListRefresh {
                        status,
                        view: ListView::Good(Arc::new(good)),
                        lines: Vec::new(),
                        fetched: false,
                        next_fetch,
                    };
                }
                Err(None) => {
                    let failure = conditions::find(&status.conditions, types::READY)
                        .map(|ready| Failure {
                            reason: ready.reason.clone().into(),
                            message: ready.message.clone(),
                            class: FailureClass::Transient,
                            concern: Concern::Other,
                        })
                        .unwrap_or_else(|| {
                            Failure::transient("no-stored-list", "no list has been imported yet")
                        });
                    return ListRefresh {
                        status,
                        view: ListView::Unavailable(failure),
                        lines: Vec::new(),
                        fetched: false,
                        next_fetch,
                    };
                }
                Err(Some(_)) => {}
            }
        }
        let mut lines = Vec::new();
        let result = self.fetch_list(inputs, now, &mut lines).await;
        let entry = lock(&self.state)
            .lists
            .get(&key.to_string())
            .cloned()
            .unwrap_or_default();
        ListRefresh {
            next_fetch: next_fetch_of(Some(&entry)),
            status: entry.status,
            view: ListView::of(result),
            lines,
            fetched: true,
        }
    }

    /// Re-checks the stored list now. `Err(None)`: there is no usable
    /// stored list (none yet, or its trust inputs are missing);
    /// `Err(Some(..))`: it no longer stands, and why.
    fn recheck_stored(
        &self,
        inputs: &ListInputs,
        now: Timestamp,
    ) -> Result<GoodList, Option<Failure>> {
        let key = &inputs.key;
        let stored = lock(&self.state)
            .lists
            .get(&key.to_string())
            .is_some_and(|entry| entry.signed_list_file.is_some());
        if !stored {
            return Err(None);
        }
        let bytes = std::fs::read(self.list_file(key)).map_err(|_| None)?;
        let trust = self.trust_for(inputs).map_err(|_| None)?;
        let entry = lock(&self.state).lists.get(&key.to_string()).cloned();
        let credentials = credentials_of(inputs, entry.as_ref());
        stored_list(
            &bytes,
            &trust,
            &verify_options(&inputs.list, now),
            &credentials,
        )
        .map_err(Some)
    }

    /// Fetches, verifies and decides one list; updates its state.
    /// Returns the list to plan with, or the reason its images must go.
    async fn fetch_list(
        &self,
        inputs: &ListInputs,
        now: Timestamp,
        lines: &mut Vec<String>,
    ) -> Result<GoodList, Failure> {
        let key = &inputs.key;
        let list = &inputs.list;
        let state_key = key.to_string();
        let mut entry = lock(&self.state)
            .lists
            .get(&state_key)
            .cloned()
            .unwrap_or_default();
        entry.status.observed_generation = list.metadata.generation;

        let options = verify_options(list, now);
        let stored_bytes = entry
            .signed_list_file
            .as_ref()
            .and_then(|_| std::fs::read(self.list_file(key)).ok());
        // How far the list the publisher serves now got, when this pass
        // fetched one and refused it: the conditions describe it.
        let mut refused: Option<Refused> = None;

        let credentials = credentials_of(inputs, Some(&entry));
        // autoEndorse before its first signer: whoever validly signs now.
        let first_use = list.spec.auto_endorse && entry.auto_endorsed.is_none();
        let outcome: Result<GoodList, Failure> = async {
            super::select::validate_spec(list)?;
            let trust = self.trust_for(inputs)?;
            let credentials = &credentials;
            if !inputs.missing_endorsers.is_empty() && credentials.is_empty() && !first_use {
                // Every endorser this list relied on is gone.
                return Err(Failure::endorsement(
                    "endorser-missing",
                    format!(
                        "Endorser(s) {} not found",
                        inputs.missing_endorsers.join(", ")
                    ),
                )
                .withdrawing(ExpireReason::EndorserRemoved));
            }
            let transfer = self.transfer_for(&inputs.transfer, &list.spec.url)?;
            // The validators on record are those of the last *accepted*
            // response (a refused response never records its own), so a 304
            // always refers to the stored list, and is only asked for while
            // that list still stands.
            let validators = Validators {
                etag: entry.status.etag.clone(),
                last_modified: entry.status.last_modified.clone(),
            };
            let previous = stored_bytes
                .as_deref()
                .map(|bytes| stored_list(bytes, &trust, &options, credentials));
            let use_validators = matches!(previous, Some(Ok(_)));
            let fetched = transfer
                .fetch_list(
                    &list.spec.url,
                    self.config.max_list_bytes,
                    use_validators.then_some(&validators),
                )
                .await;
            entry.status.last_fetch_time = Some(rfc3339(now));
            let (bytes, fetched_validators) = match fetched {
                Ok(ListFetch::NotModified) => {
                    return match previous {
                        Some(Ok(good)) => Ok(good),
                        Some(Err(failure)) => Err(failure),
                        None => Err(Failure::transient(
                            "fetch-failed",
                            "304 without a stored list",
                        )),
                    };
                }
                Ok(ListFetch::Fetched {
                    bytes, validators, ..
                }) => {
                    // Recorded only once the response is accepted: kept
                    // for a refused one, they would turn the next fetch of
                    // the same bad list into a 304 that passes for the
                    // stored list's.
                    entry.status.etag = None;
                    entry.status.last_modified = None;
                    (bytes, validators)
                }
                Err(err) => {
                    // The old list stays good while the publisher is
                    // unreachable; one that no longer stands still goes.
                    return Err(still_withdrawing(Failure::of(&err), previous.as_ref()));
                }
            };
            let candidate = verify_and_decide(
                &bytes,
                &trust,
                &options,
                credentials,
                first_use,
                list,
                entry.pinned_identifier.as_deref(),
                previous.as_ref().and_then(|p| p.as_ref().ok()),
                &entry.high_water,
                self.config.max_clock_skew,
            );
            match candidate {
                Ok(Accepted {
                    good,
                    verdict,
                    signer: verified_signer,
                    content,
                }) => {
                    let digest = good.digest.to_bytes();
                    if verdict.stores_list() {
                        // The signed bytes, and the bare JSON they carry
                        // (what the artifact server publishes).
                        let path = self.list_file(key);
                        for (path, bytes) in
                            [(path.with_extension("json"), &content), (path, &bytes)]
                        {
                            write_atomically(&path, bytes).map_err(|err| {
                                Failure::transient(
                                    "state-unwritable",
                                    format!("{}: {err}", path.display()),
                                )
                            })?;
                        }
                        entry.signed_list_file =
                            Some(format!("lists/{}/{}.smime", key.namespace, key.name));
                        entry.pinned_identifier =
                            Some(good.parsed.list.identifier.as_str().to_string());
                        entry.status.list = Some(status::list_status(&good, &verified_signer, now));
                        entry.status.artifact = Some(status::list_artifact(
                            self.config.artifact_base_url.as_deref(),
                            &self.list_file(key).with_extension("json"),
                            key,
                            &content,
                            now,
                        ));
                        decision::raise_high_water(
                            &mut entry.high_water,
                            &good.parsed.list,
                            &digest,
                        );
                        lines.push(format!(
                            "{key}: list {} version {} accepted ({})",
                            good.parsed.list.identifier.as_str(),
                            good.parsed.list.version,
                            verdict.kind()
                        ));
                    }
                    if !entry
                        .high_water
                        .iter()
                        .any(|m| m.identifier == good.parsed.list.identifier.as_str())
                    {
                        decision::raise_high_water(
                            &mut entry.high_water,
                            &good.parsed.list,
                            &digest,
                        );
                    }
                    if first_use {
                        lines.push(format!(
                            "{key}: autoEndorse: trusting {} (issuer {}) on first use; review it",
                            verified_signer.subject, verified_signer.issuer
                        ));
                        entry.auto_endorsed = Some(Credential {
                            subject: verified_signer.subject.clone(),
                            issuer: verified_signer.issuer.clone(),
                        });
                    }
                    entry.status.etag = fetched_validators.etag;
                    entry.status.last_modified = fetched_validators.last_modified;
                    for warning in verdict.warnings() {
                        lines.push(format!("{key}: warning: {warning}"));
                    }
                    Ok(good)
                }
                Err((stage, failure)) => {
                    refused = Some(stage);
                    // A bad update never touches the last good list.
                    Err(still_withdrawing(failure, previous.as_ref()))
                }
            }
        }
        .await;

        match &outcome {
            Ok(good) => {
                status::list_good(&mut entry.status, good, now);
                for rejected in &good.parsed.rejected {
                    lines.push(format!(
                        "{key}: image {} dropped: {}: {}",
                        rejected.index, rejected.reason, rejected.message
                    ));
                }
            }
            Err(failure) => {
                status::list_failed(&mut entry.status, failure, refused, now);
                lines.push(format!("{key}: {failure}"));
            }
        }
        let interval = select::jittered(
            crate::api::duration::parse_duration(&list.spec.interval)
                .unwrap_or(Duration::from_secs(6 * 3600)),
            &state_key,
        );
        let next = now
            .checked_add(
                jiff::SignedDuration::try_from(interval)
                    .unwrap_or(jiff::SignedDuration::from_hours(6)),
            )
            .unwrap_or(now);
        entry.next_fetch = Some(rfc3339(next));
        lock(&self.state).lists.insert(state_key, entry);
        outcome
    }
}

/// The credentials that authorise a list's signer: its Endorsers', plus,
/// while `autoEndorse` is on, the signer it trusted on first use.
fn credentials_of(inputs: &ListInputs, entry: Option<&ListState>) -> Vec<Credential> {
    let mut credentials = inputs.credentials.clone();
    if inputs.list.spec.auto_endorse
        && let Some(first) = entry.and_then(|e| e.auto_endorsed.as_ref())
        && !credentials.contains(first)
    {
        credentials.push(first.clone());
    }
    credentials
}

/// Re-checks the stored list: is it still trusted now (signature, chain,
/// CRL, expiry, endorsement)? Returns the list or why it no longer stands
/// (which withdraws its images).
fn stored_list(
    bytes: &[u8],
    trust: &TrustStore,
    options: &VerifyOptions,
    credentials: &[Credential],
) -> Result<GoodList, Failure> {
    let verified = trust::verify(bytes, trust, options).map_err(|err| {
        let reason = match err {
            trust::VerifyError::CertificateRevoked { .. } => ExpireReason::SignerRevoked,
            _ => ExpireReason::SignerInvalid,
        };
        Failure::of(&err).withdrawing(reason)
    })?;
    let parsed = imagelist::parse(&verified.content)
        .map_err(|err| Failure::of(&err).withdrawing(ExpireReason::SignerInvalid))?;
    if decision::is_list_expired(&parsed.list, options.at) {
        return Err(Failure::transient(
            "list-expired",
            format!(
                "the stored list expired at {}",
                rfc3339(parsed.list.expires)
            ),
        )
        .withdrawing(ExpireReason::ListExpired));
    }
    let signer = SignerIdentity {
        subject: verified.signer.subject.clone(),
        issuer: verified.signer.issuer.clone(),
    };
    if !credentials
        .iter()
        .any(|c| c.subject == signer.subject && c.issuer == signer.issuer)
    {
        return Err(Failure::endorsement(
            "endorser-not-authorised",
            format!("{} is no longer an authorised endorser", signer.subject),
        )
        .withdrawing(ExpireReason::EndorserRemoved));
    }
    Ok(GoodList {
        parsed,
        digest: sha512_hex(bytes),
    })
}

/// `failure`, withdrawing the list's images too when the stored list no
/// longer stands (`previous`, the stored list re-checked now).
fn still_withdrawing(failure: Failure, previous: Option<&Result<GoodList, Failure>>) -> Failure {
    match previous
        .and_then(|stored| stored.as_ref().err())
        .and_then(Failure::withdraws)
    {
        Some(reason) => failure.withdrawing(reason),
        None => failure,
    }
}

/// A fetched list that passed verification and the update rules.
struct Accepted {
    good: GoodList,
    verdict: Verdict,
    /// The verified signer.
    signer: trust::Signer,
    /// The signed content (the bare JSON).
    content: Vec<u8>,
}

/// Verifies fetched bytes and applies the update rules, against the stored
/// list (when it still stands) and the subscription's high-water marks.
#[allow(clippy::too_many_arguments)]
fn verify_and_decide(
    bytes: &[u8],
    trust: &TrustStore,
    options: &VerifyOptions,
    credentials: &[Credential],
    first_use: bool,
    list: &ImageListSubscription,
    pinned: Option<&str>,
    previous: Option<&GoodList>,
    high_water: &[HighWaterMark],
    skew: Duration,
) -> Result<Accepted, (Refused, Failure)> {
    let verified = trust::verify(bytes, trust, options)
        .map_err(|err| (Refused::Signature, Failure::of(&err)))?;
    let parsed =
        imagelist::parse(&verified.content).map_err(|err| (Refused::Content, Failure::of(&err)))?;
    let digest = sha512_hex(bytes);
    let signer = SignerIdentity {
        subject: verified.signer.subject.clone(),
        issuer: verified.signer.issuer.clone(),
    };
    let pinned = list.spec.identifier.as_deref().or(pinned);
    // Trust on first use: the verified signer stands in for an Endorser.
    let mut endorsers = credentials.to_vec();
    if first_use {
        endorsers.push(Credential {
            subject: signer.subject.clone(),
            issuer: signer.issuer.clone(),
        });
    }
    let digest_bytes = digest.to_bytes();
    let previous_digest = previous.map(|p| p.digest.to_bytes());
    let input = DecisionInput {
        list: &parsed.list,
        digest: &digest_bytes,
        signer: &signer,
        endorsers: &endorsers,
        pinned_identifier: pinned,
        previous: previous
            .zip(previous_digest.as_ref())
            .map(|(p, d)| StoredList {
                list: &p.parsed.list,
                digest: d,
            }),
        high_water,
        subscription_url: Some(&list.spec.url),
        now: options.at,
        max_clock_skew: skew,
    };
    let verdict = decision::decide(&input).map_err(|err| (Refused::Content, Failure::of(&err)))?;
    Ok(Accepted {
        good: GoodList { parsed, digest },
        verdict,
        signer: verified.signer,
        content: verified.content,
    })
}
