//! Builds the bundled ADX destination component so the host can embed it.
fn main() {
    let manifest_dir = std::path::PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
    let wasm = wasm_build::build_component(manifest_dir.parent().unwrap(), "adx-destination");
    println!("cargo:rustc-env=ADX_DESTINATION_WASM={}", wasm.display());
}
