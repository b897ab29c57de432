//! Builds a workspace package as a `wasm32-wasip2` component from a `build.rs`, so that
//! building (or testing) the host builds its plugins too, with no manual step.

use std::path::{Path, PathBuf};
use std::process::Command;

const TARGET: &str = "wasm32-wasip2";

/// Builds `package` (a member of the workspace at `workspace_root`) in release mode and returns
/// the path of its `.wasm`. Installs the target through rustup if it is missing.
pub fn build_component(workspace_root: &Path, package: &str) -> PathBuf {
    build_component_with_features(workspace_root, package, &[])
}

/// `build_component` with cargo features, in a target directory of its own.
pub fn build_component_with_features(
    workspace_root: &Path,
    package: &str,
    features: &[&str],
) -> PathBuf {
    for watched in ["guest", "contract", "kusto", "tests/fixtures", "Cargo.lock"] {
        println!(
            "cargo:rerun-if-changed={}",
            workspace_root.join(watched).display()
        );
    }
    ensure_target_installed();

    let out_dir =
        PathBuf::from(std::env::var_os("OUT_DIR").expect("OUT_DIR is set for build scripts"));
    let target_dir = match features {
        [] => out_dir.join("wasm-target"),
        _ => out_dir.join(format!("wasm-target-{}", features.join("-"))),
    };
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let status = Command::new(cargo)
        .current_dir(workspace_root)
        .args([
            "build",
            "--release",
            "--target",
            TARGET,
            "-p",
            package,
            "--target-dir",
        ])
        .arg(&target_dir)
        .args(match features {
            [] => vec![],
            _ => vec!["--features".to_string(), features.join(",")],
        })
        // The outer build's flags and target directory are for the host, not for the guest.
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("CARGO_TARGET_DIR")
        .env_remove("CARGO_BUILD_TARGET")
        .env_remove("CARGO_PROFILE_RELEASE_DEBUG")
        // A plugin is small and built once per host build: whole-program optimisation is
        // cheap here and lets the per-byte loops of the payload path inline across crates.
        .env("CARGO_PROFILE_RELEASE_LTO", "fat")
        .env("CARGO_PROFILE_RELEASE_CODEGEN_UNITS", "1")
        .env(
            "CARGO_TARGET_WASM32_WASIP2_RUSTFLAGS",
            "-Ctarget-feature=+simd128",
        )
        // Under `cargo clippy` the wrapper would lint the guest here too; that has its own step.
        .env_remove("RUSTC_WORKSPACE_WRAPPER")
        .env_remove("CLIPPY_ARGS")
        .status()
        .unwrap_or_else(|e| panic!("could not start cargo to build {package}: {e}"));
    assert!(status.success(), "building {package} for {TARGET} failed");

    let wasm = target_dir
        .join(TARGET)
        .join("release")
        .join(format!("{}.wasm", package.replace('-', "_")));
    assert!(wasm.exists(), "{} was not produced", wasm.display());
    wasm
}

fn ensure_target_installed() {
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let libdir = Command::new(&rustc)
        .args(["--print", "target-libdir", "--target", TARGET])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()));
    if libdir.is_some_and(|dir| dir.exists()) {
        return;
    }
    println!("cargo:warning=installing the {TARGET} target with rustup");
    let status = Command::new("rustup")
        .args(["target", "add", TARGET])
        .status()
        .unwrap_or_else(|e| {
            panic!("the {TARGET} target is missing and rustup could not be started: {e}")
        });
    assert!(status.success(), "`rustup target add {TARGET}` failed");
}
