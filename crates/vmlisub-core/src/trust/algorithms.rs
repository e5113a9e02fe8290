//! The signature and digest algorithms vmlisub accepts.
//!
//! Modern algorithms come from *ring* through rustls-webpki's algorithm
//! objects (only those: path building is vmlisub's own, see `path.rs`; the same
//! provider the HTTP stack uses). SHA-1 is only ever offered when the caller
//! opted in, because lists from 2011 were signed with it and sites still need
//! to audit them; it is implemented with the `rsa` crate since *ring* refuses
//! SHA-1 signatures.

use const_oid::ObjectIdentifier;
use pki_types::{AlgorithmIdentifier, InvalidSignature, SignatureVerificationAlgorithm, alg_id};
use rsa::pkcs1::DecodeRsaPublicKey;
use rsa::signature::Verifier;
use sha2::Digest as _;

/// Message digests that may appear in a SignerInfo.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DigestAlgorithm {
    Sha1,
    Sha256,
    Sha384,
    Sha512,
}

impl DigestAlgorithm {
    pub const ID_SHA1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.14.3.2.26");
    pub const ID_SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.1");
    pub const ID_SHA384: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.2");
    pub const ID_SHA512: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.3");

    pub fn from_oid(oid: &ObjectIdentifier) -> Option<Self> {
        match *oid {
            Self::ID_SHA1 => Some(Self::Sha1),
            Self::ID_SHA256 => Some(Self::Sha256),
            Self::ID_SHA384 => Some(Self::Sha384),
            Self::ID_SHA512 => Some(Self::Sha512),
            _ => None,
        }
    }

    /// The name OpenSSL's `micalg` uses.
    pub fn name(self) -> &'static str {
        match self {
            Self::Sha1 => "sha1",
            Self::Sha256 => "sha-256",
            Self::Sha384 => "sha-384",
            Self::Sha512 => "sha-512",
        }
    }

    pub fn digest(self, data: &[u8]) -> Vec<u8> {
        match self {
            Self::Sha1 => sha1::Sha1::digest(data).to_vec(),
            Self::Sha256 => sha2::Sha256::digest(data).to_vec(),
            Self::Sha384 => sha2::Sha384::digest(data).to_vec(),
            Self::Sha512 => sha2::Sha512::digest(data).to_vec(),
        }
    }
}

/// sha1WithRSAEncryption, as the contents of an AlgorithmIdentifier.
const SHA1_WITH_RSA: AlgorithmIdentifier = AlgorithmIdentifier::from_slice(&[
    0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x05, 0x05, 0x00,
]);

/// The OID bytes of sha1WithRSAEncryption, to recognise it in errors.
pub const SHA1_WITH_RSA_OID: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x05];

/// RSA PKCS#1 v1.5 with SHA-1, for legacy lists only.
#[derive(Debug)]
pub struct RsaPkcs1Sha1;

impl SignatureVerificationAlgorithm for RsaPkcs1Sha1 {
    fn verify_signature(
        &self,
        public_key: &[u8],
        message: &[u8],
        signature: &[u8],
    ) -> Result<(), InvalidSignature> {
        let key = rsa::PublicKey::from_pkcs1_der(public_key).map_err(|_| InvalidSignature)?;
        let verifier = rsa::pkcs1v15::VerifyingKey::<sha1::Sha1>::new(key);
        let signature =
            rsa::pkcs1v15::Signature::try_from(signature).map_err(|_| InvalidSignature)?;
        verifier
            .verify(message, &signature)
            .map_err(|_| InvalidSignature)
    }

    fn public_key_alg_id(&self) -> AlgorithmIdentifier {
        alg_id::RSA_ENCRYPTION
    }

    fn signature_alg_id(&self) -> AlgorithmIdentifier {
        SHA1_WITH_RSA
    }

    fn fips(&self) -> bool {
        false
    }
}

static RSA_PKCS1_SHA1: RsaPkcs1Sha1 = RsaPkcs1Sha1;

