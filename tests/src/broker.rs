//! The tests' MQTT broker: the host's local mosquitto launcher (`dataflow_testkit::broker`).

pub use dataflow_testkit::broker::LocalBroker as Broker;

/// Sends a signal by name (`TERM`, `INT`, `KILL`) to a process.
pub fn signal(pid: u32, name: &str) {
    dataflow_testkit::broker::signal(pid, name).unwrap();
}

/// A loopback port nobody listens on now.
pub fn free_port() -> u16 {
    dataflow_testkit::broker::free_port().unwrap()
}
