//! The console's files as served: content types, cache validators, 304s and unknown files.

use poem::{http::StatusCode, Endpoint, Request, Route};

use super::{etag, file, index, paths, ASSETS};
use crate::api::AllowedMethods;

fn route() -> Route {
    Route::new().at("/", poem::get(index)).at("/console/*path", poem::get(file))
}

async fn get(path: &str, if_none_match: Option<&str>) -> poem::Response {
    let mut req = Request::builder().uri(path.parse().expect("uri"));
    if let Some(tag) = if_none_match {
        req = req.header("if-none-match", tag);
    }
    match route().call(req.finish()).await {
        Ok(response) => response,
        Err(err) => err.into_response(),
    }
}

#[tokio::test]
async fn every_asset_is_served_with_its_type_and_validator() {
    for asset in ASSETS {
        let path = if asset.path == "index.html" { "/".to_string() } else { format!("/console/{}", asset.path) };
        let response = get(&path, None).await;
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        assert_eq!(response.header("content-type"), Some(asset.content_type), "{path}");
        assert_eq!(response.header("cache-control"), Some("no-cache"), "{path}");
        assert_eq!(response.header("etag"), Some(asset.etag), "{path}");
        assert_eq!(response.header("x-content-type-options"), Some("nosniff"), "{path}");
        let body = response.into_body().into_vec().await.expect("body");
        assert_eq!(body, asset.body, "{path}");
    }
}

#[tokio::test]
async fn a_known_etag_gets_304() {
    let asset = super::find("js/app.js").expect("app.js");
    let response = get("/console/js/app.js", Some(&format!("\"x\", {}", asset.etag))).await;
    assert_eq!(response.status(), StatusCode::NOT_MODIFIED);
    let response = get("/console/js/app.js", Some("\"0000000000000000\"")).await;
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test]
async fn the_page_forbids_inline_code_and_framing() {
    let response = get("/", None).await;
    let csp = response.header("content-security-policy").expect("a CSP").to_string();
    assert!(csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'"), "{csp}");
}

#[tokio::test]
async fn unknown_files_are_404_in_tbmq_shape() {
    for path in ["/console/nope.js", "/console/index.html", "/console/js/../console.css", "/console/"] {
        let response = get(path, None).await;
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{path}");
        let body = response.into_body().into_string().await.unwrap_or_default();
        assert!(body.contains("Requested item wasn't found!"), "{path}: {body}");
    }
}

#[test]
fn every_module_the_page_imports_is_embedded() {
    let sources: Vec<&str> = ASSETS.iter().filter_map(|a| std::str::from_utf8(a.body).ok()).collect();
    for source in sources {
        for reference in source.split(['"', '\'']).filter(|s| s.starts_with("./") || s.starts_with("/console/")) {
            let name = reference.trim_start_matches("/console/").trim_start_matches("./");
            let found = ASSETS.iter().any(|a| a.path == name || a.path == format!("js/{name}"));
            assert!(found, "{reference} is referenced but not embedded");
        }
    }
}

#[test]
fn allow_header_covers_the_console() {
    let allowed = AllowedMethods::from_spec("{}");
    for path in paths() {
        assert_eq!(allowed.lookup(&path).map(|v| v.to_str().unwrap_or_default().to_string()), Some("GET, HEAD".into()));
    }
    assert!(allowed.lookup("/console/nope.js").is_none());
}

#[test]
fn etags_differ_by_content() {
    assert_ne!(etag(b"a"), etag(b"b"));
    assert_eq!(&etag(b"")[..], b"\"cbf29ce484222325\"");
}
