//! The README's walkthrough, run as written: every ```bash block of the "## Walkthrough" section,
//! in order, with the first block (the variable settings) replaced by this test's values, runs
//! under `bash -euo pipefail` against a freshly started all-in-one process. It needs curl,
//! python3, mosquitto_pub and mosquitto_sub, as the README says.
//!
//! The script runs in a temporary directory holding a `dist` link to the repository's `dist/`,
//! so `dist/tools/http-sink.py` resolves as from the repository root while the files the
//! walkthrough writes (`sink.log`, `bridge.log`) stay out of the repository.

use std::{
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use crate::{
    node::{free_port, repo_root, Mode, Node, ADMIN_PASSWORD, PATIENCE},
    rest::Rest,
};

#[test]
fn readme_walkthrough_runs_as_written() {
    let readme = std::fs::read_to_string(repo_root().join("README.md")).expect("read README.md");
    let blocks = walkthrough_blocks(&readme);
    assert!(blocks.len() >= 5, "the walkthrough has its bash blocks: {blocks:?}");
    assert!(blocks[0].contains("API=") && blocks[0].contains("MQTT_PORT="), "the first block sets the variables");

    let dir = tempfile::tempdir().expect("temp dir");
    let node = Node::start(Mode::AllInOne, &dir.path().join("node"), &[]);
    Rest::login(&node.api()).wait_executors(&["HTTP", "MQTT"], 1);
    let work = dir.path().join("walkthrough");
    std::fs::create_dir_all(&work).expect("create the work directory");
    std::os::unix::fs::symlink(repo_root().join("dist"), work.join("dist")).expect("link dist/");

    let variables = format!(
        "API=http://127.0.0.1:{}\nMQTT_PORT={}\nSINK_PORT={}\nADMIN_PASSWORD={ADMIN_PASSWORD}\n",
        node.http_port,
        node.mqtt_port,
        free_port()
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
                ```bash\necho $A\necho two\n```\n## Next\n```bash\nnot this either\n```\n";
    assert_eq!(walkthrough_blocks(text), ["A=1\n", "echo $A\necho two\n"]);
}

/// The bodies of the ```bash blocks between "## Walkthrough" and the next "## " heading.
fn walkthrough_blocks(readme: &str) -> Vec<String> {
    let start = readme.find("\n## Walkthrough\n").expect("README has a ## Walkthrough section");
    let section = &readme[start + 1..];
    let end = section[3..].find("\n## ").map_or(section.len(), |i| i + 4);
    let mut blocks = Vec::new();
    let mut current: Option<String> = None;
    for line in section[..end].lines() {
        match (&mut current, line.trim_end()) {
            (None, "```bash") => current = Some(String::new()),
            (Some(block), "```") => {
                blocks.push(std::mem::take(block));
                current = None;
            }
            (Some(block), _) => {
                block.push_str(line);
                block.push('\n');
            }
            (None, _) => {}
        }
    }
    blocks
}
