//! The link to the broker. rumqttc speaks plain MQTT to a Unix socket of this process (in a
//! directory only this user can enter); the link owns the TCP connection and carries the
//! bytes over it, over TLS where the endpoint asks for it, and, between whole packets, adds
//! the MQTT 5 AUTH packet that re-authenticates with a renewed token, which rumqttc 0.25
//! cannot send, and takes the broker's answer out of the stream. So re-authentication keeps
//! the connection, its session and every acknowledgement in flight.
//!
//! Owning the socket is also what keeps a queued backlog flowing. A broker that leaves
//! Nagle's algorithm on (mosquitto's default, `set_tcp_nodelay false`) holds back each small
//! PUBLISH until the host has acknowledged the segment before at the TCP level, and Linux
//! delays that acknowledgement by up to 40 ms when the host has nothing to send back; with a
//! receive maximum of 100 a drain then stalls once per window. The link asks for an immediate
//! acknowledgement after every read and every write (`TCP_QUICKACK`, which the kernel turns
//! off again by itself) and sends its own writes at once (`TCP_NODELAY`).

use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rustls_pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpStream, UnixListener, UnixStream};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::credential::Credential;
use super::frames::{self, AuthAnswer, Splitter};
use super::MqttCounters;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How often a renewed token is looked for. Kubernetes rewrites a projected token when 80 %
/// of its lifetime has passed (at least 10 minutes are left), so seconds are plenty.
const RENEWAL_CHECK: Duration = Duration::from_secs(2);
const BUFFER_BYTES: usize = 64 * 1024;

#[derive(Clone)]
pub struct LinkOptions {
    pub host: String,
    pub port: u16,
    /// TLS with this configuration, the server's name checked against `host`.
    pub tls: Option<Arc<rustls::ClientConfig>>,
    /// Re-authentication with this credential whenever it is renewed.
    pub credential: Option<Arc<Credential>>,
    /// Where accepted re-authentications are counted.
    pub counters: Arc<MqttCounters>,
}

/// What the link saw, for the reader's messages and the counters.
#[derive(Default)]
pub struct LinkStatus {
    /// Why the last connection to the broker failed, until the reader takes it.
    error: Mutex<Option<String>>,
}

impl LinkStatus {
    pub fn take_error(&self) -> Option<String> {
        self.error.lock().expect("link status lock").take()
    }

    fn fail(&self, error: String) {
        *self.error.lock().expect("link status lock") = Some(error);
    }
}

pub struct Link {
    dir: PathBuf,
    socket: PathBuf,
    task: JoinHandle<()>,
    pub status: Arc<LinkStatus>,
}

