//! `cargo run --release -p fuzz -- [seconds] [seed]`
fn main() {
    let mut args = std::env::args().skip(1);
    let seconds: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(60);
    let seed: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(1)
    });
    // Panics are caught and reported per input; keep the default hook quiet.
    std::panic::set_hook(Box::new(|_| {}));
    let report = fuzz::run(std::time::Duration::from_secs(seconds), seed);
    println!(
        "seed {seed}: {} inputs in {seconds} s, {} payloads converted, {} configurations accepted, {} expressions parsed, {} maps applied, {} failures",
        report.iterations,
        report.payloads_converted,
        report.configs_accepted,
        report.expressions_parsed,
        report.maps_applied,
        report.failures.len()
    );
    for failure in &report.failures {
        println!("FAILURE: {failure}");
    }
    if !report.failures.is_empty() {
        std::process::exit(1);
    }
}
