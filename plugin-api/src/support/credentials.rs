//! The TBMQ `credentials` object shared by the HTTP and MQTT configurations:
//! `{"type":"anonymous"}`, `{"type":"basic","username":..,"password":..}` or
//! `{"type":"cert.PEM","caCert":..,"cert":..,"privateKey":..,"privateKeyPassword":..}`.

use serde::Deserialize;

use crate::abi::FieldError;

/// Parsed credentials. A missing or `null` object means [`Credentials::Anonymous`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(tag = "type")]
pub enum Credentials {
    /// No credentials.
    #[default]
    #[serde(rename = "anonymous")]
    Anonymous,
    /// Username and password.
    #[serde(rename = "basic")]
    Basic {
        /// User name.
        #[serde(default)]
        username: String,
        /// Password.
        #[serde(default)]
        password: String,
    },
    /// PEM material: a CA that becomes the only trust anchor, and/or a client certificate and key.
    #[serde(rename = "cert.PEM", rename_all = "camelCase")]
    CertPem {
        /// CA certificate(s), PEM. Empty = the system trust store.
        #[serde(default)]
        ca_cert: String,
        /// Client certificate chain, PEM. Needs `private_key`.
        #[serde(default)]
        cert: String,
        /// Client private key, PEM (PKCS#8, PKCS#1 or SEC1). Needs `cert`.
        #[serde(default)]
        private_key: String,
        /// Password of an encrypted key. Encrypted keys are refused with a clear error.
        #[serde(default)]
        private_key_password: Option<String>,
    },
}

impl Credentials {
    /// Checks the credentials and returns field errors, with paths under `prefix` (e.g. `credentials`).
    pub fn validate(&self, prefix: &str) -> Vec<FieldError> {
        let mut errors = Vec::new();
        match self {
            Credentials::Anonymous => {}
            Credentials::Basic { username, .. } => {
                if username.is_empty() {
                    errors.push(FieldError::new(format!("{prefix}.username"), "must not be empty"));
                }
            }
            Credentials::CertPem { ca_cert, cert, private_key, private_key_password } => {
                if !ca_cert.is_empty() && !ca_cert.contains("-----BEGIN CERTIFICATE-----") {
                    errors.push(FieldError::new(format!("{prefix}.caCert"), "is not a PEM certificate"));
                }
                if cert.is_empty() != private_key.is_empty() {
                    errors.push(FieldError::new(
                        format!("{prefix}.{}", if cert.is_empty() { "cert" } else { "privateKey" }),
                        "cert and privateKey must be given together",
                    ));
                }
                if !cert.is_empty() && !cert.contains("-----BEGIN CERTIFICATE-----") {
                    errors.push(FieldError::new(format!("{prefix}.cert"), "is not a PEM certificate"));
                }
                if !private_key.is_empty() && !private_key.contains("PRIVATE KEY-----") {
                    errors.push(FieldError::new(format!("{prefix}.privateKey"), "is not a PEM private key"));
                }
                if private_key.contains("ENCRYPTED") || private_key_password.as_deref().is_some_and(|p| !p.is_empty()) {
                    errors.push(FieldError::new(
                        format!("{prefix}.privateKeyPassword"),
                        "encrypted private keys are not supported; provide an unencrypted PKCS#8 key",
                    ));
                }
            }
        }
        errors
    }
}

/// Deserializes an optional credentials object, mapping `null` to anonymous.
pub fn deserialize_optional<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Credentials, D::Error> {
    Ok(Option::<Credentials>::deserialize(d)?.unwrap_or_default())
}
