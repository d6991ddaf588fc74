//! The README's walkthrough, run as written: every ```bash block of the "## Walkthrough" section,
//! in order, with the first block (the variable settings) replaced by this test's values, runs
//! under `bash -euo pipefail` against a freshly started all-in-one process. It needs curl,
//! python3, mosquitto_pub and mosquitto_sub, as the README says (without them it reports that it
//! skipped; CI has them). Blocks marked ```bash kafka
//! need a Kafka broker: they run when `TRIB_TEST_KAFKA_BOOTSTRAP` names one.
//!
//! The script runs in a temporary directory holding a `dist` link to the repository's `dist/`,
//! so `dist/tools/http-sink.py` resolves as from the repository root while the files the
//! walkthrough writes (`sink.log`, `bridge.log`) stay out of the repository.

use std::{
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use crate::{
    node::{binary, free_port, repo_root, Mode, Node, ADMIN_PASSWORD, PATIENCE},
    rest::Rest,
};

#[test]
fn readme_walkthrough_runs_as_written() {
    let missing: Vec<&str> = ["curl", "python3", "mosquitto_pub", "mosquitto_sub"]
        .into_iter()
        .filter(|tool| Command::new(tool).arg("--help").stdout(Stdio::null()).stderr(Stdio::null()).status().is_err())
        .collect();
    if !missing.is_empty() {
        // A machine with only the Rust toolchain: the README says what the walkthrough needs.
        crate::report(&format!("walkthrough: skipped, not installed: {}", missing.join(", ")));
        return;
    }
    let readme = std::fs::read_to_string(repo_root().join("README.md")).expect("read README.md");
    let kafka = std::env::var("TRIB_TEST_KAFKA_BOOTSTRAP").ok().filter(|b| !b.trim().is_empty());
    let all = walkthrough_blocks(&readme);
    assert!(all.len() >= 6, "the walkthrough has its bash blocks: {all:?}");
    assert!(all.iter().any(|b| b.kafka), "the walkthrough has a Kafka block");
    let blocks: Vec<String> = all.into_iter().filter(|b| !b.kafka || kafka.is_some()).map(|b| b.text).collect();
    if kafka.is_none() {
        crate::report("walkthrough: Kafka block skipped (set TRIB_TEST_KAFKA_BOOTSTRAP to run it)");
    }
    for name in ["API=", "MQTT_PORT=", "KAFKA=", "TRIBUTARY="] {
        assert!(blocks[0].contains(name), "the first block sets {name}");
    }

    let dir = tempfile::tempdir().expect("temp dir");
    let node = Node::start(Mode::AllInOne, &dir.path().join("node"), &[]);
    let types: &[&str] = if kafka.is_some() { &["HTTP", "MQTT", "KAFKA"] } else { &["HTTP", "MQTT"] };
    Rest::login(&node.api()).wait_executors(types, 1);
    let work = dir.path().join("walkthrough");
    std::fs::create_dir_all(&work).expect("create the work directory");
    std::os::unix::fs::symlink(repo_root().join("dist"), work.join("dist")).expect("link dist/");

    let variables = format!(
        "API=http://127.0.0.1:{}\nMQTT_PORT={}\nSINK_PORT={}\nADMIN_PASSWORD={ADMIN_PASSWORD}\nKAFKA={}\nTRIBUTARY={}\n",
        node.http_port,
        node.mqtt_port,
        free_port(),
        kafka.as_deref().unwrap_or("unused"),
        binary().display()
    );
    // Background jobs (the sink, the subscriber) must not outlive a failing script.
    let mut script = String::from("trap 'kill $(jobs -p) 2>/dev/null || true' EXIT\n");
    script.push_str(&variables);
    for block in &blocks[1..] {
        script.push_str(block);
        script.push('\n');
    }
    let log = work.join("script.log");
    let out = std::fs::File::create(&log).expect("create the script log");
    let mut child = Command::new("bash")
        .args(["-euo", "pipefail", "-c", &script])
        .current_dir(&work)
        .stdin(Stdio::null())
        .stdout(out.try_clone().expect("log handle"))
        .stderr(out)
        .spawn()
        .expect("run bash");
    let deadline = Instant::now() + 2 * PATIENCE;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for bash") {
            break Some(status);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let output = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(
        status.is_some_and(|s| s.success()),
        "the walkthrough failed ({status:?})\n--- script ---\n{script}\n--- output ---\n{output}\n{}",
        node.log_tail()
    );
}

#[test]
fn walkthrough_blocks_are_extracted_in_order() {
    let text = "# T\n```bash\nnot this\n```\n## Walkthrough\nText.\n```bash\nA=1\n```\nMore.\n```json\n{}\n```\n\
                ```bash kafka\nk\n```\n```bash\necho $A\necho two\n```\n## Next\n```bash\nnot this either\n```\n";
    let blocks = walkthrough_blocks(text);
    let got: Vec<(&str, bool)> = blocks.iter().map(|b| (b.text.as_str(), b.kafka)).collect();
    assert_eq!(got, [("A=1\n", false), ("k\n", true), ("echo $A\necho two\n", false)]);
}

/// A ```bash block of the walkthrough; `kafka` for ```bash kafka (needs a Kafka broker).
#[derive(Debug)]
struct Block {
    text: String,
    kafka: bool,
}

/// The ```bash blocks between "## Walkthrough" and the next "## " heading.
fn walkthrough_blocks(readme: &str) -> Vec<Block> {
    let start = readme.find("\n## Walkthrough\n").expect("README has a ## Walkthrough section");
    let section = &readme[start + 1..];
    let end = section[3..].find("\n## ").map_or(section.len(), |i| i + 4);
    let mut blocks = Vec::new();
    let mut current: Option<Block> = None;
    for line in section[..end].lines() {
        match (&mut current, line.trim_end()) {
            (None, "```bash") => current = Some(Block { text: String::new(), kafka: false }),
            (None, "```bash kafka") => current = Some(Block { text: String::new(), kafka: true }),
            (Some(_), "```") => blocks.extend(current.take()),
            (Some(block), _) => {
                block.text.push_str(line);
                block.text.push('\n');
            }
            (None, _) => {}
        }
    }
    blocks
}
