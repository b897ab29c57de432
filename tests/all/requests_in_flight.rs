//! Several requests in flight: the pipeline's plugin instances side by side against an
//! endpoint that answers late (as a remote cluster does), every message counted.

use std::time::{Duration, Instant};

use dataflow_runtime::pipeline::{self, PipelineOptions, PipelineReport, RetryPolicy};
use end_to_end_tests::{adx_runtime, numbered_messages, LocalAdx};
use local_adx::faults::Fault;

const TABLE: &str = ".create table t (n: long)";

/// `count` numbered messages through `requests_in_flight` instances into an endpoint with
/// `faults`, 100 messages per request; the report, the numbers stored (sorted, duplicates
/// kept), how long it took and the statuses the endpoint answered.
async fn deliver(
    count: u64,
    requests_in_flight: usize,
    faults: &str,
) -> (PipelineReport, Vec<u64>, Duration, Vec<u16>) {
    let adx = LocalAdx::start(TABLE, true).await;
    let faults = faults
        .split(',')
        .filter(|f| !f.is_empty())
        .map(|f| f.parse::<Fault>().unwrap())
        .collect();
    adx.emulator.set_faults(faults);
    let runtime = adx_runtime();
    let sink = adx
        .open(
            &runtime,
            adx.adx_config(
                "t",
                TABLE,
                &[
                    ("batching.maxMessages", "100"),
                    ("batching.latencySeconds", "0"),
                ],
            ),
        )
        .await;
    let options = PipelineOptions {
        feed_chunk: 100,
        requests_in_flight,
        retry: RetryPolicy {
            initial: Duration::from_millis(20),
            max: Duration::from_millis(100),
            max_attempts: None,
        },
        ..PipelineOptions::default()
    };
    let started = Instant::now();
    let report = pipeline::run(sink, numbered_messages(count, Duration::ZERO), &options)
        .await
        .unwrap();
    let took = started.elapsed();
    let numbers = adx.numbers("t");
    (report, numbers, took, adx.ingest_statuses())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_go_side_by_side_to_an_endpoint_that_answers_late_and_every_row_lands_once() {
    // Every answer comes 100 ms late: requests one at a time take 100 ms each at least.
    let late = Duration::from_millis(100);
    let (one, numbers, one_took, statuses) = deliver(2000, 1, "slow=100ms").await;
    assert!(one.all_accounted_for(), "{one:?}");
    assert_eq!(numbers, (0..2000).collect::<Vec<_>>());
    assert!(statuses.iter().all(|&s| s == 200), "{statuses:?}");
    assert!(statuses.len() >= 20, "at most 100 rows a request");
    assert!(one_took >= late * statuses.len() as u32, "{one_took:?}");

    let (four, numbers, four_took, statuses) = deliver(2000, 4, "slow=100ms").await;
    assert!(four.all_accounted_for(), "{four:?}");
    assert_eq!(four.ingested, 2000);
    assert_eq!(
        numbers,
        (0..2000).collect::<Vec<_>>(),
        "each row once, none lost"
    );
    assert!(statuses.iter().all(|&s| s == 200), "{statuses:?}");
    // Only requests that overlap can take less than their count times 100 ms.
    let one_at_a_time = late * statuses.len() as u32;
    assert!(
        four_took * 2 < one_at_a_time,
        "{} requests, 4 in flight took {four_took:?}; one at a time {one_took:?}",
        statuses.len()
    );
    println!("one at a time {one_took:?}, four in flight {four_took:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_requests_side_by_side_refused_ones_are_sent_again_and_nothing_is_lost_or_doubled() {
    // A third of the answers are 503 (the request stored nothing) and some come late, so
    // retries of one instance interleave with the others' requests.
    let (report, numbers, _, statuses) = deliver(3000, 4, "503:0.3,slow=30ms:0.5").await;
    assert!(report.all_accounted_for(), "{report:?}");
    assert_eq!((report.ingested, report.rejected), (3000, 0));
    assert_eq!(numbers, (0..3000).collect::<Vec<_>>(), "each row once");
    assert!(statuses.contains(&503), "{statuses:?}");
}
