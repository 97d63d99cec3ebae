//! Apache Kafka for the tests: KRaft nodes run by `deploy/dev/kafka.sh` (the
//! same script `make run` uses) on free loopback ports.
//!
//! - [`Broker::start`]: for a test that leaves the broker alone. Every such
//!   test of a binary shares one node, started on first use, and gets topic
//!   names of its own ([`Broker::topic`]), so tests stay independent and run
//!   in parallel.
//! - [`Broker::dedicated`] and [`Cluster::start`]: for a test that stalls,
//!   stops or kills brokers; nothing else sees what it does to them.
//!
//! Every node is killed when its owner is dropped, pass or fail; the shared
//! node, which lives as long as the test binary, is killed by the kernel when
//! the binary exits (`PR_SET_PDEATHSIG` on a thread that never ends).

use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use rdkafka::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaResult;

use super::wait::eventually_blocking;
use super::{free_port, repo_path};

/// A Kafka cluster as one test sees it: where to connect, and the prefix
/// that makes its topic names its own.
#[derive(Clone)]
pub struct Broker {
    /// `bootstrap.servers`.
    pub addr: String,
    namespace: String,
    /// The nodes this test owns (none for the shared node); dropping the
    /// last clone stops them.
    owned: Option<Arc<Cluster>>,
}

impl Broker {
    /// The test binary's shared node, with topic names of this test's own.
    pub fn start() -> Self {
        static SHARED: OnceLock<String> = OnceLock::new();
        let addr = SHARED.get_or_init(|| {
            remove_data_of_exited_binaries();
            let (tx, rx) = std::sync::mpsc::channel();
            // The death signal fires when the *thread* that spawned the child
            // ends, so the spawning thread must outlive every test.
            std::thread::spawn(move || {
                let mut node = Node::spawn_on(NodeSpec::single(), true);
                let pid = node.child.as_ref().map(Child::id);
                tx.send((node.addr(), pid)).unwrap();
                let _ = node.child.as_mut().map(Child::wait);
                // Reached only if the broker died under the tests.
                eprintln!(
                    "the shared Kafka node exited; see {}",
                    node.log_path().display()
                );
            });
            let (addr, pid) = rx.recv().expect("the shared Kafka node starts");
            // Reaped by its thread once it exits: then its /proc entry is gone.
            let alive =
                || pid.is_some_and(|pid| std::path::Path::new(&format!("/proc/{pid}")).exists());
            wait_for_brokers(&addr, 1, alive);
            addr
        });
        static NEXT: AtomicU32 = AtomicU32::new(0);
        Self {
            addr: addr.clone(),
            namespace: format!("t{}.", NEXT.fetch_add(1, Ordering::Relaxed)),
            owned: None,
        }
    }

    /// A single node of this test's own, to stall or restart.
    pub fn dedicated() -> Self {
        Cluster::start(1).broker()
    }

    /// A single node of this test's own with the properties `properties`
    /// makes of its PLAINTEXT and CONTROLLER ports added to its
    /// configuration (e.g. listeners beside those two; [`Broker::addr`] stays
    /// the PLAINTEXT one), and `extras` for its start.
    pub fn dedicated_with(
        properties: impl FnOnce(u16, u16) -> Vec<String>,
        extras: NodeExtras<'_>,
    ) -> Self {
        let mut spec = NodeSpec::single();
        spec.properties = properties(spec.port, spec.controller_port);
        spec.format_args = extras.format_args.to_owned();
        spec.jvm_options = extras.jvm_options.to_owned();
        Cluster::start_specs(vec![spec]).broker()
    }

    /// This test's name for the CRM topic `name` (e.g. `crm.deals`).
    pub fn topic(&self, name: &str) -> String {
        format!("{}{name}", self.namespace)
    }

    /// Points `config` at this test's topics: the CRM topics, presence, and
    /// presence (a dead-letter topic a test sets is its to name).
    pub fn name_topics(&self, config: &mut crm_bridge::config::Config) {
        let topics = &mut config.kafka.topics;
        for name in [
            &mut topics.contacts,
            &mut topics.deals,
            &mut topics.email,
            &mut topics.notifications,
            &mut config.presence.topic,
        ] {
            *name = self.topic(name);
        }
    }

