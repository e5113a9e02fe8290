//! Validated names for everything that becomes a path component in the cache.
//!
//! The original subscriber named cached files after the image's
//! `dc:identifier` verbatim, so a list could write outside the cache. Here a
//! path component is built only from a type whose constructor proved it safe:
//! [`ImageId`] (validated by the list parser), [`Namespace`] and
//! [`SubscriptionName`] (validated below with the Kubernetes rules, because
//! they are Kubernetes object names). An [`ImageKey`] combines the three, so
//! two subscriptions (or two namespaces) that carry the same image identifier
//! can never share or overwrite a file.
//!
//! The Kubernetes rules happen to be strict enough for file names: lower-case
//! `a-z 0-9 -` (and `.` between labels for subdomains), starting and ending
//! with an alphanumeric. That rules out `/`, `\`, NUL, control characters,
//! whitespace, a leading dot, `..` and `-`-prefixed names (which a command
//! could read as an option).

use crate::imagelist::{IdentifierError, ImageId};
use serde::{Deserialize, Serialize};
use std::fmt;

/// Longest namespace name (a DNS-1123 label).
pub const MAX_NAMESPACE_BYTES: usize = 63;

/// Longest subscription name (a DNS-1123 subdomain); also fits the 255-byte
/// file-name limit of common filesystems.
pub const MAX_SUBSCRIPTION_BYTES: usize = 253;

/// Why a string is not a safe cache name.
///
/// Like [`IdentifierError`], variants never echo the rejected string (it may
/// hold terminal escapes); they name the rule, the position and the
/// debug-escaped character.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    /// The name is empty.
    #[error("name is empty")]
    Empty,
    /// The name is longer than the maximum for its kind.
    #[error("name is {len} bytes long, the maximum is {max}")]
    TooLong {
        /// Length in bytes.
        len: usize,
        /// The maximum.
        max: usize,
    },
    /// The name contains a control character (NUL included).
    #[error("name contains control character {ch:?} at byte {position}")]
    ControlCharacter {
        /// The character.
        ch: char,
        /// Byte offset.
        position: usize,
    },
    /// The name contains `/` or `\`.
    #[error("name contains path separator {ch:?} at byte {position}")]
    PathSeparator {
        /// The separator.
        ch: char,
        /// Byte offset.
        position: usize,
    },
    /// The name starts with `.` (hidden file, `.` or `..`).
    #[error("name starts with '.'")]
    LeadingDot,
    /// The name contains `..` or an empty label.
    #[error("name contains an empty label (\"..\") at byte {position}")]
    EmptyLabel {
        /// Byte offset of the first dot.
        position: usize,
    },
    /// Upper-case letters are not allowed in Kubernetes names.
    #[error("name contains upper-case {ch:?} at byte {position}")]
    UpperCase {
        /// The character.
        ch: char,
        /// Byte offset.
        position: usize,
    },
    /// A character outside `[a-z0-9-]` (or `.` where not allowed).
    #[error("name contains {ch:?} at byte {position}, outside {allowed}")]
    InvalidCharacter {
        /// The character.
        ch: char,
        /// Byte offset.
        position: usize,
        /// The allowed alphabet, for the message.
        allowed: &'static str,
    },
    /// A label starts or ends with something other than `[a-z0-9]`.
    #[error("name must start and end with [a-z0-9] (at byte {position})")]
    BadLabelEdge {
        /// Byte offset of the offending character.
        position: usize,
    },
    /// An image or list identifier failed the identifier rules.
    #[error(transparent)]
    Identifier(#[from] IdentifierError),
}

/// Checks a DNS-1123 label (`[a-z0-9]([-a-z0-9]*[a-z0-9])?`, at most 63
/// bytes): what Kubernetes requires of a namespace.
pub fn validate_dns_label(s: &str) -> Result<(), NameError> {
    validate_dns(s, MAX_NAMESPACE_BYTES, false)
}

/// Checks a DNS-1123 subdomain (dot-separated labels, at most 253 bytes):
/// what Kubernetes requires of most object names.
pub fn validate_dns_subdomain(s: &str) -> Result<(), NameError> {
    validate_dns(s, MAX_SUBSCRIPTION_BYTES, true)
}

