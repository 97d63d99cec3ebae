//! One simulated Centrifugo client: its JSON protocol over a websocket
//! (`/connection/websocket`, Centrifugo v6): `connect` with the same JWT
//! the other servers get, one `subscribe` per subscription (the channel a
//! subscription request names, see [`channel_of`]), an empty command
//! answering each of the server's empty pings, and every publication
//! checked as the Socket.IO clients check theirs. Replies and pushes may
//! share a frame, one per line.

use std::sync::atomic::Ordering::Relaxed;

use futures::SinkExt;
use serde_json::{Value, json};
use tokio::sync::OwnedSemaphorePermit;
use tokio_tungstenite::tungstenite::Message;

use super::session::{acknowledged, ended, next_text, on_delivery, open};
use super::{Client, Shared};

/// The command id of `connect`; `subscribe` `n` (0-based) is `n + 2`.
const CONNECT_ID: u64 = 1;

pub fn websocket_url(base: &str) -> String {
    format!(
        "{}/connection/websocket",
        base.replacen("http://", "ws://", 1)
    )
}

/// The channel Centrifugo publishes what a subscription request asks for
/// to: `deal:<id>` for one deal, `pipeline:<id>` for a pipeline's deals
/// (the feed names both on every record).
pub fn channel_of(request: &Value) -> String {
    match (
        request["id"].as_str(),
        request["filter"]["pipelineId"].as_str(),
    ) {
        (Some(deal), _) => format!("deal:{deal}"),
        (None, Some(pipeline)) => format!("pipeline:{pipeline}"),
        _ => panic!("no Centrifugo channel for {request}"),
    }
}

pub async fn session(
    url: &str,
    client: &Client,
    shared: &Shared,
    gate: &mut Option<OwnedSemaphorePermit>,
) -> Result<(), String> {
    let mut ws = open(url).await?;
    let connect = json!({"id": CONNECT_ID, "connect": {"token": client.spec.auth["token"]}});
    ws.send(Message::text(connect.to_string()))
        .await
        .map_err(|e| e.to_string())?;
    let mut awaiting_acks = client.spec.subscriptions.len();
    let mut connected = false;
    while let Some(text) = next_text(&mut ws).await? {
        for line in text.as_str().split('\n').filter(|l| !l.is_empty()) {
            if line.starts_with("{\"push\"") {
                on_delivery(client, shared, line);
                continue;
            }
            if line == "{}" {
                ws.send(Message::text("{}"))
                    .await
                    .map_err(|e| e.to_string())?;
                continue;
            }
            let reply: Value = serde_json::from_str(line).map_err(|e| format!("{e}: {line}"))?;
            let id = reply["id"].as_u64().unwrap_or(0);
            if !reply["error"].is_null() {
                if id == CONNECT_ID {
                    shared.refused.fetch_add(1, Relaxed);
                    return Err(format!("refused: {line}"));
                }
                shared.note_failure(&format!("subscribe refused: {line}"));
                client.ledger.lock().unwrap().errors += 1;
            }
            if id == CONNECT_ID {
                connected = true;
                shared.open.fetch_add(1, Relaxed);
                let subscribes: Vec<String> = client
                    .spec
                    .subscriptions
                    .iter()
                    .enumerate()
                    .map(|(n, request)| {
                        let channel = channel_of(request);
                        json!({"id": n + 2, "subscribe": {"channel": channel}}).to_string()
                    })
                    .collect();
                ws.send(Message::text(subscribes.join("\n")))
                    .await
                    .map_err(|e| e.to_string())?;
            } else if id > CONNECT_ID {
                acknowledged(shared, &mut awaiting_acks, gate);
            }
        }
    }
    ended(shared, connected, awaiting_acks)
}