/// ECDSA with SHA-512 on P-256 or P-384: OpenSSL signs with it when asked
/// (`-md sha512`) and *ring* does not offer it, so RustCrypto verifies it.
#[derive(Debug)]
pub struct EcdsaSha512 {
    curve: KeyType,
}

impl SignatureVerificationAlgorithm for EcdsaSha512 {
    fn verify_signature(
        &self,
        public_key: &[u8],
        message: &[u8],
        signature: &[u8],
    ) -> Result<(), InvalidSignature> {
        use p256::ecdsa::signature::hazmat::PrehashVerifier;
        let digest = sha2::Sha512::digest(message);
        match self.curve {
            KeyType::EcP256 => {
                let key = p256::ecdsa::VerifyingKey::from_sec1_bytes(public_key)
                    .map_err(|_| InvalidSignature)?;
                let signature =
                    p256::ecdsa::Signature::from_der(signature).map_err(|_| InvalidSignature)?;
                key.verify_prehash(&digest, &signature)
                    .map_err(|_| InvalidSignature)
            }
            KeyType::EcP384 => {
                let key = p384::ecdsa::VerifyingKey::from_sec1_bytes(public_key)
                    .map_err(|_| InvalidSignature)?;
                let signature =
                    p384::ecdsa::Signature::from_der(signature).map_err(|_| InvalidSignature)?;
                key.verify_prehash(&digest, &signature)
                    .map_err(|_| InvalidSignature)
            }
            KeyType::Rsa => Err(InvalidSignature),
        }
    }

    fn public_key_alg_id(&self) -> AlgorithmIdentifier {
        match self.curve {
            KeyType::EcP384 => alg_id::ECDSA_P384,
            _ => alg_id::ECDSA_P256,
        }
    }

    fn signature_alg_id(&self) -> AlgorithmIdentifier {
        alg_id::ECDSA_SHA512
    }

    fn fips(&self) -> bool {
        false
    }
}

static ECDSA_P256_SHA512: EcdsaSha512 = EcdsaSha512 {
    curve: KeyType::EcP256,
};
static ECDSA_P384_SHA512: EcdsaSha512 = EcdsaSha512 {
    curve: KeyType::EcP384,
};

/// Algorithms for certificate and CRL signatures.
pub fn certificate_algorithms(
    allow_sha1: bool,
) -> &'static [&'static dyn SignatureVerificationAlgorithm] {
    static MODERN: &[&dyn SignatureVerificationAlgorithm] = &[
        webpki::ring::ECDSA_P256_SHA256,
        webpki::ring::ECDSA_P256_SHA384,
        webpki::ring::ECDSA_P384_SHA256,
        webpki::ring::ECDSA_P384_SHA384,
        webpki::ring::RSA_PKCS1_2048_8192_SHA256,
        webpki::ring::RSA_PKCS1_2048_8192_SHA384,
        webpki::ring::RSA_PKCS1_2048_8192_SHA512,
        webpki::ring::RSA_PKCS1_2048_8192_SHA256_ABSENT_PARAMS,
        webpki::ring::RSA_PKCS1_2048_8192_SHA384_ABSENT_PARAMS,
        webpki::ring::RSA_PKCS1_2048_8192_SHA512_ABSENT_PARAMS,
        &ECDSA_P256_SHA512,
        &ECDSA_P384_SHA512,
    ];
    static WITH_SHA1: &[&dyn SignatureVerificationAlgorithm] = &[
        webpki::ring::ECDSA_P256_SHA256,
        webpki::ring::ECDSA_P256_SHA384,
        webpki::ring::ECDSA_P384_SHA256,
        webpki::ring::ECDSA_P384_SHA384,
        webpki::ring::RSA_PKCS1_2048_8192_SHA256,
        webpki::ring::RSA_PKCS1_2048_8192_SHA384,
        webpki::ring::RSA_PKCS1_2048_8192_SHA512,
        webpki::ring::RSA_PKCS1_2048_8192_SHA256_ABSENT_PARAMS,
        webpki::ring::RSA_PKCS1_2048_8192_SHA384_ABSENT_PARAMS,
        webpki::ring::RSA_PKCS1_2048_8192_SHA512_ABSENT_PARAMS,
        &ECDSA_P256_SHA512,
        &ECDSA_P384_SHA512,
        &RSA_PKCS1_SHA1,
    ];
    if allow_sha1 { WITH_SHA1 } else { MODERN }
}

