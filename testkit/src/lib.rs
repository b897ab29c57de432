//! What tests, the demo and the benchmark drive a dataflow host with: a local mosquitto
//! (`broker`), MQTT publishers and collectors (`publisher`), and a client for Kusto's REST
//! API (`kusto_client`), which works against the local endpoint and a real cluster alike.

pub mod broker;
pub mod kusto_client;
pub mod publisher;
