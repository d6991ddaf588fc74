//! `tributary`: one binary, three ways to run (`TB_SERVICE_TYPE`):
//! unset = all-in-one (broker + management + executor in one process over the in-memory queue
//! and a SQLite file), `tbmq` (broker + management plane), `tbmq-integration-executor`.
//! Configuration: the embedded `config/*.yml` (or `--config` files), every key overridable by
//! its TBMQ environment variable. Everything else lives in the library crates.

// The binary prints the effective configuration and check results on stdout.
#![allow(clippy::print_stdout)]

use std::{
    path::PathBuf,
    sync::Arc,
    time::{Duration, Instant},
};

use anyhow::Context;
use clap::{Parser, Subcommand};
use trib_broker::service::BrokerService;
use trib_core::service::ExecutorService;
use trib_ops::settings::Settings;
use trib_queue::{
    open::open_queue,
    queue::{
        kafka::{KafkaConfig, KafkaQueue},
        ConsumerEvent, Queue, TopicPartition, TopicSpec,
    },
};

mod allocator;
mod new_driver;
mod plugin_check;

const BROKER_YML: &str = include_str!("../config/tbmq.yml");
const EXECUTOR_YML: &str = include_str!("../config/tbmq-integration-executor.yml");

#[derive(Parser)]
#[command(name = "tributary", version, about = "MQTT broker with plugin-based integrations (TBMQ-compatible).")]
struct Cli {
    /// Settings files to use instead of the embedded defaults (repeatable).
    #[arg(long = "config", global = true)]
    config: Vec<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the service chosen by TB_SERVICE_TYPE (the default command).
    Run,
    /// Driver libraries: `plugin check FILE.so`.
    Plugin {
        #[command(subcommand)]
        command: PluginCommand,
    },
    /// Write a new driver crate (the plugin-api template, renamed) into a directory and exit.
    NewDriver {
        /// Driver name: lower-case words joined by - or _ (my-sink: package trib-driver-my-sink, type MY_SINK).
        name: String,
        /// Directory to create (default: ./trib-driver-NAME); must not exist or be empty.
        #[arg(long)]
        dir: Option<PathBuf>,
        /// Depend on trib-plugin-api and its testkit at this local path (a checkout's plugin-api/).
        #[arg(long, conflicts_with = "plugin_api_git")]
        plugin_api_path: Option<PathBuf>,
        /// Depend on trib-plugin-api and its testkit from this git repository (default: crates.io).
        #[arg(long)]
        plugin_api_git: Option<String>,
    },
    /// Print the effective configuration (defaults, files and environment) and exit.
    PrintConfig,
    /// Check settings files (or the embedded defaults) and the environment, and exit.
    CheckConfig {
        /// Files to check.
        files: Vec<PathBuf>,
    },
    /// Create a Kafka topic (one partition) unless it exists, and exit: a target for trying a
    /// Kafka integration out.
    KafkaCreateTopic {
        /// Bootstrap servers, e.g. localhost:9092.
        bootstrap: String,
        /// Topic name.
        topic: String,
    },
    /// Print the first COUNT records of a Kafka topic's partition 0, from the beginning, one
    /// `key<TAB>value` line each (lossy UTF-8); fails when they do not arrive within 30 s.
    KafkaRead {
        /// Bootstrap servers, e.g. localhost:9092.
        bootstrap: String,
        /// Topic name.
        topic: String,
        /// How many records to print.
        #[arg(long, default_value_t = 1)]
        count: usize,
    },
}

#[derive(Subcommand)]
enum PluginCommand {
    /// Load a driver library as the executor does; print its metadata, ABI version, capabilities
    /// and configuration schema; run the conformance checks (exit 1 if one fails).
    Check {
        /// The library (.so).
        file: PathBuf,
        /// A valid clientConfiguration (JSON); default: built from the driver's schema.
        #[arg(long)]
        configuration: Option<String>,
        /// A valid configuration whose target is unreachable ({{closed_port}} is substituted).
        #[arg(long)]
        unreachable: Option<String>,
        /// A valid configuration whose target never answers ({{blackhole_port}} is substituted).
        #[arg(long)]
        black_hole: Option<String>,
    },
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Mode {
    AllInOne,
    Broker,
    Executor,
}

fn mode() -> anyhow::Result<Mode> {
    match std::env::var("TB_SERVICE_TYPE").unwrap_or_default().trim() {
        "" | "all-in-one" => Ok(Mode::AllInOne),
        "tbmq" => Ok(Mode::Broker),
        "tbmq-integration-executor" => Ok(Mode::Executor),
        other => {
            anyhow::bail!("TB_SERVICE_TYPE '{other}' is not tbmq, tbmq-integration-executor or empty (all-in-one)")
        }
    }
}

fn load(files: &[PathBuf], mode: Mode) -> anyhow::Result<Settings> {
    let texts: Vec<String> = if files.is_empty() {
        match mode {
            Mode::Broker => vec![BROKER_YML.into()],
            Mode::Executor => vec![EXECUTOR_YML.into()],
            // The broker's file last: its HTTP port is the one served in all-in-one.
            Mode::AllInOne => vec![EXECUTOR_YML.into(), BROKER_YML.into()],
        }
    } else {
        files
            .iter()
            .map(|f| std::fs::read_to_string(f).with_context(|| format!("cannot read {}", f.display())))
            .collect::<Result<_, _>>()?
    };
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    Ok(Settings::from_files(&refs)?)
}

/// The lookup of a mode: all-in-one defaults to the in-memory queue.
fn lookup(settings: &Settings, mode: Mode) -> impl Fn(&str) -> Option<String> + '_ {
    move |name: &str| {
        if mode == Mode::AllInOne && name == "TB_QUEUE_TYPE" && std::env::var_os(name).is_none() {
            return Some("in-memory".into());
        }
        settings.lookup(name)
    }
}

