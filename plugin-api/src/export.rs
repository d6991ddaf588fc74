//! The glue between a [`Driver`] implementation and the frozen [`crate::abi`]: one `extern "C"`
//! function per boundary call, each of which catches panics. It also answers the `control`
//! operations this crate defines ([`control_op`]) and announces their capability bits, so that a
//! driver only implements the provided [`Driver`] methods behind them.
//!
//! Used through [`crate::export_driver!`]; the items are public only because the macro expands
//! in the driver's crate.

use std::{
    any::Any,
    cell::{Cell, RefCell},
    ffi::c_void,
    marker::PhantomData,
    panic::{catch_unwind, AssertUnwindSafe},
    sync::Once,
    time::{Duration, Instant},
};

use abi_stable::{
    prefix_type::{PrefixTypeTrait, WithMetadata},
    staticref,
    std_types::{RResult, RSlice, RStr, RString, RVec},
};

use crate::{
    abi::{
        capabilities, control_op, DriverInstance, DriverMetadata, DriverModule, DriverModuleRef, FieldError,
        HostServices, InstanceVTable, InstanceVTableRef, Message, Outcome, PluginError, StartConfig,
    },
    driver::{Driver, Error, ErrorKind, Submitted},
    host::Host,
    support::target_policy::{self, TargetPolicy},
};

/// Builds the root module for driver `T`. Called once, by the root-module loader.
pub fn module<T: Driver>() -> DriverModuleRef {
    install_panic_hook();
    DriverModule { metadata: metadata::<T>, create: create::<T>, control: module_control::<T> }.leak_into_prefix()
}

std::thread_local! {
    /// Inside a boundary call on this thread ([`guard`]).
    static IN_GUARD: Cell<bool> = const { Cell::new(false) };
    /// The last panic inside a boundary call on this thread, with its location, on one line.
    static LAST_PANIC: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// A panic inside a boundary call is reported to the host as an error (which the host logs with
/// the integration id, in its own log format), so the panic hook only remembers its text and
/// location instead of printing raw lines to stderr. Panics elsewhere (threads of the driver's
/// own) go to the hook that was installed before.
///
/// A cdylib driver has its own copy of the standard library, so this hook is the driver's; in a
/// driver linked into a test binary it wraps the test's hook.
fn install_panic_hook() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if IN_GUARD.with(Cell::get) {
                let payload = info
                    .payload()
                    .downcast_ref::<&str>()
                    .copied()
                    .or_else(|| info.payload().downcast_ref::<String>().map(String::as_str))
                    .unwrap_or("non-text panic payload");
                let text = match info.location() {
                    Some(at) => format!("panicked at {}:{}: {payload}", at.file(), at.line()),
                    None => format!("panicked: {payload}"),
                };
                LAST_PANIC.with(|p| *p.borrow_mut() = Some(text));
            } else {
                previous(info);
            }
        }));
    });
}

/// Runs `f`, turning a panic into a [`ErrorKind::Panic`] error whose message carries the panic
/// text and, when the hook saw it, its location.
pub fn guard<R>(f: impl FnOnce() -> Result<R, Error>) -> RResult<R, PluginError> {
    let outer = IN_GUARD.with(|g| g.replace(true));
    let result = catch_unwind(AssertUnwindSafe(f));
    IN_GUARD.with(|g| g.set(outer));
    match result {
        Ok(Ok(value)) => RResult::ROk(value),
        Ok(Err(error)) => RResult::RErr(error.into_abi()),
        Err(panic) => {
            let message = match LAST_PANIC.with(|p| p.borrow_mut().take()) {
                Some(located) => format!("driver {located}"),
                None => panic_message(panic.as_ref()),
            };
            RResult::RErr(Error::new(ErrorKind::Panic, message).into_abi())
        }
    }
}

/// Extracts the text of a panic payload.
pub fn panic_message(panic: &(dyn Any + Send)) -> String {
    let text = if let Some(s) = panic.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "non-text panic payload".to_string()
    };
    format!("driver panicked: {text}")
}

