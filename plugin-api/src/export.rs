//! The glue between a [`Driver`] implementation and the frozen [`crate::abi`]: one `extern "C"`
//! function per boundary call, each of which catches panics.
//!
//! Used through [`crate::export_driver!`]; the items are public only because the macro expands
//! in the driver's crate.

use std::{
    any::Any,
    ffi::c_void,
    marker::PhantomData,
    panic::{catch_unwind, AssertUnwindSafe},
    time::{Duration, Instant},
};

use abi_stable::{
    prefix_type::{PrefixTypeTrait, WithMetadata},
    staticref,
    std_types::{RResult, RSlice, RStr, RString, RVec},
};

use crate::{
    abi::{
        DriverInstance, DriverMetadata, DriverModule, DriverModuleRef, FieldError, HostServices, InstanceVTable,
        InstanceVTableRef, Message, Outcome, PluginError, StartConfig,
    },
    driver::{Driver, Error, ErrorKind},
    host::Host,
};

/// Builds the root module for driver `T`. Called once, by the root-module loader.
pub fn module<T: Driver>() -> DriverModuleRef {
    DriverModule { metadata: metadata::<T>, create: create::<T>, control: module_control::<T> }.leak_into_prefix()
}

/// Runs `f`, turning a panic into a [`ErrorKind::Panic`] error.
pub fn guard<R>(f: impl FnOnce() -> Result<R, Error>) -> RResult<R, PluginError> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(value)) => RResult::ROk(value),
        Ok(Err(error)) => RResult::RErr(error.into_abi()),
        Err(panic) => RResult::RErr(Error::new(ErrorKind::Panic, panic_message(panic.as_ref())).into_abi()),
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
    match catch_unwind(T::metadata) {
        Ok(m) => DriverMetadata {
            name: m.name.into(),
            integration_type: m.integration_type.into(),
            driver_version: m.version.into(),
            api_version: env!("CARGO_PKG_VERSION").into(),
            description: m.description.into(),
            capabilities: m.capabilities,
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

extern "C" fn create<T: Driver>(host: HostServices) -> RResult<DriverInstance, PluginError> {
    guard(|| {
        let driver = T::create(Host::from_abi(host))?;
        let state = Box::into_raw(Box::new(driver)).cast::<c_void>();
        Ok(DriverInstance { state, vtable: VTableFor::<T>::VTABLE })
    })
}

extern "C" fn module_control<T: Driver>(op: RStr<'_>, arg: RStr<'_>) -> RResult<RString, PluginError> {
    guard(|| T::module_control(op.as_str(), arg.as_str()).map(RString::from))
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
    unsafe fn this<'s>(state: *mut c_void) -> &'s mut T {
        // SAFETY: guaranteed by the caller, see above.
        unsafe { &mut *state.cast::<T>() }
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
            let outcomes = unsafe { Self::this(state) }.process(batch.as_slice(), deadline);
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
        let boxed = unsafe { Box::from_raw(state.cast::<T>()) };
        // Dropping may run driver code (closing sockets, joining threads): keep panics inside.
        let _ = catch_unwind(AssertUnwindSafe(move || drop(boxed)));
    }

    extern "C" fn control(state: *mut c_void, op: RStr<'_>, arg: RStr<'_>) -> RResult<RString, PluginError> {
        // SAFETY: as in `validate`.
        guard(|| unsafe { Self::this(state) }.control(op.as_str(), arg.as_str()).map(RString::from))
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
