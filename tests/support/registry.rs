//! A real Confluent-compatible schema registry for the tests: Apicurio
//! Registry, run by `deploy/dev/registry.sh` (the same script `make run`
//! uses) on a free loopback port, its schemas in memory.
//!
//! [`Registry::start`] gives the test binary's shared registry, started on
//! first use. Tests register under subjects named after their own topics
//! (`<broker.topic(topic)>-value`, see [`Registry::register`]), so they do
//! not see each other's versions. Like the shared Kafka node, the registry
//! lives as long as the test binary and is killed by the kernel when it
//! exits (`PR_SET_PDEATHSIG` on a thread that never ends).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use super::wait::eventually_blocking;
use super::{Broker, free_port, repo_path};

/// The root of Apicurio's Confluent API.
const CCOMPAT: &str = "/apis/ccompat/v7";

/// One test's view of the shared registry.
pub struct Registry {
    /// Where it listens, for a proxy to stand in front of it.
    pub addr: SocketAddr,
    /// The Confluent API's base URL: what `schemas.registry_url` takes.
    pub url: String,
    // One client per test: a reqwest client belongs to the Tokio runtime
    // it first ran on, and each test has its own.
    client: reqwest::Client,
}

impl Registry {
    /// The test binary's shared registry, started (and waited for) on first use.
    pub fn start() -> Self {
        static SHARED: OnceLock<SocketAddr> = OnceLock::new();
        let addr = *SHARED.get_or_init(|| {
            let addr = SocketAddr::from(([127, 0, 0, 1], free_port()));
            let log_path = repo_path(&format!("target/test-logs/registry-{}.log", addr.port()));
            // The death signal fires when the *thread* that spawned the child
            // ends, so the spawning thread must outlive every test.
            let (tx, rx) = std::sync::mpsc::channel();
            std::thread::spawn(move || {
                let mut child = spawn(addr.port(), &log_path);
                tx.send(()).unwrap();
                let _ = child.wait();
                // Reached only if the registry died under the tests.
                eprintln!(
                    "the shared schema registry exited; see {}",
                    log_path.display()
                );
            });
            rx.recv().expect("the shared schema registry starts");
            wait_until_serving(addr);
            addr
        });
        Self {
            addr,
            url: format!("http://{addr}{CCOMPAT}"),
            client: reqwest::Client::new(),
        }
    }

    /// Registers `schema` (Avro JSON) as a value schema of this test's
    /// `topic` (subject `<broker.topic(topic)>-value`, Confluent's default
    /// naming) and returns the id records written with it carry.
    pub async fn register(&self, broker: &Broker, topic: &str, schema: &str) -> u32 {
        self.register_typed(broker, topic, "AVRO", schema).await
    }

    /// As [`register`](Self::register), for a schema of `schema_type`
    /// (`AVRO`, `PROTOBUF` or `JSON`, the Confluent API's `schemaType`).
    pub async fn register_typed(
        &self,
        broker: &Broker,
        topic: &str,
        schema_type: &str,
        schema: &str,
    ) -> u32 {
        let subject = format!("{}-value", broker.topic(topic));
        let response = self
            .client
            .post(format!("{}/subjects/{subject}/versions", self.url))
            .header("content-type", "application/vnd.schemaregistry.v1+json")
            .json(&serde_json::json!({ "schemaType": schema_type, "schema": schema }))
            .send()
            .await;
        schema_id(response, &format!("registering under {subject}")).await
    }

    /// The id of the latest value schema of this test's `topic`.
    pub async fn latest_id(&self, broker: &Broker, topic: &str) -> u32 {
        let subject = format!("{}-value", broker.topic(topic));
        let url = format!("{}/subjects/{subject}/versions/latest", self.url);
        let response = self.client.get(&url).send().await;
        schema_id(response, &format!("{subject} has no schema")).await
    }
}

/// The `id` of a successful registry answer; fails the test with `what`
/// and the answer otherwise.
async fn schema_id(response: reqwest::Result<reqwest::Response>, what: &str) -> u32 {
    let response = response.expect("the schema registry answers");
    let status = response.status();
    let body: serde_json::Value = response.json().await.expect("a JSON answer");
    assert!(status.is_success(), "{what}: {status} {body}");
    body["id"].as_u64().expect("an id") as u32
}

fn spawn(port: u16, log_path: &PathBuf) -> Child {
    std::fs::create_dir_all(log_path.parent().unwrap()).unwrap();
    let log = std::fs::File::create(log_path).unwrap();
    let mut command = Command::new("bash");
    command
        .arg(repo_path("deploy/dev/registry.sh"))
        .arg(port.to_string())
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log);
    // SAFETY: prctl is async-signal-safe; nothing else runs between fork and
    // exec. The script execs the JVM, which keeps the death signal.
    unsafe {
        command.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
    command.spawn().expect("starting deploy/dev/registry.sh")
}

/// Waits until the Confluent API lists subjects (the registry is serving).
/// Plain HTTP/1.0 over a socket: this runs outside any Tokio runtime.
fn wait_until_serving(addr: SocketAddr) {
    let request = format!("GET {CCOMPAT}/subjects HTTP/1.0\r\nHost: {addr}\r\n\r\n");
    // The answer's status line.
    let status = || {
        let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
        s.set_read_timeout(Some(Duration::from_secs(5)))?;
        s.write_all(request.as_bytes())?;
        let mut response = String::new();
        s.read_to_string(&mut response)?;
        Ok::<_, std::io::Error>(response.lines().next().unwrap_or_default().to_owned())
    };
    let what =
        format!("the schema registry at {addr} to serve (see target/test-logs/registry-*.log)");
    eventually_blocking(&what, status, |status| {
        status
            .as_ref()
            .is_ok_and(|s| s.split_whitespace().nth(1) == Some("200"))
    });
}
