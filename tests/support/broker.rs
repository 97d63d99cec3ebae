//! The dev broker, tansu, on a free loopback port with in-memory storage.

use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use super::{free_port, repo_path};

pub struct Broker {
    child: Child,
    pub addr: String,
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
    pub fn start() -> Self {
        let port = free_port();
        let url = format!("tcp://127.0.0.1:{port}");
        let log_dir = repo_path("target/test-logs");
        std::fs::create_dir_all(&log_dir).unwrap();
        let log = std::fs::File::create(log_dir.join(format!("tansu-{port}.log"))).unwrap();
        let child = Command::new(tansu_binary())
            .args([
                "broker",
                "--listener-url",
                &url,
                "--advertised-listener-url",
                &url,
            ])
            .args(["--storage-engine", "memory://tansu/"])
            .env_remove("CLUSTER_ID")
            .env_remove("STORAGE_ENGINE")
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("starting tansu");
        let broker = Self {
            child,
            addr: format!("127.0.0.1:{port}"),
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