impl Drop for Link {
    fn drop(&mut self) {
        self.task.abort();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Link {
    /// Where rumqttc connects (`Transport::Unix`).
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// Listens on a Unix socket in a new private directory under the temporary directory.
    pub fn start(options: LinkOptions) -> std::io::Result<Self> {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let dir = std::env::temp_dir().join(format!(
            "dataflow-host-link-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        {
            use std::os::unix::fs::DirBuilderExt;
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::DirBuilder::new().mode(0o700).create(&dir)?;
        }
        let socket = dir.join("broker.sock");
        let listener = UnixListener::bind(&socket)?;
        let status = Arc::new(LinkStatus::default());
        let task = tokio::spawn(serve(listener, options, status.clone()));
        Ok(Self {
            dir,
            socket,
            task,
            status,
        })
    }
}

/// One broker connection per connection of rumqttc, one at a time (rumqttc connects again
/// only after the last connection ended).
async fn serve(listener: UnixListener, options: LinkOptions, status: Arc<LinkStatus>) {
    while let Ok((local, _)) = listener.accept().await {
        if let Err(error) = carry(local, &options, &status).await {
            status.fail(error);
        }
    }
}

async fn carry(
    local: UnixStream,
    options: &LinkOptions,
    status: &LinkStatus,
) -> Result<(), String> {
    let address = format!("{}:{}", options.host, options.port);
    let tcp = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(&address))
        .await
        .map_err(|_| {
            format!(
                "no answer from {address} within {} s",
                CONNECT_TIMEOUT.as_secs()
            )
        })?
        .map_err(|e| format!("cannot connect to {address}: {e}"))?;
    let _ = tcp.set_nodelay(true);
    // The same socket, for its options once TLS or the split own the stream.
    let socket = tcp.as_fd().try_clone_to_owned().ok();
    let quick_ack = move || {
        if let Some(socket) = &socket {
            let _ = socket2::SockRef::from(socket).set_tcp_quickack(true);
        }
    };
    match &options.tls {
        None => pump(local, tcp, options, status, quick_ack).await,
        Some(config) => {
            let name = ServerName::try_from(options.host.clone())
                .map_err(|e| format!("`{}` is not a server name for TLS: {e}", options.host))?;
            let connector = tokio_rustls::TlsConnector::from(config.clone());
            let tls = tokio::time::timeout(CONNECT_TIMEOUT, connector.connect(name, tcp))
                .await
                .map_err(|_| {
                    format!(
                        "no TLS handshake with {address} within {} s",
                        CONNECT_TIMEOUT.as_secs()
                    )
                })?
                .map_err(|e| format!("TLS with {address} failed: {e}"))?;
            pump(local, tls, options, status, quick_ack).await
        }
    }
}

/// Carries bytes both ways until either side closes.
async fn pump<S: AsyncRead + AsyncWrite>(
    local: UnixStream,
    remote: S,
    options: &LinkOptions,
    status: &LinkStatus,
    quick_ack: impl Fn(),
) -> Result<(), String> {
    let (local_read, local_write) = local.into_split();
    let (remote_read, remote_write) = tokio::io::split(remote);
    let session = Session::default();
    let (answers, answered) = mpsc::unbounded_channel();
    let down = downstream(
        remote_read,
        local_write,
        &session,
        answers,
        status,
        &quick_ack,
    );
    let up = upstream(
        local_read,
        remote_write,
        options.credential.as_deref(),
        &session,
        answered,
        &options.counters,
        &quick_ack,
    );
    tokio::select! {
        result = down => result,
        result = up => result,
    }
}

/// What both directions of one connection know.
#[derive(Default)]
struct Session {
    /// The broker accepted the CONNECT.
    established: AtomicBool,
    /// An AUTH packet went out and its answer has not come.
    reauthenticating: AtomicBool,
}

/// Broker to rumqttc: everything but AUTH packets, whose answers go to `answers`.
async fn downstream<R: AsyncRead + Unpin, W: AsyncWrite + Unpin>(
    mut remote: R,
    mut local: W,
    session: &Session,
    answers: mpsc::UnboundedSender<AuthAnswer>,
    status: &LinkStatus,
    quick_ack: &impl Fn(),
) -> Result<(), String> {
    let established = &session.established;
    let mut buffer = vec![0u8; BUFFER_BYTES];
    let mut splitter = Splitter::default();
    // The packet being taken out (AUTH) or looked at (the CONNACK).
    let mut kept = Vec::new();
    loop {
        let read = remote
            .read(&mut buffer)
            .await
            .map_err(|e| format!("reading from the broker: {e}"))?;
        quick_ack();
        if read == 0 {
            return Ok(());
        }
        let (mut at, mut forward_from) = (0, 0);
        while at < read {
            let (used, ended) = splitter
                .advance(&buffer[at..read])
                .map_err(|_| "the broker sent a malformed MQTT packet".to_string())?;
            let packet = &buffer[at..at + used];
            match splitter.packet_type() {
                frames::AUTH => {
                    local
                        .write_all(&buffer[forward_from..at])
                        .await
                        .map_err(|e| e.to_string())?;
                    forward_from = at + used;
                    kept.extend_from_slice(packet);
                    if ended {
                        let answer = frames::read_auth(&kept)
                            .map_err(|_| "the broker sent a malformed AUTH packet".to_string())?;
                        if !established.load(Ordering::Relaxed) {
                            return Err(format!(
                                "the broker asked for a further authentication step (AUTH reason {:#04x}); the token methods have one step only",
                                answer.reason
                            ));
                        }
                        let _ = answers.send(answer);
                        kept.clear();
                    }
                }
                // The broker's answer to a refused re-authentication: a DISCONNECT
                // (howto-configure-authentication: "the broker [sends] a DISCONNECT packet and
                // close[s] the client's network connection"), or a CONNACK with the reason
                // (mosquitto 2.0). Said before rumqttc sees it.
                kind @ (frames::DISCONNECT | frames::CONNACK)
                    if session.reauthenticating.load(Ordering::Relaxed) =>
                {
                    kept.extend_from_slice(packet);
                    if ended {
                        let reason = match kind {
                            frames::DISCONNECT => frames::disconnect_reason(&kept),
                            _ => frames::connack_reason(&kept),
                        };
                        status.fail(format!(
                            "the broker refused re-authentication with the renewed token (reason {:#04x}) and ends the connection; connecting again with the token then current",
                            reason.unwrap_or(0)
                        ));
                        kept.clear();
                    }
                }
                frames::CONNACK if !established.load(Ordering::Relaxed) => {
                    kept.extend_from_slice(packet);
                    if ended {
                        if frames::connack_reason(&kept) == Some(0) {
                            established.store(true, Ordering::Relaxed);
                        }
                        kept.clear();
                    }
                }
                _ => {}
            }
            at += used;
        }
        local
            .write_all(&buffer[forward_from..read])
            .await
            .map_err(|e| e.to_string())?;
    }
}

/// rumqttc to broker, with an AUTH packet added between two packets when the credential was
/// renewed.
async fn upstream<R: AsyncRead + Unpin, W: AsyncWrite + Unpin>(
    mut local: R,
    mut remote: W,
    credential: Option<&Credential>,
    session: &Session,
    mut answered: mpsc::UnboundedReceiver<AuthAnswer>,
    counters: &MqttCounters,
    quick_ack: &impl Fn(),
) -> Result<(), String> {
    let mut buffer = vec![0u8; BUFFER_BYTES];
    let mut splitter = Splitter::default();
    let mut renewal = tokio::time::interval(RENEWAL_CHECK);
    renewal.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // The AUTH packet waiting for a packet boundary, and the token it presents.
    let mut to_send: Option<Vec<u8>> = None;
    let mut awaiting: Option<Vec<u8>> = None;
    let mut renewal_failure_reported = false;
    loop {
        tokio::select! {
            read = local.read(&mut buffer) => {
                let read = read.map_err(|e| e.to_string())?;
                if read == 0 {
                    let _ = remote.shutdown().await;
                    return Ok(());
                }
                let (mut at, mut written) = (0, 0);
                while at < read {
                    let (used, _) = splitter
                        .advance(&buffer[at..read])
                        .map_err(|_| "malformed MQTT from the client".to_string())?;
                    at += used;
                    if to_send.is_some() && splitter.at_boundary() {
                        remote.write_all(&buffer[written..at]).await.map_err(|e| e.to_string())?;
                        written = at;
                        let packet = to_send.take().expect("checked");
                        remote.write_all(&packet).await.map_err(|e| e.to_string())?;
                    }
                }
                remote.write_all(&buffer[written..read]).await.map_err(|e| e.to_string())?;
                remote.flush().await.map_err(|e| e.to_string())?;
                // A write right after a read puts Linux back into delaying its ACKs.
                quick_ack();
            }
            _ = renewal.tick(), if credential.is_some() && awaiting.is_none() => {
                let credential = credential.expect("checked");
                if !session.established.load(Ordering::Relaxed) {
                    continue;
                }
                match credential.renewed().await {
                    Ok(None) => {}
                    Ok(Some(token)) => {
                        let packet = frames::reauthenticate(credential.method(), &token);
                        awaiting = Some(token);
                        session.reauthenticating.store(true, Ordering::Relaxed);
                        if splitter.at_boundary() {
                            remote.write_all(&packet).await.map_err(|e| e.to_string())?;
                            remote.flush().await.map_err(|e| e.to_string())?;
                        } else {
                            to_send = Some(packet);
                        }
                        renewal_failure_reported = false;
                    }
                    Err(e) if !renewal_failure_reported => {
                        renewal_failure_reported = true;
                        tracing::warn!("{e}; the connection keeps the token it has until the broker ends it");
                    }
                    Err(_) => {}
                }
            }
            Some(answer) = answered.recv() => {
                session.reauthenticating.store(false, Ordering::Relaxed);
                let Some(token) = awaiting.take() else {
                    tracing::warn!("the broker sent an AUTH packet (reason {:#04x}) nobody asked for", answer.reason);
                    continue;
                };
                let credential = credential.expect("awaiting implies a credential");
                if answer.reason == frames::AUTH_SUCCESS {
                    credential.presented(token);
                    MqttCounters::add(&counters.reauthentications, 1);
                    tracing::info!("re-authenticated to the broker with a renewed token ({})", credential.method());
                } else {
                    // The broker ends the connection; the reader connects again with the
                    // token then current.
                    tracing::warn!(
                        "the broker refused re-authentication with the renewed token (reason {:#04x}{})",
                        answer.reason,
                        answer.reason_string.map(|s| format!(": {s}")).unwrap_or_default()
                    );
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;
    use tokio::net::TcpListener;

    const PINGREQ: [u8; 2] = [0xC0, 0];
    const PINGRESP: [u8; 2] = [0xD0, 0];

    /// A broker that leaves Nagle's algorithm on, as mosquitto does by default, writes two
    /// small packets back to back: the second leaves only once the link's side has
    /// acknowledged the first at the TCP level. Without an immediate acknowledgement that
    /// takes Linux's delayed-ACK timer (40 ms) whenever the link has just written something
    /// itself, as a host acknowledging messages always has. That was a drain of a queued
    /// backlog at a third of its rate, and publish → row stalls of about 45 ms.
    #[tokio::test]
    async fn a_broker_with_nagle_on_is_not_held_back_by_delayed_acknowledgements() {
        let broker = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let link = Link::start(LinkOptions {
            host: "127.0.0.1".into(),
            port: broker.local_addr().unwrap().port(),
            tls: None,
            credential: None,
            counters: Arc::default(),
        })
        .unwrap();
        let mut client = UnixStream::connect(link.socket()).await.unwrap();
        let (mut server, _) = broker.accept().await.unwrap();
        assert!(
            !server.nodelay().unwrap(),
            "the broker's socket keeps Nagle on"
        );
        let mut waits = Vec::new();
        for _ in 0..30 {
            client.write_all(&PINGREQ).await.unwrap();
            let mut request = [0u8; 2];
            server.read_exact(&mut request).await.unwrap();
            assert_eq!(request, PINGREQ);
            // Two writes, as a broker sends two PUBLISH packets when two slots open.
            server.write_all(&PINGRESP).await.unwrap();
            server.write_all(&PINGRESP).await.unwrap();
            let mut first = [0u8; 2];
            client.read_exact(&mut first).await.unwrap();
            let started = Instant::now();
            let mut second = [0u8; 2];
            client.read_exact(&mut second).await.unwrap();
            waits.push(started.elapsed());
            assert_eq!((first, second), (PINGRESP, PINGRESP));
        }
        // Every round but the first waits the timer without the immediate acknowledgement
        // (about 44 ms here); the median leaves room for a busy machine's odd slow round.
        waits.sort();
        let median = waits[waits.len() / 2];
        assert!(
            median < Duration::from_millis(20),
            "packets held back {median:?} (median) behind the one before: the link delays its TCP acknowledgements"
        );
    }
}