    /// Runs Kafka's command-line tool `class` (see `deploy/dev/kafka-tool.sh`)
    /// with `args` against [`Broker::addr`]; panics with its output if it fails.
    pub fn tool(&self, class: &str, args: &[&str]) {
        let out = Command::new("bash")
            .arg(repo_path("deploy/dev/kafka-tool.sh"))
            .args([class, "--bootstrap-server", &self.addr])
            .args(args)
            .output()
            .expect("running deploy/dev/kafka-tool.sh");
        assert!(
            out.status.success(),
            "{class} {args:?} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn single_node(&self) -> &Cluster {
        let cluster = self
            .owned
            .as_deref()
            .expect("stalling or restarting needs Broker::dedicated(), not the shared node");
        assert_eq!(cluster.nodes.lock().unwrap().len(), 1, "a single node");
        cluster
    }

    /// Freezes the broker (SIGSTOP) for `how_long`, then lets it go on: a
    /// stall every client sees at once.
    pub async fn stall(&self, how_long: Duration) {
        let cluster = self.single_node();
        cluster.signal(0, "-STOP");
        // The stall's own length, which the test chose.
        tokio::time::sleep(how_long).await;
        cluster.signal(0, "-CONT");
    }

    /// Kills the broker (SIGKILL): Kafka is gone, as in an outage.
    pub fn kill(&self) {
        self.single_node().kill(0);
    }

    /// Stops the broker (SIGTERM, a clean shutdown) and starts it again on
    /// the same ports and data.
    pub fn restart(&self) {
        let cluster = self.single_node();
        cluster.stop(0);
        cluster.start_node(0);
        cluster.wait_for_brokers(1);
    }
}

/// Nodes that form one KRaft cluster, each broker and controller at once.
pub struct Cluster {
    nodes: Mutex<Vec<Node>>,
    addr: String,
}

impl Cluster {
    /// `size` nodes, replicating internal topics on up to three of them.
    pub fn start(size: usize) -> Arc<Self> {
        Self::start_specs(NodeSpec::cluster(size))
    }

    fn start_specs(specs: Vec<NodeSpec>) -> Arc<Self> {
        let size = specs.len();
        let nodes: Vec<Node> = specs
            .into_iter()
            .map(|s| Node::spawn_on(s, false))
            .collect();
        let addr = nodes.iter().map(Node::addr).collect::<Vec<_>>().join(",");
        let cluster = Arc::new(Self {
            nodes: Mutex::new(nodes),
            addr,
        });
        cluster.wait_for_brokers(size);
        cluster
    }

    /// The whole cluster as a test's broker (its topics need no prefix).
    pub fn broker(self: &Arc<Self>) -> Broker {
        Broker {
            addr: self.addr.clone(),
            namespace: String::new(),
            owned: Some(self.clone()),
        }
    }

    /// The `bootstrap.servers` of node `index` alone.
    pub fn node_addr(&self, index: usize) -> String {
        self.nodes.lock().unwrap()[index].addr()
    }

    /// The index of the node whose broker id is `id` (as metadata names it).
    pub fn index_of(&self, id: i32) -> usize {
        let nodes = self.nodes.lock().unwrap();
        nodes
            .iter()
            .position(|n| n.spec.id as i32 == id)
            .expect("a node of this cluster")
    }

    /// SIGKILL: the node dies at once, as in a machine failure.
    pub fn kill(&self, index: usize) {
        let mut nodes = self.nodes.lock().unwrap();
        nodes[index].kill();
    }

    /// SIGTERM, then waits for the node to exit.
    pub fn stop(&self, index: usize) {
        let mut nodes = self.nodes.lock().unwrap();
        let node = &mut nodes[index];
        if let Some(child) = node.child.as_mut() {
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
            let _ = child.wait();
        }
        node.child = None;
    }

    /// SIGTERM to every node at once, then waits for each to exit: the
    /// whole cluster shut down cleanly. At once, not one by one: a stopping
    /// broker waits for the controller quorum to approve its controlled
    /// shutdown, and the last one, with no quorum left, would wait five
    /// minutes (Kafka's bound) before exiting.
    pub fn stop_all(&self) {
        let mut nodes = self.nodes.lock().unwrap();
        for node in nodes.iter() {
            if let Some(child) = node.child.as_ref() {
                let _ = Command::new("kill")
                    .args(["-TERM", &child.id().to_string()])
                    .status();
            }
        }
        for node in nodes.iter_mut() {
            if let Some(mut child) = node.child.take() {
                let _ = child.wait();
            }
        }
    }

    /// Starts node `index` again on its ports and data (does not wait).
    pub fn start_node(&self, index: usize) {
        let mut nodes = self.nodes.lock().unwrap();
        let node = &mut nodes[index];
        assert!(node.child.is_none(), "node {index} is running");
        node.child = Some(node.spawn_process(false));
    }

    /// Waits until `count` brokers answer metadata requests.
    pub fn wait_for_brokers(&self, count: usize) {
        // Every node started is still running (a node a test stopped is not counted).
        let alive = || {
            let mut nodes = self.nodes.lock().unwrap();
            nodes
                .iter_mut()
                .filter_map(|n| n.child.as_mut())
                .all(|c| c.try_wait().is_ok_and(|status| status.is_none()))
        };
        wait_for_brokers(&self.addr, count, alive);
    }

    fn signal(&self, index: usize, signal: &str) {
        let nodes = self.nodes.lock().unwrap();
        let pid = nodes[index]
            .child
            .as_ref()
            .expect("running")
            .id()
            .to_string();
        let status = Command::new("kill").args([signal, &pid]).status();
        assert!(status.is_ok_and(|s| s.success()), "kill {signal} {pid}");
    }
}

/// What a dedicated node starts with beyond its properties.
#[derive(Default)]
pub struct NodeExtras<'a> {
    /// Given to its storage format (e.g. SCRAM users; see `deploy/dev/kafka.sh`).
    pub format_args: &'a str,
    /// JVM flags (e.g. system properties Kafka reads).
    pub jvm_options: &'a str,
}

