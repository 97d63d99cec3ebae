//! The three servers under test, each a separate process pinned to core 0
//! (the load generator and the broker keep core 1): crm-bridge's release
//! binary; the peer a team would otherwise deploy, `bench/peer` (Node:
//! socket.io 4 + kafkajs); and Centrifugo (Go), the real-time server teams
//! pick for speed, built from its Go module by `make bench` (the
//! `CENTRIFUGO` binary it names), reading a JSON form of the same records
//! with its own Kafka consumer. All are measured from outside, through
//! /proc: CPU time (user + system, every thread) and resident memory.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::json;

use crate::load::Protocol;
use crate::support::bridge::{TEST_SECRET, wait_ready};
use crate::support::{Broker, eventually, free_port, repo_path};

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Kind {
    CrmBridge,
    NodePeer,
    Centrifugo,
}

impl Kind {
    pub fn label(self) -> &'static str {
        match self {
            Kind::CrmBridge => "crm-bridge",
            Kind::NodePeer => "node peer",
            Kind::Centrifugo => "centrifugo",
        }
    }

    pub fn protocol(self) -> Protocol {
        match self {
            Kind::CrmBridge | Kind::NodePeer => Protocol::SocketIo,
            Kind::Centrifugo => Protocol::Centrifugo,
        }
    }
}

/// The topic Centrifugo's consumer reads: the deal records as JSON (it
/// reads no Avro), each naming its channels in a header (see `feed`).
pub const CENTRIFUGO_TOPIC: &str = "crm.deals.json";
/// As many as the bridge creates for its topics (`create_topics`).
pub const CENTRIFUGO_PARTITIONS: i32 = 2;

/// Creates Centrifugo's topic (its consumer creates none).
async fn create_centrifugo_topic(broker: &Broker) {
    use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
    let admin: AdminClient<_> = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", &broker.addr)
        .create()
        .expect("an admin client");
    let name = broker.topic(CENTRIFUGO_TOPIC);
    let topic = NewTopic::new(&name, CENTRIFUGO_PARTITIONS, TopicReplication::Fixed(1));
    let created = admin.create_topics([&topic], &AdminOptions::new()).await;
    match created.expect("creating a topic").remove(0) {
        Ok(_) | Err((_, rdkafka::types::RDKafkaErrorCode::TopicAlreadyExists)) => {}
        Err((_, error)) => panic!("creating {name}: {error}"),
    }
}

/// Centrifugo v6's configuration: the same HS256 secret as the bridge's
/// tokens; any signed-in client may subscribe to `pipeline:` and `deal:`
/// channels, with the namespace options `extra` (a JSON object) adds; no
/// history unless those options ask for it (the bridge's live path keeps
/// none either); its Kafka consumer in publication-data mode (a record's
/// value is the publication, its `centrifugo-channels` header the
/// channels), a group of its own per start; `/health` and Prometheus
/// `/metrics` on the same port.
fn centrifugo_config(broker: &Broker, port: u16, node: &str, extra: &str) -> String {
    let options: serde_json::Map<String, serde_json::Value> = match extra {
        "" => serde_json::Map::new(),
        extra => serde_json::from_str(extra).expect("Centrifugo's extra: a JSON object"),
    };
    let open = |name: &str| {
        let mut namespace = options.clone();
        namespace.insert("name".into(), name.into());
        namespace.insert("allow_subscribe_for_client".into(), true.into());
        namespace
    };
    json!({
        "http_server": {"address": "127.0.0.1", "port": port},
        "log": {"level": "warn"},
        "engine": {"type": "memory"},
        "usage_stats": {"disabled": true},
        "http_api": {"disabled": true},
        "health": {"enabled": true},
        "prometheus": {"enabled": true},
        "client": {"token": {"hmac_secret_key": TEST_SECRET}},
        "channel": {"namespaces": [open("pipeline"), open("deal")]},
        "consumers": [{
            "enabled": true,
            "name": "bench",
            "type": "kafka",
            "kafka": {
                "brokers": [broker.addr],
                "topics": [broker.topic(CENTRIFUGO_TOPIC)],
                "consumer_group": format!("centrifugo-{node}"),
                "publication_data_mode": {"enabled": true},
            },
        }],
    })
    .to_string()
}

/// The core the servers run on; the generator takes the other.
pub const SERVER_CORE: &str = "0";
pub const LOAD_CORE: &str = "1";

pub struct Server {
    pub kind: Kind,
    /// Where clients connect.
    pub url: String,
    /// Where `/readyz` and `/stats` are: crm-bridge's internal port, the
    /// peer's only one.
    ops_url: String,
    port: u16,
    node: String,
    /// Its configuration's extra (see [`Server::start_with`]), kept for a
    /// restart.
    extra: String,
    child: Child,
}

