//! The redirect policy: bounded, and never from https down to http.
//!
//! A list fetched over https must not be silently downgraded to plain
//! http by a redirect (a network attacker could then serve anything the
//! signature check accepts, e.g. an older list to force a rollback probe,
//! and credentials could leak). reqwest's default policy allows both.

use reqwest::redirect::{Attempt, Policy};

use super::url::redact;

/// Why the policy stopped following; found again in reqwest's error chain
/// to produce the matching [`TransferError`](super::TransferError).
#[derive(Debug, thiserror::Error)]
pub(crate) enum RedirectStop {
    #[error("more than {max} redirects")]
    TooMany { max: usize },
    #[error("redirect to {target} refused: {why}")]
    Refused { target: String, why: &'static str },
}

/// Follows at most `max` redirects, only to http(s), never from an https
/// URL anywhere in the chain to an http one.
pub(crate) fn policy(max: usize) -> Policy {
    Policy::custom(move |attempt: Attempt<'_>| {
        let target = attempt.url();
        let scheme = target.scheme();
        if scheme != "https" && scheme != "http" {
            let stop = RedirectStop::Refused {
                target: redact(target),
                why: "only http(s) redirects are followed",
            };
            return attempt.error(stop);
        }
        if scheme == "http" && attempt.previous().iter().any(|u| u.scheme() == "https") {
            let stop = RedirectStop::Refused {
                target: redact(target),
                why: "https must not be downgraded to http",
            };
            return attempt.error(stop);
        }
        // `previous` holds the original URL and every target followed so
        // far: its length is the number of this redirect.
        if attempt.previous().len() > max {
            return attempt.error(RedirectStop::TooMany { max });
        }
        attempt.follow()
    })
}
