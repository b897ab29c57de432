//! The dataflow's transformation between the source and the plugin: each message's JSON
//! payload through the compiled plan (enrich, filter, map). A message a filter drops is
//! settled as filtered; one a rule fails on is dead-lettered with the rule, its field path and
//! the values it read; the others go on to the plugin transformed.

use dataflow_transform::{Record, Transformation};
use serde_json::Value as Json;

use crate::plugin::{Message, Rejection, RejectionKind};
use crate::state_store::StateStoreDir;

pub struct TransformStage {
    plan: Transformation,
    /// Where the transformation is configured (`spec.operations[1].builtInTransformationSettings`).
    path: String,
    /// Where its datasets' records are, read again when they change.
    state_store: Option<StateStoreDir>,
}

impl TransformStage {
    pub fn new(plan: Transformation, path: String) -> Self {
        Self {
            plan,
            path,
            state_store: None,
        }
    }

    pub fn with_state_store(mut self, store: StateStoreDir) -> Self {
        self.state_store = Some(store);
        self
    }

    /// Transforms `messages` in place. Those already in `screened` are left alone; those that
    /// fail are added to it, and those a filter drops to `filtered`.
    pub fn apply(
        &mut self,
        messages: &mut [Message],
        screened: &mut Vec<Rejection>,
        filtered: &mut Vec<u64>,
        max_bytes: usize,
    ) {
        if let Some(refreshed) = self.state_store.as_mut().and_then(StateStoreDir::refresh) {
            match refreshed {
                Ok(records) => {
                    self.plan.bind_datasets(&records);
                    tracing::info!("{}.datasets: the state store changed; its records were read again", self.path);
                }
                Err(e) => tracing::warn!("{}.datasets: the state store changed and does not read ({e:#}); the records read before stay", self.path),
            }
        }
        let already = screened.len();
        for message in messages.iter_mut() {
            if screened[..already]
                .iter()
                .any(|r| r.sequence == message.sequence)
            {
                continue;
            }
            let reject = |kind, reason: String| Rejection {
                sequence: message.sequence,
                kind,
                reason,
            };
            let payload: Json = match serde_json::from_slice(&message.payload) {
                Ok(payload) => payload,
                Err(e) => {
                    screened.push(reject(
                        RejectionKind::Payload,
                        format!(
                            "the payload is not JSON ({e}); the transformation ({}) reads JSON",
                            self.path
                        ),
                    ));
                    continue;
                }
            };
            let mut record = Record {
                payload,
                topic: std::mem::take(&mut message.topic),
                content_type: message.content_type.take(),
                user_properties: std::mem::take(&mut message.user_properties),
            };
            let verdict = self.plan.apply_in_place(&mut record);
            // Transformed, or as it came (a dropped or failed record is left unchanged).
            message.topic = record.topic;
            message.content_type = record.content_type;
            message.user_properties = record.user_properties;
            match verdict {
                Ok(None) => {
                    // About as long as it came: written without growing the buffer on the way.
                    let mut payload = Vec::with_capacity(message.payload.len() + 64);
                    serde_json::to_writer(&mut payload, &record.payload)
                        .expect("JSON values serialize");
                    message.payload = payload;
                    if message.payload.len() > max_bytes {
                        screened.push(Rejection {
                            sequence: message.sequence,
                            kind: RejectionKind::Size,
                            reason: format!("the transformed message is {} bytes, more than the {max_bytes} this host hands to a plugin", message.payload.len()),
                        });
                    }
                }
                Ok(Some(rule)) => {
                    tracing::trace!(
                        "message {} dropped by {}.filter[{rule}]",
                        message.sequence,
                        self.path
                    );
                    filtered.push(message.sequence);
                }
                Err(failure) => {
                    // The message stays as it came, for the dead-letter sink.
                    screened.push(Rejection {
                        sequence: message.sequence,
                        kind: RejectionKind::Conversion,
                        reason: format!(
                            "{}.{}[{}]{} failed: {}",
                            self.path,
                            failure.stage.field(),
                            failure.rule,
                            self.plan
                                .description(failure.stage, failure.rule)
                                .map_or(String::new(), |d| format!(" (\"{d}\")")),
                            failure.message
                        ),
                    });
                }
            }
        }
    }
}
