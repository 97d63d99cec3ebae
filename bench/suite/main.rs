//! `make bench`: crm-bridge against the peer a team would otherwise deploy
//! (`bench/peer`, Node: socket.io 4 + kafkajs) and against Centrifugo (Go),
//! the same load from the same generator, one server at a time pinned to
//! core 0 while the generator and the broker keep core 1. Prints one table
//! (figures, crm-bridge's advantage over each as a ratio measured in this
//! run, goals) and writes it to
//! `bench/RESULTS.md` with the date, commit and machine.
//!
//! `BENCH_ONLY=idle,fanout,...` runs some scenarios; `BENCH_CLIENTS` and
//! `BENCH_SECONDS` shrink them for a quick look (see `scenarios::Scale`).
//! Such a partial run writes `target/bench-logs/RESULTS-partial.md`, leaving
//! the full suite's `bench/RESULTS.md` as it was.
//! To profile the bridge, `BENCH_BRIDGE_WRAP="heaptrack -o FILE"` starts it
//! under a wrapper, and `BENCH_HOLD_SECONDS=60` keeps scenario 1's clients
//! connected after each server's measurement, printing its pid (to attach
//! `perf record -p`; or send the bridge SIGTERM for a complete trace). `BENCH_BRIDGE_TOML` is appended to the bridge's config,
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

/// One Kafka node for the whole suite (the harness's shared node, on the
/// load core), and topics of its own for each scenario (each
/// [`Broker::start`] names them afresh), so no scenario reads what an
/// earlier one produced. On tansu each scenario needed a broker of its own:
/// its in-memory storage listed every batch of a partition to answer a
/// fetch, so earlier scenarios' records slowed later ones. Kafka finds a
/// fetch's position through the segment's offset index, whatever lies before it.
async fn run_all(report: &mut Report) {
    let scale = Scale::from_env();
    if selected("idle") {
        scenarios::idle::run(&Broker::start(), &scale, report).await;
    }
    if selected("fanout") {
        scenarios::fanout::run(&Broker::start(), &scale, report).await;
    }
    if selected("selective") {
        scenarios::selective::run(&Broker::start(), &scale, report).await;
    }
    if selected("ingest") {
        scenarios::ingest::run(&Broker::start(), &scale, report).await;
    }
    if selected("replay") {
        scenarios::replay::run(&Broker::start(), &scale, report).await;
    }
    if selected("restart") {
        scenarios::restart::run(&Broker::start(), &scale, report).await;
    }
}

/// Where the table goes: `bench/RESULTS.md` holds the full suite at its
/// own scale only.
fn results_path() -> std::path::PathBuf {
    let partial = [
        "BENCH_ONLY",
        "BENCH_CLIENTS",
        "BENCH_SECONDS",
        "BENCH_INGEST_RECORDS",
    ]
    .iter()
    .any(|knob| std::env::var_os(knob).is_some());
    if partial {
        support::repo_path("target/bench-logs/RESULTS-partial.md")
    } else {
        support::repo_path("bench/RESULTS.md")
    }
}

/// What the header says of the run: taken when it starts, so the commit is
/// the one built and measured, with the machine's load at both ends
/// (these machines are shared: a load above 2 means other work ran too).
struct Run {
    date: String,
    commit: String,
    load_at_start: String,
}

impl Run {
    fn starts() -> Self {
        Self {
            date: shell("date -u +%Y-%m-%dT%H:%MZ"),
            commit: shell("git describe --always --dirty --abbrev=7"),
            load_at_start: load_average(),
        }
    }
}

/// The 1-, 5- and 15-minute load averages.
fn load_average() -> String {
    shell("cut -d' ' -f1-3 /proc/loadavg")
}

fn write_results(run: &Run, report: &Report) -> std::path::PathBuf {
    let header = format!(
        "# Benchmark results\n\n\
         - date: {}\n- commit: {}\n- machine: {}, {} cores, {}\n\
         - load average (1, 5, 15 min): {} at the start, {} at the end\n\
         - command: `make bench` (crm-bridge release build vs `bench/peer` and Centrifugo; server on core 0, \
         load generator and broker on core 1)\n\n",
        run.date,
        run.commit,
        shell("uname -sm"),
        shell("nproc --all"),
        shell("grep -m1 'model name' /proc/cpuinfo | cut -d: -f2"),
        run.load_at_start,
        load_average(),
    );
    let analysis = support::repo_path("bench/ANALYSIS.md");
    let mut text = header + &report.table();
    if let Ok(notes) = std::fs::read_to_string(&analysis) {
        text.push('\n');
        text.push_str(&notes);
    }
    let path = results_path();
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, text).unwrap();
    path
}

fn main() {
    servers::pin_load_generator();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let run = Run::starts();
    let mut report = Report::default();
    runtime.block_on(run_all(&mut report));
    println!("\n{}", report.table());
    let path = write_results(&run, &report);
    println!("written to {}", path.display());
}
