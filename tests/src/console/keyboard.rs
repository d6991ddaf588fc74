//! The console with the keyboard only (issue 11): log in, open the wizard, go through its steps,
//! check the connection and save an HTTP integration, use its page (the event type, the dead
//! letters' pages and Replay) and delete it through the confirmation dialog (Escape first), with
//! Tab, Shift+Tab, Enter, Space, Escape and the arrow keys, never a click. Each step asserts where
//! the focus is, so a control a keyboard cannot reach (a clickable element that is not a button or
//! link, a redraw that drops the focus) fails the test, and every element Tab stops on must show a
//! focus outline. The same walk runs in Chromium and in Firefox, each skipped without its browser.
//! The mouse walk is in `console.rs`.

use std::sync::PoisonError;

use super::{
    assert_no_script_errors, browser_or_skip,
    launch::Kind,
    webdriver::{key, Browser},
    ONE_BROWSER, URL_FIELD,
};
use crate::{
    devices::publish_all,
    http_target::HttpTarget,
    node::{repo_root, Mode, Node, ADMIN_PASSWORD},
    rest::Rest,
};

/// More Tab presses than any page here has stops before the element a step looks for.
const MAX_TABS: usize = 40;

/// What [`focus`] calls the focus on no element.
const PAGE: &str = "the page itself";

/// Dead letters made: more than two pages of 10.
const DEAD_LETTERS: usize = 25;

#[test]
fn console_by_keyboard_in_chromium() {
    walk_by_keyboard(Kind::Chromium);
}

#[test]
fn console_by_keyboard_in_firefox() {
    walk_by_keyboard(Kind::Firefox);
}