/// Limits raised for one machine posing as 10,000 users on one address,
/// no drain delay (no load balancer to notice), and the scenario's own
/// topic names, then the scenario's `extra` sections. Everything else is
/// crm-bridge's default configuration.
fn bridge_config(
    broker: &Broker,
    port: u16,
    internal_port: u16,
    node: &str,
    extra: &str,
) -> String {
    let topic = |name| broker.topic(name);
    format!(
        "listen = \"127.0.0.1:{port}\"\ninternal_listen = \"127.0.0.1:{internal_port}\"\n\
         [drain]\ndelay_seconds = 0\n\
         [kafka]\nbrokers = \"{}\"\nnode_id = \"{node}\"\ncreate_topics = 2\n\
         [kafka.topics]\ncontacts = \"{}\"\ndeals = \"{}\"\nemail = \"{}\"\n\
         notifications = \"{}\"\n\
         [presence]\ntopic = \"{}\"\n\
         [schemas]\nlocal_dir = \"{}\"\n\
         [auth.jwt]\nhs_secret = \"{TEST_SECRET}\"\n\
         [guard]\nmax_connections = 20000\nmax_connections_per_address = 20000\n\
         handshakes_per_second_per_address = 100000\nhandshake_burst = 100000\n\
         engine_opens_per_second_per_address = 100000\nengine_open_burst = 100000\n{}\n{extra}",
        broker.addr,
        topic("crm.contacts"),
        topic("crm.deals"),
        topic("crm.email"),
        topic("crm.notifications"),
        topic("crm-bridge.presence"),
        repo_path("schemas").display(),
        std::env::var("BENCH_BRIDGE_TOML").unwrap_or_default()
    )
}

impl Server {
    pub async fn start(kind: Kind, broker: &Broker) -> Self {
        Self::start_with(kind, broker, "").await
    }

    /// Starts `kind` with `extra` in its configuration: crm-bridge's TOML
    /// sections, Centrifugo's namespace options (a JSON object); the Node
    /// peer takes none.
    pub async fn start_with(kind: Kind, broker: &Broker, extra: &str) -> Self {
        let node = format!("bench-{}", fastrand::u32(..));
        Self::start_on(kind, broker, free_port(), &node, extra).await
    }

    /// Starts `kind` on `port`; a crm-bridge `node` id names its consumer
    /// group, so a restart with the same one resumes its offsets.
    async fn start_on(kind: Kind, broker: &Broker, port: u16, node: &str, extra: &str) -> Self {
        let logs = repo_path("target/bench-logs");
        std::fs::create_dir_all(&logs).unwrap();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(logs.join(format!("{}-{port}.log", kind.label())))
            .unwrap();
        let mut command = Command::new("taskset");
        command.args(["-c", SERVER_CORE]);
        let mut ops_port = port;
        match kind {
            Kind::CrmBridge => {
                let config = logs.join(format!("bridge-{port}.toml"));
                ops_port = free_port();
                let config_text = bridge_config(broker, port, ops_port, node, extra);
                std::fs::write(&config, config_text).unwrap();
                // A profiler, e.g. `heaptrack -o FILE` (see main.rs).
                if let Ok(wrap) = std::env::var("BENCH_BRIDGE_WRAP") {
                    command.args(wrap.split_whitespace());
                }
                command.arg(env!("CARGO_BIN_EXE_crm-bridge")).args([
                    "--config",
                    config.to_str().unwrap(),
                    "serve",
                ]);
            }
            Kind::Centrifugo => {
                create_centrifugo_topic(broker).await;
                let config = logs.join(format!("centrifugo-{port}.json"));
                std::fs::write(&config, centrifugo_config(broker, port, node, extra)).unwrap();
                let binary = std::env::var("CENTRIFUGO").expect(
                    "CENTRIFUGO names the Centrifugo binary: run the suite with `make bench`",
                );
                command.args([binary.as_str(), "-c", config.to_str().unwrap()]);
            }
            Kind::NodePeer => {
                command
                    .args(["node", repo_path("bench/peer/server.mjs").to_str().unwrap()])
                    .env("PORT", port.to_string())
                    .env("BROKERS", &broker.addr)
                    .env("TOPIC_PREFIX", broker.topic(""))
                    .env("JWT_SECRET", TEST_SECRET)
                    .env("SCHEMAS_DIR", repo_path("schemas"));
            }
        }
        let child = command
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("starting a server");
        let server = Self {
            kind,
            url: format!("http://127.0.0.1:{port}"),
            ops_url: format!("http://127.0.0.1:{ops_port}"),
            port,
            node: node.to_owned(),
            extra: extra.to_owned(),
            child,
        };
        match kind {
            Kind::Centrifugo => {
                let health = format!("{}/health", server.ops_url);
                let healthy = async || match reqwest::get(&health).await {
                    Ok(response) => response.status().is_success(),
                    Err(_) => false,
                };
                eventually("Centrifugo to answer /health", healthy, |up| *up).await;
            }
            _ => wait_ready(&server.ops_url).await,
        }
        server
    }

