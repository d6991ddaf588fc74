//! The conformance suite: the contract of the plugin boundary, checked against a driver through
//! the ABI, exactly as the executor calls it.
//!
//! A driver runs it from its own tests in one line:
//!
//! ```no_run
//! # use trib_plugin_api::driver::{Driver, Error, FieldError, Host, Message, Metadata, Outcome, StartConfig};
//! # struct MyDriver;
//! # impl Driver for MyDriver {
//! #     fn metadata() -> Metadata { Metadata { name: "my", integration_type: "MY", version: "0.1.0", description: "", capabilities: 0 } }
//! #     fn create(_: Host) -> Result<Self, Error> { Ok(MyDriver) }
//! #     fn validate(&self, _: &str) -> Vec<FieldError> { Vec::new() }
//! #     fn start(&mut self, _: &StartConfig<'_>) -> Result<(), Error> { Ok(()) }
//! #     fn process(&mut self, b: &[Message<'_>], _: std::time::Instant) -> Vec<Outcome> { b.iter().map(|_| Outcome::Retry("x".into())).collect() }
//! #     fn stop(&mut self) {}
//! # }
//! use trib_plugin_testkit::conformance::{assert_conforms, Scenario};
//!
//! assert_conforms::<MyDriver>(
//!     &Scenario::new(r#"{"url": "http://127.0.0.1:{{blackhole_port}}/"}"#)
//!         .unreachable(r#"{"url": "http://127.0.0.1:{{closed_port}}/"}"#)
//!         .black_hole(r#"{"url": "http://127.0.0.1:{{blackhole_port}}/"}"#),
//! );
//! ```
//!
//! [`check_module`] runs the same checks on any [`DriverModuleRef`], for instance one loaded from a
//! library file, and returns a [`Report`] instead of panicking. Every check is listed in [`Check`].
//! Calls run on a helper thread with a time limit ([`Scenario::call_bound`]), so a driver that
//! hangs fails its check instead of hanging the test (the stuck call is abandoned).
//! The network targets are loopback only: [`crate::target`].

mod checks;
pub(crate) mod corpus;
mod instance;
mod report;

use std::time::Duration;

use trib_plugin_api::{abi::DriverModuleRef, driver::Driver};

pub use self::report::{Check, CheckResult, Report, Verdict};

/// Replaced in every configuration text by a loopback port nobody listens on.
pub const CLOSED_PORT: &str = "{{closed_port}}";
/// Replaced in every configuration text by the port of a listener that accepts connections and
/// never answers ([`crate::target::BlackHole`]).
pub const BLACKHOLE_PORT: &str = "{{blackhole_port}}";

/// What the suite needs to know about a driver: configurations for the situations it tests, and
/// its time limits. Build it with [`Scenario::new`] and the chained setters.
///
/// Configuration texts may contain [`CLOSED_PORT`] and [`BLACKHOLE_PORT`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scenario {
    /// A `clientConfiguration` that `validate` accepts with no field error.
    pub valid_configuration: String,
    /// A valid configuration whose target cannot be reached (usually through [`CLOSED_PORT`]);
    /// `None` skips [`Check::CheckConnectionUnreachable`].
    pub unreachable_configuration: Option<String>,
    /// A valid configuration whose target accepts and never answers (usually through
    /// [`BLACKHOLE_PORT`]); `None` skips [`Check::ProcessAgainstBlackHole`].
    pub black_hole_configuration: Option<String>,
    /// A valid configuration whose target accepts and acknowledges every message (an in-process
    /// server of the driver's test suite); `None` skips [`Check::PipelinedBatchesInOrder`].
    pub delivering_configuration: Option<String>,
    /// Configurations `start` must refuse with a CONFIG error, beyond the built-in ones (texts
    /// that are not a JSON object).
    pub invalid_configurations: Vec<String>,
    /// The `timeout_ms` given to `process` against the black hole.
    pub process_timeout: Duration,
    /// How long after that timeout `process` may still take to return.
    pub grace: Duration,
    /// The longest any other call may take (a connection check, a start, the validation corpus).
    pub call_bound: Duration,
    /// Seed of the pseudo-random configurations given to `validate`.
    pub seed: u64,
    /// How many pseudo-random configurations `validate` gets, besides the fixed corpus.
    pub random_inputs: usize,
}

