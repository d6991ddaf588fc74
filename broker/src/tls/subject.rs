//! The subject common name (CN) of a DER certificate, for client-certificate identities.
//!
//! Only the path to the subject is walked (Certificate, TBSCertificate, version, serial number,
//! signature algorithm, issuer, validity, subject); the certificate was verified by rustls before
//! this runs, and every length is still checked so that no input can panic.

/// The DER tag of a SEQUENCE.
pub(super) const SEQUENCE: u8 = 0x30;
/// The DER tag of a SET.
const SET: u8 = 0x31;
/// The DER tag of an OBJECT IDENTIFIER.
const OID: u8 = 0x06;
/// id-at-commonName, 2.5.4.3.
const COMMON_NAME: &[u8] = &[0x55, 0x04, 0x03];

/// The first CN of the certificate's subject, if it has one in a string type we can read.
pub(crate) fn common_name(der: &[u8]) -> Option<String> {
    let (tag, cert, _) = element(der)?;
    if tag != SEQUENCE {
        return None;
    }
    let (tag, tbs, _) = element(cert)?;
    if tag != SEQUENCE {
        return None;
    }
    let mut rest = tbs;
    let (tag, _, after) = element(rest)?;
    if tag == 0xA0 {
        rest = after; // [0] EXPLICIT version
    }
    // serialNumber, signature, issuer, validity
    for _ in 0..4 {
        rest = element(rest)?.2;
    }
    let (tag, mut names, _) = element(rest)?;
    if tag != SEQUENCE {
        return None;
    }
    while !names.is_empty() {
        let (tag, mut set, after) = element(names)?;
        names = after;
        if tag != SET {
            return None;
        }
        while !set.is_empty() {
            let (tag, attribute, after) = element(set)?;
            set = after;
            if tag != SEQUENCE {
                return None;
            }
            let (tag, oid, value) = element(attribute)?;
            if tag == OID && oid == COMMON_NAME {
                let (tag, text, _) = element(value)?;
                return string(tag, text);
            }
        }
    }
    None
}

/// Splits one DER element off `input`: its tag, its contents and what follows it.
pub(super) fn element(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, mut rest) = rest.split_first()?;
    let len = if first < 0x80 {
        usize::from(first)
    } else {
        let count = usize::from(first & 0x7F);
        if count == 0 || count > 4 || rest.len() < count {
            return None;
        }
        let mut len = 0usize;
        for &b in &rest[..count] {
            len = (len << 8) | usize::from(b);
        }
        rest = &rest[count..];
        len
    };
    if rest.len() < len {
        return None;
    }
    Some((tag, &rest[..len], &rest[len..]))
}

fn string(tag: u8, bytes: &[u8]) -> Option<String> {
    match tag {
        // UTF8String, PrintableString, TeletexString (ASCII in practice), IA5String
        0x0C | 0x13 | 0x14 | 0x16 => String::from_utf8(bytes.to_vec()).ok(),
        // BMPString: UCS-2 big endian
        0x1E if bytes.len().is_multiple_of(2) => {
            let units: Vec<u16> = bytes.chunks_exact(2).map(|c| u16::from_be_bytes([c[0], c[1]])).collect();
            String::from_utf16(&units).ok()
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cert_with(dn: rcgen::DistinguishedName) -> Vec<u8> {
        let key = rcgen::KeyPair::generate().expect("key");
        let mut params = rcgen::CertificateParams::new(vec!["localhost".to_owned()]).expect("params");
        params.distinguished_name = dn;
        params.self_signed(&key).expect("cert").der().to_vec()
    }

    #[test]
    fn common_name_is_found_among_other_attributes() {
        let mut dn = rcgen::DistinguishedName::new();
        dn.push(rcgen::DnType::CountryName, "DE");
        dn.push(rcgen::DnType::OrganizationName, "Tributary");
        dn.push(rcgen::DnType::CommonName, "device-7 ünï");
        assert_eq!(common_name(&cert_with(dn)).as_deref(), Some("device-7 ünï"));
        let mut dn = rcgen::DistinguishedName::new();
        dn.push(rcgen::DnType::CommonName, rcgen::DnValue::PrintableString("plain".try_into().expect("printable")));
        assert_eq!(common_name(&cert_with(dn)).as_deref(), Some("plain"));
    }

    #[test]
    fn no_common_name_or_garbage_gives_none() {
        let mut dn = rcgen::DistinguishedName::new();
        dn.push(rcgen::DnType::OrganizationName, "Tributary");
        assert_eq!(common_name(&cert_with(dn)), None);
        let der = cert_with(rcgen::DistinguishedName::new());
        for cut in 0..der.len() {
            let _ = common_name(&der[..cut]);
        }
        assert_eq!(common_name(&[]), None);
        assert_eq!(common_name(&[0x30, 0x84, 0xFF, 0xFF, 0xFF, 0xFF]), None);
    }
}
