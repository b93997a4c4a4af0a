//! The identity that signs webhook events: a CA generated at start and a leaf certificate for
//! `pcnotifications-dispatch.microsoft.com` over a fixed RSA 2048 key.
//!
//! Contract: [`SigningIdentity::generate`] makes a CA (ECDSA P-256, `O=Microsoft Corporation,
//! OU=gdap-operator sandbox, CN=gdap-operator sandbox webhook CA`) and, signed by it, the leaf
//! (`CN=pcnotifications-dispatch.microsoft.com`, same `O`, key usage digitalSignature, EKU
//! serverAuth, valid from an hour ago for a year) whose key is `webhook-signing-key.pem`, a
//! fixed test key checked into the repository (ring cannot generate RSA keys; the sandbox is not
//! a security boundary). [`SigningIdentity::sign`] is RSA PKCS#1 v1.5 with SHA-256 over the exact
//! bytes, base64-encoded: what `Authorization: Signature …` carries.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose,
};
use ring::rand::SystemRandom;
use ring::signature::{RSA_PKCS1_SHA256, RsaKeyPair};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

const LEAF_KEY_PEM: &str = include_str!("webhook-signing-key.pem");
/// The leaf certificate's common name (Partner Center's dispatcher).
pub const LEAF_NAME: &str = "pcnotifications-dispatch.microsoft.com";
/// Path of the leaf certificate (DER) on the sandbox.
pub const CERTIFICATE_PATH: &str = "/cert/pcnotifications-dispatch.microsoft.com.cer";
const ORGANIZATION: &str = "Microsoft Corporation";

/// The CA, the leaf certificate and the key that signs events.
pub struct SigningIdentity {
    /// The CA certificate (PEM): the trust anchor a receiver is configured with.
    pub ca_pem: String,
    /// The leaf certificate (DER), served at [`CERTIFICATE_PATH`].
    pub leaf_der: Vec<u8>,
    key: RsaKeyPair,
    random: SystemRandom,
}

impl SigningIdentity {
    /// Generates the CA and the leaf.
    pub fn generate() -> anyhow::Result<SigningIdentity> {
        let ca_key = KeyPair::generate()?;
        let mut ca = CertificateParams::new(Vec::<String>::new())?;
        name(&mut ca, "gdap-operator sandbox webhook CA");
        ca.distinguished_name
            .push(DnType::OrganizationalUnitName, "gdap-operator sandbox");
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca_cert = ca.self_signed(&ca_key)?;
        let issuer = rcgen::Issuer::new(ca, ca_key);

        let leaf_key = KeyPair::from_pem(LEAF_KEY_PEM)?;
        let mut leaf = CertificateParams::new(vec![LEAF_NAME.to_string()])?;
        name(&mut leaf, LEAF_NAME);
        leaf.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let now = rcgen::date_time_ymd(1970, 1, 1)
            + SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default();
        leaf.not_before = now - Duration::from_secs(3600);
        leaf.not_after = now + Duration::from_secs(365 * 86_400);
        let leaf_cert = leaf.signed_by(&leaf_key, &issuer)?;
        let key = RsaKeyPair::from_pkcs8(leaf_key.serialized_der())
            .map_err(|e| anyhow::anyhow!("webhook signing key: {e}"))?;
        Ok(SigningIdentity {
            ca_pem: ca_cert.pem(),
            leaf_der: leaf_cert.der().to_vec(),
            key,
            random: SystemRandom::new(),
        })
    }

    /// The base64 RSA PKCS#1 v1.5 SHA-256 signature of `body`.
    pub fn sign(&self, body: &[u8]) -> String {
        let mut signature = vec![0; self.key.public().modulus_len()];
        match self
            .key
            .sign(&RSA_PKCS1_SHA256, &self.random, body, &mut signature)
        {
            Ok(()) => STANDARD.encode(signature),
            // Signing with a valid key into a buffer of its modulus length does not fail.
            Err(_) => String::new(),
        }
    }
}

fn name(params: &mut CertificateParams, common_name: &str) {
    params
        .distinguished_name
        .push(DnType::OrganizationName, ORGANIZATION);
    params
        .distinguished_name
        .push(DnType::CommonName, common_name);
}

#[cfg(test)]
mod tests {
    use super::*;
    use ring::signature::{ECDSA_P256_SHA256_ASN1, RSA_PKCS1_2048_8192_SHA256, UnparsedPublicKey};

    #[test]
    fn the_leaf_is_issued_by_the_ca_and_its_key_verifies_signatures() {
        let id = SigningIdentity::generate().unwrap();
        let (_, leaf) = x509_parser::parse_x509_certificate(&id.leaf_der).unwrap();
        let (_, ca_pem) = x509_parser::pem::parse_x509_pem(id.ca_pem.as_bytes()).unwrap();
        let ca = ca_pem.parse_x509().unwrap();
        assert_eq!(leaf.issuer(), ca.subject());
        let ca_key = ca.public_key().subject_public_key.data.to_vec();
        UnparsedPublicKey::new(&ECDSA_P256_SHA256_ASN1, ca_key)
            .verify(leaf.tbs_certificate.as_ref(), &leaf.signature_value.data)
            .unwrap();
        assert!(leaf.subject().to_string().contains(LEAF_NAME));
        let body = br#"{"EventName":"test-created"}"#;
        let signature = STANDARD.decode(id.sign(body)).unwrap();
        let public = UnparsedPublicKey::new(
            &RSA_PKCS1_2048_8192_SHA256,
            leaf.public_key().subject_public_key.data.to_vec(),
        );
        public.verify(body, &signature).unwrap();
        assert!(public.verify(b"other", &signature).is_err());
    }
}
