//! Leaving gracefully, the real binary under SIGTERM: `/readyz` turns 503 at
//! once, the node serves on for the drain delay, then closes its clients in
//! paced batches, each seeing its transport close (so socket.io-client
//! reconnects by itself), and the process exits. Timing is checked only
//! from below (a loaded machine only spreads things further).

mod support;

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::json;
use support::process::BridgeProcess;
use support::{Broker, Clients, eventually, token};

const DELAY: Duration = Duration::from_secs(3);
const BATCH: usize = 3;
const INTERVAL: Duration = Duration::from_millis(400);
const CLIENTS: usize = 9;

fn unix_ms() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
        * 1000.0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_turns_readiness_off_waits_then_closes_clients_in_paced_batches() {
    let broker = Broker::start();
    let delay = DELAY.as_secs().to_string();
    let batch = BATCH.to_string();
    let interval = INTERVAL.as_millis().to_string();
    let mut bridge = BridgeProcess::start_with_env(
        &broker,
        support::free_port(),
        "draining",
        "",
        &[
            ("CRM_BRIDGE_DRAIN__DELAY_SECONDS", delay.as_str()),
            ("CRM_BRIDGE_DRAIN__BATCH_SIZE", batch.as_str()),
            ("CRM_BRIDGE_DRAIN__BATCH_INTERVAL_MS", interval.as_str()),
        ],
    )
    .await;
    let mut clients = Clients::spawn().await;
    let names: Vec<String> = (0..CLIENTS).map(|i| format!("c{i}")).collect();
    for name in &names {
        let auth = json!({"token": token(&format!("user_{name}"), "org-1")});
        clients.connect(name, &bridge.url, auth).await;
    }

    let terminated = (Instant::now(), unix_ms());
    bridge.send_sigterm();
    let readyz = async || support::bridge::not_ready(&bridge.internal_url).await;
    let reason = eventually("/readyz to turn 503", readyz, Option::is_some).await;
    assert!(
        reason.as_deref().unwrap().contains("draining"),
        "{reason:?}"
    );
    if terminated.0.elapsed() < DELAY {
        clients.gather();
        let gone: Vec<_> = clients
            .seen
            .iter()
            .filter(|o| o["type"] == "disconnect")
            .collect();
        assert!(gone.is_empty(), "closed before the drain delay: {gone:?}");
    }

    let mut closed_at = Vec::new();
    for name in &names {
        let closed = clients
            .wait_for("its connection closed by the drain", |o| {
                o["client"] == name.as_str() && o["type"] == "disconnect"
            })
            .await;
        assert_eq!(
            closed["reason"], "transport close",
            "a reason socket.io-client reconnects after"
        );
        closed_at.push(closed["at"].as_f64().unwrap());
    }
    bridge.exited().await;
    closed_at.sort_by(f64::total_cmp);
    let first = closed_at[0] - terminated.1;
    let spread = closed_at[CLIENTS - 1] - closed_at[0];
    eprintln!("first close {first:.0} ms after SIGTERM, all within {spread:.0} ms");
    // Some slack for two clocks read in two processes.
    assert!(first >= DELAY.as_millis() as f64 - 50.0, "{first} ms");
    let batches = CLIENTS.div_ceil(BATCH) as f64;
    let paced = (batches - 1.0) * INTERVAL.as_millis() as f64;
    assert!(spread >= paced - 50.0, "{spread} ms, paced over {paced} ms");
}

/// The open-files limit: raised from a soft 1,024 to the hard limit at
/// start-up, with a warning when `guard.max_connections` does not fit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_open_files_limit_is_raised_to_the_hard_limit_with_a_warning_when_too_low() {
    let tight = start_under_prlimit("1024:4096", None).await;
    assert!(
        tight.log.contains("raised the open-files limit"),
        "{}",
        tight.log
    );
    assert!(tight.log.contains("does not fit"), "{}", tight.log);
    assert_eq!(tight.soft_limit, 4096);

    let enough = start_under_prlimit("1024:4096", Some("2000")).await;
    assert!(
        enough.log.contains("raised the open-files limit"),
        "{}",
        enough.log
    );
    assert!(!enough.log.contains("does not fit"), "{}", enough.log);
    assert_eq!(enough.soft_limit, 4096);
}

struct Started {
    log: String,
    soft_limit: u64,
}

/// The binary under `prlimit --nofile=LIMITS`, with no Kafka to reach,
/// until it listens; its log up to then and its soft limit, read from
/// `/proc`.
async fn start_under_prlimit(limits: &str, max_connections: Option<&str>) -> Started {
    use tokio::io::AsyncBufReadExt;
    let mut command = tokio::process::Command::new("prlimit");
    command
        .arg(format!("--nofile={limits}"))
        .arg(env!("CARGO_BIN_EXE_crm-bridge"))
        .env("CRM_BRIDGE_LISTEN", "127.0.0.1:0")
        .env("CRM_BRIDGE_INTERNAL_LISTEN", "127.0.0.1:0")
        .env("CRM_BRIDGE_KAFKA__BROKERS", "127.0.0.1:9")
        .env(
            "CRM_BRIDGE_SCHEMAS__LOCAL_DIR",
            support::repo_path("schemas"),
        )
        .env(
            "CRM_BRIDGE_AUTH__JWT__HS_SECRET",
            support::bridge::TEST_SECRET,
        )
        .env("CRM_BRIDGE_LOG__FILTER", "info")
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true);
    if let Some(max) = max_connections {
        command.env("CRM_BRIDGE_GUARD__MAX_CONNECTIONS", max);
    }
    let mut child = command
        .spawn()
        .expect("prlimit (util-linux) runs the bridge");
    let mut lines = tokio::io::BufReader::new(child.stderr.take().unwrap()).lines();
    let mut log = String::new();
    let listening = async {
        while let Some(line) = lines.next_line().await.unwrap() {
            log.push_str(&line);
            log.push('\n');
            if line.contains("crm-bridge listening") {
                return;
            }
        }
        panic!("the bridge exited before listening");
    };
    tokio::time::timeout(support::PATIENCE, listening)
        .await
        .expect("the bridge listens");
    let pid = child.id().unwrap();
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
    let soft_limit = limits
        .lines()
        .find_map(|l| l.strip_prefix("Max open files"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|soft| soft.parse().ok())
        .expect("Max open files in /proc/PID/limits");
    child.kill().await.unwrap();
    Started { log, soft_limit }
}
