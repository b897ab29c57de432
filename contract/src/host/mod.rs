//! The host's side of the contract: wasmtime bindings generated from the WIT of every
//! supported version, and [`PluginPre`] / [`Plugin`], one typed face over them. A plugin is
//! called through the bindings of the newest version it implements (newest first, older as
//! fallback), so a 1.0 plugin gets `accept` with a list, a 1.1 plugin packed batches, and a
//! 1.2 plugin packed batches answered with classified rejections.
//!
//! All versions share the 1.2 types (each version's `types` is a subset of the next), so the
//! runtime has one `Message`, one `DestinationError`, one `Statistics`; an older plugin's
//! `outcome` is converted into 1.2's `classified-outcome`, its rejections of kind `other`.

mod summary;

use anyhow::Context;
use wasmtime::component::{Component, InstancePre, ResourceAny};
use wasmtime::Result;
use wasmtime::Store;

use crate::packed;
use crate::version::Version;
pub use summary::ComponentSummary;

/// Contract 1.2: classified rejections.
pub mod v1_2 {
    wasmtime::component::bindgen!({
        path: "wit/1.2.0",
        world: "dataflow:destination/destination-plugin",
        exports: { default: async },
        with: {
            "wasi:http": wasmtime_wasi_http::p2::bindings::http,
            "wasi:io": wasmtime_wasi::p2::bindings::io,
            "wasi:clocks": wasmtime_wasi::p2::bindings::clocks,
            "wasi:random": wasmtime_wasi::p2::bindings::random,
        },
    });
}

/// Contract 1.1: packed batches.
pub mod v1_1 {
    wasmtime::component::bindgen!({
        path: "wit/1.1.0",
        world: "dataflow:destination/destination-plugin",
        exports: { default: async },
        with: {
            "wasi:http": wasmtime_wasi_http::p2::bindings::http,
            "wasi:io": wasmtime_wasi::p2::bindings::io,
            "wasi:clocks": wasmtime_wasi::p2::bindings::clocks,
            "wasi:random": wasmtime_wasi::p2::bindings::random,
            "dataflow:destination/types@1.1.0": super::v1_2::dataflow::destination::types,
            "dataflow:destination/log@1.1.0": super::v1_2::dataflow::destination::log,
        },
    });
}

/// Contract 1.0: a list of messages per call.
pub mod v1_0 {
    wasmtime::component::bindgen!({
        path: "wit/1.0.0",
        world: "dataflow:destination/destination-plugin",
        exports: { default: async },
        with: {
            "wasi:http": wasmtime_wasi_http::p2::bindings::http,
            "wasi:io": wasmtime_wasi::p2::bindings::io,
            "wasi:clocks": wasmtime_wasi::p2::bindings::clocks,
            "wasi:random": wasmtime_wasi::p2::bindings::random,
            "dataflow:destination/types@1.0.0": super::v1_2::dataflow::destination::types,
            "dataflow:destination/log@1.0.0": super::v1_2::dataflow::destination::log,
        },
    });
}

/// The `log` import every version shares; the host implements `log::Host`.
pub use v1_2::dataflow::destination::log;
use v1_2::dataflow::destination::types as wit;
pub use v1_2::dataflow::destination::types::{
    ClassifiedOutcome, ClassifiedRejection, DestinationError, ErrorClass, Message, Outcome,
    Rejection, RejectionKind, Statistics,
};

/// A linked component, bound through the bindings of one contract version.
pub enum PluginPre<T: 'static> {
    V1_0(v1_0::DestinationPluginPre<T>),
    V1_1(v1_1::DestinationPluginPre<T>),
    V1_2(v1_2::DestinationPluginPre<T>),
}

impl<T: Send + 'static> Clone for PluginPre<T> {
    fn clone(&self) -> Self {
        match self {
            Self::V1_0(pre) => Self::V1_0(pre.clone()),
            Self::V1_1(pre) => Self::V1_1(pre.clone()),
            Self::V1_2(pre) => Self::V1_2(pre.clone()),
        }
    }
}

/// The newest version of this crate's bindings a plugin of `declared` can be called through.
pub fn bindings_for(declared: Version) -> Version {
    crate::version::SUPPORTED
        .into_iter()
        .rev()
        .find(|v| v.major == declared.major && v.minor <= declared.minor)
        .unwrap_or(crate::version::SUPPORTED[0])
}