impl Scenario {
    /// A scenario with `valid_configuration` and the default limits: a 500 ms process timeout
    /// plus 500 ms grace, 15 s per call, 300 random inputs.
    pub fn new(valid_configuration: impl IntoConfiguration) -> Self {
        Scenario {
            valid_configuration: valid_configuration.into_configuration(),
            unreachable_configuration: None,
            black_hole_configuration: None,
            delivering_configuration: None,
            invalid_configurations: Vec::new(),
            process_timeout: Duration::from_millis(500),
            grace: Duration::from_millis(500),
            call_bound: Duration::from_secs(15),
            seed: 0x7269_6275_7461_7279,
            random_inputs: 300,
        }
    }

    /// Sets [`Scenario::unreachable_configuration`].
    pub fn unreachable(mut self, configuration: impl IntoConfiguration) -> Self {
        self.unreachable_configuration = Some(configuration.into_configuration());
        self
    }

    /// Sets [`Scenario::black_hole_configuration`].
    pub fn black_hole(mut self, configuration: impl IntoConfiguration) -> Self {
        self.black_hole_configuration = Some(configuration.into_configuration());
        self
    }

    /// Sets [`Scenario::delivering_configuration`].
    pub fn delivering(mut self, configuration: impl IntoConfiguration) -> Self {
        self.delivering_configuration = Some(configuration.into_configuration());
        self
    }

    /// Adds one of [`Scenario::invalid_configurations`].
    pub fn invalid(mut self, configuration: impl IntoConfiguration) -> Self {
        self.invalid_configurations.push(configuration.into_configuration());
        self
    }

    /// Sets [`Scenario::process_timeout`].
    pub fn process_timeout(mut self, timeout: Duration) -> Self {
        self.process_timeout = timeout;
        self
    }

    /// Sets [`Scenario::grace`].
    pub fn grace(mut self, grace: Duration) -> Self {
        self.grace = grace;
        self
    }

    /// Sets [`Scenario::call_bound`].
    pub fn call_bound(mut self, bound: Duration) -> Self {
        self.call_bound = bound;
        self
    }

    /// Sets [`Scenario::seed`].
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Sets [`Scenario::random_inputs`].
    pub fn random_inputs(mut self, count: usize) -> Self {
        self.random_inputs = count;
        self
    }
}

impl Default for Scenario {
    /// A scenario whose valid configuration is `{}`.
    fn default() -> Self {
        Scenario::new("{}")
    }
}

/// A configuration given as JSON text (`&str`, `String`) or as a [`serde_json::Value`].
pub trait IntoConfiguration {
    /// The configuration as JSON text.
    fn into_configuration(self) -> String;
}

impl IntoConfiguration for &str {
    fn into_configuration(self) -> String {
        self.to_string()
    }
}

impl IntoConfiguration for String {
    fn into_configuration(self) -> String {
        self
    }
}

impl IntoConfiguration for serde_json::Value {
    fn into_configuration(self) -> String {
        self.to_string()
    }
}

impl IntoConfiguration for &serde_json::Value {
    fn into_configuration(self) -> String {
        self.to_string()
    }
}

/// Runs every check on driver `T` through the module `export_driver!` would export, and panics
/// with the whole report when one fails.
pub fn assert_conforms<T: Driver>(scenario: &Scenario) {
    let report = check_driver::<T>(scenario);
    assert!(report.passed(), "the driver does not conform:\n{report}");
}

/// Runs every check on driver `T` through the module `export_driver!` would export.
pub fn check_driver<T: Driver>(scenario: &Scenario) -> Report {
    check_module(trib_plugin_api::export::module::<T>(), scenario)
}

/// Runs every check on `module` (built in-process or loaded from a library file).
pub fn check_module(module: DriverModuleRef, scenario: &Scenario) -> Report {
    checks::run(module, scenario)
}