fn init_logging(lookup: &dyn Fn(&str) -> Option<String>) {
    let filter = std::env::var("RUST_LOG").ok().or_else(|| lookup("TB_LOG_LEVEL")).unwrap_or_else(|| "info".into());
    let builder = tracing_subscriber::fmt().with_env_filter(tracing_subscriber::EnvFilter::new(filter));
    if lookup("TB_LOG_FORMAT").as_deref() == Some("json") {
        builder.json().init();
    } else {
        builder.init();
    }
    // A panic of the process's own code goes through the log, as one line in its format, with
    // the thread (integration workers are named `ie-<id>`). Drivers' panics are caught at the
    // plugin boundary and logged by the executor with the integration id.
    std::panic::set_hook(Box::new(|info| {
        let thread = std::thread::current();
        let payload = info
            .payload()
            .downcast_ref::<&str>()
            .copied()
            .or_else(|| info.payload().downcast_ref::<String>().map(String::as_str))
            .unwrap_or("non-text panic payload");
        let location = info.location().map(|l| format!("{}:{}", l.file(), l.line())).unwrap_or_default();
        tracing::error!(thread = thread.name().unwrap_or("unnamed"), location, panic = payload, "Panic.");
    }));
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let mode = mode()?;
    match cli.command.unwrap_or(Command::Run) {
        Command::PrintConfig => {
            let settings = load(&cli.config, mode)?;
            print!("{}", settings.render_effective());
            Ok(())
        }
        Command::CheckConfig { files } => {
            let files = if files.is_empty() { cli.config } else { files };
            let settings = load(&files, mode)?;
            let l = lookup(&settings, mode);
            trib_core::config::ExecutorConfig::from_lookup(&l)?;
            trib_broker::service::management_config(&l)?;
            trib_broker::BrokerConfig::default().apply_env(&l)?;
            println!("configuration OK ({} settings)", settings.settings().len());
            Ok(())
        }
        Command::KafkaCreateTopic { bootstrap, topic } => {
            kafka_queue(&bootstrap)?.create_topic(&TopicSpec::from_properties(&topic, "partitions:1")?)?;
            println!("topic {topic} exists");
            Ok(())
        }
        Command::NewDriver { name, dir, plugin_api_path, plugin_api_git } => {
            let api = new_driver::ApiSource::from_flags(plugin_api_path, plugin_api_git);
            println!("{}", new_driver::create(&name, dir.as_deref(), &api)?);
            Ok(())
        }
        Command::KafkaRead { bootstrap, topic, count } => kafka_read(&bootstrap, &topic, count),
        Command::Plugin { command: PluginCommand::Check { file, configuration, unreachable, black_hole } } => {
            let configurations = plugin_check::Configurations { valid: configuration, unreachable, black_hole };
            let (text, passed) = plugin_check::run(&file, &configurations);
            print!("{text}");
            anyhow::ensure!(passed, "{} does not pass the plugin check", file.display());
            Ok(())
        }
        Command::Run => {
            let settings = load(&cli.config, mode)?;
            let l = lookup(&settings, mode);
            init_logging(&l);
            // A configuration file of an earlier version does not name it: the default then.
            let trim_ms = l("TB_MALLOC_TRIM_INTERVAL_MS").unwrap_or_else(|| "10000".into());
            let trim_ms: u64 = trim_ms
                .trim()
                .parse()
                .map_err(|_| anyhow::anyhow!("TB_MALLOC_TRIM_INTERVAL_MS is {trim_ms:?}, not a number of ms"))?;
            trib_ops::memory::start_trimmer(Duration::from_millis(trim_ms));
            trib_ops::add_collector(Box::new(trib_ops::memory::render_heap));
            allocator::start();
            tokio::runtime::Builder::new_multi_thread().enable_all().build()?.block_on(run(mode, &l))
        }
    }
}

/// A Kafka queue client for the `kafka-*` commands (errors only in the log).
fn kafka_queue(bootstrap: &str) -> anyhow::Result<KafkaQueue> {
    let mut config = KafkaConfig::new(bootstrap);
    config.client_id = "tributary-cli".into();
    Ok(KafkaQueue::new(config)?)
}

