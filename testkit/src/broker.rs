//! A local MQTT broker: a mosquitto process on a free loopback port, in a directory of its
//! own, with persistence so it can be restarted and keep its sessions. The end-to-end
//! benchmark and the tests use it; mosquitto comes from the system (`apt-get install
//! mosquitto`; tests/run.sh installs it).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

pub struct LocalBroker {
    /// The plain, anonymous listener (publishers and collectors use it).
    pub port: u16,
    /// The port of the `secure` listener, if there is one.
    pub secure_port: Option<u16>,
    dir: PathBuf,
    binary: PathBuf,
    child: Option<Child>,
    options: BrokerOptions,
}

#[derive(Debug, Clone, Default)]
pub struct BrokerOptions {
    /// The log names every packet (`log_type all`), for `packet_counts`.
    pub log_packets: bool,
    /// A second listener, as a client on a cluster meets the broker.
    pub secure: Option<SecureListener>,
    /// `set_tcp_nodelay true`: each packet is sent at once, where mosquitto's default holds
    /// small ones back (Nagle) until the client has acknowledged what went before.
    pub tcp_nodelay: bool,
}

/// A listener with TLS, client certificates or token authentication (by an auth plugin).
#[derive(Debug, Clone, Default)]
pub struct SecureListener {
    /// The server's certificate and key, and the CA of client certificates (PEM files).
    pub tls: Option<ListenerTls>,
    /// Clients must present a certificate the CA signed (`require_certificate true`).
    pub require_certificate: bool,
    /// An authentication plugin and its options (`plugin_opt_<key> <value>`); without one
    /// the listener is anonymous.
    pub plugin: Option<(PathBuf, Vec<(String, String)>)>,
}

#[derive(Debug, Clone)]
pub struct ListenerTls {
    pub certificate: PathBuf,
    pub key: PathBuf,
    pub ca: PathBuf,
}

/// What the broker's own log says it exchanged with one client.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PacketCounts {
    /// PUBLISH packets sent to the client, redeliveries (DUP) included.
    pub publish_sent: u64,
    /// PUBACK packets received from the client.
    pub puback_received: u64,
    /// PUBLISH packets the broker had sent and not had acknowledged when the client connected
    /// again, summed over its reconnections: what the broker may deliver again. At most a
    /// receive maximum each while the broker honours it (mosquitto 2.0.11 sends more to a
    /// resumed session).
    pub unacknowledged_at_reconnect: u64,
}

/// mosquitto from PATH, or where Debian installs it (`/usr/sbin` is not always in PATH).
pub fn mosquitto_binary() -> Option<PathBuf> {
    [
        "mosquitto",
        "/usr/sbin/mosquitto",
        "/usr/local/sbin/mosquitto",
    ]
    .into_iter()
    .find(|candidate| {
        Command::new(candidate)
            .arg("-h")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok()
    })
    .map(PathBuf::from)
}

impl LocalBroker {
    /// Starts a broker in its own directory under `dir`.
    pub fn start(dir: &Path) -> Result<Self> {
        Self::start_with(dir, BrokerOptions::default())
    }

    /// Starts a broker whose log names every packet it sends and receives, so that
    /// `packet_counts` can tell what it exchanged with a client.
    pub fn start_logging_packets(dir: &Path) -> Result<Self> {
        Self::start_with(
            dir,
            BrokerOptions {
                log_packets: true,
                ..BrokerOptions::default()
            },
        )
    }

