//! A publisher of numbered test messages: QoS 1, in chunks, each chunk published again on a
//! new connection until the broker acknowledged all of it (so a broker restart loses nothing
//! on the publishing side; the duplicates it may cause are counted like any other).

use std::time::{Duration, Instant};

use rumqttc::v5::mqttbytes::v5::Packet;
use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::{AsyncClient, Event, EventLoop, MqttOptions};

const CHUNK: usize = 100;

/// One message to publish.
#[derive(Debug, Clone)]
pub struct Outgoing {
    pub topic: String,
    pub payload: Vec<u8>,
}

/// Publishes every message, at most `per_second` of them per second when given; returns
/// how many publish attempts had to be repeated.
pub async fn publish_all(port: u16, messages: Vec<Outgoing>, per_second: Option<u64>) -> u64 {
    let started = Instant::now();
    let mut next = 0;
    let mut repeated = 0u64;
    let mut session: Option<(AsyncClient, EventLoop)> = None;
    let mut connections = 0;
    while next < messages.len() {
        if let Some(rate) = per_second {
            let due = started + Duration::from_secs_f64(next as f64 / rate as f64);
            tokio::time::sleep_until(due.into()).await;
        }
        if session.is_none() {
            connections += 1;
            session = connect(port, connections).await;
            if session.is_none() {
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
        }
        let (client, eventloop) = session.as_mut().expect("connected");
        let end = (next + CHUNK).min(messages.len());
        for message in &messages[next..end] {
            client
                .try_publish(
                    &message.topic,
                    QoS::AtLeastOnce,
                    false,
                    message.payload.clone(),
                )
                .expect("the request channel holds a chunk");
        }
        let wanted = end - next;
        let acknowledged = tokio::time::timeout(Duration::from_secs(10), async {
            let mut acked = 0;
            loop {
                match eventloop.poll().await {
                    Ok(Event::Incoming(Packet::PubAck(_))) => {
                        acked += 1;
                        if acked == wanted {
                            return true;
                        }
                    }
                    Ok(_) => {}
                    Err(_) => return false,
                }
            }
        })
        .await
        .unwrap_or(false);
        if acknowledged {
            next = end;
        } else {
            repeated += wanted as u64;
            session = None;
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    if let Some((client, mut eventloop)) = session {
        let _ = client.try_disconnect();
        let _ = tokio::time::timeout(Duration::from_secs(2), async {
            while eventloop.poll().await.is_ok() {}
        })
        .await;
    }
    repeated
}

async fn connect(port: u16, attempt: u32) -> Option<(AsyncClient, EventLoop)> {
    let id = format!("test-publisher-{}-{port}-{attempt}", std::process::id());
    let mut options = MqttOptions::new(id, "127.0.0.1", port);
    options.set_clean_start(true);
    let (client, mut eventloop) = AsyncClient::new(options, CHUNK + 16);
    let connected = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match eventloop.poll().await {
                Ok(Event::Incoming(Packet::ConnAck(_))) => return true,
                Ok(_) => {}
                Err(_) => return false,
            }
        }
    })
    .await
    .unwrap_or(false);
    connected.then_some((client, eventloop))
}

/// A subscriber that keeps every payload it receives on `filter`.
pub struct Collector {
    pub received: std::sync::Arc<std::sync::Mutex<Vec<Vec<u8>>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Collector {
    /// Returns once the subscription is in place.
    pub async fn start(port: u16, filter: &str) -> Self {
        let id = format!("test-collector-{}-{port}", std::process::id());
        let mut options = MqttOptions::new(id, "127.0.0.1", port);
        options.set_max_packet_size(Some(1024 * 1024));
        let (client, mut eventloop) = AsyncClient::new(options, 16);
        client.subscribe(filter, QoS::AtLeastOnce).await.unwrap();
        loop {
            if let Event::Incoming(Packet::SubAck(_)) = eventloop.poll().await.unwrap() {
                break;
            }
        }
        let received = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let sink = received.clone();
        let task = tokio::spawn(async move {
            let _client = client;
            while let Ok(event) = eventloop.poll().await {
                if let Event::Incoming(Packet::Publish(publish)) = event {
                    sink.lock().unwrap().push(publish.payload.to_vec());
                }
            }
        });
        Self { received, task }
    }
}

impl Drop for Collector {
    fn drop(&mut self) {
        self.task.abort();
    }
}
