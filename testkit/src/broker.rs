//! A local MQTT broker: a mosquitto process on a free loopback port, in a directory of its
//! own, with persistence so it can be restarted and keep its sessions. The end-to-end
//! benchmark and the tests use it; mosquitto comes from the system (`apt-get install
//! mosquitto`; tests/run.sh installs it).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

pub struct LocalBroker {
    pub port: u16,
    dir: PathBuf,
    binary: PathBuf,
    child: Option<Child>,
    /// Whether the log names every packet (`log_type all`), for `packet_counts`.
    log_packets: bool,
}

/// What the broker's own log says it exchanged with one client.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PacketCounts {
    /// PUBLISH packets sent to the client, redeliveries (DUP) included.
    pub publish_sent: u64,
    /// PUBACK packets received from the client.
    pub puback_received: u64,
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
        Self::start_with(dir, false)
    }

    /// Starts a broker whose log names every packet it sends and receives, so that
    /// `packet_counts` can tell what it exchanged with a client.
    pub fn start_logging_packets(dir: &Path) -> Result<Self> {
        Self::start_with(dir, true)
    }

    fn start_with(dir: &Path, log_packets: bool) -> Result<Self> {
        let binary = mosquitto_binary()
            .context("mosquitto is not installed (`apt-get install mosquitto`)")?;
        let dir = dir.join("broker");
        std::fs::create_dir_all(&dir)?;
        // Started as root, mosquitto switches to its own user: it must still be able to
        // write its log and its persistence file here.
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777))?;
        let mut broker = Self {
            port: free_port()?,
            dir,
            binary,
            child: None,
            log_packets,
        };
        broker.spawn()?;
        Ok(broker)
    }

    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    fn spawn(&mut self) -> Result<()> {
        let config = self.dir.join("mosquitto.conf");
        std::fs::write(
            &config,
            format!(
                "listener {port} 127.0.0.1\n\
                 allow_anonymous true\n\
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
                dir = self.dir.display(),
                packets = if self.log_packets {
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
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
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
        let sent = format!("Sending PUBLISH to {client_id} ");
        let acked = format!("Received PUBACK from {client_id} ");
        let mut counts = PacketCounts::default();
        for line in self.log().lines() {
            if line.contains(&sent) {
                counts.publish_sent += 1;
            } else if line.contains(&acked) {
                counts.puback_received += 1;
            }
        }
        counts
    }
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
