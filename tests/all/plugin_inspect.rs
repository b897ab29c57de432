//! `dataflow-host plugin inspect`: a component's exports, imports and contract version, and
//! whether this host runs it.

use std::process::Command;

use end_to_end_tests::host_process::host_binary;

fn inspect(file: Option<&std::path::Path>) -> (i32, String) {
    let mut command = Command::new(host_binary());
    command.args(["plugin", "inspect"]);
    if let Some(file) = file {
        command.arg(file);
    }
    let output = command.env("RUST_BACKTRACE", "0").output().unwrap();
    let text = String::from_utf8_lossy(&output.stdout).to_string()
        + &String::from_utf8_lossy(&output.stderr);
    (output.status.code().unwrap_or(-1), text)
}

#[test]
fn the_bundled_plugin_implements_the_contract_this_host_runs() {
    let (code, text) = inspect(None);
    assert_eq!(code, 0, "{text}");
    assert!(
        text.contains("contract   dataflow:destination/destination@1.2.0"),
        "{text}"
    );
    assert!(
        text.contains(
            "messages   accept-batch-classified (packed batches, rejections with their kind, since 1.2)"
        ),
        "{text}"
    );
    assert!(text.contains("wasi:http/outgoing-handler@0.2.12"), "{text}");
    assert!(text.contains("runs here  yes"), "{text}");
}

/// The http-probe fixture and a 1.0 build of the ADX plugin are built against the frozen
/// 1.0 contract (contract/wit/1.0.0): this host still runs them, handing them messages as a
/// list; a 1.1 build gets packed batches.
#[test]
fn plugins_of_the_previous_minor_version_run_with_the_calls_they_know() {
    for file in [env!("HTTP_PROBE_WASM"), env!("ADX_DESTINATION_1_0_WASM")] {
        previous_minor_version_runs(file);
    }
}

fn previous_minor_version_runs(file: &str) {
    let (code, text) = inspect(Some(std::path::Path::new(file)));
    assert_eq!(code, 0, "{text}");
    assert!(
        text.contains("contract   dataflow:destination/destination@1.0.0"),
        "{text}"
    );
    assert!(
        text.contains("messages   accept (a list of messages, 1.0)"),
        "{text}"
    );
    assert!(
        text.contains("runs here  yes (plugin contract 1.0.0, host contract 1.2.0)"),
        "{text}"
    );
}

#[test]
fn a_plugin_of_contract_1_1_gets_packed_batches() {
    let (code, text) = inspect(Some(std::path::Path::new(env!("ADX_DESTINATION_1_1_WASM"))));
    assert_eq!(code, 0, "{text}");
    assert!(
        text.contains("contract   dataflow:destination/destination@1.1.0"),
        "{text}"
    );
    assert!(
        text.contains("messages   accept-batch (packed batches, since 1.1)"),
        "{text}"
    );
    assert!(
        text.contains("runs here  yes (plugin contract 1.1.0, host contract 1.2.0)"),
        "{text}"
    );
}

#[test]
fn a_plugin_of_another_major_version_is_refused_with_both_versions() {
    let dir = std::env::temp_dir().join(format!("plugin-inspect-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("destination-2.wat");
    std::fs::write(
        &file,
        r#"(component
            (instance $i)
            (export "dataflow:destination/destination@2.0.0" (instance $i)))"#,
    )
    .unwrap();
    let (code, text) = inspect(Some(&file));
    assert_eq!(code, 1, "{text}");
    assert!(
        text.contains("contract   dataflow:destination/destination@2.0.0"),
        "{text}"
    );
    assert!(
        text.contains(
            "runs here  no: the plugin implements contract dataflow:destination/destination@2.0.0; this host runs 1.x (built with 1.2.0)"
        ),
        "{text}"
    );

    // A 1.x plugin without the functions of its version is refused at link time; a later
    // minor than the host knows is held to the newest contract the host has.
    std::fs::write(
        &file,
        r#"(component
            (instance $i)
            (export "dataflow:destination/destination@1.3.0" (instance $i)))"#,
    )
    .unwrap();
    let (code, text) = inspect(Some(&file));
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("runs here  no: the plugin's dataflow:destination/destination@1.3.0 does not have the shape of contract 1.2.0"), "{text}");
    std::fs::remove_dir_all(&dir).ok();
}
