//! The bridge as a separate process (the real binary), for tests that stop
//! it with SIGTERM (a deploy) or SIGKILL (a crash).

use std::process::{Child, Command, Stdio};

use super::bridge::{TEST_SECRET, stats, wait_ready};
use super::{Broker, free_port, repo_path};

pub struct BridgeProcess {
    child: Child,
    /// The public port: Socket.IO, the dashboard.
    pub url: String,
    /// The internal port: `/readyz`, `/stats`, `/metrics` (a free port).
    pub internal_url: String,
    log: std::path::PathBuf,
}

impl BridgeProcess {
    /// Starts the binary on `port` and waits until it is ready.
    pub async fn start(broker: &Broker, port: u16, node_id: &str) -> Self {
        Self::start_with(broker, port, node_id, "").await
    }

    /// As [`start`](Self::start), with `extra` TOML appended to its config.
    pub async fn start_with(broker: &Broker, port: u16, node_id: &str, extra: &str) -> Self {
        Self::start_with_env(broker, port, node_id, extra, &[]).await
    }

    /// As [`start_with`](Self::start_with), with more environment variables
    /// (set after the test's topic names, so they may override them).
    pub async fn start_with_env(
        broker: &Broker,
        port: u16,
        node_id: &str,
        extra: &str,
        env: &[(&str, &str)],
    ) -> Self {
        let bridge = Self::spawn(broker, port, node_id, extra, env, "create_topics = 2\n");
        wait_ready(&bridge.internal_url).await;
        bridge
    }

    /// As [`start_with_env`](Self::start_with_env), but neither creating
    /// the topics (the test has) nor waiting until the bridge is ready.
    pub fn spawn_unready(
        broker: &Broker,
        port: u16,
        node_id: &str,
        extra: &str,
        env: &[(&str, &str)],
    ) -> Self {
        Self::spawn(broker, port, node_id, extra, env, "")
    }

    fn spawn(
        broker: &Broker,
        port: u16,
        node_id: &str,
        extra: &str,
        env: &[(&str, &str)],
        create_topics: &str,
    ) -> Self {
        let dir = repo_path("target/test-logs");
        std::fs::create_dir_all(&dir).unwrap();
        let config = dir.join(format!("bridge-{port}-{node_id}.toml"));
        let internal_port = free_port();
        std::fs::write(
            &config,
            format!(
                "listen = \"127.0.0.1:{port}\"\ninternal_listen = \"127.0.0.1:{internal_port}\"\n\
                 [kafka]\nbrokers = \"{}\"\nnode_id = \"{node_id}\"\n{create_topics}\
                 [schemas]\nlocal_dir = \"{}\"\n\
                 [auth.jwt]\nhs_secret = \"{TEST_SECRET}\"\n{extra}",
                broker.addr,
                repo_path("schemas").display()
            ),
        )
        .unwrap();
        // Appended: a node restarted on the same port logs after the one before.
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(Self::log_path(port, node_id))
            .unwrap();
        // The test's topic names, from the environment (the config file's
        // tables are `extra`'s to add to).
        let mut named = crm_bridge::config::Config::default();
        broker.name_topics(&mut named);
        let topics = &named.kafka.topics;
        let child = Command::new(env!("CARGO_BIN_EXE_crm-bridge"))
            .args(["--config", config.to_str().unwrap(), "serve"])
            .env("CRM_BRIDGE_KAFKA__TOPICS__CONTACTS", &topics.contacts)
            .env("CRM_BRIDGE_KAFKA__TOPICS__DEALS", &topics.deals)
            .env("CRM_BRIDGE_KAFKA__TOPICS__EMAIL", &topics.email)
            .env(
                "CRM_BRIDGE_KAFKA__TOPICS__NOTIFICATIONS",
                &topics.notifications,
            )
            .env("CRM_BRIDGE_PRESENCE__TOPIC", &named.presence.topic)
            // Nothing balances over test nodes: leave at once, unless `env`
            // says otherwise.
            .env("CRM_BRIDGE_DRAIN__DELAY_SECONDS", "0")
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("starting the bridge binary");
        Self {
            child,
            url: format!("http://127.0.0.1:{port}"),
            internal_url: format!("http://127.0.0.1:{internal_port}"),
            log: Self::log_path(port, node_id),
        }
    }

    /// Where this process logs.
    pub fn log_path_of(&self) -> std::path::PathBuf {
        self.log.clone()
    }

    /// True while the process has not exited.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Where the process logs (appended to by every node run on this port
    /// with this id).
    pub fn log_path(port: u16, node_id: &str) -> std::path::PathBuf {
        repo_path(&format!("target/test-logs/bridge-{port}-{node_id}.log"))
    }

    /// SIGTERM, as a deploy does, and waits for the graceful shutdown, for
    /// as long as it takes: a caller that holds it to a bound sets the
    /// bound (`operations.rs` holds it to the shutdown budget).
    pub async fn terminate(&mut self) {
        self.send_sigterm();
        self.exited().await;
    }

    /// SIGTERM, without waiting.
    pub fn send_sigterm(&self) {
        let pid = self.child.id().to_string();
        let status = Command::new("kill").args(["-TERM", pid.as_str()]).status();
        assert!(status.is_ok_and(|s| s.success()), "kill -TERM {pid}");
    }

    /// Waits until the process has exited, for as long as it takes.
    pub async fn exited(&mut self) {
        // Polled: a std `Child` has no asynchronous wait.
        while matches!(self.child.try_wait(), Ok(None)) {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }

    pub async fn stats(&self) -> serde_json::Value {
        stats(&self.internal_url).await
    }

    /// The process's resident memory (`VmRSS`), in bytes.
    pub fn rss_bytes(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        let kb = status
            .lines()
            .find_map(|line| line.strip_prefix("VmRSS:"))
            .and_then(|rest| {
                rest.trim()
                    .trim_end_matches("kB")
                    .trim()
                    .parse::<u64>()
                    .ok()
            })
            .expect("VmRSS in /proc/PID/status");
        kb * 1024
    }

    /// SIGKILL: no shutdown, no final commit, connections cut.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for BridgeProcess {
    fn drop(&mut self) {
        self.kill();
    }
}
