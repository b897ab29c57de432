//! Dead letters published to an MQTT topic: QoS 1, and a write counts only when the broker
//! acknowledged every entry with success. "No matching subscribers" is not success: the
//! broker would drop the entry, so the write waits (and says why) until someone subscribes.

use std::time::Duration;

use anyhow::{anyhow, Result};
use rumqttc::v5::mqttbytes::v5::{Packet, PubAckReason};
use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::{AsyncClient, Event, EventLoop, MqttOptions};
use tokio::sync::{mpsc, oneshot};

use crate::config::MqttEndpoint;

const RETRY_DELAY: Duration = Duration::from_secs(1);
const ANSWER_TIMEOUT: Duration = Duration::from_secs(30);

type Request = (Vec<Vec<u8>>, oneshot::Sender<()>);

/// A connection that publishes batches of entries to one topic and confirms each batch.
pub struct MqttDeadLetters {
    pub topic: String,
    requests: mpsc::Sender<Request>,
}

impl MqttDeadLetters {
    pub fn start(endpoint: &MqttEndpoint, client_id: String, topic: String) -> Self {
        let (requests, receiver) = mpsc::channel(1);
        let worker = Worker {
            endpoint: endpoint.clone(),
            client_id,
            topic: topic.clone(),
            session: None,
        };
        tokio::spawn(worker.run(receiver));
        Self { topic, requests }
    }

    /// Returns once the broker acknowledged every entry with success.
    pub async fn publish(&self, entries: Vec<Vec<u8>>) -> Result<()> {
        let (done, confirmed) = oneshot::channel();
        self.requests
            .send((entries, done))
            .await
            .map_err(|_| anyhow!("the dead-letter publisher stopped"))?;
        confirmed
            .await
            .map_err(|_| anyhow!("the dead-letter publisher stopped"))
    }
}

struct Worker {
    endpoint: MqttEndpoint,
    client_id: String,
    topic: String,
    session: Option<(AsyncClient, EventLoop)>,
}

impl Worker {
    async fn run(mut self, mut requests: mpsc::Receiver<Request>) {
        while let Some((entries, done)) = requests.recv().await {
            let mut attempt = 0u32;
            loop {
                match self.publish(&entries).await {
                    Ok(()) => break,
                    Err(e) => {
                        attempt += 1;
                        self.session = None;
                        let delay = RETRY_DELAY * attempt.min(30);
                        tracing::warn!(
                            "dead letters to MQTT topic `{}` not confirmed: {e}; the messages stay unacknowledged, trying again in {} s",
                            self.topic,
                            delay.as_secs()
                        );
                        tokio::time::sleep(delay).await;
                    }
                }
            }
            let _ = done.send(());
        }
    }

    async fn publish(&mut self, entries: &[Vec<u8>]) -> Result<()> {
        if self.session.is_none() {
            let session = connect(&self.endpoint, &self.client_id, entries.len()).await?;
            self.session = Some(session);
        }
        let (client, eventloop) = self.session.as_mut().expect("connected");
        for entry in entries {
            client.try_publish(&self.topic, QoS::AtLeastOnce, false, entry.clone())?;
        }
        tokio::time::timeout(ANSWER_TIMEOUT, async {
            let mut confirmed = 0;
            while confirmed < entries.len() {
                if let Event::Incoming(Packet::PubAck(ack)) = eventloop.poll().await? {
                    match ack.reason {
                        PubAckReason::Success => confirmed += 1,
                        PubAckReason::NoMatchingSubscribers => {
                            return Err(anyhow!(
                                "the broker has no subscriber for it and would drop it"
                            ))
                        }
                        other => return Err(anyhow!("the broker refused it: {other:?}")),
                    }
                }
            }
            Ok(())
        })
        .await
        .map_err(|_| anyhow!("no answer from the broker within {ANSWER_TIMEOUT:?}"))?
    }
}

async fn connect(
    endpoint: &MqttEndpoint,
    client_id: &str,
    batch: usize,
) -> Result<(AsyncClient, EventLoop)> {
    let mut options = MqttOptions::new(client_id, &endpoint.host, endpoint.port);
    options
        .set_clean_start(true)
        .set_keep_alive(Duration::from_secs(60));
    let (client, mut eventloop) = AsyncClient::new(options, batch + 16);
    tokio::time::timeout(ANSWER_TIMEOUT, async {
        loop {
            if let Event::Incoming(Packet::ConnAck(_)) = eventloop.poll().await? {
                return Ok::<_, anyhow::Error>(());
            }
        }
    })
    .await
    .map_err(|_| anyhow!("no answer from the broker within {ANSWER_TIMEOUT:?}"))??;
    Ok((client, eventloop))
}
