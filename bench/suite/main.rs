//! `make bench`: crm-bridge against the peer a team would otherwise deploy
//! (`bench/peer`, Node: socket.io 4 + kafkajs), the same load from the same
//! generator, one server at a time pinned to core 0 while the generator and
//! the broker keep core 1. Prints one table (figures, crm-bridge's advantage
//! as a ratio measured in this run, goals) and writes it to
//! `bench/RESULTS.md` with the date, commit and machine.
//!
//! `BENCH_ONLY=idle,fanout,...` runs some scenarios; `BENCH_CLIENTS` and
//! `BENCH_SECONDS` shrink them for a quick look (see `scenarios::Scale`).
//! To profile the bridge, `BENCH_BRIDGE_WRAP="heaptrack -o FILE"` starts it
//! under a wrapper, and `BENCH_HOLD_SECONDS=60` keeps scenario 1's clients
//! connected after the measurement (send the bridge SIGTERM meanwhile for a
//! complete trace). `BENCH_BRIDGE_TOML` is appended to the bridge's config,
//! to compare settings (e.g. `$'[replay]\nmemory_bytes = 0'`).

#[path = "../../tests/support/mod.rs"]
mod support;

mod feed;
mod load;
mod report;
mod scenarios;
mod servers;

use std::process::Command;

use report::Report;
use scenarios::Scale;
use support::Broker;

fn shell(command: &str) -> String {
    Command::new("sh")
        .args(["-c", command])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default()
}

fn selected(name: &str) -> bool {
    std::env::var("BENCH_ONLY").map_or(true, |only| only.split(',').any(|s| s == name))
}

async fn run_all(report: &mut Report) {
    let scale = Scale::from_env();
    let broker = Broker::start();
    if selected("idle") {
        scenarios::idle::run(&broker, &scale, report).await;
    }
    if selected("fanout") {
        scenarios::fanout::run(&broker, &scale, report).await;
    }
    if selected("selective") {
        scenarios::selective::run(&broker, &scale, report).await;
    }
    if selected("ingest") {
        scenarios::ingest::run(&broker, &scale, report).await;
    }
    if selected("replay") {
        scenarios::replay::run(&broker, &scale, report).await;
    }
    if selected("restart") {
        scenarios::restart::run(&broker, &scale, report).await;
    }
}

fn write_results(report: &Report) {
    let header = format!(
        "# Benchmark results\n\n\
         - date: {}\n- commit: {}\n- machine: {}, {} cores, {}\n\
         - command: `make bench` (crm-bridge release build vs `bench/peer`; server on core 0, \
         load generator and broker on core 1)\n\n",
        shell("date -u +%Y-%m-%dT%H:%MZ"),
        shell("git rev-parse --short HEAD"),
        shell("uname -sm"),
        shell("nproc --all"),
        shell("grep -m1 'model name' /proc/cpuinfo | cut -d: -f2"),
    );
    let analysis = support::repo_path("bench/ANALYSIS.md");
    let mut text = header + &report.table();
    if let Ok(notes) = std::fs::read_to_string(&analysis) {
        text.push('\n');
        text.push_str(&notes);
    }
    std::fs::write(support::repo_path("bench/RESULTS.md"), text).unwrap();
}

fn main() {
    servers::pin_load_generator();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let mut report = Report::default();
    runtime.block_on(run_all(&mut report));
    println!("\n{}", report.table());
    write_results(&report);
    println!("written to bench/RESULTS.md");
}
