//! One simulated Centrifugo client: its JSON protocol over a websocket
//! (`/connection/websocket`, Centrifugo v6): `connect` with the same JWT
//! the other servers get, one `subscribe` per subscription (the channel a
//! subscription request names, see [`channel_of`]), an empty command
//! answering each of the server's empty pings, and every publication
//! checked as the Socket.IO clients check theirs. Replies and pushes may
//! share a frame, one per line. Where a channel keeps a history, a client
//! follows its place in it and, coming back, asks to recover what it
//! missed: the recovered publications arrive in the subscribe reply.

use std::sync::atomic::Ordering::Relaxed;

use futures::SinkExt;
use serde_json::{Value, json};
use tokio::sync::OwnedSemaphorePermit;
use tokio_tungstenite::tungstenite::Message;

use super::session::{acknowledged, ended, next_text, on_delivery, open};
use super::{Client, Shared, wire};

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
    resume: bool,
    gate: &mut Option<OwnedSemaphorePermit>,
) -> Result<(), String> {
    let mut ws = open(url).await?;
    let connect = json!({"id": CONNECT_ID, "connect": {"token": client.spec.auth["token"]}});
    ws.send(Message::text(connect.to_string()))
        .await
        .map_err(|e| e.to_string())?;
    let channels: Vec<String> = client.spec.subscriptions.iter().map(channel_of).collect();
    let subscribes = subscribes(client, &channels, resume);
    let mut awaiting_acks = channels.len();
    let mut awaiting_recoveries = subscribes.iter().filter(|s| s.recovering).count();
    // Whether any channel keeps a history, so publications carry offsets.
    let mut recoverable = false;
    let mut connected = false;
    while let Some(text) = next_text(&mut ws).await? {
        for line in text.as_str().split('\n').filter(|l| !l.is_empty()) {
            if line.starts_with("{\"push\"") {
                if recoverable {
                    follow_stream(client, &channels, line);
                }
                on_delivery(client, shared, line, false);
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
                let commands: Vec<&str> = subscribes.iter().map(|s| s.command.as_str()).collect();
                ws.send(Message::text(commands.join("\n")))
                    .await
                    .map_err(|e| e.to_string())?;
            } else if id > CONNECT_ID {
                let index = (id - CONNECT_ID - 1) as usize;
                let result = &reply["subscribe"];
                recoverable |= result["recoverable"] == true;
                on_subscribed(client, shared, index, result);
                if subscribes.get(index).is_some_and(|s| s.recovering) {
                    if result["recovered"] != true {
                        shared.note_failure(&format!("not recovered: {line}"));
                    } else {
                        awaiting_recoveries -= 1;
                        if awaiting_recoveries == 0 {
                            shared.note_resumed();
                        }
                    }
                }
                acknowledged(shared, &mut awaiting_acks, gate);
            }
        }
    }
    ended(shared, connected, awaiting_acks)
}

/// One `subscribe` command, and whether it asks to recover.
struct Subscribe {
    command: String,
    recovering: bool,
}

/// The `subscribe` command of each channel, in order (ids from 2): a
/// client coming back asks to recover from where its ledger says it was.
fn subscribes(client: &Client, channels: &[String], resume: bool) -> Vec<Subscribe> {
    let ledger = client.ledger.lock().unwrap();
    channels
        .iter()
        .enumerate()
        .map(|(n, channel)| {
            let mut subscribe = json!({"channel": channel});
            let stream = ledger.streams.get(n).and_then(Option::as_ref);
            if let (true, Some(stream)) = (resume, stream) {
                subscribe["recover"] = true.into();
                subscribe["epoch"] = stream.epoch.clone().into();
                subscribe["offset"] = stream.offset.into();
            }
            Subscribe {
                recovering: subscribe.get("recover").is_some(),
                command: json!({"id": n as u64 + CONNECT_ID + 1, "subscribe": subscribe})
                    .to_string(),
            }
        })
        .collect()
}

/// A subscribe reply: where the subscription is in its channel's history,
/// and the publications it recovered, each checked as a replayed event.
fn on_subscribed(client: &Client, shared: &Shared, index: usize, result: &Value) {
    if result["recoverable"] == true {
        let offset = result["offset"].as_u64().unwrap_or(0);
        let mut ledger = client.ledger.lock().unwrap();
        ledger.at_stream(index, result["epoch"].as_str(), offset);
    }
    for publication in result["publications"].as_array().into_iter().flatten() {
        on_delivery(client, shared, &publication["data"].to_string(), true);
        if let Some(offset) = publication["offset"].as_u64() {
            client.ledger.lock().unwrap().at_stream(index, None, offset);
        }
    }
}

/// Moves a subscription's place in its channel's history to a pushed
/// publication's offset (`{"push":{"channel":..,"pub":{"data":..,"offset":N}}}`:
/// the offset follows the data, so the last `"offset":` is the publication's).
fn follow_stream(client: &Client, channels: &[String], line: &str) {
    let channel = wire::string_field(line, "channel");
    let Some(index) = channels.iter().position(|c| Some(c.as_str()) == channel) else {
        return;
    };
    let offset = line.rfind("\"offset\":").and_then(|at| {
        let digits = &line[at + "\"offset\":".len()..];
        let end = digits.bytes().take_while(u8::is_ascii_digit).count();
        digits[..end].parse().ok()
    });
    if let Some(offset) = offset {
        client.ledger.lock().unwrap().at_stream(index, None, offset);
    }
}
