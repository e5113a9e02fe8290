//! Stable, machine-readable reason codes.
//!
//! Every failure the core can report maps to one kebab-case code. The CLI
//! prints it (`error: <code>: <explanation>`), the operator uses its
//! CamelCase form as the condition reason and event reason, and metrics use
//! it as a label. Codes are part of the public contract: never rename one.

/// A failure with a stable reason code.
pub trait Reason {
    /// The kebab-case code, e.g. `signature-invalid`.
    fn reason(&self) -> &'static str;
}

/// Converts a kebab-case reason code into the CamelCase form that
/// Kubernetes conventions expect for condition and event reasons.
pub fn camel_case(code: &str) -> String {
    code.split('-')
        .filter(|part| !part.is_empty())
        .map(|part| {
            let mut chars = part.chars();
            match chars.next() {
                Some(first) => first.to_ascii_uppercase().to_string() + chars.as_str(),
                None => String::new(),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::camel_case;

    #[test]
    fn camel_case_of_codes() {
        assert_eq!(camel_case("signature-invalid"), "SignatureInvalid");
        assert_eq!(camel_case("crl-stale"), "CrlStale");
        assert_eq!(camel_case("x"), "X");
    }
}
