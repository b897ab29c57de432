//! MQTT 3.1.1 through rumqttc: a persistent session (clean session off); no properties, and
//! no receive maximum (the broker's own in-flight limit applies).

use std::path::Path;
use std::time::Duration;

use anyhow::Result;
use rumqttc::{
    AsyncClient, Event, EventLoop, MqttOptions, Outgoing, Packet, Publish, QoS, Request,
    SubscribeFilter, SubscribeReasonCode, Transport,
};

use super::{source_message, Incoming, MqttSourceOptions, Protocol, MAX_PACKET_BYTES};

pub struct V311;

impl Protocol for V311 {
    type Client = AsyncClient;
    type Events = EventLoop;

    fn connect(options: &MqttSourceOptions, link: &Path) -> (AsyncClient, EventLoop) {
        let endpoint = &options.endpoint;
        let mut mqtt = MqttOptions::new(&options.client_id, link.to_string_lossy(), 0);
        mqtt.set_transport(Transport::Unix);
        mqtt.set_clean_session(false)
            .set_keep_alive(Duration::from_secs(u64::from(
                endpoint.keep_alive_seconds.max(5),
            )))
            .set_max_packet_size(MAX_PACKET_BYTES as usize, MAX_PACKET_BYTES as usize)
            .set_manual_acks(true)
            .set_request_channel_capacity(2 * options.window() + 16);
        AsyncClient::new(mqtt, 2 * options.window() + 16)
    }

    async fn poll(events: &mut EventLoop) -> Result<Incoming, String> {
        let event = events.poll().await.map_err(|e| e.to_string())?;
        Ok(match event {
            Event::Incoming(Packet::ConnAck(ack)) => Incoming::Connected {
                session_present: ack.session_present,
            },
            Event::Incoming(Packet::SubAck(ack)) => Incoming::Subscribed {
                refusals: ack
                    .return_codes
                    .iter()
                    .map(|code| match code {
                        SubscribeReasonCode::Success(_) => None,
                        refused => Some(format!("{refused:?}")),
                    })
                    .collect(),
            },
            Event::Incoming(Packet::Publish(publish)) => Incoming::Message {
                // The subscription is QoS 1, so a delivery is QoS 0 or 1 (MQTT 3.1.1 §3.8.4).
                pkid: (publish.qos != QoS::AtMostOnce).then_some(publish.pkid),
                message: source_message(publish.topic, &publish.payload, None, Vec::new()),
            },
            Event::Outgoing(Outgoing::PubAck(_)) => Incoming::Acknowledged,
            Event::Outgoing(Outgoing::Disconnect) => Incoming::Disconnected,
            _ => Incoming::Other,
        })
    }

    fn subscribe(client: &AsyncClient, filters: &[String]) -> Result<()> {
        let filters = filters
            .iter()
            .map(|f| SubscribeFilter::new(f.clone(), QoS::AtLeastOnce));
        client.try_subscribe_many(filters)?;
        Ok(())
    }

    fn acknowledge(client: &AsyncClient, pkid: u16) -> bool {
        let mut ack = Publish::new("", QoS::AtLeastOnce, Vec::new());
        ack.pkid = pkid;
        client.try_ack(&ack).is_ok()
    }

    fn forget_acknowledgements(events: &mut EventLoop) {
        events.clean();
        events
            .pending
            .retain(|request| !matches!(request, Request::PubAck(_)));
    }

    /// MQTT 3.1.1 has no enhanced authentication; token methods are refused before a
    /// source starts with this version.
    fn authenticate_with(_: &mut EventLoop, _: &str, _: Vec<u8>) -> bool {
        false
    }

    fn disconnect(client: &AsyncClient) {
        let _ = client.try_disconnect();
    }
}
