//! The checked-in corpus of hostile inbound requests
//! (`tests/fixtures/hostile-inbound.json`), with its placeholders expanded.

use serde_json::{Value, json};

use super::repo_path;

pub struct HostileEntry {
    pub event: String,
    pub args: Vec<Value>,
    /// A seed error code, or `None` for an event the bridge ignores.
    pub expect: Option<String>,
    pub why: String,
}

pub fn corpus() -> Vec<HostileEntry> {
    let text = std::fs::read_to_string(repo_path("tests/fixtures/hostile-inbound.json")).unwrap();
    let doc: Value = serde_json::from_str(&text).unwrap();
    doc["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|entry| HostileEntry {
            event: expand(&entry["event"]).as_str().unwrap().to_owned(),
            args: entry["args"]
                .as_array()
                .unwrap()
                .iter()
                .map(expand)
                .collect(),
            expect: match entry["expect"].as_str().unwrap() {
                "ignored" => None,
                code => Some(code.to_owned()),
            },
            why: entry["why"].as_str().unwrap().to_owned(),
        })
        .collect()
}

/// `"$string:N"`, `"$array:N"`, `"$nested:N"` → what they stand for.
fn expand(value: &Value) -> Value {
    match value {
        Value::String(s) => match s.split_once(':') {
            Some(("$string", n)) => Value::from("x".repeat(n.parse().unwrap())),
            Some(("$array", n)) => Value::Array(vec![json!("update"); n.parse().unwrap()]),
            Some(("$nested", n)) => {
                (0..n.parse::<usize>().unwrap()).fold(json!("x"), |v, _| json!([v]))
            }
            _ => value.clone(),
        },
        Value::Array(items) => Value::Array(items.iter().map(expand).collect()),
        Value::Object(fields) => {
            Value::Object(fields.iter().map(|(k, v)| (k.clone(), expand(v))).collect())
        }
        other => other.clone(),
    }
}
