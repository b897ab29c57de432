//! Builds the test fixture plugins.
fn main() {
    let manifest_dir = std::path::PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
    let wasm = wasm_build::build_component(manifest_dir.parent().unwrap(), "http-probe");
    println!("cargo:rustc-env=HTTP_PROBE_WASM={}", wasm.display());
}