extern "C" fn metadata<T: Driver>() -> DriverMetadata {
    // Metadata is plain data; a panic here would be a driver bug that the host cannot recover
    // from anyway, but it must still not unwind across the boundary.
    match catch_unwind(|| (T::metadata(), T::config_schema().is_some())) {
        Ok((m, has_schema)) => DriverMetadata {
            name: m.name.into(),
            integration_type: m.integration_type.into(),
            driver_version: m.version.into(),
            api_version: env!("CARGO_PKG_VERSION").into(),
            description: m.description.into(),
            capabilities: m.capabilities | if has_schema { capabilities::CONFIG_SCHEMA } else { 0 },
        },
        Err(_) => DriverMetadata {
            name: "".into(),
            integration_type: "".into(),
            driver_version: "".into(),
            api_version: env!("CARGO_PKG_VERSION").into(),
            description: "metadata() panicked".into(),
            capabilities: 0,
        },
    }
}

/// What an instance's opaque state points to: the driver and whether the host switched it to
/// pipelining ([`control_op::PIPELINE`]).
struct Exported<T> {
    driver: T,
    pipelined: bool,
}

extern "C" fn create<T: Driver>(host: HostServices) -> RResult<DriverInstance, PluginError> {
    guard(|| {
        let driver = T::create(Host::from_abi(host))?;
        let state = Box::into_raw(Box::new(Exported { driver, pipelined: false })).cast::<c_void>();
        Ok(DriverInstance { state, vtable: VTableFor::<T>::VTABLE })
    })
}

extern "C" fn module_control<T: Driver>(op: RStr<'_>, arg: RStr<'_>) -> RResult<RString, PluginError> {
    guard(|| match (op.as_str(), T::config_schema()) {
        // The host checks that the text is a JSON Schema; passing it on unparsed keeps this cheap.
        (control_op::CONFIG_SCHEMA, Some(schema)) => Ok(RString::from(schema)),
        // Only a driver that applies the policy takes it: to any other, the host's policy would
        // be a promise nobody keeps, and "unsupported" makes the host say so.
        (control_op::TARGET_POLICY, _) if T::metadata().capabilities & capabilities::TARGET_POLICY != 0 => {
            let policy = TargetPolicy::from_json(arg.as_str()).map_err(|e| Error::new(ErrorKind::Config, e))?;
            target_policy::install(policy);
            Ok(RString::from("ok"))
        }
        (op, _) => T::module_control(op, arg.as_str()).map(RString::from),
    })
}

struct VTableFor<T>(PhantomData<T>);

impl<T: Driver> VTableFor<T> {
    staticref! {
        const WM: WithMetadata<InstanceVTable> = WithMetadata::new(InstanceVTable {
            validate: Self::validate,
            check_connection: Self::check_connection,
            start: Self::start,
            process: Self::process,
            stop: Self::stop,
            destroy: Self::destroy,
            control: Self::control,
        })
    }

    const VTABLE: InstanceVTableRef = InstanceVTableRef(Self::WM.as_prefix());

    /// # Safety
    /// `state` must come from `create::<T>` and not be destroyed; the host never overlaps calls.
    unsafe fn exported<'s>(state: *mut c_void) -> &'s mut Exported<T> {
        // SAFETY: guaranteed by the caller, see above.
        unsafe { &mut *state.cast::<Exported<T>>() }
    }

    /// # Safety
    /// As for [`Self::exported`].
    unsafe fn this<'s>(state: *mut c_void) -> &'s mut T {
        // SAFETY: guaranteed by the caller.
        &mut unsafe { Self::exported(state) }.driver
    }

    extern "C" fn validate(state: *mut c_void, config: RStr<'_>) -> RResult<RVec<FieldError>, PluginError> {
        // SAFETY: the host passes back the pointer it got from `create`.
        guard(|| Ok(unsafe { Self::this(state) }.validate(config.as_str()).into()))
    }

    extern "C" fn check_connection(state: *mut c_void, config: &StartConfig<'_>) -> RResult<(), PluginError> {
        // SAFETY: as in `validate`.
        guard(|| unsafe { Self::this(state) }.check_connection(config))
    }

    extern "C" fn start(state: *mut c_void, config: &StartConfig<'_>) -> RResult<(), PluginError> {
        // SAFETY: as in `validate`.
        guard(|| unsafe { Self::this(state) }.start(config))
    }

