//! MQTT 5 through rumqttc: a persistent session with an expiry, the receive maximum as the
//! in-flight window, user properties and content type carried to the plugin.

use std::path::Path;
use std::time::Duration;

use anyhow::Result;
use rumqttc::v5::mqttbytes::v5::{Filter, Packet, Publish, SubscribeReasonCode};
use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::{AsyncClient, Event, EventLoop, MqttOptions, Request};
use rumqttc::{Outgoing, Transport};

use super::{source_message, Incoming, MqttSourceOptions, Protocol, MAX_PACKET_BYTES};

pub struct V5;

impl Protocol for V5 {
    type Client = AsyncClient;
    type Events = EventLoop;

    fn connect(options: &MqttSourceOptions, link: &Path) -> (AsyncClient, EventLoop) {
        let endpoint = &options.endpoint;
        let mut mqtt = MqttOptions::new(&options.client_id, link.to_string_lossy(), 0);
        mqtt.set_transport(Transport::Unix);
        mqtt.set_clean_start(false)
            .set_session_expiry_interval(Some(endpoint.session_expiry_seconds))
            .set_receive_maximum(Some(endpoint.max_inflight_messages))
            .set_keep_alive(Duration::from_secs(u64::from(
                endpoint.keep_alive_seconds.max(5),
            )))
            .set_max_packet_size(Some(MAX_PACKET_BYTES))
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
            Event::Incoming(Packet::Publish(publish)) => {
                let (content_type, user_properties) = match publish.properties {
                    Some(p) => (p.content_type, p.user_properties),
                    None => (None, Vec::new()),
                };
                let topic = String::from_utf8_lossy(&publish.topic).into_owned();
                Incoming::Message {
                    message: source_message(topic, &publish.payload, content_type, user_properties),
                    // The subscription is QoS 1, so a delivery is QoS 0 or 1 (MQTT 5 §3.8.4).
                    pkid: (publish.qos != QoS::AtMostOnce).then_some(publish.pkid),
                }
            }
            Event::Outgoing(Outgoing::PubAck(_)) => Incoming::Acknowledged,
            Event::Outgoing(Outgoing::Disconnect) => Incoming::Disconnected,
            _ => Incoming::Other,
        })
    }

    fn subscribe(client: &AsyncClient, filters: &[String]) -> Result<()> {
        let filters = filters.iter().map(|f| Filter::new(f, QoS::AtLeastOnce));
        client.try_subscribe_many(filters)?;
        Ok(())
    }

    fn acknowledge(client: &AsyncClient, pkid: u16) -> bool {
        let ack = Publish {
            qos: QoS::AtLeastOnce,
            pkid,
            ..Publish::default()
        };
        client.try_ack(&ack).is_ok()
    }

    fn forget_acknowledgements(events: &mut EventLoop) {
        events.clean();
        events
            .pending
            .retain(|request| !matches!(request, Request::PubAck(_)));
    }

    fn authenticate_with(events: &mut EventLoop, method: &str, data: Vec<u8>) -> bool {
        events
            .options
            .set_authentication_method(Some(method.to_string()))
            .set_authentication_data(Some(data.into()));
        true
    }

    fn disconnect(client: &AsyncClient) {
        let _ = client.try_disconnect();
    }
}
