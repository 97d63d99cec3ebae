//! The official socket.io-client, driven through `tests/client/driver.mjs`.

use std::process::Stdio;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, Command};
use tokio::sync::mpsc;

use super::{PATIENCE, repo_path};

/// Runs a Node script of `tests/client` (which holds the pinned
/// socket.io-client): its stdin for commands, and its stdout's JSON lines,
/// at most `capacity` of them unread.
pub fn spawn_node_script(
    script: &'static str,
    capacity: usize,
) -> (Child, ChildStdin, mpsc::Receiver<Value>) {
    assert!(
        repo_path("tests/client/node_modules/socket.io-client").exists(),
        "run `npm ci` in tests/client (make test does)"
    );
    let mut child = Command::new("node")
        .arg(repo_path(script))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("starting node");
    let stdin = child.stdin.take().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let (tx, received) = mpsc::channel(capacity);
    tokio::spawn(async move {
        while let Ok(Some(line)) = lines.next_line().await {
            let value: Value = serde_json::from_str(&line)
                .unwrap_or_else(|e| panic!("{script} writes JSON lines ({e}): {line}"));
            if tx.send(value).await.is_err() {
                break;
            }
        }
    });
    (child, stdin, received)
}

pub struct Clients {
    _child: Child,
    stdin: ChildStdin,
    observations: mpsc::Receiver<Value>,
    /// Observations read but not yet claimed by a `wait_for`.
    pub seen: Vec<Value>,
}

impl Clients {
    pub async fn spawn() -> Self {
        Self::spawn_script("tests/client/driver.mjs").await
    }

    /// Another script of `tests/client` that speaks the driver's protocol:
    /// commands and observations naming their `client`.
    pub async fn spawn_script(script: &'static str) -> Self {
        let (child, stdin, observations) = spawn_node_script(script, 100_000);
        Self {
            _child: child,
            stdin,
            observations,
            seen: Vec::new(),
        }
    }

    pub async fn send(&mut self, command: Value) {
        let mut line = command.to_string();
        line.push('\n');
        self.stdin.write_all(line.as_bytes()).await.unwrap();
        self.stdin.flush().await.unwrap();
    }

    /// Connects `client` and waits for the bridge's `connected` event.
    pub async fn connect(&mut self, client: &str, url: &str, auth: Value) -> Value {
        self.send(json!({"op": "connect", "client": client, "url": url, "auth": auth}))
            .await;
        self.event(client, "connected").await
    }

    pub async fn emit(&mut self, client: &str, event: &str, data: Value) {
        self.send(json!({"op": "emit", "client": client, "event": event, "data": data}))
            .await;
    }

    /// Emits with an acknowledgement callback and returns the reply.
    pub async fn request(&mut self, client: &str, event: &str, data: Value) -> Value {
        let reference = uuid::Uuid::new_v4().to_string();
        self.send(
            json!({"op": "emit", "client": client, "event": event, "data": data, "ack": reference}),
        )
        .await;
        let ack = self
            .wait_for(&format!("{client} ack of {event}"), |o| {
                o["type"] == "ack" && o["ref"] == reference
            })
            .await;
        ack["data"].clone()
    }

    /// Subscribes and asserts the bridge accepted it.
    pub async fn subscribe(&mut self, client: &str, request: Value) {
        let reply = self.request(client, "subscribe", request.clone()).await;
        assert_eq!(reply["ok"], true, "subscribe {request} refused: {reply}");
    }

    /// The data of the next `event` sent to `client`.
    pub async fn event(&mut self, client: &str, event: &str) -> Value {
        let found = self
            .wait_for(&format!("{client} receiving {event}"), |o| {
                o["client"] == client && o["type"] == "event" && o["event"] == event
            })
            .await;
        found["data"].clone()
    }

    /// The next `recovered` report the client module gives `client` (the
    /// observation: its `data` is `{ recovered, replayed, gaps }`).
    pub async fn recovered(&mut self, client: &str) -> Value {
        self.wait_for(&format!("{client} recovered"), |o| {
            o["client"] == client && o["type"] == "recovered"
        })
        .await
    }

    /// The seed's error object that a refused handshake of `client` gets.
    /// Claims the client's observations from its latest `connect` up to its
    /// next `disconnect`, which must be "io server disconnect", and asserts
    /// that between them came that one `error` event: no `connected`, no
    /// acknowledgement, no other event (observations of what the page did
    /// meanwhile stay unclaimed).
    pub async fn refusal(&mut self, client: &str) -> Value {
        // What the bridge sent, not what a page's script says meanwhile.
        let from_the_bridge = ["connect", "event", "ack", "disconnect"];
        let ours =
            |o: &Value| o["client"] == client && from_the_bridge.iter().any(|t| o["type"] == *t);
        let is_gone = |o: &Value| ours(o) && o["type"] == "disconnect";
        let gone = self
            .observe_until(&format!("{client}'s refusal"), is_gone)
            .await;
        let connect = self.seen[..gone]
            .iter()
            .rposition(|o| ours(o) && o["type"] == "connect")
            .unwrap_or_else(|| panic!("{client} disconnected without connecting"));
        let claimed: Vec<usize> = (connect..=gone).filter(|&i| ours(&self.seen[i])).collect();
        let steps: Vec<Value> = claimed.iter().map(|&i| self.seen[i].clone()).collect();
        for &i in claimed.iter().rev() {
            self.seen.remove(i);
        }
        let kind = |o: &Value| {
            o["event"]
                .as_str()
                .or(o["type"].as_str())
                .unwrap()
                .to_owned()
        };
        let kinds: Vec<String> = steps.iter().map(kind).collect();
        assert_eq!(
            kinds,
            ["connect", "error", "disconnect"],
            "{client}: {steps:#?}"
        );
        assert_eq!(steps[2]["reason"], "io server disconnect", "{client}");
        steps[1]["data"].clone()
    }

