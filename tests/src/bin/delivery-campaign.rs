//! Delivery under sustained faults, as a user rehearses production: three scenarios (faults
//! only; faults with host kills and a broker restart; kills and a broker restart without
//! faults) through a real mosquitto, each counted message by message and against the
//! broker's own log. Prints RELIABILITY.md's table; exits non-zero if a scenario lost a
//! message, duplicated one without cause, or disagrees with the broker.
//!
//! cargo run --release -p end-to-end-tests --bin delivery-campaign -- [--soak] [--messages N]
//!     [--rate N] [--window N] [--kills N]
//!
//! `--soak` is a million messages per scenario at 3,000/s (about six minutes each).

use std::time::Duration;

use end_to_end_tests::campaign::{self, rehearsal_faults, Campaign, Outcome};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let value = |name: &str| -> Option<u64> {
        let at = args.iter().position(|a| a == name)?;
        let text = args.get(at + 1).unwrap_or_else(|| usage(name));
        Some(text.parse().unwrap_or_else(|_| usage(name)))
    };
    for arg in &args {
        let known = ["--soak", "--messages", "--rate", "--window", "--kills"];
        if arg.starts_with("--") && !known.contains(&arg.as_str()) {
            usage(arg);
        }
    }
    let soak = args.iter().any(|a| a == "--soak");
    let messages = value("--messages").unwrap_or(if soak { 1_000_000 } else { 50_000 });
    let per_second = value("--rate").unwrap_or(3000);
    let window = value("--window").unwrap_or(5000) as u16;
    let kills = value("--kills").unwrap_or(10) as u32;
    let publishing = messages / per_second.max(1);
    let drain_timeout = Duration::from_secs(120 + publishing);
    let scenarios = [
        Campaign {
            name: "faults only".into(),
            messages,
            per_second,
            window,
            faults: rehearsal_faults(),
            kills: 0,
            broker_restarts: 0,
            drain_timeout,
        },
        Campaign {
            name: format!("faults, {kills} host kills, a broker restart"),
            messages,
            per_second,
            window,
            faults: rehearsal_faults(),
            kills,
            broker_restarts: 1,
            drain_timeout,
        },
        Campaign {
            name: format!("{kills} host kills, a broker restart, no faults"),
            messages,
            per_second,
            window,
            faults: Vec::new(),
            kills,
            broker_restarts: 1,
            drain_timeout,
        },
    ];
    let runtime = tokio::runtime::Runtime::new().expect("a runtime");
    println!(
        "{messages} numbered QoS 1 messages per scenario at {per_second}/s, maxInflightMessages {window}, faults {}",
        rehearsal_faults().join(" ")
    );
    println!("{}", Outcome::HEADER);
    let mut failed = false;
    for scenario in &scenarios {
        let (outcome, kept) = runtime.block_on(campaign::run(scenario));
        println!("{}", outcome.row());
        let violations = outcome.violations();
        if !violations.is_empty() {
            failed = true;
            eprintln!("{}", campaign::describe_failure(&outcome, &kept));
        }
    }
    if failed {
        std::process::exit(1);
    }
}

fn usage(arg: &str) -> ! {
    eprintln!(
        "{arg}: usage: delivery-campaign [--soak] [--messages N] [--rate N] [--window N] [--kills N]"
    );
    std::process::exit(2)
}
