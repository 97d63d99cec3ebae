//! The dev broker, tansu, on a free loopback port with in-memory storage.

use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use super::{free_port, repo_path};

pub struct Broker {
    child: Child,
    pub addr: String,
    storage: String,
}

/// The tansu binary: `$TANSU` (set by `make test`), else installed on demand.
fn tansu_binary() -> &'static str {
    static PATH: OnceLock<String> = OnceLock::new();
    PATH.get_or_init(|| {
        if let Ok(path) = std::env::var("TANSU") {
            return path;
        }
        let out = Command::new("bash")
            .arg(repo_path("deploy/dev/install-tansu.sh"))
            .stderr(Stdio::inherit())
            .output()
            .expect("running install-tansu.sh");
        assert!(out.status.success(), "installing tansu failed");
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    })
}

impl Broker {
    /// A broker with in-memory storage: fast, gone when it stops.
    pub fn start() -> Self {
        Self::start_on(free_port(), "memory://tansu/")
    }

    /// A broker storing into an SQLite file: slower, but it survives a
    /// restart and enforces `retention.ms` (at start-up, then every 10 min).
    pub fn start_sqlite(dir: &std::path::Path) -> Self {
        // tansu reads the URL path without its leading `/`: hence four.
        Self::start_on(
            free_port(),
            &format!("sqlite:///{}/tansu.db", dir.display()),
        )
    }

    /// Stops and starts again on the same port and storage.
    /// Freezes the broker (SIGSTOP) for `how_long`, then lets it go on:
    /// a stall every client sees at once.
    pub async fn stall(&self, how_long: std::time::Duration) {
        let signal = |name: &str| {
            let pid = self.child.id().to_string();
            let status = Command::new("kill").args([name, pid.as_str()]).status();
            assert!(status.is_ok_and(|s| s.success()), "kill {name} {pid}");
        };
        signal("-STOP");
        tokio::time::sleep(how_long).await;
        signal("-CONT");
    }

    pub fn restart(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let port = self.addr.rsplit(':').next().unwrap().parse().unwrap();
        let restarted = Self::start_on(port, &self.storage.clone());
        *self = restarted;
    }

    fn start_on(port: u16, storage: &str) -> Self {
        let url = format!("tcp://127.0.0.1:{port}");
        let log_dir = repo_path("target/test-logs");
        std::fs::create_dir_all(&log_dir).unwrap();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log_dir.join(format!("tansu-{port}.log")))
            .unwrap();
        let child = Command::new(tansu_binary())
            .args([
                "broker",
                "--listener-url",
                &url,
                "--advertised-listener-url",
                &url,
            ])
            .args(["--storage-engine", storage])
            .env_remove("CLUSTER_ID")
            .env_remove("STORAGE_ENGINE")
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("starting tansu");
        let broker = Self {
            child,
            addr: format!("127.0.0.1:{port}"),
            storage: storage.to_owned(),
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(&broker.addr).is_err() {
            assert!(
                Instant::now() < deadline,
                "tansu did not listen on {}",
                broker.addr
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        broker
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
