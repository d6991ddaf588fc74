//! `/health/ready` answers for the database and for every check the process added (the
//! all-in-one binary adds its in-process executor's): 503 with the failing check's reason.

use std::sync::{
    atomic::{AtomicBool, Ordering},
    Arc,
};

use reqwest::StatusCode;

use super::support::{Backend, Env};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_includes_the_checks_the_process_adds() {
    let env = Env::start(Backend::Sqlite).await;
    let ready = || async {
        let response = reqwest::get(env.url("/health/ready")).await.expect("request");
        (response.status(), response.text().await.unwrap_or_default())
    };
    assert_eq!(ready().await, (StatusCode::OK, "READY".to_string()));
    let serving = Arc::new(AtomicBool::new(false));
    let check = serving.clone();
    env.handle.as_ref().expect("running").readiness().add(
        "executor",
        Arc::new(move || if check.load(Ordering::Relaxed) { Ok(()) } else { Err("no integration type served".into()) }),
    );
    assert_eq!(ready().await, (StatusCode::SERVICE_UNAVAILABLE, "executor: no integration type served".to_string()));
    serving.store(true, Ordering::Relaxed);
    assert_eq!(ready().await, (StatusCode::OK, "READY".to_string()));
    env.stop().await;
}