    pub fn protocol(&self) -> Protocol {
        self.kind.protocol()
    }

    /// A deploy: SIGTERM, wait for the process to finish its shutdown, and
    /// start the same server (same port, same consumer group) again.
    pub async fn restart(mut self, broker: &Broker) -> Self {
        signal_process(self.child.id(), "-TERM");
        // Polled, not `wait`: the load generator shares this thread and must
        // keep answering the server (its close frames) while it shuts down.
        while matches!(self.child.try_wait(), Ok(None)) {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        Self::start_on(self.kind, broker, self.port, &self.node, &self.extra).await
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    fn proc_file(&self, name: &str) -> String {
        std::fs::read_to_string(format!("/proc/{}/{name}", self.child.id())).unwrap_or_default()
    }

    /// User + system CPU seconds of every thread so far.
    pub fn cpu_seconds(&self) -> f64 {
        cpu_seconds_in(&self.proc_file("stat"))
    }

    /// Resident memory in bytes.
    pub fn rss_bytes(&self) -> u64 {
        self.proc_file("status")
            .lines()
            .find_map(|line| line.strip_prefix("VmRSS:"))
            .and_then(|kb| kb.trim().trim_end_matches(" kB").trim().parse::<u64>().ok())
            .unwrap_or(0)
            * 1024
    }

    /// Records consumed so far, from the server's `/stats` (Centrifugo's
    /// consumer counter in `/metrics`).
    pub async fn consumed(&self) -> u64 {
        let field = match self.kind {
            Kind::CrmBridge => "recordsConsumed",
            Kind::NodePeer => "consumed",
            Kind::Centrifugo => return self.centrifugo_processed().await,
        };
        self.stat(field).await
    }

    async fn centrifugo_processed(&self) -> u64 {
        let metrics = match reqwest::get(format!("{}/metrics", self.ops_url)).await {
            Ok(response) => response.text().await.unwrap_or_default(),
            Err(_) => return 0,
        };
        metrics
            .lines()
            .filter(|line| line.starts_with("centrifugo_consumers_messages_processed_total"))
            .filter_map(|line| line.rsplit_once(' ')?.1.parse::<f64>().ok())
            .sum::<f64>() as u64
    }

    /// One number of the server's `/stats` (0 while it does not answer).
    pub async fn stat(&self, field: &str) -> u64 {
        let stats: serde_json::Value = match reqwest::get(format!("{}/stats", self.ops_url)).await {
            Ok(response) => response.json().await.unwrap_or_default(),
            Err(_) => return 0,
        };
        stats[field].as_u64().unwrap_or(0)
    }

    /// SIGSTOP / SIGCONT: holds the whole process still (a backlog builds).
    pub fn freeze(&self, frozen: bool) {
        let signal = if frozen { "-STOP" } else { "-CONT" };
        signal_process(self.child.id(), signal);
    }

    /// SIGKILL, and waits for the process to go.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// User + system CPU seconds of this process (the load generator and the
/// feed's producer), every thread so far.
pub fn generator_cpu_seconds() -> f64 {
    cpu_seconds_in(&std::fs::read_to_string("/proc/self/stat").unwrap_or_default())
}

/// The CPU seconds in a `/proc/<pid>/stat` line.
fn cpu_seconds_in(stat: &str) -> f64 {
    // Fields after the parenthesised command name; utime and stime are
    // the 14th and 15th of the whole line.
    let after_name = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let ticks = |n: usize| {
        fields
            .get(n)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
    };
    (ticks(11) + ticks(12)) as f64 / 100.0
}

fn signal_process(pid: u32, signal: &str) {
    // A process that is already gone has nothing left to signal.
    let _ = Command::new("kill")
        .args([signal, &pid.to_string()])
        .stderr(Stdio::null())
        .status();
}

impl Drop for Server {
    fn drop(&mut self) {
        self.freeze(false);
        self.kill();
    }
}

/// Pins this process (and every thread it starts afterwards) to the load core.
pub fn pin_load_generator() {
    let pid = std::process::id().to_string();
    let _ = Command::new("taskset")
        .args(["-cp", LOAD_CORE, &pid])
        .stdout(Stdio::null())
        .status();
}
