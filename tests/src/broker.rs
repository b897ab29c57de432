//! The tests' MQTT broker: the host's local mosquitto launcher (`dataflow_host::broker`).

pub use dataflow_host::broker::LocalBroker as Broker;

/// Sends a signal by name (`TERM`, `INT`, `KILL`) to a process.
pub fn signal(pid: u32, name: &str) {
    dataflow_host::broker::signal(pid, name).unwrap();
}

/// A loopback port nobody listens on now.
pub fn free_port() -> u16 {
    dataflow_host::broker::free_port().unwrap()
}
