//! The contract's 1.1 `accept-batch`, used when a plugin exports it: many messages in three
//! flat lists, so handing them over costs three allocations in the plugin instead of several
//! per message. The types mirror `message-batch` in wit/destination.wit; wasmtime checks them
//! against the component's own when the function is looked up, so a mismatch is an error at
//! load, never a bad call. A 1.0 plugin gets `accept` as before.

use adx_destination::packed::{self, PackedBatch, Unpacked};
use anyhow::{Context, Result};
use wasmtime::component::{
    Component, ComponentExportIndex, ComponentType, Instance, Lower, ResourceAny, TypedFunc,
};
use wasmtime::Store;

use super::contract::DESTINATION_INTERFACE;
use super::state::PluginState;
use super::{Message, Outcome};

/// The contract version that added `accept-batch`.
const SINCE: &str = "1.1.0";

#[derive(ComponentType, Lower, Clone, Copy)]
#[component(record)]
pub struct Span {
    start: u32,
    len: u32,
}

#[derive(ComponentType, Lower, Clone, Copy)]
#[component(record)]
pub struct PackedMessage {
    sequence: u64,
    #[component(name = "timestamp-nanos")]
    timestamp_nanos: u64,
    topic: Span,
    payload: Span,
    #[component(name = "content-type")]
    content_type: Option<Span>,
    #[component(name = "user-properties")]
    user_properties: Span,
}

#[derive(ComponentType, Lower, Clone, Copy)]
#[component(record)]
pub struct PackedProperty {
    name: Span,
    value: Span,
}

#[derive(ComponentType, Lower)]
#[component(record)]
pub struct MessageBatch {
    data: Vec<u8>,
    messages: Vec<PackedMessage>,
    properties: Vec<PackedProperty>,
}

pub type AcceptBatch = TypedFunc<(ResourceAny, MessageBatch), (Outcome,)>;

/// Where the component exports `accept-batch`, if it does.
pub fn find(component: &Component) -> Option<ComponentExportIndex> {
    let interface = component.get_export_index(None, format!("{DESTINATION_INTERFACE}@{SINCE}"))?;
    component.get_export_index(Some(&interface), "[method]sink.accept-batch")
}

/// The typed function in one instance.
pub fn typed(
    store: &mut Store<PluginState>,
    instance: &Instance,
    index: &ComponentExportIndex,
) -> Result<AcceptBatch> {
    instance
        .get_typed_func(store, index)
        .map_err(anyhow::Error::from)
        .context("the plugin's accept-batch does not have the contract's shape")
}

impl MessageBatch {
    /// Packs the messages with the plugin core's own packer, so both sides agree on the layout.
    pub fn pack(messages: &[Message]) -> Self {
        let batch = PackedBatch::pack(messages.iter().map(|m| {
            Unpacked {
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
        let span = |s: packed::Span| Span {
            start: s.start,
            len: s.len,
        };
        Self {
            data: batch.data,
            messages: batch
                .messages
                .iter()
                .map(|m| PackedMessage {
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
                .map(|p| PackedProperty {
                    name: span(p.name),
                    value: span(p.value),
                })
                .collect(),
        }
    }
}