/// Shared rules. The most specific rule wins (a `/` is reported as a path
/// separator, not as an invalid character) so that the message points at
/// the actual problem.
fn validate_dns(s: &str, max: usize, dots: bool) -> Result<(), NameError> {
    if s.is_empty() {
        return Err(NameError::Empty);
    }
    if s.len() > max {
        return Err(NameError::TooLong { len: s.len(), max });
    }
    let allowed = if dots { "[a-z0-9.-]" } else { "[a-z0-9-]" };
    for (position, ch) in s.char_indices() {
        if ch.is_control() {
            return Err(NameError::ControlCharacter { ch, position });
        }
        if ch == '/' || ch == '\\' {
            return Err(NameError::PathSeparator { ch, position });
        }
        if ch.is_ascii_uppercase() {
            return Err(NameError::UpperCase { ch, position });
        }
        let ok = ch.is_ascii_lowercase() || ch.is_ascii_digit() || ch == '-' || (dots && ch == '.');
        if !ok {
            return Err(NameError::InvalidCharacter {
                ch,
                position,
                allowed,
            });
        }
    }
    if s.starts_with('.') {
        return Err(NameError::LeadingDot);
    }
    if let Some(position) = s.find("..") {
        return Err(NameError::EmptyLabel { position });
    }
    // Every label starts and ends with an alphanumeric.
    let mut offset = 0;
    for label in s.split('.') {
        let bytes = label.as_bytes();
        match (bytes.first(), bytes.last()) {
            (Some(first), Some(last)) => {
                if !first.is_ascii_alphanumeric() {
                    return Err(NameError::BadLabelEdge { position: offset });
                }
                if !last.is_ascii_alphanumeric() {
                    return Err(NameError::BadLabelEdge {
                        position: offset + label.len() - 1,
                    });
                }
            }
            // A trailing dot leaves an empty last label.
            _ => return Err(NameError::EmptyLabel { position: offset }),
        }
        offset += label.len() + 1;
    }
    Ok(())
}

macro_rules! dns_name_type {
    ($(#[$meta:meta])* $name:ident, $validate:path) => {
        $(#[$meta])*
        #[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            /// Validates `s`; see the type's documentation for the rules.
            pub fn new(s: &str) -> Result<Self, NameError> {
                $validate(s)?;
                Ok(Self(s.to_owned()))
            }

            /// The name as a string slice.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = NameError;

            fn try_from(s: String) -> Result<Self, Self::Error> {
                $validate(&s)?;
                Ok(Self(s))
            }
        }

        impl From<$name> for String {
            fn from(n: $name) -> String {
                n.0
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl std::str::FromStr for $name {
            type Err = NameError;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::new(s)
            }
        }
    };
}

dns_name_type! {
    /// A Kubernetes namespace name (DNS-1123 label, at most 63 bytes).
    ///
    /// The first path component under each cache area, so that equal
    /// subscription names in two namespaces never share files.
    Namespace, validate_dns_label
}

dns_name_type! {
    /// The name of the subscription that owns a cached image (DNS-1123
    /// subdomain, at most 253 bytes).
    SubscriptionName, validate_dns_subdomain
}

/// One subscription: the owner of a set of cached images.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ListKey {
    /// Namespace of the subscription object.
    pub namespace: Namespace,
    /// Name of the subscription object.
    #[serde(rename = "subscription")]
    pub name: SubscriptionName,
}

impl ListKey {
    /// Builds a key from already validated parts.
    pub fn new(namespace: Namespace, name: SubscriptionName) -> Self {
        Self { namespace, name }
    }

    /// The key of `image` within this subscription.
    pub fn image(&self, image: ImageId) -> ImageKey {
        ImageKey {
            namespace: self.namespace.clone(),
            subscription: self.name.clone(),
            image,
        }
    }
}

impl fmt::Display for ListKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

/// Identifies one cached image: `<namespace>/<subscription>/<image-id>`.
///
/// Every file the store touches for an image is named from these three
/// validated components and nothing else, so the key is also the proof
/// that the image's paths stay inside the cache.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ImageKey {
    /// Namespace of the owning subscription.
    pub namespace: Namespace,
    /// Name of the owning subscription.
    pub subscription: SubscriptionName,
    /// The image's `dc:identifier`.
    pub image: ImageId,
}