fn walk_by_keyboard(kind: Kind) {
    let _turn = ONE_BROWSER.lock().unwrap_or_else(PoisonError::into_inner);
    let Some(browser) = browser_or_skip(kind, "console by keyboard") else { return };
    let started = std::time::Instant::now();
    let dir = tempfile::tempdir().expect("temp dir");
    let node = Node::start(Mode::AllInOne, dir.path(), &[]);
    Rest::login(&node.api()).wait_executors(&["HTTP"], 1);
    let target = HttpTarget::start();
    let shot = |name: &str| repo_root().join(format!("target/console-screenshots/{}-{name}.png", kind.name()));

    // Log in: the page starts on the password; Shift+Tab and Tab move between the two fields.
    browser.goto(&format!("{}/", node.api()));
    browser.wait_text("h1", "Tributary console");
    wait_focus(&browser, "#login-password");
    browser.press_with(key::SHIFT, key::TAB);
    wait_focus(&browser, "#login-username");
    browser.press(key::TAB);
    wait_focus(&browser, "#login-password");
    browser.type_keys(ADMIN_PASSWORD);
    browser.press(key::ENTER);
    browser.wait_text("main h1", "Integrations");

    // The wizard: type (typed into the select), name, Next with Space.
    tab_to(&browser, "#add-integration");
    browser.press(key::ENTER);
    browser.wait_text("main h1", "Add integration");
    tab_to(&browser, "#wizard-type");
    browser.type_keys("H");
    assert_eq!(value(&browser, "#wizard-type"), "HTTP", "the type chosen by typing its first letter");
    tab_to(&browser, "#wizard-name");
    browser.type_keys("keyboard-http");
    tab_to(&browser, "#wizard-next");
    browser.press(key::SPACE);
    browser.wait_text(".stepper [aria-current=step]", "Topic filters");
    // Each step starts on its first field.
    wait_focus(&browser, ".topic-filter");
    browser.type_keys("keyboard/#");
    tab_to(&browser, "#wizard-next");
    browser.press(key::ENTER);
    browser.wait_text(".stepper [aria-current=step]", "Configuration");
    let url_input = format!("{URL_FIELD} input");
    wait_focus(&browser, &url_input);
    browser.press_with(key::CONTROL, "a");
    browser.type_keys(&target.url("/keyboard"));
    assert_eq!(value(&browser, &url_input), target.url("/keyboard"));
    tab_to(&browser, "#wizard-next");
    browser.press(key::ENTER);
    browser.wait_text(".stepper [aria-current=step]", "Check and save");
    wait_focus(&browser, "#wizard-check");
    browser.press(key::ENTER);
    browser.wait_text("#wizard-check-ok", "Connection OK");
    // The button was disabled while the check ran; the focus is back on it, not on the page.
    wait_focus(&browser, "#wizard-check");
    browser.press(key::TAB);
    wait_focus(&browser, "#wizard-save");
    browser.press(key::ENTER);
    browser.wait_text("main h1", "keyboard-http");
    browser.wait_text("#integration-state", "Active");

    // Its page: the actions, then the event tabs: Tab stops on the selected one, an arrow key
    // selects the next and moves the focus to it, End the last.
    tab_to(&browser, "#integration-disable");
    tab_to(&browser, "#event-tab-LC_EVENT");
    browser.press(key::ARROW_RIGHT);
    browser.wait_text("#lifecycle-events", "No statistics events yet");
    wait_focus(&browser, "#event-tab-STATS");
    browser.press(key::END);
    browser.wait_text("#lifecycle-events", "No error events yet");
    wait_focus(&browser, "#event-tab-ERROR");
    browser.press(key::ARROW_LEFT);
    wait_focus(&browser, "#event-tab-STATS");
    browser.press(key::HOME);
    wait_focus(&browser, "#event-tab-LC_EVENT");

    // Dead letters: the target refuses them for good, 10 per page, the next pages and back.
    target.set_status(404);
    let messages: Vec<(String, Vec<u8>)> =
        (0..DEAD_LETTERS).map(|n| (format!("keyboard/{n}"), format!("{{\"n\":{n}}}").into_bytes())).collect();
    publish_all(node.mqtt_port, "keyboard-device", &messages);
    browser.wait_text("#dead-letters", &format!("{DEAD_LETTERS} dead letters kept"));
    browser.wait_text("#dead-letters-range", &format!("1–{DEAD_LETTERS} of {DEAD_LETTERS}"));
    tab_to(&browser, "#dead-letters-size");
    browser.press(key::ARROW_UP);
    browser.wait_text("#dead-letters-range", &format!("1–10 of {DEAD_LETTERS}, oldest first"));
    assert_eq!(offsets(&browser), (0..10).collect::<Vec<_>>(), "the first page");
    // The page was redrawn; the focus stayed on the size. Next is just before it.
    wait_focus(&browser, "#dead-letters-size");
    browser.press_with(key::SHIFT, key::TAB);
    wait_focus(&browser, "#dead-letters-next");
    browser.press(key::ENTER);
    browser.wait_text("#dead-letters-range", &format!("11–20 of {DEAD_LETTERS}"));
    assert_eq!(offsets(&browser), (10..20).collect::<Vec<_>>(), "the second page");
    assert_eq!(topics(&browser).first().map(String::as_str), Some("keyboard/10"), "in order");
    wait_focus(&browser, "#dead-letters-next");
    browser.press(key::ENTER);
    browser.wait_text("#dead-letters-range", &format!("21–25 of {DEAD_LETTERS}"));
    assert_eq!(offsets(&browser), (20..25).collect::<Vec<_>>(), "the last page");
    browser.screenshot(&shot("07-dead-letters-keyboard"));
    // Next is disabled on the last page: the focus moves to Previous, not to the top of the page.
    wait_focus(&browser, "#dead-letters-prev");
    browser.press(key::ENTER);
    browser.wait_text("#dead-letters-range", &format!("11–20 of {DEAD_LETTERS}"));
    assert_eq!(offsets(&browser), (10..20).collect::<Vec<_>>(), "back on the second page");
    // The page refreshes every 3 s: it stays the chosen one.
    std::thread::sleep(std::time::Duration::from_secs(4));
    assert_eq!(offsets(&browser), (10..20).collect::<Vec<_>>(), "still the second page after a refresh");
    wait_focus(&browser, "#dead-letters-prev");

    // Replay from the keyboard; the focus stays in the dead letters.
    target.set_status(200);
    tab_to(&browser, "#dead-letters-replay");
    browser.press(key::ENTER);
    browser.wait_text("#integration-notice", &format!("Replayed {DEAD_LETTERS} dead letters"));
    target.wait_delivered("the replayed dead letters", |r| {
        r.iter().filter(|r| r.answered == 200 && !r.body.is_empty()).count() >= DEAD_LETTERS
    });
    wait_focus(&browser, "#dead-letters button, #dead-letters select");

    // Delete: Escape cancels the dialog and the focus is back on Delete; then confirmed.
    shift_tab_to(&browser, "#integration-delete");
    browser.press(key::ENTER);
    wait_focus(&browser, "dialog.confirm button");
    browser.press(key::ESCAPE);
    wait_focus(&browser, "#integration-delete");
    assert!(!browser.exists("dialog.confirm"), "Escape closed the dialog");
    browser.wait_text("main h1", "keyboard-http");
    browser.press(key::ENTER);
    wait_focus(&browser, "dialog.confirm button.secondary");
    browser.press(key::TAB);
    wait_focus(&browser, "dialog.confirm button.danger");
    browser.press(key::ENTER);
    browser.wait_text("main", "No integrations yet");

    assert_no_script_errors(&browser);
    crate::report(&format!("console by keyboard in {}: passed in {:?}", kind.name(), started.elapsed()));
}

