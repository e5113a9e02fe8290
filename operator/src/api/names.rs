//! Kubernetes name rules, checked wherever a name comes in (manifests,
//! the artifact server's request paths, names vmlisub makes): the cache
//! derives directory names from them.

/// Whether `name` is a Kubernetes object name (RFC 1123 subdomain): the
/// cache derives directory names from it, so it is checked here, once.
pub fn is_valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}

/// Whether `namespace` is a Kubernetes namespace name (RFC 1123 label).
pub fn is_valid_namespace(namespace: &str) -> bool {
    is_valid_name(namespace) && !namespace.contains('.') && namespace.len() <= 63
}
