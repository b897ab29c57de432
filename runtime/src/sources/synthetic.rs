//! A synthetic thermostat fleet: the sample data of the ADX endpoint documentation, with
//! sub-second timestamps. Deterministic for a given message index.

use std::sync::{Arc, OnceLock};

use super::{now_nanos, Origin, SourceMessage, SourceSender};
use kusto_model::datetime::DateTime;

pub const THERMOSTAT_TABLE: &str = ".create table thermostat (externalAssetId: string, assetName: string, CurrentTemperature: real, Pressure: real, MqttTopic: string, Timestamp: datetime)";

const DEVICES: u64 = 16;

/// The source name of generated messages, made once.
fn generator() -> &'static Arc<str> {
    static NAME: OnceLock<Arc<str>> = OnceLock::new();
    NAME.get_or_init(|| Arc::from("generator"))
}

/// The `index`-th message of the fleet.
pub fn thermostat_message(index: u64, base_time_nanos: u64) -> SourceMessage {
    let device = index % DEVICES;
    // A cheap, well-spread pseudo-random sequence (SplitMix64).
    let mut z = index.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^= z >> 31;
    let temperature = 18.0 + (z % 1200) as f64 / 100.0;
    let pressure = 990.0 + ((z >> 16) % 4000) as f64 / 100.0;
    let timestamp = DateTime::from_unix_nanos(base_time_nanos + index * 1_000_300);
    let payload = format!(
        r#"{{"externalAssetId":"a5c9e2f1-0000-4000-8000-{device:012x}","assetName":"thermostat-{device:02}","CurrentTemperature":{temperature:.2},"Pressure":{pressure:.2},"Timestamp":"{timestamp}"}}"#
    );
    SourceMessage {
        topic: format!("factory/line{}/thermostat-{device:02}", device % 4 + 1),
        payload: payload.into_bytes(),
        content_type: Some("application/json".into()),
        user_properties: vec![("device".into(), format!("thermostat-{device:02}"))],
        timestamp_nanos: base_time_nanos + index * 1_000_300,
        origin: Origin::Line {
            source: Arc::clone(generator()),
            line: index,
        },
        receipt: None,
    }
}

/// Sends `count` thermostat messages; stops early if the receiver goes away.
pub async fn generate(count: u64, sender: SourceSender) -> u64 {
    let base = now_nanos();
    for index in 0..count {
        if sender.send(thermostat_message(index, base)).await.is_err() {
            return index;
        }
    }
    count
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_valid_json_with_the_documented_fields() {
        let m = thermostat_message(7, 1_764_325_230_000_000_000);
        let v: serde_json::Value = serde_json::from_slice(&m.payload).unwrap();
        assert_eq!(v["assetName"], "thermostat-07");
        assert!(v["CurrentTemperature"].as_f64().unwrap() >= 18.0);
        assert_eq!(v["Timestamp"], "2025-11-28T10:20:30.0070021Z");
        assert_eq!(m.topic, "factory/line4/thermostat-07");
    }
}