/// The key types a CMS signer may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyType {
    Rsa,
    EcP256,
    EcP384,
}

impl KeyType {
    /// Recognises a SubjectPublicKeyInfo's AlgorithmIdentifier (contents, no tag).
    pub fn from_spki_algorithm(algorithm: &[u8]) -> Option<Self> {
        if algorithm == alg_id::RSA_ENCRYPTION.as_ref() {
            Some(Self::Rsa)
        } else if algorithm == alg_id::ECDSA_P256.as_ref() {
            Some(Self::EcP256)
        } else if algorithm == alg_id::ECDSA_P384.as_ref() {
            Some(Self::EcP384)
        } else {
            None
        }
    }
}

/// Why no verifier exists for a (key, digest) pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unavailable {
    /// SHA-1 without the legacy opt-in.
    Legacy,
    /// Not supported at all (e.g. ECDSA with SHA-1).
    Unsupported,
}

/// The verifier for a CMS signature made with `key` over a `digest` hash.
///
/// CMS names the digest and the key separately (OpenSSL writes plain
/// `rsaEncryption` as the signature algorithm), so the pair decides.
pub fn cms_signature_algorithm(
    key: KeyType,
    digest: DigestAlgorithm,
    allow_sha1: bool,
) -> Result<&'static dyn SignatureVerificationAlgorithm, Unavailable> {
    use DigestAlgorithm::*;
    use KeyType::*;
    match (key, digest) {
        (Rsa, Sha1) if allow_sha1 => Ok(&RSA_PKCS1_SHA1),
        (_, Sha1) if !allow_sha1 => Err(Unavailable::Legacy),
        (Rsa, Sha256) => Ok(webpki::ring::RSA_PKCS1_2048_8192_SHA256),
        (Rsa, Sha384) => Ok(webpki::ring::RSA_PKCS1_2048_8192_SHA384),
        (Rsa, Sha512) => Ok(webpki::ring::RSA_PKCS1_2048_8192_SHA512),
        (EcP256, Sha256) => Ok(webpki::ring::ECDSA_P256_SHA256),
        (EcP256, Sha384) => Ok(webpki::ring::ECDSA_P256_SHA384),
        (EcP384, Sha256) => Ok(webpki::ring::ECDSA_P384_SHA256),
        (EcP384, Sha384) => Ok(webpki::ring::ECDSA_P384_SHA384),
        (EcP256, Sha512) => Ok(&ECDSA_P256_SHA512),
        (EcP384, Sha512) => Ok(&ECDSA_P384_SHA512),
        _ => Err(Unavailable::Unsupported),
    }
}

/// The outcome of checking one signature with one key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignatureCheck {
    Valid,
    /// The key and algorithm are supported, the signature is wrong.
    Invalid,
    /// SHA-1 without the legacy opt-in.
    Legacy,
    /// No verifier for this (signature algorithm, key) pair.
    Unsupported,
}

/// Whether a signature AlgorithmIdentifier (DER contents) is SHA-1 based.
/// ECDSA with SHA-1 is not offered at all (see docs/trust.md): it is reported
/// as unsupported, not as legacy.
pub fn is_sha1_signature(algorithm: &[u8]) -> bool {
    algorithm.starts_with(&[0x06, 0x09]) && algorithm.get(2..11) == Some(SHA1_WITH_RSA_OID)
}
