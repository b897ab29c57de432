//! Per-instance limits: a call that does not finish is cut off at its deadline.

use std::sync::Arc;
use std::time::{Duration, Instant};

use dataflow_runtime::identity::StaticToken;
use dataflow_runtime::plugin::{Limits, PluginRuntime};
use end_to_end_tests::{http_probe_wasm, message};

#[tokio::test]
async fn a_call_that_hangs_is_stopped_at_its_deadline() {
    // A server that accepts connections and never answers.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", silent.local_addr().unwrap());
    let _keep = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = silent.accept().await {
            held.push(stream);
        }
    });
    let limits = Limits {
        call_deadline: Duration::from_secs(1),
        ..Limits::default()
    };
    let runtime = PluginRuntime::new(&http_probe_wasm(), limits).unwrap();
    let mut sink = runtime
        .open(
            "probe",
            &url,
            Arc::new(StaticToken("t".into())),
            vec![("url".into(), format!("{url}/x"))],
        )
        .await
        .unwrap();
    let started = Instant::now();
    let error = sink.accept(&[message(1, "t", "{}")]).await.unwrap_err();
    assert!(error.to_string().contains("deadline"), "{error}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "took {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn instances_have_a_memory_cap() {
    // 1 MiB cannot hold the plugin's initial memory: instantiation fails instead of growing.
    let limits = Limits {
        max_memory_bytes: 1 << 20,
        ..Limits::default()
    };
    let runtime = PluginRuntime::new(dataflow_host::bundled::ADX_DESTINATION, limits).unwrap();
    let config = vec![
        ("host".to_string(), "http://127.0.0.1:1".to_string()),
        ("database".to_string(), "db".to_string()),
        (
            "schema".to_string(),
            ".create table t (n: long)".to_string(),
        ),
    ];
    let error = runtime
        .open(
            "adx",
            "http://127.0.0.1:1",
            Arc::new(StaticToken("t".into())),
            config.clone(),
        )
        .await
        .err()
        .expect("a 1 MiB cap must stop the instance");
    assert!(format!("{error:?}").contains("memory"), "{error:?}");

    // The same configuration opens under the default cap.
    let runtime =
        PluginRuntime::new(dataflow_host::bundled::ADX_DESTINATION, Limits::default()).unwrap();
    assert!(runtime
        .open(
            "adx",
            "http://127.0.0.1:1",
            Arc::new(StaticToken("t".into())),
            config
        )
        .await
        .is_ok());
}

/// On a single-threaded executor, a plugin spinning in wasm still lets other tasks run (it
/// yields at every epoch tick), and its deadline fires while it computes.
#[tokio::test(flavor = "current_thread")]
async fn a_busy_plugin_does_not_hold_the_worker_and_is_stopped_at_its_deadline() {
    use dataflow_runtime::plugin::FailureCause;
    let limits = Limits {
        call_deadline: Duration::from_secs(2),
        ..Limits::default()
    };
    let runtime = PluginRuntime::new(&http_probe_wasm(), limits).unwrap();
    let mut sink = runtime
        .open(
            "probe",
            "http://127.0.0.1:9",
            Arc::new(StaticToken("t".into())),
            vec![
                ("url".into(), "http://127.0.0.1:9/x".into()),
                ("misbehave".into(), "loop@1".into()),
            ],
        )
        .await
        .unwrap();
    let ticks = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let counting = ticks.clone();
    let neighbour = tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_millis(10)).await;
            counting.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
    });
    let started = Instant::now();
    let error = sink.accept(&[message(1, "t", "{}")]).await.unwrap_err();
    let took = started.elapsed();
    neighbour.abort();
    assert_eq!(error.cause, FailureCause::Deadline, "{error:?}");
    assert!(error.to_string().contains("deadline"), "{error}");
    assert!(
        took >= Duration::from_secs(2) && took < Duration::from_secs(4),
        "took {took:?}"
    );
    let ticks = ticks.load(std::sync::atomic::Ordering::Relaxed);
    // 2 s at 10 ms: about 200 if the worker were free all along; a held worker gives 0.
    assert!(ticks >= 50, "the other task ran only {ticks} times");
}
