//! Built-in authenticator tests.

use super::*;
use trib_ops::login::{Lockout, PasswordPool};

fn request(username: Option<&str>, password: Option<&str>) -> AuthRequest {
    AuthRequest {
        client_id: "c".to_owned(),
        username: username.map(str::to_owned),
        password: password.map(|p| p.as_bytes().to_vec()),
        peer: "127.0.0.1:1".parse().expect("address"),
        certificate: None,
    }
}

#[tokio::test]
async fn decisions() {
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
        assert_eq!(auth.authenticate(&request(user, pass)).await, expected, "{user:?} {pass:?}");
    }
}

#[tokio::test]
async fn unparsable_stored_hash_refuses() {
    let users = [Credential { username: "u".to_owned(), password_hash: "plaintext".to_owned() }];
    let auth = BasicAuthenticator::new(false, &users);
    assert_eq!(auth.authenticate(&request(Some("u"), Some("plaintext"))).await, AuthDecision::BadCredentials);
}

#[tokio::test]
async fn a_verified_certificate_needs_no_password() {
    let auth = BasicAuthenticator::new(false, &[]);
    assert_eq!(auth.authenticate(&request(None, None)).await, AuthDecision::NotAuthorized);
    let with_cert = AuthRequest { certificate: Some(ClientCertificate::leaf("device-1")), ..request(None, None) };
    assert_eq!(auth.authenticate(&with_cert).await, AuthDecision::Allow);
    let with_cert_and_user =
        AuthRequest { certificate: Some(ClientCertificate::leaf("d")), ..request(Some("x"), Some("y")) };
    assert_eq!(auth.authenticate(&with_cert_and_user).await, AuthDecision::Allow);
}

#[tokio::test]
async fn an_unknown_user_is_verified_against_a_dummy_hash() {
    let auth = BasicAuthenticator::new(false, &[]);
    let before = PasswordPool::shared().stats().completed;
    assert_eq!(auth.authenticate(&request(Some("nobody"), Some("pw"))).await, AuthDecision::BadCredentials);
    // The unknown user cost one verification, like a wrong password.
    assert!(PasswordPool::shared().stats().completed > before);
    // On a blocking thread: the test's current-thread runtime is the only async worker.
    assert_ne!(PasswordPool::shared().stats().last_thread, Some(std::thread::current().id()));
}

#[tokio::test]
async fn locking_refuses_after_repeated_failures_even_the_right_password() {
    let users = [Credential { username: "u".to_owned(), password_hash: hash_password("pw").expect("hash") }];
    let inner: Arc<dyn Authenticator> = Arc::new(BasicAuthenticator::new(false, &users));
    let auth = Locking::new(inner, Arc::new(Lockout::new(3, std::time::Duration::from_secs(60))));
    for _ in 0..3 {
        assert_eq!(auth.authenticate(&request(Some("u"), Some("bad"))).await, AuthDecision::BadCredentials);
    }
    assert_eq!(auth.authenticate(&request(Some("u"), Some("pw"))).await, AuthDecision::NotAuthorized);
    assert_eq!(auth.authenticate(&request(Some("other"), Some("x"))).await, AuthDecision::BadCredentials);
}

#[test]
fn topic_rules_match_whole_topics() {
    let rules = TopicRules::new(&["sensors/.*".to_owned(), "a/b".to_owned()], &["cmd/\\w+".to_owned()]);
    for (topic, expected) in [("sensors/1", true), ("x/sensors/1", false), ("a/b", true), ("a/b/c", false)] {
        assert_eq!(rules.can_publish(topic), expected, "{topic}");
    }
    for (filter, expected) in [("cmd/dev1", true), ("cmd/#", false), ("sensors/1", false)] {
        assert_eq!(rules.can_subscribe(filter), expected, "{filter}");
    }
    let nothing = TopicRules::new(&[], &["(".to_owned()]);
    assert!(!nothing.can_publish("a") && !nothing.can_subscribe("a"));
}
