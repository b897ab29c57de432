//! The compiled-artifact cache: a second load does not compile, and a damaged entry is
//! compiled again rather than trusted.

use dataflow_host::bundled::ADX_DESTINATION;
use dataflow_runtime::plugin::{ArtifactCache, Limits, Loaded, PluginRuntime};
use end_to_end_tests::LocalAdx;

#[tokio::test]
async fn a_second_load_comes_from_the_cache_and_runs_the_same_plugin() {
    let dir = std::env::temp_dir().join(format!("artifact-cache-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let cache = ArtifactCache::new(&dir);
    let cold = PluginRuntime::load(ADX_DESTINATION, Limits::default(), Some(&cache)).unwrap();
    let warm = PluginRuntime::load(ADX_DESTINATION, Limits::default(), Some(&cache)).unwrap();
    assert_eq!(
        (cold.loaded, warm.loaded),
        (Loaded::Compiled, Loaded::FromCache)
    );
    assert!(
        warm.load_time * 10 < cold.load_time,
        "cached load {:?} is not much faster than compiling {:?}",
        warm.load_time,
        cold.load_time
    );
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&dir).unwrap().permissions().mode();
    assert_eq!(mode & 0o077, 0, "the cache directory is private");

    // The cached component works like the compiled one.
    let schema = ".create table t (n: long)";
    let adx = LocalAdx::start(schema, true).await;
    let mut sink = adx
        .open(
            &warm,
            adx.adx_config("t", schema, &[("batching.latencySeconds", "0")]),
        )
        .await;
    let outcome = sink
        .accept(&[end_to_end_tests::message(1, "a", r#"{"n": 7}"#)])
        .await
        .unwrap();
    assert_eq!(outcome.ingested, vec![1]);

    // A damaged entry is not loaded: the plugin is compiled again and the entry replaced.
    for entry in std::fs::read_dir(&dir).unwrap() {
        std::fs::write(entry.unwrap().path(), b"not an artifact").unwrap();
    }
    let repaired = PluginRuntime::load(ADX_DESTINATION, Limits::default(), Some(&cache)).unwrap();
    assert_eq!(repaired.loaded, Loaded::Compiled);
    let again = PluginRuntime::load(ADX_DESTINATION, Limits::default(), Some(&cache)).unwrap();
    assert_eq!(again.loaded, Loaded::FromCache);
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn a_cache_others_can_write_to_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    let dir = std::env::temp_dir().join(format!("artifact-cache-open-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let cache = ArtifactCache::new(&dir);
    PluginRuntime::load(ADX_DESTINATION, Limits::default(), Some(&cache)).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
    let error = PluginRuntime::load(ADX_DESTINATION, Limits::default(), Some(&cache))
        .err()
        .expect("refused")
        .to_string();
    assert!(error.contains("writable by others"), "{error}");
    std::fs::remove_dir_all(&dir).ok();
}