impl ImageKey {
    /// Builds a key from already validated parts.
    pub fn new(namespace: Namespace, subscription: SubscriptionName, image: ImageId) -> Self {
        Self {
            namespace,
            subscription,
            image,
        }
    }

    /// Validates three raw strings (for callers that hold strings, such as
    /// the CLI); every rejection is [`StoreError::UnsafeName`] naming the
    /// component.
    ///
    /// [`StoreError::UnsafeName`]: super::StoreError::UnsafeName
    pub fn parse(
        namespace: &str,
        subscription: &str,
        image: &str,
    ) -> Result<Self, super::StoreError> {
        let unsafe_name = |what: &'static str| {
            move |source: NameError| super::StoreError::UnsafeName { what, source }
        };
        Ok(Self {
            namespace: Namespace::new(namespace).map_err(unsafe_name("namespace"))?,
            subscription: SubscriptionName::new(subscription)
                .map_err(unsafe_name("subscription name"))?,
            image: ImageId::new(image)
                .map_err(NameError::from)
                .map_err(unsafe_name("image identifier"))?,
        })
    }

    /// The owning subscription.
    pub fn cache_list_key(&self) -> ListKey {
        ListKey {
            namespace: self.namespace.clone(),
            name: self.subscription.clone(),
        }
    }

    /// Whether the image belongs to `subscription`.
    pub fn belongs_to(&self, subscription: &ListKey) -> bool {
        self.namespace == subscription.namespace && self.subscription == subscription.name
    }
}

impl fmt::Display for ImageKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}/{}", self.namespace, self.subscription, self.image)
    }
}

