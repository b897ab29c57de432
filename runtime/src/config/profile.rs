//! `DataflowProfile` resources (howto-configure-dataflow-profile): how many instances run
//! each of its dataflows. Azure IoT Operations creates the profile `default`, with one
//! instance; a configuration may declare it or others.

use super::problem::Reader;
use super::yaml::Mapping;

/// The profile Azure IoT Operations creates at deployment.
pub const DEFAULT_PROFILE: &str = "default";

/// howto-configure-dataflow-profile: at most 20 instances.
const MAX_INSTANCES: u64 = 20;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Profile {
    pub name: String,
    /// Instances that share each dataflow of the profile. Above one, every MQTT source
    /// subscribes through a shared subscription, so that the broker spreads the messages
    /// among them (howto-configure-dataflow-source, "Shared subscriptions").
    pub instance_count: u16,
}

impl Profile {
    pub fn default_profile() -> Self {
        Self {
            name: DEFAULT_PROFILE.into(),
            instance_count: 1,
        }
    }
}

pub fn read(r: &mut Reader, name: &str, spec: &Mapping) -> Option<Profile> {
    r.check_keys(spec, "spec", &["instanceCount", "diagnostics"]);
    if spec.contains_key("diagnostics") {
        r.report(
            "spec.diagnostics",
            "this host does not take its log level or metrics port from the profile: set them with RUST_LOG and --metrics-addr (every dataflow of the process shares them); leave diagnostics out",
        );
    }
    let instance_count = r
        .integer(spec, "spec", "instanceCount", 1..=MAX_INSTANCES)
        .unwrap_or(1);
    Some(Profile {
        name: name.to_string(),
        instance_count: instance_count as u16,
    })
}
