//! Which presented issuers are believed: chains made with rcgen, checked against the ring
//! provider's algorithms.

use rcgen::{BasicConstraints, Certificate, CertificateParams, DnType, IsCa, KeyPair};
use rustls::pki_types::CertificateDer;

use super::Anchors;

struct Issued {
    cert: Certificate,
    key: KeyPair,
}

/// A certificate named `cn`, CA or not, with `key`'s public key, signed by `issuer` (self-signed
/// without one).
fn issue(cn: &str, ca: bool, key: KeyPair, issuer: Option<&Issued>) -> Issued {
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
    params.distinguished_name.push(DnType::CommonName, cn);
    if ca {
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    }
    let cert = match issuer {
        Some(i) => params.signed_by(&key, &i.cert, &i.key),
        None => params.self_signed(&key),
    };
    Issued { cert: cert.expect("certificate"), key }
}

fn key() -> KeyPair {
    KeyPair::generate().expect("key")
}

fn der(i: &Issued) -> CertificateDer<'static> {
    i.cert.der().clone()
}

fn check(anchors: &[&Issued], presented: &[&Issued], expected: usize) {
    let algorithms = rustls::crypto::ring::default_provider().signature_verification_algorithms;
    let anchors = Anchors::new(anchors.iter().map(|a| der(a)).collect(), algorithms);
    let presented: Vec<_> = presented.iter().map(|p| der(p)).collect();
    assert_eq!(anchors.trusted_len(&presented), expected);
}

#[test]
fn issuers_are_believed_as_far_as_they_chain_to_a_trusted_ca() {
    let root = issue("Root", true, key(), None);
    let int = issue("Int", true, key(), Some(&root));
    let leaf = issue("leaf", false, key(), Some(&int));
    let direct = issue("direct", false, key(), Some(&root));
    let other = issue("Other", true, key(), None);

    check(&[&root], &[&leaf, &int, &root], 3);
    check(&[&root], &[&leaf, &int], 2);
    check(&[&root], &[&leaf], 1);
    check(&[&root], &[&direct, &root], 2);
    // Something unrelated after a good link is not believed; nor instead of one.
    check(&[&root], &[&leaf, &int, &other], 2);
    check(&[&root], &[&leaf, &other, &int], 1);
    // With the intermediate as the trusted CA, the walk stops there.
    check(&[&int], &[&leaf, &int, &root], 2);
    // A chain that does not reach a trusted CA gives the leaf only.
    check(&[&other], &[&leaf, &int, &root], 1);
}

#[test]
fn a_forged_issuer_with_the_right_name_and_key_is_not_believed() {
    let root_key = key();
    let root_public = KeyPair::from_pem(&root_key.serialize_pem()).expect("key copy");
    let root = issue("Root", true, root_key, None);
    let direct = issue("direct", false, key(), Some(&root));
    let mallory = issue("Privileged CA", true, key(), None);
    // Named like the root, with the root's key (so it "signed" the leaf), but issued by mallory:
    // believing it would let mallory's CN through.
    let forged = issue("Root", true, root_public, Some(&mallory));
    check(&[&root], &[&direct, &forged, &mallory], 1);
}