impl<T: Send + 'static> PluginPre<T> {
    /// Binds `pre`, whose component declares contract `declared`, through the newest
    /// bindings it implements; wasmtime checks every export's shape here, at load.
    pub fn new(declared: Version, pre: InstancePre<T>) -> anyhow::Result<Self> {
        let bindings = bindings_for(declared);
        let shape = || {
            format!(
                "the plugin's {}@{declared} does not have the shape of contract {bindings}",
                crate::version::DESTINATION_INTERFACE
            )
        };
        Ok(match bindings.minor {
            0 => Self::V1_0(
                v1_0::DestinationPluginPre::new(pre)
                    .map_err(anyhow::Error::from)
                    .with_context(shape)?,
            ),
            1 => Self::V1_1(
                v1_1::DestinationPluginPre::new(pre)
                    .map_err(anyhow::Error::from)
                    .with_context(shape)?,
            ),
            _ => Self::V1_2(
                v1_2::DestinationPluginPre::new(pre)
                    .map_err(anyhow::Error::from)
                    .with_context(shape)?,
            ),
        })
    }

    /// The contract version whose bindings call the plugin.
    pub fn bindings(&self) -> Version {
        match self {
            Self::V1_0(_) => Version::new(1, 0, 0),
            Self::V1_1(_) => Version::new(1, 1, 0),
            Self::V1_2(_) => Version::new(1, 2, 0),
        }
    }

    pub fn component(&self) -> &Component {
        match self {
            Self::V1_0(pre) => pre.instance_pre().component(),
            Self::V1_1(pre) => pre.instance_pre().component(),
            Self::V1_2(pre) => pre.instance_pre().component(),
        }
    }

    pub async fn instantiate(&self, store: &mut Store<T>) -> Result<Plugin> {
        Ok(match self {
            Self::V1_0(pre) => Plugin::V1_0(pre.instantiate_async(store).await?),
            Self::V1_1(pre) => Plugin::V1_1(pre.instantiate_async(store).await?),
            Self::V1_2(pre) => Plugin::V1_2(pre.instantiate_async(store).await?),
        })
    }
}

/// One instance of a plugin, called through the bindings of its version.
pub enum Plugin {
    V1_0(v1_0::DestinationPlugin),
    V1_1(v1_1::DestinationPlugin),
    V1_2(v1_2::DestinationPlugin),
}

impl Plugin {
    pub async fn open<T: Send>(
        &self,
        store: &mut Store<T>,
        config: &[(String, String)],
    ) -> Result<Result<ResourceAny, DestinationError>> {
        // The generated call takes the `list<tuple<string, string>>` as a `Vec`.
        let config = &config.to_vec();
        match self {
            Self::V1_0(p) => {
                p.dataflow_destination_destination()
                    .sink()
                    .call_open(store, config)
                    .await
            }
            Self::V1_1(p) => {
                p.dataflow_destination_destination()
                    .sink()
                    .call_open(store, config)
                    .await
            }
            Self::V1_2(p) => {
                p.dataflow_destination_destination()
                    .sink()
                    .call_open(store, config)
                    .await
            }
        }
    }

    /// Hands over messages: as a list to a 1.0 plugin, packed to later ones.
    pub async fn accept<T: Send>(
        &self,
        store: &mut Store<T>,
        sink: ResourceAny,
        messages: &[Message],
    ) -> Result<ClassifiedOutcome> {
        match self {
            Self::V1_0(p) => {
                let sink_api = p.dataflow_destination_destination().sink();
                Ok(sink_api.call_accept(store, sink, messages).await?.into())
            }
            Self::V1_1(p) => {
                let sink_api = p.dataflow_destination_destination().sink();
                let batch = pack(messages);
                Ok(sink_api
                    .call_accept_batch(store, sink, &batch)
                    .await?
                    .into())
            }
            Self::V1_2(p) => {
                let sink_api = p.dataflow_destination_destination().sink();
                let batch = pack(messages);
                sink_api
                    .call_accept_batch_classified(store, sink, &batch)
                    .await
            }
        }
    }

    pub async fn next_flush_due_ms<T: Send>(
        &self,
        store: &mut Store<T>,
        sink: ResourceAny,
    ) -> Result<Option<u64>> {
        match self {
            Self::V1_0(p) => {
                p.dataflow_destination_destination()
                    .sink()
                    .call_next_flush_due_ms(store, sink)
                    .await
            }
            Self::V1_1(p) => {
                p.dataflow_destination_destination()
                    .sink()
                    .call_next_flush_due_ms(store, sink)
                    .await
            }
            Self::V1_2(p) => {
                p.dataflow_destination_destination()
                    .sink()
                    .call_next_flush_due_ms(store, sink)
                    .await
            }
        }
    }

