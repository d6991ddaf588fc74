//! Driver log lines reach `tracing` as one line each: control characters in a message (an
//! integration name or URL with a newline or a terminal escape) are escaped; WARN and ERROR
//! lines that repeat are rate-limited with a count.

use std::time::{Duration, Instant};

use abi_stable::std_types::RStr;
use trib_plugin_api::abi::log_level;

use super::{log, HostContext};

/// Logs `message` as a driver would and returns what the text log shows.
fn logged(message: &str) -> String {
    logged_by(&HostContext::new("id-1", "HTTP"), |log| log(log_level::INFO, message))
}

/// Runs `driver`, which logs through `context` with the function it is given, and returns what
/// the text log shows.
fn logged_by(context: &HostContext, driver: impl FnOnce(&dyn Fn(u8, &str))) -> String {
    let ctx = context.services().ctx;
    trib_test_support::logs::captured("info", || driver(&|level, message| log(ctx, level, RStr::from_str(message))))
}

/// The `suppressed=N` count of a log line (0 without one).
fn suppressed(line: &str) -> u64 {
    line.split_once("suppressed=").map_or(0, |(_, n)| n.split_whitespace().next().unwrap().parse().unwrap())
}

#[test]
fn driver_messages_with_control_characters_stay_on_one_escaped_line() {
    let text = logged("HTTP integration 'evil\nFORGED line \x1b[2K' started.");
    assert_eq!(text.lines().count(), 1, "{text}");
    assert!(!text.contains('\x1b'), "{text}");
    assert!(text.contains(r"HTTP integration 'evil\nFORGED line \u{1b}[2K' started."), "{text}");
}

#[test]
fn plain_driver_messages_are_logged_as_they_are() {
    let text = logged("HTTP integration 'a \"b\" c' started.");
    assert!(text.contains(r#"HTTP integration 'a "b" c' started. integration_id="id-1""#), "{text}");
}

#[test]
fn ten_thousand_failed_batches_write_a_few_lines_that_count_every_one() {
    let interval = Duration::from_millis(50);
    let context = HostContext::with_log_interval("id-1", "HTTP", interval);
    let started = Instant::now();
    let text = logged_by(&context, |log| {
        for i in 0..10_000 {
            log(log_level::WARN, &format!("HTTP batch: {} of 500 messages not delivered; first: status 503.", i % 500));
        }
        // Past the interval: the next one is written with the count of those suppressed.
        std::thread::sleep(interval * 2);
        log(log_level::WARN, "HTTP batch: 1 of 500 messages not delivered; first: status 503.");
    });
    let lines: Vec<&str> = text.lines().collect();
    let allowed = 2 + started.elapsed().as_millis() / interval.as_millis();
    assert!(lines.len() as u128 <= allowed, "{} lines (at most {allowed}):\n{text}", lines.len());
    assert!(lines.iter().all(|l| l.contains("WARN") && l.contains("HTTP batch")), "{text}");
    let counted: u64 = lines.iter().map(|l| 1 + suppressed(l)).sum();
    assert_eq!(counted, 10_001, "every failure is a line or counted in one:\n{text}");
}

#[test]
fn different_driver_lines_are_limited_apart_and_info_lines_are_not_limited() {
    let context = HostContext::with_log_interval("id-1", "HTTP", Duration::from_secs(3600));
    let text = logged_by(&context, |log| {
        for _ in 0..100 {
            log(log_level::WARN, "HTTP batch: 1 of 1 messages not delivered; first: status 503.");
            log(log_level::ERROR, "HTTP batch: 1 of 1 messages not delivered; first: status 503.");
            log(log_level::WARN, "HTTP batch: 1 of 1 messages not delivered; first: connection refused.");
            log(log_level::INFO, "HTTP integration started.");
        }
    });
    assert_eq!(text.lines().filter(|l| l.contains("status 503") && l.contains("WARN")).count(), 1, "{text}");
    assert_eq!(text.lines().filter(|l| l.contains("status 503") && l.contains("ERROR")).count(), 1, "{text}");
    assert_eq!(text.lines().filter(|l| l.contains("connection refused")).count(), 1, "{text}");
    assert_eq!(text.lines().filter(|l| l.contains("started")).count(), 100, "{text}");
}
