//! A list subscription's standing, as a refresh leaves it: what the
//! image steps of both drivers plan with.

use std::sync::Arc;

use jiff::Timestamp;

use super::failure::Failure;
use crate::api::ImageListSubscriptionStatus;
use crate::imagelist::{Parsed, Sha512Hex};
use crate::store::ExpireReason;

/// The usable list of a subscription: verified, endorsed, not expired.
#[derive(Debug)]
pub struct GoodList {
    pub parsed: Parsed,
    /// sha512 of the signed bytes.
    pub digest: Sha512Hex,
}

/// A list's standing.
#[derive(Clone, Debug)]
pub enum ListView {
    /// Verified and endorsed now: its images may be cached.
    Good(Arc<GoodList>),
    /// Its images must leave the endorsed area, for this reason.
    Withdrawn(ExpireReason, Failure),
    /// Not usable now (never imported, publisher unreachable, a bad first
    /// update), but nothing withdrew what is cached.
    Unavailable(Failure),
}

impl ListView {
    /// Withdrawn for `reason`, with its code as the failure code.
    pub fn withdrawn(reason: ExpireReason, message: &str) -> Self {
        Self::Withdrawn(reason, Failure::withdrawn(reason, message))
    }

    /// The standing a refresh's outcome gives.
    pub fn of(outcome: Result<GoodList, Failure>) -> Self {
        match outcome {
            Ok(good) => Self::Good(Arc::new(good)),
            Err(failure) => match failure.withdraws() {
                Some(reason) => Self::Withdrawn(reason, failure),
                None => Self::Unavailable(failure),
            },
        }
    }

    /// Why the list is not good, if it is not.
    pub fn failure(&self) -> Option<&Failure> {
        match self {
            Self::Good(_) => None,
            Self::Withdrawn(_, failure) | Self::Unavailable(failure) => Some(failure),
        }
    }
}

/// What one refresh did to one list.
#[derive(Debug)]
pub struct ListRefresh {
    /// The list's status after this step.
    pub status: ImageListSubscriptionStatus,
    pub view: ListView,
    /// Human-readable notes (accepted versions, dropped images, warnings).
    pub lines: Vec<String>,
    /// Whether the list was fetched, rather than the stored one re-checked.
    pub fetched: bool,
    pub next_fetch: Option<Timestamp>,
}

/// A good list of `images` images (`img-0`, ...), for the status tests.
#[cfg(test)]
#[allow(clippy::unwrap_used)]
pub(crate) fn fixture(images: usize) -> GoodList {
    const SHA: &str = "8b4c269a60da1061b434b696c4a89293bea847b66bd8ba486a914d4209df651193ee8d454f8231840b7500fab6740620c7111d9a17d08b743133dc393ba2c0d4";
    let images: Vec<_> = (0..images)
        .map(|i| {
            serde_json::json!({"hv:image": {
                "dc:identifier": format!("img-{i}"),
                "dc:title": format!("image {i}"),
                "dc:description": "an image",
                "hv:uri": format!("https://example.org/{i}.img"),
                "hv:size": 10,
                "sl:checksum:sha512": SHA,
                "sl:os": "Linux",
                "sl:osversion": "9",
                "sl:arch": "x86_64",
                "sl:comments": "",
                "hv:hypervisor": "kvm",
                "hv:version": "3",
            }})
        })
        .collect();
    let body = serde_json::json!({"hv:imagelist": {
        "dc:identifier": "4e186b44-2c64-40ea-97d5-e9e5c0bce059",
        "dc:title": "example",
        "dc:description": "an example list",
        "dc:source": "example.org",
        "dc:date:created": "2011-03-10T17:09:12Z",
        "dc:date:expires": "2099-04-07T17:09:12Z",
        "hv:version": "7",
        "hv:uri": "https://example.org/list",
        "hv:endorser": {"hv:x509": {
            "hv:dn": "/CN=signer",
            "hv:ca": "/CN=ca",
            "hv:email": "signer@example.org",
            "dc:creator": "Signer",
        }},
        "hv:images": images,
    }});
    GoodList {
        parsed: crate::imagelist::parse(&serde_json::to_vec(&body).unwrap()).unwrap(),
        digest: Sha512Hex::from_digest(&[7; 64]),
    }
}