    pub async fn flush<T: Send>(
        &self,
        store: &mut Store<T>,
        sink: ResourceAny,
    ) -> Result<ClassifiedOutcome> {
        match self {
            Self::V1_0(p) => Ok(p
                .dataflow_destination_destination()
                .sink()
                .call_flush(store, sink)
                .await?
                .into()),
            Self::V1_1(p) => Ok(p
                .dataflow_destination_destination()
                .sink()
                .call_flush(store, sink)
                .await?
                .into()),
            Self::V1_2(p) => {
                p.dataflow_destination_destination()
                    .sink()
                    .call_flush_classified(store, sink)
                    .await
            }
        }
    }

    pub async fn close<T: Send>(
        &self,
        store: &mut Store<T>,
        sink: ResourceAny,
    ) -> Result<ClassifiedOutcome> {
        match self {
            Self::V1_0(p) => Ok(p
                .dataflow_destination_destination()
                .sink()
                .call_close(store, sink)
                .await?
                .into()),
            Self::V1_1(p) => Ok(p
                .dataflow_destination_destination()
                .sink()
                .call_close(store, sink)
                .await?
                .into()),
            Self::V1_2(p) => {
                p.dataflow_destination_destination()
                    .sink()
                    .call_close_classified(store, sink)
                    .await
            }
        }
    }

    pub async fn statistics<T: Send>(
        &self,
        store: &mut Store<T>,
        sink: ResourceAny,
    ) -> Result<Statistics> {
        match self {
            Self::V1_0(p) => {
                p.dataflow_destination_destination()
                    .sink()
                    .call_statistics(store, sink)
                    .await
            }
            Self::V1_1(p) => {
                p.dataflow_destination_destination()
                    .sink()
                    .call_statistics(store, sink)
                    .await
            }
            Self::V1_2(p) => {
                p.dataflow_destination_destination()
                    .sink()
                    .call_statistics(store, sink)
                    .await
            }
        }
    }
}

/// A plugin before 1.2 does not say why it rejects: its rejections are of kind `other`.
impl From<Outcome> for ClassifiedOutcome {
    fn from(outcome: Outcome) -> Self {
        Self {
            ingested: outcome.ingested,
            rejected: outcome
                .rejected
                .into_iter()
                .map(|r| ClassifiedRejection {
                    sequence: r.sequence,
                    kind: RejectionKind::Other,
                    reason: r.reason,
                })
                .collect(),
            failure: outcome.failure,
        }
    }
}

impl RejectionKind {
    /// The kind as the contract spells it, for metrics labels and dead letters.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Conversion => "conversion",
            Self::Payload => "payload",
            Self::Size => "size",
            Self::RefusedByDestination => "refused-by-destination",
            Self::Other => "other",
        }
    }
}

/// Packs messages with the contract's packer into the generated `message-batch`.
pub fn pack(messages: &[Message]) -> wit::MessageBatch {
    let batch = packed::MessageBatch::pack(messages.iter().map(|m| {
        packed::Unpacked {
            sequence: m.sequence,
            timestamp_nanos: m.timestamp_nanos,
            topic: &m.topic,
            payload: &m.payload,
            content_type: m.content_type.as_deref(),
            user_properties: m
                .user_properties
                .iter()
                .map(|(name, value)| (name.as_str(), value.as_str())),
        }
    }));
    let span = |s: packed::Span| wit::Span {
        start: s.start,
        len: s.len,
    };
    wit::MessageBatch {
        data: batch.data,
        messages: batch
            .messages
            .iter()
            .map(|m| wit::PackedMessage {
                sequence: m.sequence,
                timestamp_nanos: m.timestamp_nanos,
                topic: span(m.topic),
                payload: span(m.payload),
                content_type: m.content_type.map(span),
                user_properties: span(m.user_properties),
            })
            .collect(),
        properties: batch
            .properties
            .iter()
            .map(|p| wit::PackedProperty {
                name: span(p.name),
                value: span(p.value),
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plugin_is_called_through_the_newest_bindings_its_version_has() {
        let v = Version::new;
        assert_eq!(bindings_for(v(1, 0, 0)), v(1, 0, 0));
        assert_eq!(bindings_for(v(1, 1, 3)), v(1, 1, 0));
        assert_eq!(bindings_for(v(1, 2, 0)), v(1, 2, 0));
        // A later minor than this host knows: its 1.2 functions are there (minors only add).
        assert_eq!(bindings_for(v(1, 7, 0)), v(1, 2, 0));
    }

    #[test]
    fn older_outcomes_become_classified_as_other() {
        let outcome = Outcome {
            ingested: vec![1],
            rejected: vec![Rejection {
                sequence: 2,
                reason: "column `n` (long): string \"x\" is not a number".into(),
            }],
            failure: None,
        };
        let classified = ClassifiedOutcome::from(outcome);
        assert_eq!(classified.ingested, vec![1]);
        assert_eq!(classified.rejected[0].kind, RejectionKind::Other);
        assert_eq!(classified.rejected[0].sequence, 2);
    }
}
