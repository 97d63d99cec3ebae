//! One simulated client (Centrifugo's in `centrifugo.rs`): a websocket
//! speaking Engine.IO v4 / Socket.IO v5,
//! authenticating, subscribing (resuming from its cursors after the first
//! time), answering pings and checking every event it receives. After a
//! disconnect it comes back the way socket.io-client does by default (1 s,
//! doubling up to 5 s, each ± 50%), resuming its subscriptions.

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures::{SinkExt, StreamExt};
use serde_json::Value;
use tokio::net::TcpStream;
use tokio::sync::OwnedSemaphorePermit;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use super::wire::{self, Inbound};
use super::{Client, Protocol, Shared, centrifugo};

/// The clients' own read buffer: small, so 10,000 of them fit beside the
/// servers without the generator's memory skewing anything.
const READ_BUFFER: usize = 4096;

pub fn now_micros() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_micros() as u64
}

/// Connects, and reconnects while the fleet says so. `gate` is held until
/// the first session's subscriptions are acknowledged, pacing a ramp-up.
/// A Centrifugo client resumes by recovering from its channels' history,
/// where they keep one.
pub async fn run(
    url: String,
    protocol: Protocol,
    client: Arc<Client>,
    shared: Arc<Shared>,
    mut resume: bool,
    mut gate: Option<OwnedSemaphorePermit>,
) {
    let mut attempt = 0;
    loop {
        let ended = match protocol {
            Protocol::SocketIo => session(&url, &client, &shared, resume, &mut gate).await,
            Protocol::Centrifugo => {
                centrifugo::session(&url, &client, &shared, resume, &mut gate).await
            }
        };
        match ended {
            Ok(()) => attempt = 0,
            Err(error) => {
                shared.note_failure(&error);
                attempt += 1;
            }
        }
        drop(gate.take());
        if !shared.reconnect.load(Relaxed) {
            return;
        }
        let base = (1000u64 << attempt.min(3)).min(5000);
        let delay = base / 2 + fastrand::u64(0..base);
        tokio::time::sleep(Duration::from_millis(delay)).await;
        resume = true;
    }
}

async fn session(
    url: &str,
    client: &Client,
    shared: &Shared,
    resume: bool,
    gate: &mut Option<OwnedSemaphorePermit>,
) -> Result<(), String> {
    let mut ws = open(url).await?;
    let send = |text: String| Message::text(text);

    let requests: Vec<Value> = {
        let ledger = client.ledger.lock().unwrap();
        client
            .spec
            .subscriptions
            .iter()
            .enumerate()
            .map(|(index, request)| {
                let mut request = request.clone();
                let cursor = ledger.cursors.get(index).and_then(Option::as_ref);
                if let (true, Some(cursor)) = (resume, cursor) {
                    request["since"] = cursor.render().into();
                }
                request
            })
            .collect()
    };
    let mut awaiting_acks = requests.len();
    let mut awaiting_resumes = requests.iter().filter(|r| r.get("since").is_some()).count();
    let mut connected = false;

    while let Some(text) = next_text(&mut ws).await? {
        match wire::classify(text.as_str()) {
            Inbound::Open => {
                let packet = wire::connect(&client.spec.auth);
                ws.send(send(packet)).await.map_err(|e| e.to_string())?;
            }
            Inbound::Ping => ws
                .send(send(wire::PONG.into()))
                .await
                .map_err(|e| e.to_string())?,
            Inbound::Connected => {
                for (index, request) in requests.iter().enumerate() {
                    let packet = wire::emit_with_ack(index as u64, "subscribe", request);
                    ws.send(send(packet)).await.map_err(|e| e.to_string())?;
                }
            }
            Inbound::Ack { id, args } => {
                let ack = wire::arg(args, 0).unwrap_or_default();
                if ack["ok"] != true {
                    shared.note_failure(&format!("subscribe refused: {ack}"));
                }
                client
                    .ledger
                    .lock()
                    .unwrap()
                    .acknowledged(id as usize, &ack);
                acknowledged(shared, &mut awaiting_acks, gate);
            }
            Inbound::Event { name, raw } => match name {
                "subscription-resumed" => {
                    awaiting_resumes -= 1;
                    if awaiting_resumes == 0 {
                        shared.note_resumed();
                    }
                }
                "connected" => {
                    connected = true;
                    shared.open.fetch_add(1, Relaxed);
                }
                // Before `connected`, an `error` is the handshake's refusal.
                "error" if !connected => {
                    shared.refused.fetch_add(1, Relaxed);
                    return Err(format!("refused: {raw}"));
                }
                "error" => client.ledger.lock().unwrap().errors += 1,
                "pong" | "subscription-gap" => {}
                _ => on_delivery(client, shared, raw, wire::is_replayed(raw)),
            },
            Inbound::Other => {}
        }
    }
    ended(shared, connected, awaiting_acks)
}

pub(super) type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// A websocket to `url`, with the clients' small read buffer.
pub(super) async fn open(url: &str) -> Result<Ws, String> {
    let config = WebSocketConfig::default().read_buffer_size(READ_BUFFER);
    let (ws, _) = tokio_tungstenite::connect_async_with_config(url, Some(config), true)
        .await
        .map_err(|e| format!("connect: {e}"))?;
    Ok(ws)
}

/// The next text frame; `None` once the server closes.
pub(super) async fn next_text(ws: &mut Ws) -> Result<Option<Utf8Bytes>, String> {
    while let Some(frame) = ws.next().await {
        match frame.map_err(|e| format!("read: {e}"))? {
            Message::Text(text) => return Ok(Some(text)),
            Message::Close(_) => return Ok(None),
            _ => {}
        }
    }
    Ok(None)
}

/// Counts one subscription acknowledged; the last opens the ramp's gate.
pub(super) fn acknowledged(
    shared: &Shared,
    awaiting_acks: &mut usize,
    gate: &mut Option<OwnedSemaphorePermit>,
) {
    *awaiting_acks -= 1;
    if *awaiting_acks == 0 {
        drop(gate.take());
        shared.ready.fetch_add(1, Relaxed);
    }
}

/// The session's end: an error if the server closed before it subscribed.
pub(super) fn ended(shared: &Shared, connected: bool, awaiting_acks: usize) -> Result<(), String> {
    if connected {
        shared.open.fetch_sub(1, Relaxed);
    }
    if awaiting_acks > 0 {
        return Err(format!(
            "closed by the server before subscribed (connected: {connected})"
        ));
    }
    Ok(())
}

/// The hot path: checks and counts one delivered event, `replayed` or
/// live (only a live one's latency counts).
pub(super) fn on_delivery(client: &Client, shared: &Shared, raw: &str, replayed: bool) {
    let allowed = match &client.spec.allowed_ids {
        None => true,
        Some(ids) => wire::string_field(raw, "id").is_some_and(|id| ids.iter().any(|a| a == id)),
    };
    let position = wire::string_field(raw, "position").unwrap_or("");
    let mut ledger = client.ledger.lock().unwrap();
    if !allowed {
        ledger.misrouted += 1;
        return;
    }
    if !ledger.record(position, replayed) {
        return;
    }
    drop(ledger);
    if !replayed && let Some(sent) = wire::number_field(raw, "sentAtUs") {
        shared.latency.record(now_micros().saturating_sub(sent));
    }
}
