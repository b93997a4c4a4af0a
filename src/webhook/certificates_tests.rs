use super::*;
use crate::webhook::test_pki::{pki, sign};

const PREFIX: &str = "https://3psostorageacct.blob.core.windows.net/cert/";

fn policy(anchors: &str, org: &str) -> CertificatePolicy {
    CertificatePolicy::new(&[PREFIX.to_string()], anchors, org).unwrap()
}

#[test]
fn only_plain_cer_files_under_an_allowed_prefix_may_be_fetched() {
    let p = policy(
        &pki(MICROSOFT_ORGANIZATION, -1, 1).ca_pem,
        MICROSOFT_ORGANIZATION,
    );
    let ok = "https://3psostorageacct.blob.core.windows.net/cert/pcnotifications-dispatch.microsoft.com.cer";
    assert!(p.allowed_url(ok).is_ok());
    for refused in [
        "https://evil.example/cert/pcnotifications-dispatch.microsoft.com.cer",
        "http://3psostorageacct.blob.core.windows.net/cert/a.cer",
        "https://3psostorageacct.blob.core.windows.net:8443/cert/a.cer",
        "https://3psostorageacct.blob.core.windows.net/other/a.cer",
        "https://3psostorageacct.blob.core.windows.net/cert/a.pem",
        "https://3psostorageacct.blob.core.windows.net/cert/a.cer?x=1",
        "https://3psostorageacct.blob.core.windows.net/cert/a.cer#f",
        "https://user:pw@3psostorageacct.blob.core.windows.net/cert/a.cer",
        "https://3psostorageacct.blob.core.windows.net/cert/%2e%2e/a.cer",
        "https://3psostorageacct.blob.core.windows.net.evil.example/cert/a.cer",
        "/cert/a.cer",
    ] {
        assert!(
            matches!(p.allowed_url(refused), Err(CertificateError::UrlRefused(_))),
            "{refused} was allowed"
        );
    }
}

#[test]
fn a_certificate_chaining_to_the_anchor_from_the_organization_is_trusted_and_verifies() {
    let pki = pki(MICROSOFT_ORGANIZATION, -1, 1);
    let trusted = policy(&pki.ca_pem, MICROSOFT_ORGANIZATION)
        .trust(&pki.leaf)
        .unwrap();
    let body = br#"{"EventName":"test-created"}"#;
    assert!(trusted.verify(body, &sign(body)));
    assert!(!trusted.verify(br#"{"EventName":"test-createe"}"#, &sign(body)));
    assert!(!trusted.verify(body, b"not a signature"));
}

#[test]
fn another_anchor_an_expired_certificate_or_another_organization_is_not_trusted() {
    let genuine = pki(MICROSOFT_ORGANIZATION, -1, 1);
    let forger = pki(MICROSOFT_ORGANIZATION, -1, 1);
    let other_anchor = policy(&forger.ca_pem, MICROSOFT_ORGANIZATION).trust(&genuine.leaf);
    assert!(matches!(other_anchor, Err(CertificateError::Untrusted(_))));
    let expired = pki(MICROSOFT_ORGANIZATION, -3, -1);
    let old = policy(&expired.ca_pem, MICROSOFT_ORGANIZATION).trust(&expired.leaf);
    assert!(matches!(old, Err(CertificateError::Untrusted(_))));
    let contoso = pki("Contoso", -1, 1);
    let wrong_org = policy(&contoso.ca_pem, MICROSOFT_ORGANIZATION).trust(&contoso.leaf);
    let Err(CertificateError::Untrusted(why)) = wrong_org else {
        panic!("another organization was trusted")
    };
    assert!(why.contains("Contoso"), "{why}");
}

#[test]
fn a_policy_needs_a_prefix_and_an_anchor() {
    let anchor = pki(MICROSOFT_ORGANIZATION, -1, 1).ca_pem;
    assert!(CertificatePolicy::new(&[], &anchor, "O").is_err());
    assert!(CertificatePolicy::new(&[PREFIX.into()], "", "O").is_err());
    assert!(CertificatePolicy::new(&["ftp://x/".into()], &anchor, "O").is_err());
}
