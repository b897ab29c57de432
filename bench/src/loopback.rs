//! The local endpoint as the bench's end-to-end parts use it: on loopback, with a token of
//! its own and streaming ingestion enabled on one database, and the plugin opened against it.

use std::sync::Arc;

use anyhow::Result;

use dataflow_runtime::http_client::HttpClient;
use dataflow_runtime::identity::StaticToken;
use dataflow_runtime::plugin::{PluginRuntime, PluginSink};
use dataflow_runtime::sources::now_nanos;
use dataflow_testkit::kusto_client::KustoClient;
use local_adx::{Emulator, EmulatorOptions};

pub struct LoopbackEndpoint {
    pub emulator: Emulator,
    pub client: KustoClient,
    pub token: String,
    pub database: &'static str,
}

impl LoopbackEndpoint {
    pub async fn start(database: &'static str) -> Result<Self> {
        let token = format!("bench-{:x}", now_nanos());
        let emulator = Emulator::start(EmulatorOptions::loopback(&token)).await?;
        let client = KustoClient::new(&emulator.url(), &token);
        client
            .management(
                database,
                &format!(".alter database ['{database}'] policy streamingingestion enable"),
            )
            .await?;
        Ok(Self {
            emulator,
            client,
            token,
            database,
        })
    }

    /// Opens the plugin of `runtime` (its HTTP over loopback) into `table`, made with
    /// `schema`, its `MqttTopic` column the topic, with `batching` settings.
    pub async fn open(
        &self,
        runtime: &PluginRuntime,
        name: &str,
        table: &str,
        schema: &str,
        batching: &[(&str, &str)],
    ) -> Result<PluginSink> {
        let runtime = runtime
            .clone()
            .with_transport(Arc::new(HttpClient::system()));
        let settings: Vec<(String, String)> = [
            ("host", self.emulator.url().as_str()),
            ("database", self.database),
            ("table", table),
            ("schema", schema),
            ("columns.MqttTopic", "$metadata.topic"),
        ]
        .iter()
        .chain(batching)
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        runtime
            .open(
                name,
                &self.emulator.url(),
                Arc::new(StaticToken(self.token.clone())),
                settings,
            )
            .await
    }
}