fn kafka_read(bootstrap: &str, topic: &str, count: usize) -> anyhow::Result<()> {
    let queue = kafka_queue(bootstrap)?;
    let tp = TopicPartition::new(topic, 0);
    let group = format!("tributary-cli-read-{}", std::process::id());
    let mut consumer = queue.assign(&group, "tributary-cli", &tp)?;
    consumer.seek(&tp, 0)?;
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut printed = 0;
    while printed < count {
        let left = deadline.saturating_duration_since(Instant::now());
        anyhow::ensure!(!left.is_zero(), "only {printed} of {count} records arrived from {topic} within 30 s");
        for event in consumer.poll(left.min(Duration::from_millis(500)), count - printed)? {
            if let ConsumerEvent::Records(records) = event {
                for r in records {
                    let key = r.key.as_deref().map(String::from_utf8_lossy).unwrap_or_default();
                    println!("{key}\t{}", String::from_utf8_lossy(&r.value));
                    printed += 1;
                }
            }
        }
    }
    Ok(())
}

async fn run(mode: Mode, lookup: &dyn Fn(&str) -> Option<String>) -> anyhow::Result<()> {
    let default_queue = if mode == Mode::AllInOne { "in-memory" } else { "kafka" };
    let queue = open_queue(lookup, default_queue)?;
    if mode == Mode::AllInOne {
        std::fs::create_dir_all("data").context("cannot create the data directory")?;
    }
    let broker = match mode {
        Mode::AllInOne | Mode::Broker => Some(BrokerService::start(lookup, Arc::clone(&queue)).await?),
        Mode::Executor => None,
    };
    let executor = match mode {
        Mode::AllInOne => {
            // Drivers may not reach this process's REST API (management, health, metrics). The
            // MQTT listeners stay reachable: an MQTT integration that bridges back into its own
            // broker is a supported loop, and it logs in like any device.
            let rest = broker.as_ref().map(|b| ("REST API", b.http_addr()));
            let executor = ExecutorService::start_with_listeners(lookup, queue, false, rest.as_slice()).await?;
            // One process, one readiness: the REST port answers for the in-process executor too.
            if let (Some(broker), Some(status)) = (broker.as_ref(), executor.status_handle()) {
                broker.readiness().add("executor", std::sync::Arc::new(move || status.get().readiness()));
            }
            Some(executor)
        }
        Mode::Executor => Some(ExecutorService::start(lookup, queue, true).await?),
        Mode::Broker => None,
    };
    shutdown_signal().await;
    tracing::info!("Shutting down.");
    if let Some(b) = broker {
        b.shutdown().await;
    }
    if let Some(e) = executor {
        e.shutdown().await;
    }
    Ok(())
}

async fn shutdown_signal() {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(error = %e, "Cannot listen for SIGTERM; use Ctrl-C.");
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn defaults(text: &str) -> Settings {
        Settings::parse(text, BTreeMap::new()).expect("embedded file parses")
    }

    #[test]
    fn embedded_files_parse_and_build_every_config() {
        for (text, mode) in [(BROKER_YML, Mode::Broker), (EXECUTOR_YML, Mode::Executor)] {
            let s = defaults(text);
            let l = lookup(&s, mode);
            trib_core::config::ExecutorConfig::from_lookup(&l).expect("executor config");
            trib_broker::service::management_config(&l).expect("management config");
            trib_broker::BrokerConfig::default().apply_env(&l).expect("broker config");
        }
    }

    #[test]
    fn embedded_defaults_are_tbmq_defaults() {
        let s = defaults(BROKER_YML);
        assert_eq!(s.lookup("LISTENER_TCP_BIND_PORT").as_deref(), Some("1883"));
        assert_eq!(s.lookup("HTTP_BIND_PORT").as_deref(), Some("8083"));
        let e = defaults(EXECUTOR_YML);
        assert_eq!(e.lookup("TB_IE_MSG_ACK_STRATEGY_TYPE").as_deref(), Some("SKIP_ALL"));
        assert_eq!(e.lookup("HTTP_BIND_PORT").as_deref(), Some("8082"));
        let c = trib_core::config::ExecutorConfig::from_lookup(&|n| e.lookup(n)).expect("config");
        assert_eq!(
            c,
            trib_core::config::ExecutorConfig { service_info_interval: c.service_info_interval, ..Default::default() }
        );
    }

    #[test]
    fn all_in_one_defaults_to_the_in_memory_queue() {
        let s = defaults(BROKER_YML);
        if std::env::var_os("TB_QUEUE_TYPE").is_none() {
            assert_eq!(lookup(&s, Mode::AllInOne)("TB_QUEUE_TYPE").as_deref(), Some("in-memory"));
        }
        assert_eq!(lookup(&s, Mode::Broker)("TB_QUEUE_TYPE").as_deref(), Some("kafka"));
    }
}
