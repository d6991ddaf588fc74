//! `restEndpointUrl` checking and percent-encoding, as TBMQ's
//! `UriComponentsBuilder.fromUriString(url).build().encode()`: every byte that is not allowed in
//! its component (space, `"`, `{`, `}`, `<`, `>`, `|`, `\`, `^`, backtick, non-ASCII...) becomes
//! `%XX` in the path and the query.
//!
//! Two deliberate differences: an existing escape (`%` plus two hex digits) is kept, where Spring
//! would encode the `%` again (`%20` -> `%2520`, surely not what the user meant), and the fragment
//! is dropped (HTTP clients never send it). Surrounding whitespace is trimmed.

/// TBMQ's message for a URL without a scheme.
pub const SCHEME_MISSING: &str = "Transport scheme(protocol) must be provided!";
/// TBMQ's message for a URL without an authority or host.
pub const URL_INVALID: &str = "Url string is invalid!";
/// Our message for a scheme other than http and https.
pub const SCHEME_UNSUPPORTED: &str = "Only http and https URLs are supported";

/// Checks `raw` and returns it percent-encoded, or the reason it is refused.
pub fn encode(raw: &str) -> Result<String, &'static str> {
    let raw = raw.trim();
    // Spring's pattern: the scheme is everything before the first ':' that comes before any '/', '?' or '#'.
    let scheme_end = raw.find([':', '/', '?', '#']).filter(|&i| i > 0 && raw[i..].starts_with(':'));
    let Some(scheme_end) = scheme_end else {
        return Err(SCHEME_MISSING);
    };
    let scheme = &raw[..scheme_end];
    let Some(rest) = raw[scheme_end + 1..].strip_prefix("//") else {
        return Err(URL_INVALID);
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, rest) = rest.split_at(authority_end);
    if host(authority).is_empty() {
        return Err(URL_INVALID);
    }
    if !scheme.eq_ignore_ascii_case("http") && !scheme.eq_ignore_ascii_case("https") {
        return Err(SCHEME_UNSUPPORTED);
    }
    let rest = rest.split_once('#').map_or(rest, |(before, _fragment)| before);
    let (path, query) = match rest.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (rest, None),
    };
    let mut out = String::with_capacity(raw.len() + 16);
    out.push_str(scheme);
    out.push_str("://");
    out.push_str(authority);
    push_encoded(&mut out, path, b"/");
    if let Some(query) = query {
        out.push('?');
        push_encoded(&mut out, query, b"/?");
    }
    // The authority is taken as written; let a real URL parser refuse a bad host or port.
    match ::url::Url::parse(&out) {
        Ok(_) => Ok(out),
        Err(_) => Err(URL_INVALID),
    }
}

/// `url` as logs, outcome reasons and dead letters show it: any user info (`user:password@`,
/// or a token as the user) becomes `***@`, so credentials written into the URL never leave the
/// driver. Requests still go to the URL as configured.
pub fn redacted(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(authority_end);
    match authority.rsplit_once('@') {
        Some((_user_info, host)) => format!("{scheme}://***@{host}{path}"),
        None => url.to_string(),
    }
}

/// The host part of an authority: without user info and port.
fn host(authority: &str) -> &str {
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, hp)| hp);
    if host_port.starts_with('[') {
        return host_port.split_once(']').map_or("", |(h, _)| h.trim_start_matches('['));
    }
    host_port.split_once(':').map_or(host_port, |(h, _)| h)
}

/// Appends `text`, percent-encoding every byte that is not a `pchar`, not in `extra` and not
/// part of an existing `%XX` escape.
fn push_encoded(out: &mut String, text: &str, extra: &[u8]) {
    let bytes = text.as_bytes();
    for (i, &b) in bytes.iter().enumerate() {
        let escape = b == b'%'
            && bytes.get(i + 1).is_some_and(u8::is_ascii_hexdigit)
            && bytes.get(i + 2).is_some_and(u8::is_ascii_hexdigit);
        if is_pchar(b) || extra.contains(&b) || escape {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
}

/// RFC 3986 `pchar` without `%`: unreserved, sub-delims, `:` and `@`.
fn is_pchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:@".contains(&b)
}
