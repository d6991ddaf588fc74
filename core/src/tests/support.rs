//! Finding the plugin libraries that `cargo test` built, and making bad plugin files.

use std::{
    path::{Path, PathBuf},
    process::Command,
};

/// `target/<profile>/deps`, where cargo puts the cdylibs of dependencies.
pub fn deps_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    exe.parent().expect("deps dir").to_path_buf()
}

/// Path of a plugin library built by cargo, e.g. `plugin_file("trib_fixture_scripted")`.
pub fn plugin_file(crate_name: &str) -> PathBuf {
    let name = format!("{}{crate_name}{}", std::env::consts::DLL_PREFIX, std::env::consts::DLL_SUFFIX);
    let path = deps_dir().join(&name);
    assert!(path.exists(), "{} was not built; it is a dev-dependency of trib-core", path.display());
    path
}

/// Copies `src` into `dir` under `name`.
pub fn install(src: &Path, dir: &Path, name: &str) -> PathBuf {
    let dst = dir.join(name);
    std::fs::copy(src, &dst).expect("copy plugin");
    dst
}

/// Compiles a C source into a shared library with the system C compiler (the Rust linker).
pub fn compile_c_library(dir: &Path, name: &str, source: &str, extra_args: &[&str]) -> PathBuf {
    let src = dir.join(format!("{name}.c"));
    std::fs::write(&src, source).expect("write C source");
    let out = dir.join(format!("lib{name}.so"));
    let status = Command::new("cc")
        .args(["-shared", "-fPIC", "-o"])
        .arg(&out)
        .arg(&src)
        .args(extra_args)
        .status()
        .expect("run cc");
    assert!(status.success(), "cc failed for {name}");
    out
}
