//! Masking secrets in the effective configuration `print-config` shows: whole values of
//! variables named like secrets, secret properties inside Kafka property strings, and the
//! password of any URL. What counts as a secret is decided here and nowhere else.

/// What a masked secret is shown as.
pub(super) const MASK: &str = "******";

/// `value` as it may be shown for the variable `name` (`None`: a leaf without a variable).
pub(super) fn shown(name: Option<&str>, value: &str) -> String {
    if value.is_empty() {
        return String::new();
    }
    let name = name.unwrap_or_default();
    if secret_name(name) {
        return MASK.to_string();
    }
    let value = if property_string(name) { mask_properties(value) } else { value.to_string() };
    mask_url_passwords(&value)
}

/// Variables whose whole value is a secret (`TB_ADMIN_PASSWORD`, `SPRING_DATASOURCE_PASSWORD`,
/// `JWT_TOKEN_SIGNING_KEY`, ...).
fn secret_name(name: &str) -> bool {
    ["PASSWORD", "SECRET", "SIGNING_KEY"].iter().any(|word| name.contains(word))
}

/// Variables holding TBMQ's `key:value;key:value` Kafka client properties
/// (`TB_KAFKA_DEFAULT_PRODUCER_CONSUMER_CONFIG`, `TB_KAFKA_ADMIN_CONFIG`, ...).
fn property_string(name: &str) -> bool {
    name.starts_with("TB_KAFKA_") && name.ends_with("CONFIG")
}

/// Kafka client properties whose value is a secret (`sasl.password`, `sasl.jaas.config`,
/// `ssl.key.password`, `ssl.keystore.password`, `ssl.key.pem`, `sasl.oauthbearer.client.secret`).
fn secret_property(key: &str) -> bool {
    let key = key.trim().to_ascii_lowercase();
    ["password", "secret", "jaas", "key.pem"].iter().any(|word| key.contains(word)) || key.ends_with("keystore.key")
}

/// Masks the secret values of a property string. A `;` inside double quotes (a JAAS value) does
/// not end a property. A non-empty part without a `:` is masked too: it may be the rest of a
/// secret that held a `;`.
fn mask_properties(text: &str) -> String {
    let mut parts = Vec::new();
    let (mut start, mut quoted) = (0, false);
    for (i, c) in text.char_indices() {
        match c {
            '"' => quoted = !quoted,
            ';' if !quoted => {
                parts.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&text[start..]);
    let masked: Vec<String> = parts
        .into_iter()
        .map(|part| match part.split_once(':') {
            Some((key, _)) if secret_property(key) => format!("{key}:{MASK}"),
            Some(_) => part.to_string(),
            None if part.trim().is_empty() => part.to_string(),
            None => MASK.to_string(),
        })
        .collect();
    masked.join(";")
}

/// Masks the password of every `scheme://user:password@host` URL in `text`, and the value of
/// query parameters named like a password (`?password=...`).
fn mask_url_passwords(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("://") {
        let (before, after) = rest.split_at(at + 3);
        out.push_str(before);
        let end = after.find(|c: char| c.is_whitespace() || c == ';' || c == ',').unwrap_or(after.len());
        let (url, tail) = after.split_at(end);
        out.push_str(&mask_url(url));
        rest = tail;
    }
    out.push_str(rest);
    out
}

/// One URL after its `://`: the password of its user info (up to the last `@` of the
/// authority) and password query parameters masked.
fn mask_url(url: &str) -> String {
    let authority_end = url.find(['/', '?', '#']).unwrap_or(url.len());
    let (authority, path) = url.split_at(authority_end);
    let authority = match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _password)) => format!("{user}:{MASK}@{host}"),
            None => authority.to_string(),
        },
        None => authority.to_string(),
    };
    let path = match path.split_once('?') {
        Some((before, query)) => {
            let params: Vec<String> = query
                .split('&')
                .map(|param| match param.split_once('=') {
                    Some((key, _)) if key.to_ascii_lowercase().contains("password") => format!("{key}={MASK}"),
                    _ => param.to_string(),
                })
                .collect();
            format!("{before}?{}", params.join("&"))
        }
        None => path.to_string(),
    };
    authority + &path
}
