//! `Endorser`: a trusted signer of image lists, possibly with several
//! certificates (a renewed certificate keeps its subject; a new CA changes
//! the issuer).

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::conditions::Condition;

/// One certificate identity, as OpenSSL one-line DNs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct EndorserCredential {
    /// The signer certificate's subject, e.g.
    /// `/DC=ch/DC=cern/OU=Organic Units/OU=Users/CN=buncic/CN=379010/CN=Predrag Buncic`.
    #[schemars(
        regex(pattern = r"^(/[A-Za-z0-9.]+=([^/\\]|\\.)*)+$"),
        length(max = 1024)
    )]
    pub subject: String,
    /// The issuing CA's subject, e.g. `/DC=ch/DC=cern/CN=CERN Trusted Certification Authority`.
    #[schemars(
        regex(pattern = r"^(/[A-Za-z0-9.]+=([^/\\]|\\.)*)+$"),
        length(max = 1024)
    )]
    pub issuer: String,
}

/// A trusted list signer.
#[derive(CustomResource, Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "vmli.hepix.org",
    version = "v1alpha1",
    kind = "Endorser",
    namespaced,
    status = "EndorserStatus",
    doc = "An Endorser: the certificate identities (subject and issuer DNs) trusted to sign the image lists that name it. A list is accepted only when its signer is one of its Endorsers' credentials.",
    shortname = "endo",
    category = "vmli",
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Message","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].message","priority":1}"#,
    printcolumn = r#"{"name":"Credentials","type":"integer","jsonPath":".status.credentialCount"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct EndorserSpec {
    /// Who this is, for people (e.g. "CernVM release team").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The certificates this endorser signs with: a list is endorsed when its
    /// signer's (subject, issuer) pair is one of these.
    #[schemars(length(min = 1, max = 64))]
    pub credentials: Vec<EndorserCredential>,
}

/// What the operator observed about an endorser.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct EndorserStatus {
    /// `Ready` says whether every credential is well formed.
    #[serde(default)]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<Condition>,
    /// The `metadata.generation` this status was computed for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// How many credentials the spec holds.
    #[serde(default)]
    pub credential_count: i64,
    /// The ImageListSubscriptions that name this endorser.
    #[serde(default)]
    pub authorises: Vec<String>,
}