    pub fn start_with(dir: &Path, options: BrokerOptions) -> Result<Self> {
        let binary = mosquitto_binary()
            .context("mosquitto is not installed (`apt-get install mosquitto`)")?;
        let dir = dir.join("broker");
        std::fs::create_dir_all(&dir)?;
        // Started as root, mosquitto switches to its own user: it must still be able to
        // write its log and its persistence file here.
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777))?;
        let secure_port = match options.secure {
            Some(_) => Some(free_port()?),
            None => None,
        };
        let mut broker = Self {
            port: free_port()?,
            secure_port,
            dir,
            binary,
            child: None,
            options,
        };
        broker.spawn()?;
        Ok(broker)
    }

    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The broker's own directory (its configuration, log and persistence).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The `secure` listener's lines of the configuration.
    fn secure_listener(&self) -> String {
        let (Some(port), Some(secure)) = (self.secure_port, &self.options.secure) else {
            return String::new();
        };
        let mut lines = format!("listener {port} 127.0.0.1\n");
        if let Some(tls) = &secure.tls {
            lines += &format!(
                "certfile {}\nkeyfile {}\ncafile {}\ntls_version tlsv1.2\nrequire_certificate {}\n",
                tls.certificate.display(),
                tls.key.display(),
                tls.ca.display(),
                secure.require_certificate
            );
        }
        match &secure.plugin {
            Some((plugin, options)) => {
                lines += &format!("plugin {}\nallow_anonymous false\n", plugin.display());
                for (key, value) in options {
                    lines += &format!("plugin_opt_{key} {value}\n");
                }
            }
            None => lines += "allow_anonymous true\n",
        }
        lines
    }

    fn spawn(&mut self) -> Result<()> {
        let config = self.dir.join("mosquitto.conf");
        std::fs::write(
            &config,
            format!(
                "per_listener_settings true\n\
                 listener {port} 127.0.0.1\n\
                 allow_anonymous true\n\
                 set_tcp_nodelay {nodelay}\n\
                 {secure}\
                 persistence true\n\
                 persistence_location {dir}/\n\
                 # Keep every message queued for a disconnected persistent session.\n\
                 max_queued_messages 0\n\
                 log_dest file {dir}/mosquitto.log\n\
                 log_type error\n\
                 log_type warning\n\
                 log_type notice\n\
                 {packets}",
                port = self.port,
                secure = self.secure_listener(),
                nodelay = self.options.tcp_nodelay,
                dir = self.dir.display(),
                packets = if self.options.log_packets {
                    "log_type all\n"
                } else {
                    ""
                },
            ),
        )?;
        let child = Command::new(&self.binary)
            .arg("-c")
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("starting mosquitto")?;
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        let listening = |port: u16| std::net::TcpStream::connect(("127.0.0.1", port)).is_ok();
        while !listening(self.port) || self.secure_port.is_some_and(|p| !listening(p)) {
            if Instant::now() > deadline {
                bail!(
                    "mosquitto did not listen on {}; see {}/mosquitto.log",
                    self.port,
                    self.dir.display()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(())
    }

    /// Stops the broker gracefully (it saves its sessions) and starts it again on the same
    /// port.
    pub fn restart(&mut self, down_for: Duration) -> Result<()> {
        if let Some(mut child) = self.child.take() {
            signal(child.id(), "TERM")?;
            child.wait()?;
        }
        std::thread::sleep(down_for);
        self.spawn()
    }

    /// The broker's log, across its restarts.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("mosquitto.log")).unwrap_or_default()
    }

    /// PUBLISH sent to and PUBACK received from the client `client_id`, as the broker's
    /// log (started with `start_logging_packets`) records them.
    pub fn packet_counts(&self, client_id: &str) -> PacketCounts {
        packet_counts_in(&self.log(), client_id)
    }
}

/// What a mosquitto log (`log_type all`) says the broker exchanged with `client_id`.
fn packet_counts_in(log: &str, client_id: &str) -> PacketCounts {
    let sent = format!("Sending PUBLISH to {client_id} ");
    let acked = format!("Received PUBACK from {client_id} ");
    let connected = format!(" as {client_id} (");
    let mut counts = PacketCounts::default();
    let mut outstanding: u64 = 0;
    let mut connections = 0;
    for line in log.lines() {
        if line.contains(&sent) {
            counts.publish_sent += 1;
            outstanding += 1;
        } else if line.contains(&acked) {
            counts.puback_received += 1;
            outstanding = outstanding.saturating_sub(1);
        } else if line.contains("New client connected") && line.contains(&connected) {
            if connections > 0 {
                counts.unacknowledged_at_reconnect += outstanding;
            }
            connections += 1;
            outstanding = 0;
        }
    }
    counts
}

impl Drop for LocalBroker {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Sends a signal by name (`TERM`, `INT`, `KILL`) to a process.
pub fn signal(pid: u32, name: &str) -> Result<()> {
    let status = Command::new("kill")
        .arg(format!("-{name}"))
        .arg(pid.to_string())
        .status()
        .context("running kill")?;
    if !status.success() {
        bail!("kill -{name} {pid} failed");
    }
    Ok(())
}

/// A loopback port nobody listens on now.
pub fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_the_broker_had_unacknowledged_at_each_reconnection_is_counted_from_its_log() {
        let log = "\
1: New client connected from 127.0.0.1:1 as host (p5, c0, k60).
2: Sending PUBLISH to host (d0, q1, r0, m1, 't', ... (1 bytes))
3: Sending PUBLISH to host (d0, q1, r0, m2, 't', ... (1 bytes))
4: Sending PUBLISH to other (d0, q1, r0, m9, 't', ... (1 bytes))
5: Sending PUBLISH to host (d0, q1, r0, m3, 't', ... (1 bytes))
6: Received PUBACK from host (Mid: 1, RC:0)
7: New client connected from 127.0.0.1:2 as other (p5, c0, k60).
8: Client host closed its connection.
9: New client connected from 127.0.0.1:3 as host (p5, c0, k60).
10: Sending PUBLISH to host (d1, q1, r0, m2, 't', ... (1 bytes))
11: Sending PUBLISH to host (d1, q1, r0, m3, 't', ... (1 bytes))
12: Received PUBACK from host (Mid: 2, RC:0)
13: Received PUBACK from host (Mid: 3, RC:0)
";
        assert_eq!(
            packet_counts_in(log, "host"),
            PacketCounts {
                publish_sent: 5,
                puback_received: 3,
                unacknowledged_at_reconnect: 2,
            }
        );
    }
}
