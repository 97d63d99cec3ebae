//! Replay capacity is shared fairly, and one connection's replays are
//! bounded (issue 17's probe).
//!
//! The hogs are websocket clients driven at the wire level that subscribe
//! with `since` and then stop reading (with a small receive buffer), so
//! their replays fill their sockets and wait for room: the client library
//! always reads, and could not do it.

mod support;

#[allow(dead_code)] // the codec also has what only the load generator reads
#[path = "../bench/suite/load/wire.rs"]
mod wire;

use std::time::Duration;

use crm_bridge::domain::Action;
use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use support::{Broker, Producer, TestBridge, token};
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use wire::Inbound;

const HOG_PIPELINE: &str = "pipeline_hog";
/// Records each hog replays, of [`NOTES_BYTES`] each: 16 MB, far more
/// than a socket that is not read takes (loopback's send buffer grows to
/// 4 MB, plus `limits.socket_buffer`), so its replay gets stuck.
const HOG_RECORDS: u64 = 2_000;
const NOTES_BYTES: usize = 8_000;
/// A replay with nothing to replay finishes in milliseconds; this is how
/// long another organisation's resume may take beside the hogs. Far below
/// `replay.timeout_seconds` (600 here) and below the Engine.IO heartbeat
/// (25 s + 20 s) that disconnects a client that never reads.
const RESUME_BOUND: Duration = Duration::from_secs(30);

/// A Socket.IO client at the wire level: it reads only when told to.
struct Raw {
    ws: WebSocketStream<TcpStream>,
    next_ack: u64,
}

impl Raw {
    /// Connects and completes the Socket.IO CONNECT. `small_buffer`: a 4 KB
    /// receive buffer, so a client that stops reading fills up at once.
    async fn connect(bridge: &TestBridge, token: &str, small_buffer: bool) -> Self {
        let socket = TcpSocket::new_v4().unwrap();
        if small_buffer {
            socket.set_recv_buffer_size(4096).unwrap();
        }
        let tcp = socket.connect(bridge.addr()).await.unwrap();
        let url = wire::websocket_url(&bridge.url);
        let (ws, _) = tokio_tungstenite::client_async(url, tcp).await.unwrap();
        let mut raw = Self { ws, next_ack: 0 };
        loop {
            let text = raw.frame().await;
            let reply = match wire::classify(&text) {
                Inbound::Open => wire::connect(&json!({ "token": token })),
                Inbound::Connected => return raw,
                Inbound::Ping => wire::PONG.to_owned(),
                _ => continue,
            };
            raw.ws.send(Message::text(reply)).await.unwrap();
        }
    }

    /// The next text frame, answering pings on the way.
    async fn frame(&mut self) -> String {
        loop {
            let frame = tokio::time::timeout(Duration::from_secs(30), self.ws.next())
                .await
                .expect("nothing from the bridge for 30 s")
                .expect("the bridge closed the connection")
                .unwrap();
            let Message::Text(text) = frame else {
                continue;
            };
            if matches!(wire::classify(text.as_str()), Inbound::Ping) {
                self.ws.send(Message::text(wire::PONG)).await.unwrap();
                continue;
            }
            return text.as_str().to_owned();
        }
    }

    /// Emits without an acknowledgement.
    async fn emit(&mut self, event: &str, data: &Value) {
        let packet = format!("42[\"{event}\",{data}]");
        self.ws.send(Message::text(packet)).await.unwrap();
    }

    /// Emits with an acknowledgement and returns it; events before it are
    /// dropped (the callers ask before anything is sent to them).
    async fn request(&mut self, event: &str, data: &Value) -> Value {
        let id = self.next_ack;
        self.next_ack += 1;
        let packet = wire::emit_with_ack(id, event, data);
        self.ws.send(Message::text(packet)).await.unwrap();
        loop {
            let text = self.frame().await;
            if let Inbound::Ack { id: got, args } = wire::classify(&text)
                && got == id
            {
                return wire::arg(args, 0).unwrap();
            }
        }
    }

    /// The next event: its name and first argument.
    async fn event(&mut self) -> (String, Value) {
        loop {
            let text = self.frame().await;
            if let Inbound::Event { name, raw } = wire::classify(&text) {
                return (name.to_owned(), wire::arg(raw, 1).unwrap_or(Value::Null));
            }
        }
    }
}