/// Where one node listens and keeps its data.
#[derive(Clone)]
struct NodeSpec {
    id: u32,
    port: u16,
    controller_port: u16,
    voters: String,
    cluster_id: String,
    /// Broker properties beyond `kafka.sh`'s and the tests' own.
    properties: Vec<String>,
    /// `KAFKA_FORMAT_ARGS`.
    format_args: String,
    /// Added to `KAFKA_JVM_OPTS`.
    jvm_options: String,
}

impl NodeSpec {
    fn single() -> Self {
        Self::cluster(1).pop().unwrap()
    }

    fn cluster(size: usize) -> Vec<Self> {
        let ports: Vec<(u16, u16)> = (0..size).map(|_| (free_port(), free_port())).collect();
        let voters = ports
            .iter()
            .enumerate()
            .map(|(i, (_, controller))| format!("{}@127.0.0.1:{controller}", i + 1))
            .collect::<Vec<_>>()
            .join(",");
        // 16 bytes, base64url without padding: the form Kafka's storage tool wants.
        let cluster_id = {
            use base64::Engine;
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(uuid::Uuid::new_v4().as_bytes())
        };
        ports
            .into_iter()
            .enumerate()
            .map(|(i, (port, controller_port))| Self {
                id: i as u32 + 1,
                port,
                controller_port,
                voters: voters.clone(),
                cluster_id: cluster_id.clone(),
                properties: Vec::new(),
                format_args: String::new(),
                jvm_options: String::new(),
            })
            .collect()
    }
}

struct Node {
    spec: NodeSpec,
    child: Option<Child>,
    data: PathBuf,
}

impl Node {
    fn spawn_on(spec: NodeSpec, die_with_thread: bool) -> Self {
        let data = std::env::temp_dir().join(format!(
            "crm-bridge-kafka-{}-{}",
            std::process::id(),
            spec.port
        ));
        let _ = std::fs::remove_dir_all(&data);
        let mut node = Self {
            spec,
            child: None,
            data,
        };
        node.child = Some(node.spawn_process(die_with_thread));
        node
    }

    fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.spec.port)
    }

    fn log_path(&self) -> PathBuf {
        repo_path(&format!("target/test-logs/kafka-{}.log", self.spec.port))
    }

    fn spawn_process(&self, die_with_thread: bool) -> Child {
        let log_path = self.log_path();
        std::fs::create_dir_all(log_path.parent().unwrap()).unwrap();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .unwrap();
        let mut command = Command::new("bash");
        command
            .arg(repo_path("deploy/dev/kafka.sh"))
            .arg(&self.data)
            .arg(self.spec.id.to_string())
            .arg(self.spec.port.to_string())
            .arg(self.spec.controller_port.to_string())
            .arg(&self.spec.voters)
            // Retention and compaction act within a test's time.
            .arg("log.retention.check.interval.ms=1000")
            .arg("log.cleaner.backoff.ms=500")
            .args(&self.spec.properties)
            .env("CLUSTER_ID", &self.spec.cluster_id)
            .env("KAFKA_FORMAT_ARGS", &self.spec.format_args)
            .env("KAFKA_HEAP", "384m")
            // Tests start many brokers and push little through them: the
            // quick compiler alone starts the JVM in about half the time.
            .env(
                "KAFKA_JVM_OPTS",
                format!(
                    "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC {}",
                    self.spec.jvm_options
                ),
            )
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log);
        if die_with_thread {
            // SAFETY: prctl is async-signal-safe; nothing else runs between
            // fork and exec.
            unsafe {
                command.pre_exec(|| {
                    libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                    Ok(())
                });
            }
        }
        command.spawn().expect("starting deploy/dev/kafka.sh")
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.data);
    }
}

/// A shared node outlives every destructor of its test binary, so its data
/// directory stays behind; the next binary clears those whose binary exited.
fn remove_data_of_exited_binaries() {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let pid = name
            .to_str()
            .and_then(|n| n.strip_prefix("crm-bridge-kafka-"))
            .and_then(|rest| rest.split('-').next());
        if pid.is_some_and(|pid| !std::path::Path::new(&format!("/proc/{pid}")).exists()) {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

/// Waits until `count` brokers are in the metadata that `addr` answers with,
/// failing at once if a node exited (`alive` says).
fn wait_for_brokers(addr: &str, count: usize, alive: impl Fn() -> bool) {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", addr)
        .set("log_level", "0")
        .create()
        .expect("a metadata client");
    let enough = |brokers: &KafkaResult<usize>| brokers.as_ref().is_ok_and(|n| *n >= count);
    let brokers = || {
        let brokers = consumer
            .fetch_metadata(None, Duration::from_secs(2))
            .map(|metadata| metadata.brokers().len());
        assert!(
            enough(&brokers) || alive(),
            "a Kafka node at {addr} exited; see target/test-logs/kafka-*.log"
        );
        brokers
    };
    let what = format!("{count} Kafka brokers at {addr} (see target/test-logs/kafka-*.log)");
    eventually_blocking(&what, brokers, enough);
}
