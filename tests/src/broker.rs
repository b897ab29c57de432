//! A real MQTT broker for the tests: a mosquitto process on a free loopback port, with
//! persistence, so it can be restarted and keep its sessions.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Broker {
    pub port: u16,
    dir: PathBuf,
    child: Option<Child>,
}

/// mosquitto from PATH, or where Debian installs it (`/usr/sbin` is not always in PATH).
fn mosquitto_binary() -> PathBuf {
    for candidate in [
        "mosquitto",
        "/usr/sbin/mosquitto",
        "/usr/local/sbin/mosquitto",
    ] {
        let found = Command::new(candidate)
            .arg("-h")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok();
        if found {
            return PathBuf::from(candidate);
        }
    }
    panic!("the MQTT tests need mosquitto: `apt-get install mosquitto` (tests/run.sh installs it)");
}

impl Broker {
    /// Starts a broker in its own directory under `dir`.
    pub fn start(dir: &Path) -> Self {
        let dir = dir.join("broker");
        std::fs::create_dir_all(&dir).unwrap();
        // Started as root, mosquitto switches to its own user: it must still be able to
        // write its log and its persistence file here.
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
        let port = free_port();
        let mut broker = Self {
            port,
            dir,
            child: None,
        };
        broker.spawn();
        broker
    }

    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    fn spawn(&mut self) {
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
        )
        .unwrap();
        let child = Command::new(mosquitto_binary())
            .arg("-c")
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting mosquitto");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "mosquitto did not listen on {}; see {}/mosquitto.log",
                self.port,
                self.dir.display()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Stops the broker gracefully (it saves its sessions) and starts it again on the same
    /// port.
    pub fn restart(&mut self, down_for: Duration) {
        if let Some(mut child) = self.child.take() {
            signal(child.id(), "TERM");
            child.wait().unwrap();
        }
        std::thread::sleep(down_for);
        self.spawn();
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Sends a signal by name (`TERM`, `INT`, `KILL`) to a process.
pub fn signal(pid: u32, name: &str) {
    let status = Command::new("kill")
        .arg(format!("-{name}"))
        .arg(pid.to_string())
        .status()
        .expect("running kill");
    assert!(status.success(), "kill -{name} {pid} failed");
}

/// A port nobody listens on now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}
