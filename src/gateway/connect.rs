//! Connection set-up: authenticate in the namespace middleware (a refusal
//! becomes the client's `connect_error`), then greet with `connected`.
//!
//! socketioxide sends a `connect_error` whose `message` is our error's
//! `Display` and cannot attach a `data` object, so the refusal's message is
//! the seed's error object as JSON text: `JSON.parse(err.message).code` is
//! `"UNAUTHORIZED"`. The bridge's client module unpacks it into `err.data`.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use serde_json::{Value, json};
use socketioxide::extract::{Extension, SocketRef, State, TryData};
use socketioxide::socket::DisconnectReason;

use super::session::{ReplayJob, Session};
use super::{Client, Gateway, replay, requests};
use crate::auth::Credential;
use crate::domain::ActionSet;
use crate::protocol::{ClientError, ErrorCode, SubscriptionRequest, now_rfc3339};
use crate::replay::Cursor;
use crate::routing::ClientId;

/// A refused connection, displayed as the seed's error object in JSON.
#[derive(Debug)]
pub struct ConnectRefusal(ClientError);

impl std::fmt::Display for ConnectRefusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let text = serde_json::to_string(&self.0.payload()).map_err(|_| std::fmt::Error)?;
        f.write_str(&text)
    }
}

/// Finds the credential: `auth.token`, then `auth.apiKey`, then an
/// `Authorization: Bearer` header on the handshake request.
fn credential<'a>(auth: Option<&'a Value>, socket: &'a SocketRef) -> Option<Credential<'a>> {
    let field = |name| {
        auth.and_then(|a| a.get(name))
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
    };
    if let Some(token) = field("token") {
        return Some(Credential::Token(token));
    }
    if let Some(key) = field("apiKey") {
        return Some(Credential::ApiKey(key));
    }
    socket
        .req_parts()
        .headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(|token| Credential::Token(token.trim()))
}

pub async fn authenticate(
    socket: SocketRef,
    TryData(auth): TryData<Value>,
    State(gateway): State<Arc<Gateway>>,
) -> Result<(), ConnectRefusal> {
    let principal = gateway
        .auth
        .authenticate(credential(auth.as_ref().ok(), &socket))
        .await
        .map_err(|e| {
            gateway.metrics.auth_failures.inc(e.reason());
            tracing::info!(reason = e.reason(), error = %e, "connection refused");
            let message = match e {
                crate::auth::AuthError::Missing => {
                    "Authentication required: send auth.token or auth.apiKey"
                }
                _ => "Invalid authentication token",
            };
            ConnectRefusal(ClientError::new(ErrorCode::Unauthorized, message))
        })?;
    let client = ClientId(gateway.next_client_id());
    socket
        .extensions
        .insert(Arc::new(Session::new(client, principal)));
    // A malformed cursor is ignored: notifications then start live.
    let since = auth
        .as_ref()
        .ok()
        .and_then(|a| a.get("notificationsSince"))
        .and_then(Value::as_str);
    if let Some(cursor) = since.and_then(|text| Cursor::parse(text).ok()) {
        socket.extensions.insert(NotificationsSince(cursor));
    }
    Ok(())
}

pub async fn on_connect(
    socket: SocketRef,
    Extension(session): Extension<Arc<Session>>,
    State(gateway): State<Arc<Gateway>>,
) {
    // Cleanup is registered before anything enters the index.
    socket.on_disconnect(on_disconnect);
    requests::register(&socket);
    gateway.metrics.clients_connected.inc();
    tracing::debug!(
        sid = %socket.id,
        user = %session.principal.user,
        org = %session.principal.org,
        "client connected"
    );
    // Every connection receives its user's notifications without asking.
    let inbox = SubscriptionRequest {
        key: session.inbox_key(),
        actions: ActionSet::default(),
        since: None,
    };
    // Read before subscribing: resuming from it can only repeat, never miss.
    let inbox_cursor = replay::live_cursor(&gateway, &inbox);
    let greeting = json!({
        "sessionId": socket.id.to_string(),
        "userId": session.principal.user.as_str(),
        "timestamp": now_rfc3339(),
        "notificationsCursor": inbox_cursor.to_string(),
    });
    socket.emit("connected", &greeting).ok();
    let client = Client::new(&socket, &session);
    let resumed = match socket.extensions.remove::<NotificationsSince>() {
        None => session.subscribe(&gateway, &client, &inbox).map(|_| false),
        Some(NotificationsSince(since)) => {
            let job = ReplayJob { request: inbox };
            session.subscribe_replaying(&gateway, &client, job, since)
        }
    };
    match resumed {
        Ok(true) => drop(tokio::spawn(replay::run(gateway.clone(), client))),
        Ok(false) => {}
        Err(e) => tracing::debug!(error = %e, "no inbox for a closing connection"),
    }
}

/// `auth.notificationsSince`: resume the user's notifications from there.
#[derive(Clone)]
struct NotificationsSince(Cursor);

async fn on_disconnect(
    socket: SocketRef,
    reason: DisconnectReason,
    Extension(session): Extension<Arc<Session>>,
    State(gateway): State<Arc<Gateway>>,
) {
    session.close(&gateway);
    gateway.metrics.clients_connected.dec();
    tracing::debug!(sid = %socket.id, ?reason, "client disconnected");
}

impl Gateway {
    fn next_client_id(&self) -> u64 {
        self.next_client.fetch_add(1, Ordering::Relaxed)
    }
}
