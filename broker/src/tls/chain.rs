//! How far the issuers a TLS client presented after its certificate can be believed: the CNs of
//! TBMQ's X.509 chain walk (`auth::stored`) come from this prefix of the presented chain.
//!
//! rustls verifies the leaf against the client CA file, using the presented issuers only as a
//! pool to build a path from, so a client may append certificates that are on no verified path.
//! A presented issuer is believed when it signed the certificate before it (its subject is that
//! certificate's issuer name, byte for byte, and its key verifies that certificate's signature),
//! and the last one believed is a CA of the file or was signed by one. The walk stops at the
//! first CA of the file. Validity dates are rustls's business: it checked those of the path it
//! built, which for a chain presented in order is this one.
//! TBMQ walks what Java's `getPeerCertificates()` returns, the chain as presented; this check is
//! ours.

use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::CertificateDer;

use super::subject::{element, SEQUENCE};

/// The DER tag of a BIT STRING.
const BIT_STRING: u8 = 0x03;
/// The DER tag of `[0] EXPLICIT` (the TBSCertificate's version).
const VERSION: u8 = 0xA0;

/// The client CA file's certificates, and the signature algorithms rustls verifies with.
pub(super) struct Anchors {
    cas: Vec<CertificateDer<'static>>,
    algorithms: WebPkiSupportedAlgorithms,
}

impl Anchors {
    /// Trusts `cas` (the ones rustls took as trust anchors).
    pub(super) fn new(cas: Vec<CertificateDer<'static>>, algorithms: WebPkiSupportedAlgorithms) -> Anchors {
        Anchors { cas, algorithms }
    }

    /// How many of the `presented` certificates, leaf first, form a chain to a trusted CA; the
    /// leaf (verified by rustls) always counts.
    pub(super) fn trusted_len(&self, presented: &[CertificateDer<'_>]) -> usize {
        let mut linked = 1;
        while linked < presented.len()
            && !self.is_ca(&presented[linked - 1])
            && signed_by(&presented[linked - 1], &presented[linked], &self.algorithms)
        {
            linked += 1;
        }
        (1..linked).rev().find(|&i| self.vouches_for(&presented[i])).map_or(1, |i| i + 1)
    }

    fn is_ca(&self, cert: &[u8]) -> bool {
        self.cas.iter().any(|ca| ca.as_ref() == cert)
    }

    fn vouches_for(&self, cert: &[u8]) -> bool {
        self.is_ca(cert) || self.cas.iter().any(|ca| signed_by(cert, ca, &self.algorithms))
    }
}

/// Whether `issuer` signed `cert`: names equal and the signature verifies with issuer's key.
fn signed_by(cert: &[u8], issuer: &[u8], algorithms: &WebPkiSupportedAlgorithms) -> bool {
    let (Some(cert), Some(issuer)) = (Parts::of(cert), Parts::of(issuer)) else {
        return false;
    };
    cert.issuer == issuer.subject
        && algorithms.all.iter().any(|alg| {
            alg.public_key_alg_id().as_ref() == issuer.key_algorithm
                && alg.signature_alg_id().as_ref() == cert.signature_algorithm
                && alg.verify_signature(issuer.key, cert.tbs, cert.signature).is_ok()
        })
}

/// The pieces of a DER certificate a signature check needs.
struct Parts<'a> {
    /// The whole TBSCertificate element: the signed bytes.
    tbs: &'a [u8],
    /// The contents of the outer signatureAlgorithm.
    signature_algorithm: &'a [u8],
    /// The signature bits.
    signature: &'a [u8],
    /// The whole issuer Name element.
    issuer: &'a [u8],
    /// The whole subject Name element.
    subject: &'a [u8],
    /// The contents of the subjectPublicKeyInfo's algorithm.
    key_algorithm: &'a [u8],
    /// The subjectPublicKey bits.
    key: &'a [u8],
}

impl<'a> Parts<'a> {
    fn of(der: &'a [u8]) -> Option<Parts<'a>> {
        let cert = contents(der, SEQUENCE)?;
        let (tag, fields, after_tbs) = element(cert)?;
        if tag != SEQUENCE {
            return None;
        }
        let tbs = &cert[..cert.len() - after_tbs.len()];
        let (tag, signature_algorithm, rest) = element(after_tbs)?;
        if tag != SEQUENCE {
            return None;
        }
        let signature = bits(contents(rest, BIT_STRING)?)?;
        let mut rest = fields;
        if element(rest)?.0 == VERSION {
            rest = element(rest)?.2;
        }
        // serialNumber, signature
        for _ in 0..2 {
            rest = element(rest)?.2;
        }
        let (issuer, rest) = whole(rest, SEQUENCE)?;
        let rest = element(rest)?.2; // validity
        let (subject, rest) = whole(rest, SEQUENCE)?;
        let spki = contents(rest, SEQUENCE)?;
        let (tag, key_algorithm, rest) = element(spki)?;
        if tag != SEQUENCE {
            return None;
        }
        let key = bits(contents(rest, BIT_STRING)?)?;
        Some(Parts { tbs, signature_algorithm, signature, issuer, subject, key_algorithm, key })
    }
}

/// The contents of the first element of `input`, if it has `tag`.
fn contents(input: &[u8], tag: u8) -> Option<&[u8]> {
    let (found, contents, _) = element(input)?;
    (found == tag).then_some(contents)
}

/// The first element of `input` with its tag and length, if it has `tag`, and what follows it.
fn whole(input: &[u8], tag: u8) -> Option<(&[u8], &[u8])> {
    let (found, _, rest) = element(input)?;
    (found == tag).then(|| (&input[..input.len() - rest.len()], rest))
}

/// A BIT STRING's bits, when they are whole bytes (as keys and signatures are).
fn bits(bit_string: &[u8]) -> Option<&[u8]> {
    match bit_string.split_first() {
        Some((0, bits)) => Some(bits),
        _ => None,
    }
}

#[cfg(test)]
mod tests;