/// Checks a name that the store itself generated or read back from disk
/// (expired entry names, names found while scanning) before it is used as
/// a single path component again: the identifier alphabet without `..`, a
/// leading dot or a leading dash. Names the store generates always pass.
pub fn validate_component(s: &str) -> Result<(), NameError> {
    crate::imagelist::validate_identifier(s).map_err(NameError::from)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::reason::Reason;

    #[test]
    fn kubernetes_names_pass() {
        for ok in ["a", "default", "kube-system", "a1", "0", "x-y-z"] {
            Namespace::new(ok).unwrap();
            SubscriptionName::new(ok).unwrap();
        }
        for ok in ["cernvm.images", "a.b.c", "my-list.v2"] {
            SubscriptionName::new(ok).unwrap();
        }
        SubscriptionName::new(&"a".repeat(253)).unwrap();
        Namespace::new(&"a".repeat(63)).unwrap();
    }

    #[test]
    fn unsafe_names_are_refused_with_the_rule() {
        let sub = SubscriptionName::new;
        assert_eq!(sub(""), Err(NameError::Empty));
        assert_eq!(
            sub("../x"),
            Err(NameError::PathSeparator {
                ch: '/',
                position: 2
            })
        );
        assert_eq!(sub(".."), Err(NameError::LeadingDot));
        assert_eq!(sub(".hidden"), Err(NameError::LeadingDot));
        assert_eq!(sub("a..b"), Err(NameError::EmptyLabel { position: 1 }));
        assert_eq!(sub("a."), Err(NameError::EmptyLabel { position: 2 }));
        assert_eq!(
            sub("a/b"),
            Err(NameError::PathSeparator {
                ch: '/',
                position: 1
            })
        );
        assert_eq!(
            sub("a\\b"),
            Err(NameError::PathSeparator {
                ch: '\\',
                position: 1
            })
        );
        assert_eq!(
            sub("a\u{7}b"),
            Err(NameError::ControlCharacter {
                ch: '\u{7}',
                position: 1
            })
        );
        assert_eq!(
            sub("a\0b"),
            Err(NameError::ControlCharacter {
                ch: '\0',
                position: 1
            })
        );
        assert_eq!(
            sub("Abc"),
            Err(NameError::UpperCase {
                ch: 'A',
                position: 0
            })
        );
        assert_eq!(sub("-a"), Err(NameError::BadLabelEdge { position: 0 }));
        assert_eq!(sub("a-"), Err(NameError::BadLabelEdge { position: 1 }));
        assert_eq!(sub("a.-b"), Err(NameError::BadLabelEdge { position: 2 }));
        assert!(matches!(
            sub("a b"),
            Err(NameError::InvalidCharacter { ch: ' ', .. })
        ));
        assert!(matches!(
            sub("a_b"),
            Err(NameError::InvalidCharacter { ch: '_', .. })
        ));
        assert!(matches!(
            sub("é"),
            Err(NameError::InvalidCharacter { ch: 'é', .. })
        ));
        assert_eq!(
            sub(&"a".repeat(300)),
            Err(NameError::TooLong { len: 300, max: 253 })
        );
        // Namespaces are labels: no dots, at most 63 bytes.
        assert!(matches!(
            Namespace::new("a.b"),
            Err(NameError::InvalidCharacter { ch: '.', .. })
        ));
        assert_eq!(
            Namespace::new(&"a".repeat(64)),
            Err(NameError::TooLong { len: 64, max: 63 })
        );
    }

    #[test]
    fn image_key_parse_names_the_component() {
        let key = ImageKey::parse("ns", "sub", "858a817e-0ca2-473f-89d3-d5bdfc51968e").unwrap();
        assert_eq!(
            key.to_string(),
            "ns/sub/858a817e-0ca2-473f-89d3-d5bdfc51968e"
        );
        let long = "a".repeat(300);
        for (ns, sub, id, what) in [
            ("../x", "s", "i", "namespace"),
            ("ns", ".hidden", "i", "subscription name"),
            ("ns", "s", "../x", "image identifier"),
            ("ns", "s", ".hidden", "image identifier"),
            ("ns", "s", "a/b", "image identifier"),
            ("ns", "s", "a\u{1b}[31mb", "image identifier"),
            ("ns", "s", "a\nb", "image identifier"),
            ("ns", "s", long.as_str(), "image identifier"),
            ("ns", long.as_str(), "i", "subscription name"),
            ("ns", "s", "", "image identifier"),
        ] {
            let err = ImageKey::parse(ns, sub, id).unwrap_err();
            assert_eq!(err.reason(), "unsafe-name", "{ns:?}/{sub:?}/{id:?}");
            match err {
                super::super::StoreError::UnsafeName { what: w, .. } => assert_eq!(w, what),
                other => panic!("unexpected {other:?}"),
            }
        }
    }

    #[test]
    fn keys_serialize_with_validation() {
        let key = ImageKey::parse("ns", "sub", "img").unwrap();
        let json = serde_json::to_string(&key).unwrap();
        assert_eq!(
            json,
            r#"{"namespace":"ns","subscription":"sub","image":"img"}"#
        );
        assert_eq!(serde_json::from_str::<ImageKey>(&json).unwrap(), key);
        assert!(
            serde_json::from_str::<ImageKey>(
                r#"{"namespace":"ns","subscription":"sub","image":"../x"}"#
            )
            .is_err()
        );
        assert!(
            serde_json::from_str::<ImageKey>(
                r#"{"namespace":"NS","subscription":"sub","image":"x"}"#
            )
            .is_err()
        );
    }

    #[test]
    fn subscription_key_membership() {
        let key = ImageKey::parse("ns", "sub", "img").unwrap();
        let sub = key.cache_list_key();
        assert!(key.belongs_to(&sub));
        assert_eq!(sub.image(key.image.clone()), key);
        let other = ListKey::new(
            Namespace::new("other").unwrap(),
            SubscriptionName::new("sub").unwrap(),
        );
        assert!(!key.belongs_to(&other));
        assert_eq!(sub.to_string(), "ns/sub");
    }
}
