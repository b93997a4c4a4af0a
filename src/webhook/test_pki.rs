//! Test-only PKI: a CA, a signing certificate with an RSA key (`test-signing-key.pem`, a key
//! made for these tests), and signatures over bodies, as Partner Center makes them.

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use rustls_pki_types::CertificateDer;

/// The RSA key the test signing certificates carry.
pub const SIGNING_KEY_PEM: &str = include_str!("test-signing-key.pem");

/// A CA and a leaf it issued.
pub struct Pki {
    /// The CA certificate (PEM): the trust anchor.
    pub ca_pem: String,
    /// The signing certificate (DER).
    pub leaf: CertificateDer<'static>,
}

/// A CA of organization `org` and a signing certificate valid from `not_before` to
/// `not_after` (years) with the test RSA key.
pub fn pki(org: &str, not_before: i32, not_after: i32) -> Pki {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.distinguished_name.push(DnType::OrganizationName, org);
    ca.distinguished_name
        .push(DnType::CommonName, "test webhook CA");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca, ca_key);
    let leaf_key =
        KeyPair::from_pem_and_sign_algo(SIGNING_KEY_PEM, &rcgen::PKCS_RSA_SHA256).unwrap();
    let mut leaf = CertificateParams::new(Vec::<String>::new()).unwrap();
    leaf.distinguished_name
        .push(DnType::CommonName, "pcnotifications-dispatch.microsoft.com");
    leaf.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    leaf.not_before = rcgen::date_time_ymd(2026 + not_before, 1, 1);
    leaf.not_after = rcgen::date_time_ymd(2026 + not_after, 1, 1);
    let leaf_cert = leaf.signed_by(&leaf_key, &issuer).unwrap();
    Pki {
        ca_pem: ca_cert.pem(),
        leaf: CertificateDer::from(leaf_cert.der().to_vec()),
    }
}

/// The RSA-SHA256 signature of `body` with the test key.
pub fn sign(body: &[u8]) -> Vec<u8> {
    let der = x509_parser::pem::parse_x509_pem(SIGNING_KEY_PEM.as_bytes())
        .unwrap()
        .1
        .contents;
    let key = ring::signature::RsaKeyPair::from_pkcs8(&der).unwrap();
    let mut signature = vec![0; key.public().modulus_len()];
    key.sign(
        &ring::signature::RSA_PKCS1_SHA256,
        &ring::rand::SystemRandom::new(),
        body,
        &mut signature,
    )
    .unwrap();
    signature
}
