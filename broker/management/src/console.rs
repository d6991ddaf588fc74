//! The web console's files (`broker/management/console/`), compiled into the binary and served
//! at `/` (the page) and `/console/<file>` (its script modules and style sheet) without a token:
//! the page holds no data, and every call it makes goes to the guarded REST API.
//!
//! There is no build step: the files are hand-written ES modules and one CSS file, embedded with
//! `include_bytes!`. Each answer carries an `ETag` (a hash computed at compile time) and
//! `Cache-Control: no-cache`, so a browser revalidates and gets a 304 until the binary changes.
//! What the console does lives in the files themselves; the REST API does not know it exists.

use poem::{
    error::ResponseError,
    handler,
    http::{header, HeaderValue, StatusCode},
    web::Path,
    Request, Response,
};

use crate::api::error::ApiError;

/// One embedded file.
pub struct Asset {
    /// Path under `/console/` (`index.html` is served at `/`).
    pub path: &'static str,
    /// `Content-Type` header.
    pub content_type: &'static str,
    /// The file.
    pub body: &'static [u8],
    /// Strong validator, computed at compile time from the body.
    pub etag: &'static str,
}

macro_rules! asset {
    ($path:literal, $content_type:expr) => {
        Asset {
            path: $path,
            content_type: $content_type,
            body: include_bytes!(concat!("../console/", $path)),
            etag: {
                const HASH: [u8; 18] = etag(include_bytes!(concat!("../console/", $path)));
                match std::str::from_utf8(&HASH) {
                    Ok(text) => text,
                    Err(_) => panic!("an etag is ASCII"),
                }
            },
        }
    };
}

const JS: &str = "text/javascript; charset=utf-8";

/// Every file of the console.
pub const ASSETS: &[Asset] = &[
    asset!("index.html", "text/html; charset=utf-8"),
    asset!("console.css", "text/css; charset=utf-8"),
    asset!("favicon.svg", "image/svg+xml"),
    asset!("js/app.js", JS),
    asset!("js/api.js", JS),
    asset!("js/dom.js", JS),
    asset!("js/schema_form.js", JS),
    asset!("js/integrations.js", JS),
    asset!("js/wizard.js", JS),
    asset!("js/details.js", JS),
    asset!("js/chart.js", JS),
    asset!("js/executors.js", JS),
];

/// The page: only the console's own files, no inline script or style, no framing.
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
     connect-src 'self'; form-action 'none'; base-uri 'none'; frame-ancestors 'none'";

/// `GET /`: the console's page.
#[handler]
pub fn index(req: &Request) -> Response {
    let page = find("index.html").expect("index.html is embedded");
    let mut response = serve(page, req);
    response.headers_mut().insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CONTENT_SECURITY_POLICY));
    response
}

/// `GET /console/<file>`: a script or the style sheet; TBMQ's 404 body for anything else.
#[handler]
pub fn file(req: &Request, Path(path): Path<String>) -> Response {
    match find(&path).filter(|asset| asset.path != "index.html") {
        Some(asset) => serve(asset, req),
        None => ApiError::new(StatusCode::NOT_FOUND, "Requested item wasn't found!").as_response(),
    }
}

/// The embedded file at `path` (relative to `console/`).
pub fn find(path: &str) -> Option<&'static Asset> {
    ASSETS.iter().find(|asset| asset.path == path)
}

/// `/` and the paths of the console's files, for the `Allow` header of a 405.
pub fn paths() -> impl Iterator<Item = String> {
    std::iter::once("/".to_string())
        .chain(ASSETS.iter().filter(|a| a.path != "index.html").map(|a| format!("/console/{}", a.path)))
}

fn serve(asset: &Asset, req: &Request) -> Response {
    let fresh = req
        .header(header::IF_NONE_MATCH)
        .is_some_and(|tags| tags.split(',').any(|tag| tag.trim() == asset.etag || tag.trim() == "*"));
    let builder = Response::builder()
        .header(header::ETAG, asset.etag)
        .header(header::CACHE_CONTROL, "no-cache")
        .header(header::X_CONTENT_TYPE_OPTIONS, "nosniff")
        .header(header::REFERRER_POLICY, "no-referrer");
    if fresh {
        return builder.status(StatusCode::NOT_MODIFIED).finish();
    }
    builder.content_type(asset.content_type).body(asset.body)
}

/// `"` + 16 hex digits of the FNV-1a hash of `bytes` + `"`, at compile time.
const fn etag(bytes: &[u8]) -> [u8; 18] {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let mut i = 0;
    while i < bytes.len() {
        hash ^= bytes[i] as u64;
        hash = hash.wrapping_mul(0x0100_0000_01b3);
        i += 1;
    }
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut out = [b'"'; 18];
    let mut digit = 0;
    while digit < 16 {
        out[1 + digit] = HEX[((hash >> (60 - 4 * digit)) & 0xf) as usize];
        digit += 1;
    }
    out
}

#[cfg(test)]
mod tests;
