//! Built-in authenticator tests.

use super::*;

fn request(username: Option<&str>, password: Option<&str>) -> AuthRequest {
    AuthRequest {
        client_id: "c".to_owned(),
        username: username.map(str::to_owned),
        password: password.map(|p| p.as_bytes().to_vec()),
        peer: "127.0.0.1:1".parse().expect("address"),
        certificate_cn: None,
    }
}

#[test]
fn decisions() {
    let users = [Credential { username: "u".to_owned(), password_hash: hash_password("pw").expect("hash") }];
    let open = BasicAuthenticator::new(true, &users);
    let closed = BasicAuthenticator::new(false, &users);
    for (auth, user, pass, expected) in [
        (&open, None, None, AuthDecision::Allow),
        (&closed, None, None, AuthDecision::NotAuthorized),
        (&closed, Some("u"), Some("pw"), AuthDecision::Allow),
        (&closed, Some("u"), Some("nope"), AuthDecision::BadCredentials),
        (&closed, Some("u"), None, AuthDecision::BadCredentials),
        (&open, Some("who"), Some("pw"), AuthDecision::BadCredentials),
    ] {
        assert_eq!(auth.authenticate(&request(user, pass)), expected, "{user:?} {pass:?}");
    }
}

#[test]
fn unparsable_stored_hash_refuses() {
    let users = [Credential { username: "u".to_owned(), password_hash: "plaintext".to_owned() }];
    let auth = BasicAuthenticator::new(false, &users);
    assert_eq!(auth.authenticate(&request(Some("u"), Some("plaintext"))), AuthDecision::BadCredentials);
}

#[test]
fn a_verified_certificate_needs_no_password() {
    let auth = BasicAuthenticator::new(false, &[]);
    assert_eq!(auth.authenticate(&request(None, None)), AuthDecision::NotAuthorized);
    let with_cert = AuthRequest { certificate_cn: Some("device-1".to_owned()), ..request(None, None) };
    assert_eq!(auth.authenticate(&with_cert), AuthDecision::Allow);
    let with_cert_and_user = AuthRequest { certificate_cn: Some("d".to_owned()), ..request(Some("x"), Some("y")) };
    assert_eq!(auth.authenticate(&with_cert_and_user), AuthDecision::Allow);
}