    extern "C" fn process(
        state: *mut c_void,
        batch: RSlice<'_, Message<'_>>,
        timeout_ms: u64,
    ) -> RResult<RVec<Outcome>, PluginError> {
        guard(|| {
            let deadline = Instant::now() + Duration::from_millis(timeout_ms);
            // SAFETY: as in `validate`.
            let this = unsafe { Self::exported(state) };
            let outcomes = match (this.pipelined, batch.is_empty()) {
                (false, _) => this.driver.process(batch.as_slice(), deadline),
                (true, false) => match this.driver.submit(batch.as_slice(), deadline) {
                    Submitted::Pending => return Ok(RVec::new()),
                    Submitted::Settled(outcomes) => outcomes,
                },
                // A collect: the host knows the size of the oldest batch and checks it.
                (true, true) => {
                    let outcomes = this.driver.collect(deadline).unwrap_or_default();
                    return Ok(outcomes.into_iter().map(|o| o.into_abi()).collect());
                }
            };
            if outcomes.len() != batch.len() {
                return Err(Error::new(
                    ErrorKind::Internal,
                    format!("driver returned {} outcomes for {} messages", outcomes.len(), batch.len()),
                ));
            }
            Ok(outcomes.into_iter().map(|o| o.into_abi()).collect())
        })
    }

    extern "C" fn stop(state: *mut c_void) -> RResult<(), PluginError> {
        // SAFETY: as in `validate`.
        guard(|| {
            unsafe { Self::this(state) }.stop();
            Ok(())
        })
    }

    extern "C" fn destroy(state: *mut c_void) {
        // SAFETY: the host calls `destroy` exactly once with the pointer from `create`.
        let boxed = unsafe { Box::from_raw(state.cast::<Exported<T>>()) };
        // Dropping may run driver code (closing sockets, joining threads): keep panics inside.
        let _ = catch_unwind(AssertUnwindSafe(move || drop(boxed)));
    }

    extern "C" fn control(state: *mut c_void, op: RStr<'_>, arg: RStr<'_>) -> RResult<RString, PluginError> {
        guard(|| {
            // SAFETY: as in `validate`.
            let this = unsafe { Self::exported(state) };
            let announced = |bit: u64| T::metadata().capabilities & bit != 0;
            if op.as_str() == control_op::PIPELINE && announced(capabilities::PIPELINE) {
                this.pipelined = true;
                return Ok(RString::from("on"));
            }
            if op.as_str() == control_op::CONNECTIVITY && announced(capabilities::CONNECTIVITY) {
                if let Some(state) = this.driver.connectivity() {
                    return Ok(RString::from(state.to_json()));
                }
            }
            this.driver.control(op.as_str(), arg.as_str()).map(RString::from)
        })
    }
}

/// Exports a [`Driver`] implementation as this library's root module.
///
/// Put it once in the driver crate's `lib.rs`; the crate must be built as a `cdylib`.
///
/// ```ignore
/// trib_plugin_api::export_driver!(my_driver::MyDriver);
/// ```
#[macro_export]
macro_rules! export_driver {
    ($driver:ty) => {
        /// The abi_stable root-module header the executor's loader looks up.
        // The symbol name is abi_stable 0.11's mangled root-module name; the plugin-api test
        // `root_module_symbol_name` fails if abi_stable ever changes it.
        #[export_name = "_1as_0lib_1header_0root_bmodule_bloader"]
        pub static TRIB_DRIVER_ROOT_MODULE: $crate::abi_stable::library::LibHeader = {
            extern "C" fn erased_module() -> $crate::abi_stable::library::RootModuleResult {
                $crate::abi_stable::library::__call_root_module_loader(|| $crate::export::module::<$driver>())
            }
            // SAFETY: `erased_module` returns the module built by `module::<$driver>()`, whose
            // type is `DriverModuleRef`, as `from_constructor` requires.
            unsafe {
                $crate::abi_stable::library::LibHeader::from_constructor::<$crate::abi::DriverModuleRef>(
                    erased_module,
                    $crate::abi_stable::library::CheckTypeLayout::Yes,
                )
            }
        };
    };
}