/// [`HOG_RECORDS`] big deal updates in `pipeline` (org-1), over 64 deals.
async fn produce_big(producer: &Producer, pipeline: &str) {
    let notes = "n".repeat(NOTES_BYTES);
    futures::future::join_all((0..HOG_RECORDS).map(|seq| {
        let deal = format!("deal_{}", seq % 64);
        let changes = json!({"seq": seq, "notes": notes});
        let changes = changes.as_object().unwrap();
        let record =
            support::avro::deal_with("org-1", &deal, pipeline, Action::Update, None, changes);
        async move { producer.send("crm.deals", &deal, &record).await }
    }))
    .await;
}

fn pipeline(id: &str) -> Value {
    json!({"resource": "deal", "filter": {"pipelineId": id}})
}

fn with_since(mut request: Value, since: &Value) -> Value {
    request["since"] = since.clone();
    request
}

/// The cursor of a live subscription to `request` taken now.
async fn cursor_now(bridge: &TestBridge, org: &str, request: &Value) -> Value {
    let mut setup = Raw::connect(bridge, &token("user_setup", org), false).await;
    let ack = setup.request("subscribe", request).await;
    assert_eq!(ack["ok"], true, "{ack}");
    ack["cursor"].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_that_resume_and_never_read_cannot_delay_another_organisations_resume() {
    const HOGS: usize = 4;
    let broker = Broker::start();
    let bridge = TestBridge::start_with(&broker, |c| {
        // A stuck replay is not abandoned for the whole test.
        c.replay.timeout_seconds = 600;
        c.limits.socket_buffer = 8;
        assert_eq!(c.replay.concurrency, HOGS, "the hogs could take every slot");
    })
    .await;
    let since = cursor_now(&bridge, "org-1", &pipeline(HOG_PIPELINE)).await;
    produce_big(&Producer::new(&broker), HOG_PIPELINE).await;
    bridge.wait_consumed(HOG_RECORDS).await;

    // Another organisation is connected and live, with nothing to replay.
    let mut other = Raw::connect(&bridge, &token("user_o", "org-2"), false).await;
    let theirs = pipeline("pipeline_other");
    let ack = other.request("subscribe", &theirs).await;
    let their_cursor = ack["cursor"].clone();

    // One user's connections resume and never read again.
    let mut hogs = Vec::new();
    for _ in 0..HOGS {
        let mut hog = Raw::connect(&bridge, &token("user_hog", "org-1"), true).await;
        hog.emit("subscribe", &with_since(pipeline(HOG_PIPELINE), &since))
            .await;
        hogs.push(hog);
    }
    // Every hog replay has started (before the fix: each holds a slot).
    bridge
        .stats_until("every hog replay to start", |s| {
            s["replayRequests"].as_u64() >= Some(HOGS as u64)
        })
        .await;

    let resumed = tokio::time::timeout(RESUME_BOUND, async {
        let ack = other
            .request("subscribe", &with_since(theirs.clone(), &their_cursor))
            .await;
        assert_eq!(ack["replaying"], true, "{ack}");
        loop {
            let (name, data) = other.event().await;
            if name == "subscription-resumed" {
                return data;
            }
        }
    })
    .await
    .expect("another organisation's resume waited for the hogs");
    assert_eq!(resumed["replayed"], 0, "{resumed}");

    // ...while every hog is still connected and none of their replays has
    // finished: the resume did not wait for them to go.
    let stats = bridge.stats().await;
    assert_eq!(stats["replayedEvents"], 0, "a hog replay finished: {stats}");
    // (The setup client may not be gone yet.)
    assert!(
        stats["clientsConnected"].as_u64() >= Some(HOGS as u64 + 1),
        "the hogs were cut off first: {stats}"
    );
    assert_eq!(stats["cutOff"], json!({}), "{stats}");
    // And they wait without a slot.
    bridge
        .stats_until("every hog to wait without a slot", |s| {
            s["replaysWaitingForSocket"] == HOGS as u64
        })
        .await;
    drop(hogs);
    bridge.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribing_again_with_since_replaces_the_pending_replay_and_sends_each_event_once() {
    const AGAIN: u64 = 20;
    const MISSED: u64 = 5;
    let broker = Broker::start();
    let bridge = TestBridge::start_with(&broker, |c| c.limits.socket_buffer = 8).await;
    let deal = json!({"resource": "deal", "id": "deal_k"});
    let since = cursor_now(&bridge, "org-1", &deal).await;
    let producer = Producer::new(&broker);
    produce_big(&producer, HOG_PIPELINE).await;
    for seq in 0..MISSED {
        let record = support::avro::deal_seq("org-1", "deal_k", "pipeline_k", seq);
        producer.send("crm.deals", "deal_k", &record).await;
    }
    bridge.wait_consumed(HOG_RECORDS + MISSED).await;

    // A first replay fills the socket of a client that stops reading...
    let mut client = Raw::connect(&bridge, &token("user_r", "org-1"), true).await;
    client
        .emit("subscribe", &with_since(pipeline(HOG_PIPELINE), &since))
        .await;
    bridge
        .stats_until("the first replay to wait for the socket", |s| {
            s["replaysWaitingForSocket"] == 1
        })
        .await;
    // ...so the next subscribes queue behind it: each replaces the last.
    let again = with_since(deal, &since);
    for _ in 0..AGAIN {
        client.emit("subscribe", &again).await;
    }
    bridge
        .stats_until("the re-subscribes to replace each other", |s| {
            s["replaysCancelled"]["replaced"] == AGAIN - 1
        })
        .await;

    // The client reads again: the first replay, then one replay of the deal.
    let mut seqs = Vec::new();
    let mut resumed = Vec::new();
    while resumed.len() < 2 {
        let (name, data) = client.event().await;
        match name.as_str() {
            "subscription-resumed" => resumed.push(data),
            "resource-update" if data["id"] == "deal_k" => {
                assert_eq!(data["replayed"], true, "{data}");
                seqs.push(data["data"]["seq"].as_u64().unwrap());
            }
            _ => {}
        }
    }
    assert_eq!(resumed[0]["replayed"], HOG_RECORDS, "{:?}", resumed[0]);
    assert_eq!(
        resumed[1]["subscription"]["id"], "deal_k",
        "{:?}",
        resumed[1]
    );
    assert_eq!(resumed[1]["replayed"], MISSED, "{:?}", resumed[1]);
    assert_eq!(
        seqs,
        (0..MISSED).collect::<Vec<_>>(),
        "each missed event once"
    );
    let stats = bridge.stats().await;
    assert_eq!(stats["replayRequests"], 2, "{stats}");
    // Timed once each as they end, just after telling the client.
    let stats = bridge
        .stats_until("both replays timed", |s| {
            s["replayDuration"]["resumed"]["count"] == 2
        })
        .await;
    assert_eq!(stats["replaysRunning"], 0, "{stats}");
    bridge.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_has_a_bounded_number_of_replays_pending() {
    let broker = Broker::start();
    let bridge = TestBridge::start_with(&broker, |c| {
        c.limits.socket_buffer = 8;
        c.replay.max_replays_per_connection = 3;
    })
    .await;
    let since = cursor_now(&bridge, "org-1", &pipeline(HOG_PIPELINE)).await;
    produce_big(&Producer::new(&broker), HOG_PIPELINE).await;
    bridge.wait_consumed(HOG_RECORDS).await;

    let mut client = Raw::connect(&bridge, &token("user_r", "org-1"), true).await;
    client
        .emit("subscribe", &with_since(pipeline(HOG_PIPELINE), &since))
        .await;
    bridge
        .stats_until("the first replay to wait for the socket", |s| {
            s["replaysWaitingForSocket"] == 1
        })
        .await;
    // Two more keys fill the connection's three; a fourth is refused.
    for deal in ["deal_a", "deal_b", "deal_c"] {
        let request = with_since(json!({"resource": "deal", "id": deal}), &since);
        client.emit("subscribe", &request).await;
    }
    bridge
        .stats_until("the fourth replay to be refused", |s| {
            s["clientErrors"]["rate_limited"] == 1
        })
        .await;
    // The refused subscribe changed nothing (the setup client's went with it).
    bridge
        .stats_until("three subscriptions", |s| s["subscriptions"] == 3)
        .await;
    // The refusal's `error` event and acknowledgement went to a full
    // socket: a client that does not read is not told (see docs/delivery-guarantees.md).
    assert_eq!(bridge.stats().await["replaysWaitingForSocket"], 1);
    drop(client);
    bridge.stop().await;
}