/// Presses Tab until `css` has the focus; fails when it is not reached within [`MAX_TABS`] or
/// an element on the way shows no focus outline.
fn tab_to(browser: &Browser, css: &str) {
    walk_to(browser, css, false);
}

/// [`tab_to`] with Shift+Tab.
fn shift_tab_to(browser: &Browser, css: &str) {
    walk_to(browser, css, true);
}

fn walk_to(browser: &Browser, css: &str, backwards: bool) {
    let mut path = Vec::new();
    for _ in 0..MAX_TABS {
        if backwards {
            browser.press_with(key::SHIFT, key::TAB);
        } else {
            browser.press(key::TAB);
        }
        let (matches, what, outline) = focus(browser, css);
        // Past the last element the focus leaves the page (to the browser's own controls, where
        // a person's next Tab comes back to the first element).
        assert!(outline || what == PAGE, "{what} has the focus but shows no outline (on the way to {css}: {path:?})");
        if matches {
            return;
        }
        path.push(what);
    }
    panic!("{css} is not reachable with the keyboard; the focus went through {path:?}");
}

/// Waits until `css` has the focus.
fn wait_focus(browser: &Browser, css: &str) {
    let deadline = std::time::Instant::now() + crate::node::PATIENCE;
    loop {
        let (matches, what, _) = focus(browser, css);
        if matches {
            return;
        }
        assert!(std::time::Instant::now() < deadline, "{css} never got the focus; {what} has it");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

/// Whether the focused element matches `css`, what it is, and whether it shows an outline.
fn focus(browser: &Browser, css: &str) -> (bool, String, bool) {
    let css = serde_json::to_string(css).expect("a JSON string");
    let answer = browser.script(&format!(
        "const e = document.activeElement; \
         if (!e || e === document.body) return [false, {PAGE:?}, false]; \
         const s = getComputedStyle(e); \
         const what = e.tagName.toLowerCase() + (e.id ? '#' + e.id : '') + ' \"' + (e.textContent || e.value || '').trim().slice(0, 30) + '\"'; \
         return [e.matches({css}), what, s.outlineStyle !== 'none' && parseFloat(s.outlineWidth) > 0];"
    ));
    (
        answer[0].as_bool() == Some(true),
        answer[1].as_str().unwrap_or_default().to_string(),
        answer[2].as_bool() == Some(true),
    )
}

fn value(browser: &Browser, css: &str) -> String {
    let css = serde_json::to_string(css).expect("a JSON string");
    browser.script(&format!("return document.querySelector({css}).value")).as_str().unwrap_or_default().to_string()
}

/// The dead-letter offsets the table shows.
fn offsets(browser: &Browser) -> Vec<i64> {
    column(browser, 1).iter().filter_map(|o| o.parse().ok()).collect()
}

/// The dead letters' topics the table shows.
fn topics(browser: &Browser) -> Vec<String> {
    column(browser, 3)
}

fn column(browser: &Browser, n: usize) -> Vec<String> {
    let cells = browser.script(&format!(
        "return [...document.querySelectorAll('#dead-letters tbody tr td:nth-child({n})')].map((td) => td.textContent)"
    ));
    cells.as_array().into_iter().flatten().filter_map(|c| c.as_str().map(str::to_string)).collect()
}
