//! The AsyncAPI 3.0.0 document of the bridge, both sides: it receives the
//! CRM topics' Avro records (a channel per topic, its reader schema as the
//! message payload, for producer teams), and speaks Socket.IO (one channel,
//! the default namespace: an operation per event, `send` for what the
//! bridge emits, `receive` with a `reply` for client requests and their
//! acknowledgements, JSON Schema payloads, for frontend teams).

use serde_json::{Map, Value, json};

use super::{client_events, server_events};
use crate::config::Config;
use crate::decode::reader_schema_json;
use crate::domain::TopicKind;
use crate::kafka::TopicNames;

/// Avro 1.9's schema format, as AsyncAPI names it.
const AVRO_FORMAT: &str = "application/vnd.apache.avro+json;version=1.9.0";

/// The Socket.IO side's channel.
const SOCKET_CHANNEL: &str = "socketio";

/// The document for a bridge reading `topics`; `make contract` writes
/// the defaults' to `docs/asyncapi.json`, the bridge serves its own.
pub fn asyncapi(topics: &TopicNames) -> Value {
    let mut channels = Map::new();
    let mut operations = Map::new();
    let mut messages = Map::new();
    for kind in TopicKind::ALL {
        let schema: Value =
            serde_json::from_str(reader_schema_json(kind)).expect("the bundled schemas are JSON");
        let name = schema["name"].as_str().expect("a record's name").to_owned();
        let channel = kind.label();
        messages.insert(
            name.clone(),
            json!({
                "name": name,
                "title": name,
                "summary": schema["doc"],
                "contentType": "application/octet-stream",
                "description": "Avro binary in the Confluent wire format (magic byte 0, the writer schema's 4-byte id, the datum); any schema compatible with this reader schema may write it.",
                "payload": { "schemaFormat": AVRO_FORMAT, "schema": schema },
            }),
        );
        channels.insert(
            channel.into(),
            json!({
                "address": topics.name(kind),
                "title": format!("Kafka topic of {channel} events"),
                "servers": [{ "$ref": "#/servers/kafka" }],
                "messages": { name.as_str(): { "$ref": format!("#/components/messages/{name}") } },
            }),
        );
        operations.insert(
            format!("consume-{channel}"),
            json!({
                "action": "receive",
                "summary": format!("The bridge reads {} and delivers its events to subscribed clients.", topics.name(kind)),
                "channel": { "$ref": format!("#/channels/{channel}") },
                "messages": [{ "$ref": format!("#/channels/{channel}/messages/{name}") }],
            }),
        );
    }
    let mut socket_messages = Map::new();
    let mut message = |id: String, summary: &str, payload: Option<Value>| {
        let mut body = json!({ "name": id, "summary": summary });
        if let Some(payload) = payload {
            body["payload"] = payload;
        }
        messages.insert(id.clone(), body);
        socket_messages.insert(
            id.clone(),
            json!({ "$ref": format!("#/components/messages/{id}") }),
        );
        json!({ "$ref": format!("#/channels/{SOCKET_CHANNEL}/messages/{id}") })
    };
    for event in server_events() {
        let payload = event.payload.map(Value::from);
        let at = message(event.name.into(), event.summary, payload);
        operations.insert(
            format!("emit-{}", event.name),
            json!({
                "action": "send",
                "title": event.name,
                "summary": event.summary,
                "channel": { "$ref": format!("#/channels/{SOCKET_CHANNEL}") },
                "messages": [at],
            }),
        );
    }
    for event in client_events() {
        let request = message(
            event.name.into(),
            event.summary,
            event.request.map(Value::from),
        );
        let ack = format!("{}-ack", event.name);
        let summary = format!("The acknowledgement of `{}`.", event.name);
        let reply = message(ack, &summary, Some(event.reply.into()));
        operations.insert(
            format!("on-{}", event.name),
            json!({
                "action": "receive",
                "title": event.name,
                "summary": event.summary,
                "channel": { "$ref": format!("#/channels/{SOCKET_CHANNEL}") },
                "messages": [request],
                "reply": {
                    "channel": { "$ref": format!("#/channels/{SOCKET_CHANNEL}") },
                    "messages": [reply],
                },
            }),
        );
    }
    channels.insert(
        SOCKET_CHANNEL.into(),
        json!({
            "address": "/",
            "title": "Socket.IO, default namespace",
            "description": "Each message is a Socket.IO event of the message's name; an acknowledgement (`<event>-ack`) is the argument of the callback passed with the request.",
            "servers": [{ "$ref": "#/servers/bridge" }],
            "messages": socket_messages,
        }),
    );
    let defaults = Config::default();
    json!({
        "asyncapi": "3.0.0",
        "info": {
            "title": "crm-bridge",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Streams CRM domain events from Kafka (Avro) to authorised Socket.IO clients. Generated from the bridge's code (`crm-bridge contract asyncapi`); the prose contract is docs/websocket-api.md and docs/client-api.md.",
        },
        "defaultContentType": "application/json",
        "servers": {
            "kafka": {
                "host": defaults.kafka.brokers,
                "protocol": "kafka",
                "description": "The CRM's Kafka cluster (the configuration's default; `kafka.brokers`).",
            },
            "bridge": {
                "host": defaults.listen.to_string(),
                "protocol": "ws",
                "pathname": "/socket.io/",
                "description": "Socket.IO 4 (Engine.IO 4; WebSocket, or HTTP long-polling first) at the configuration's default `listen`. The handshake carries `auth: { token }` (a JWT or an API key).",
            },
        },
        "channels": channels,
        "operations": operations,
        "components": { "messages": messages },
    })
}