    /// Connects `client` with `auth`: `Ok` with the `connected` greeting, or
    /// `Err` with the error of its [`refusal`](Self::refusal).
    pub async fn try_connect(
        &mut self,
        client: &str,
        url: &str,
        auth: Value,
    ) -> Result<Value, Value> {
        self.send(json!({"op": "connect", "client": client, "url": url, "auth": auth}))
            .await;
        let greeted = |o: &Value| o["type"] == "event" && o["event"] == "connected";
        let at = self
            .observe_until(&format!("{client} connecting"), |o| {
                o["client"] == client && (greeted(o) || o["type"] == "disconnect")
            })
            .await;
        if greeted(&self.seen[at]) {
            Ok(self.seen.remove(at)["data"].clone())
        } else {
            Err(self.refusal(client).await)
        }
    }

    /// Reads observations into `seen` until one matches `matches`, and
    /// returns its index there, unclaimed.
    async fn observe_until(&mut self, what: &str, matches: impl Fn(&Value) -> bool) -> usize {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            if let Some(at) = self.seen.iter().position(&matches) {
                return at;
            }
            match tokio::time::timeout_at(deadline, self.observations.recv()).await {
                Ok(Some(observation)) => self.seen.push(observation),
                Ok(None) => panic!("the Node driver exited while waiting for {what}"),
                Err(_) => panic!("timed out waiting for {what}; unclaimed: {:#?}", self.seen),
            }
        }
    }

    /// Claims the first observation matching `matches`, waiting for it.
    pub async fn wait_for(&mut self, what: &str, matches: impl Fn(&Value) -> bool) -> Value {
        if let Some(at) = self.seen.iter().position(&matches) {
            return self.seen.remove(at);
        }
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            match tokio::time::timeout_at(deadline, self.observations.recv()).await {
                Ok(Some(observation)) if matches(&observation) => return observation,
                Ok(Some(observation)) => self.seen.push(observation),
                Ok(None) => panic!("the Node driver exited while waiting for {what}"),
                Err(_) => panic!("timed out waiting for {what}; unclaimed: {:#?}", self.seen),
            }
        }
    }

    /// Collects everything observed so far into `seen`, without waiting:
    /// the look of an [`eventually`](super::eventually) that counts
    /// observations without claiming them.
    pub fn gather(&mut self) {
        while let Ok(observation) = self.observations.try_recv() {
            self.seen.push(observation);
        }
    }

    /// Collects everything observed during `quiet` into `seen`.
    pub async fn settle(&mut self, quiet: Duration) {
        let deadline = tokio::time::Instant::now() + quiet;
        while let Ok(Some(observation)) =
            tokio::time::timeout_at(deadline, self.observations.recv()).await
        {
            self.seen.push(observation);
        }
    }

    /// Unclaimed events named `event` that `client` received.
    pub fn unclaimed(&self, client: &str, event: &str) -> Vec<&Value> {
        self.seen
            .iter()
            .filter(|o| o["client"] == client && o["type"] == "event" && o["event"] == event)
            .collect()
    }

    /// Claims the next `count` resource events `client` receives, in order.
    pub async fn deliveries(&mut self, client: &str, count: usize) -> Vec<Value> {
        let mut out = Vec::with_capacity(count);
        while out.len() < count {
            let found = self
                .wait_for(
                    &format!("{client} delivery {} of {count}", out.len() + 1),
                    |o| o["client"] == client && o["type"] == "event" && is_delivery(o),
                )
                .await;
            out.push(found["data"].clone());
        }
        out
    }

    /// Unclaimed events of any resource-event kind that `client` received.
    pub fn unclaimed_deliveries(&self, client: &str) -> Vec<&Value> {
        self.seen
            .iter()
            .filter(|o| o["client"] == client && o["type"] == "event" && is_delivery(o))
            .collect()
    }
}

/// Whether an observation is one of the events that carry CRM data.
fn is_delivery(observation: &Value) -> bool {
    const DELIVERIES: [&str; 5] = [
        "resource-update",
        "resource-delete",
        "pipeline-update",
        "email-received",
        "notification",
    ];
    DELIVERIES.contains(&observation["event"].as_str().unwrap_or(""))
}
