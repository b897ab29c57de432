//! Builds the test fixture plugins, and the ADX plugin as 1.0- and 1.1-contract builds.
fn main() {
    let manifest_dir = std::path::PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
    let root = manifest_dir.parent().unwrap();
    let wasm = wasm_build::build_component(root, "http-probe");
    println!("cargo:rustc-env=HTTP_PROBE_WASM={}", wasm.display());
    // The ADX plugin as a 1.0-contract build: a second, older version to run beside the
    // bundled one and to swap from.
    let wasm =
        wasm_build::build_component_with_features(root, "adx-destination", &["contract-1-0"]);
    println!(
        "cargo:rustc-env=ADX_DESTINATION_1_0_WASM={}",
        wasm.display()
    );
    // And as a 1.1-contract build: packed batches, rejections without their kind.
    let wasm =
        wasm_build::build_component_with_features(root, "adx-destination", &["contract-1-1"]);
    println!(
        "cargo:rustc-env=ADX_DESTINATION_1_1_WASM={}",
        wasm.display()
    );
}
