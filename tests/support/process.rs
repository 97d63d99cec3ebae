//! The bridge as a separate process (the real binary), for tests that kill
//! it with SIGKILL.

use std::process::{Child, Command, Stdio};

use super::bridge::{TEST_SECRET, wait_ready};
use super::{Broker, repo_path};

pub struct BridgeProcess {
    child: Child,
    pub url: String,
}

impl BridgeProcess {
    /// Starts the binary on `port` and waits until it is ready.
    pub async fn start(broker: &Broker, port: u16, node_id: &str) -> Self {
        Self::start_with(broker, port, node_id, "").await
    }

    /// As [`start`](Self::start), with `extra` TOML appended to its config.
    pub async fn start_with(broker: &Broker, port: u16, node_id: &str, extra: &str) -> Self {
        let dir = repo_path("target/test-logs");
        std::fs::create_dir_all(&dir).unwrap();
        let config = dir.join(format!("bridge-{port}-{node_id}.toml"));
        std::fs::write(
            &config,
            format!(
                "listen = \"127.0.0.1:{port}\"\n\
                 [kafka]\nbrokers = \"{}\"\nnode_id = \"{node_id}\"\ncreate_topics = 2\n\
                 [schemas]\nlocal_dir = \"{}\"\n\
                 [auth.jwt]\nhs_secret = \"{TEST_SECRET}\"\n{extra}",
                broker.addr,
                repo_path("schemas").display()
            ),
        )
        .unwrap();
        let log = std::fs::File::create(dir.join(format!("bridge-{port}-{node_id}.log"))).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_crm-bridge"))
            .args(["--config", config.to_str().unwrap(), "serve"])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("starting the bridge binary");
        let bridge = Self {
            child,
            url: format!("http://127.0.0.1:{port}"),
        };
        wait_ready(&bridge.url).await;
        bridge
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
