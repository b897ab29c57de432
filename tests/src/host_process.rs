//! The host as a separate process (`host-under-test run …`), so tests can kill it, signal it
//! and measure its memory as a user's system would.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use crate::broker::signal;

pub struct HostProcess {
    child: Child,
    pub log: PathBuf,
}

/// `host-under-test`, which cargo builds next to the test binaries' `deps` directory for
/// the integration tests of this package.
pub fn host_binary() -> PathBuf {
    // Test binaries are in `<profile>/deps`, this package's own binaries in `<profile>`.
    let exe = std::env::current_exe().unwrap();
    let binary = exe
        .ancestors()
        .skip(1)
        .take(2)
        .map(|dir| dir.join("host-under-test"))
        .find(|candidate| candidate.exists());
    binary.unwrap_or_else(|| {
        panic!(
            "host-under-test is missing next to {}: build it with cargo build -p end-to-end-tests",
            exe.display()
        )
    })
}

impl HostProcess {
    /// Starts `host-under-test` with `args`; its output goes to `log`.
    pub fn start(args: &[String], log: &Path) -> Self {
        Self::start_with_env(args, log, &[])
    }

    /// `start` with these environment variables set.
    pub fn start_with_env(args: &[String], log: &Path, env: &[(&str, String)]) -> Self {
        let output = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .unwrap();
        // Whatever the host writes to relative paths (default dead-letter files) stays in the
        // test's own directory, never in the source tree.
        let child = Command::new(host_binary())
            .current_dir(log.parent().expect("the log is in the test's directory"))
            .args(args)
            .env("RUST_BACKTRACE", "0")
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .stdout(Stdio::from(output.try_clone().unwrap()))
            .stderr(Stdio::from(output))
            .spawn()
            .expect("starting the host");
        Self {
            child,
            log: log.to_path_buf(),
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits until the log holds `text` `times` times (the log is appended to across runs).
    pub async fn wait_for_log(&mut self, text: &str, times: usize, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            let log = std::fs::read_to_string(&self.log).unwrap_or_default();
            if log.matches(text).count() >= times {
                return;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("the host exited ({status}) before logging `{text}`:\n{log}");
            }
            assert!(
                Instant::now() < deadline,
                "the host did not log `{text}` within {timeout:?}:\n{log}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The process's peak resident memory so far, in bytes (`VmHWM`).
    pub fn peak_rss_bytes(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap();
        let line = status
            .lines()
            .find(|l| l.starts_with("VmHWM:"))
            .expect("VmHWM in /proc/<pid>/status");
        let kb: u64 = line
            .split_whitespace()
            .nth(1)
            .and_then(|n| n.parse().ok())
            .expect("a number of kB");
        kb * 1024
    }

    /// SIGKILL: no chance to flush or acknowledge anything more.
    pub fn kill(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// SIGTERM, then waits for the exit (at most `timeout`).
    pub async fn terminate(self, timeout: Duration) -> ExitStatus {
        self.signal("TERM");
        self.wait(timeout).await
    }

    pub fn signal(&self, name: &str) {
        signal(self.pid(), name);
    }

    /// Waits for the exit; fails the test after `timeout`.
    pub async fn wait(mut self, timeout: Duration) -> ExitStatus {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("the host did not exit within {timeout:?}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for HostProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
