//! The client contract (`src/contract`): the checked-in documents are what
//! the code generates, the event list is the code's, the AsyncAPI document
//! passes `@asyncapi/parser`, and a running bridge serves it. That the
//! TypeScript declarations type-check as a page uses them, and catch its
//! mistakes, is the client package's test (`client/test/package.test.mjs`).

mod support;

use std::path::Path;
use std::process::Command;

use crm_bridge::contract::{asyncapi, client_events, server_events, typescript};
use crm_bridge::kafka::TopicNames;
use support::{Broker, TestBridge, repo_path};

const STALE: &str = "is stale: run `make contract` (src/contract generates it)";

#[test]
fn the_checked_in_documents_are_what_the_code_generates() {
    let document = asyncapi(&TopicNames::default());
    let generated = serde_json::to_string_pretty(&document).unwrap() + "\n";
    let checked_in = std::fs::read_to_string(repo_path("docs/asyncapi.json")).unwrap();
    assert!(generated == checked_in, "docs/asyncapi.json {STALE}");
    let checked_in = std::fs::read_to_string(repo_path("client/index.d.ts")).unwrap();
    assert!(typescript() == checked_in, "client/index.d.ts {STALE}");
}

/// Every event name the code emits (`emit("…"`, `emit_patiently(…, "…"`,
/// presence's `notify(…, "user-…"`) and handles (`socket.on("…"`) is in
/// the contract, and nothing else is. The events `render` makes are
/// listed beside it (`protocol::outbound_schemas`).
#[test]
fn the_contract_lists_every_event_the_code_emits_and_handles() {
    let (mut emitted, mut handled) = (Vec::new(), Vec::new());
    let mut files = Vec::new();
    rust_sources(&repo_path("src"), &mut files);
    let markers = [
        ("emit(\"", false),
        ("emit_patiently(socket, \"", false),
        (", \"user-", false),
        ("socket.on(\"", true),
    ];
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        let code = text.split("#[cfg(test)]").next().unwrap();
        for (marker, is_handled) in markers {
            for piece in code.split(marker).skip(1) {
                let name = piece.split('"').next().unwrap();
                let name = match marker.strip_prefix(", \"") {
                    Some(prefix) => format!("{prefix}{name}"),
                    None => name.to_owned(),
                };
                if name.chars().all(|c| c.is_ascii_lowercase() || c == '-') {
                    if is_handled {
                        &mut handled
                    } else {
                        &mut emitted
                    }
                    .push(name);
                }
            }
        }
    }
    let mut generator = schemars::SchemaGenerator::default();
    let rendered: Vec<String> = crm_bridge::protocol::outbound_schemas(&mut generator)
        .into_iter()
        .map(|(name, _)| name.to_owned())
        .collect();
    emitted.extend(rendered);
    let sorted = |mut names: Vec<String>| {
        names.sort();
        names.dedup();
        names
    };
    let contract_emits = sorted(server_events().iter().map(|e| e.name.to_owned()).collect());
    let contract_handles = sorted(client_events().iter().map(|e| e.name.to_owned()).collect());
    assert_eq!(sorted(emitted), contract_emits, "events the bridge emits");
    assert_eq!(
        sorted(handled),
        contract_handles,
        "events the bridge handles"
    );
}

fn rust_sources(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if path.is_dir() {
            rust_sources(&path, out);
        } else if name.ends_with(".rs") && !name.ends_with("tests.rs") {
            out.push(path);
        }
    }
}

/// `program args…` in the repository; its output, and whether it succeeded.
fn run(program: &str, args: &[&str]) -> (bool, String) {
    let tools = repo_path("tests/asyncapi/node_modules");
    assert!(
        tools.exists(),
        "tests/asyncapi has no node_modules: run `make deps`"
    );
    let out = Command::new(program)
        .args(args)
        .current_dir(repo_path(""))
        .output()
        .unwrap_or_else(|e| panic!("{program}: {e}"));
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text)
}

#[test]
fn the_asyncapi_document_passes_the_asyncapi_parser() {
    let (ok, out) = run(
        "node",
        &["tests/asyncapi/validate-asyncapi.mjs", "docs/asyncapi.json"],
    );
    // Warnings do not fail; they show here.
    println!("{out}");
    assert!(ok, "@asyncapi/parser:\n{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_running_bridge_serves_its_asyncapi_document() {
    let broker = Broker::start();
    let mut topics = None;
    let bridge = TestBridge::start_with(&broker, |config| {
        topics = Some(config.kafka.topics.clone());
    })
    .await;
    let topics = topics.unwrap();
    let url = format!("{}{}", bridge.url, crm_bridge::http::ASYNCAPI_PATH);
    let response = reqwest::get(&url).await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/json");
    let served: serde_json::Value = response.json().await.unwrap();
    assert_eq!(served, asyncapi(&topics));
    // The bridge's own topics, not the defaults.
    assert_eq!(served["channels"]["deals"]["address"], topics.deals);
    assert_ne!(topics.deals, TopicNames::default().deals);
}
