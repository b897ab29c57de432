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
                 log_type notice\n",
                port = self.port,
                dir = self.dir.display()
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
