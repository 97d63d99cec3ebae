//! Engine.IO v4 / Socket.IO v5 text packets, as a websocket client sends and
//! reads them: only what the load generator needs, and cheap on the hot path
//! (a delivered event is scanned for its few fields, never parsed into a tree).

use serde_json::Value;

/// What a server text frame means to a client.
pub enum Inbound<'a> {
    /// Engine.IO open (`0{...}`): the handshake.
    Open,
    /// Engine.IO ping (`2`): answer with [`PONG`].
    Ping,
    /// Socket.IO CONNECT answered (`40{...}`): requests may go out. The
    /// handshake's outcome is the next event, `connected` or, refused,
    /// `error` (the bridge never answers CONNECT_ERROR).
    Connected,
    /// Socket.IO event (`42[...]`): its name and the raw packet.
    Event { name: &'a str, raw: &'a str },
    /// Socket.IO acknowledgement (`43<id>[...]`).
    Ack { id: u64, args: &'a str },
    /// Engine.IO close or anything the generator does not use.
    Other,
}

pub const PONG: &str = "3";

pub fn websocket_url(base: &str) -> String {
    format!(
        "{}/socket.io/?EIO=4&transport=websocket",
        base.replacen("http://", "ws://", 1)
    )
}

/// Socket.IO CONNECT to the main namespace with the handshake's `auth`.
pub fn connect(auth: &Value) -> String {
    format!("40{auth}")
}

/// An event with an acknowledgement id.
pub fn emit_with_ack(id: u64, name: &str, payload: &Value) -> String {
    format!("42{id}[\"{name}\",{payload}]")
}

pub fn classify(frame: &str) -> Inbound<'_> {
    let bytes = frame.as_bytes();
    match bytes {
        [b'2', ..] if bytes.len() == 1 => Inbound::Ping,
        [b'0', ..] => Inbound::Open,
        [b'4', b'0', ..] => Inbound::Connected,
        [b'4', b'2', ..] => {
            let raw = &frame[2..];
            let name = raw
                .strip_prefix("[\"")
                .and_then(|rest| rest.split_once('"'))
                .map_or("", |(name, _)| name);
            Inbound::Event { name, raw }
        }
        [b'4', b'3', ..] => {
            let rest = &frame[2..];
            let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
            match rest[..digits].parse() {
                Ok(id) => Inbound::Ack {
                    id,
                    args: &rest[digits..],
                },
                Err(_) => Inbound::Other,
            }
        }
        _ => Inbound::Other,
    }
}

/// The string value of `"field":"..."` in a packet (no escapes expected).
/// Scans without allocating: it runs for every delivered event.
pub fn string_field<'a>(raw: &'a str, field: &str) -> Option<&'a str> {
    raw.match_indices(field).find_map(|(at, _)| {
        let quoted = raw[..at].ends_with('"');
        let value = raw[at + field.len()..].strip_prefix("\":\"")?;
        let len = value.find('"')?;
        quoted.then(|| &value[..len])
    })
}

/// A decimal carried as a string field, e.g. `"sentAtUs":"1764151234567890"`.
pub fn number_field(raw: &str, field: &str) -> Option<u64> {
    string_field(raw, field)?.parse().ok()
}

pub fn is_replayed(raw: &str) -> bool {
    raw.contains("\"replayed\":true")
}

/// Argument `index` of an event (`["name", arg1]`) or acknowledgement
/// (`[arg0]`), parsed: cold paths only.
pub fn arg(raw: &str, index: usize) -> Option<Value> {
    serde_json::from_str::<Vec<Value>>(raw)
        .ok()?
        .into_iter()
        .nth(index)
}
