//! Connection set-up: the handshake's checks (origin, handshake rate,
//! authentication, connection limits) in the namespace middleware, then
//! either the greeting `connected` or, for a refused handshake, the seed's
//! `error` and a disconnect.
//!
//! A refusal is not Socket.IO's CONNECT_ERROR: socket.io-client 4 turns that
//! into `connect_error` only, never `error`, while the seed's "Error
//! Recovery" handles `UNAUTHORIZED` and `RATE_LIMITED` in `socket.on('error')`.
//! So the middleware accepts every handshake, and a refused one enters the
//! namespace inert: no session (no connection slot, no user or address
//! count), no request handlers, no notification inbox, no `connected`.
//! [`on_connect`] emits its one `error` (code, message, timestamp, and for
//! limits `details.reason` and `retryAfter`) and disconnects it: the page
//! sees `connect`, `error`, then `disconnect` with "io server disconnect",
//! after which socket.io-client waits for the page's `socket.connect()`.
//! `connected` is the sign a handshake was accepted.
//!
//! What a refused socket can get or cost: events it sends before the
//! disconnect find no handler and are dropped unanswered; nothing routes to
//! it (it is in no index and no room). Every CONNECT, also one sent again on
//! the same Engine.IO session, passes the middleware and is charged to its
//! address's handshake rate before any credential is looked at. The accepted
//! CONNECT ends socketioxide's connect timeout for the Engine.IO session, so
//! the bridge ends a refused socket's WebSocket itself,
//! `guard.connect_timeout_seconds` after the refusal (socket.io-client closes
//! it at once): it holds no longer than a session that never connects. A
//! long-polling session is not ended so (see [`own_connection`]); it lives
//! while its client keeps polling, as after leaving an accepted connection.

use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use axum::extract::ConnectInfo;
use axum::http::header;

use serde_json::{Value, json};
use socketioxide::extract::{Extension, SocketRef, State, TryData};
use socketioxide::socket::DisconnectReason;

use super::replies::Connected;
use super::session::Session;
use super::{Client, Gateway, credential, replay, requests, rooms};
use crate::auth::Credential;
use crate::domain::ActionSet;
use crate::domain::Cursor;
use crate::drain::ConnectionEnd;
use crate::guard::{EventRate, GuardConfig, Refusal};
use crate::protocol::{ClientError, ErrorCode, SubscriptionRequest, now_rfc3339};
use crate::routing::{ClientId, topics_of};

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
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(bearer_token)
        .map(Credential::Token)
}

/// The token of an `Authorization: Bearer <token>` value; the scheme is
/// case-insensitive (RFC 9110 §11.1).
fn bearer_token(value: &str) -> Option<&str> {
    let (scheme, token) = value.trim_start().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// The namespace middleware: runs the handshake's checks and records the
/// outcome on the socket for [`on_connect`]. It never fails (see the module
/// doc): a refusal is a [`Refused`] extension, an admission a session with
/// its request handlers registered.
pub async fn authenticate(
    socket: SocketRef,
    TryData(auth): TryData<Value>,
    State(gateway): State<Arc<Gateway>>,
) -> Result<(), Infallible> {
    let auth = auth.ok();
    match admit(&socket, auth.as_ref(), &gateway).await {
        Ok(session) => {
            socket.extensions.insert(session);
            // A malformed cursor is ignored: notifications then start live.
            let since = auth
                .as_ref()
                .and_then(|a| a.get("notificationsSince"))
                .and_then(Value::as_str);
            if let Some(cursor) = since.and_then(|text| Cursor::parse(text).ok()) {
                socket.extensions.insert(NotificationsSince(cursor));
            }
            // Request handlers go in before the client hears it is connected:
            // socketioxide spawns `on_connect` after sending CONNECT, and a
            // client that emits at once would otherwise race that task and
            // lose requests.
            requests::register(&socket);
            rooms::register(&socket);
        }
        Err(error) => {
            socket.extensions.insert(Refused(error));
        }
    }
    Ok(())
}

/// The handshake's checks, cheapest first: the origin, the address's
/// handshake rate (charged for every attempt, before any credential is
/// verified), the credential, then the connection limits, whose slot the
/// session holds.
async fn admit(
    socket: &SocketRef,
    auth: Option<&Value>,
    gateway: &Gateway,
) -> Result<Arc<Session>, ClientError> {
    let refuse = |reason: &'static str, error: ClientError| {
        gateway.metrics.connections_refused.inc(reason);
        tracing::info!(reason, "connection refused");
        error
    };
    if !origin_allowed(&gateway.guard.allowed_origins, socket) {
        let error = ClientError::new(ErrorCode::Forbidden, "this origin may not connect");
        return Err(refuse("origin", error));
    }
    let address = client_address(&gateway.guard, socket);
    let now = Instant::now();
    if let Err(refusal) = gateway.connections.handshake(address, now) {
        return Err(refuse(refusal.reason(), limit_error(refusal)));
    }
    let principal = gateway
        .auth
        .authenticate(credential(auth, socket))
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
            ClientError::new(ErrorCode::Unauthorized, message)
        })?;
    let user = (principal.org.clone(), principal.user.clone());
    let slot = gateway
        .connections
        .admit(user, address)
        .map_err(|refusal| refuse(refusal.reason(), limit_error(refusal)))?;
    let client = ClientId(gateway.next_client_id());
    let events = EventRate::new(&gateway.guard, now);
    let viewer = gateway
        .policy
        .viewer(&principal.user, &principal.roles, &principal.teams);
    Ok(Arc::new(Session::new(
        client, principal, viewer, events, slot,
    )))
}

/// A refused handshake: the error [`on_connect`] sends before disconnecting.
#[derive(Clone)]
struct Refused(ClientError);

/// Browsers send `Origin`; other clients do not, and are not checked.
fn origin_allowed(allowed: &[String], socket: &SocketRef) -> bool {
    let origin = socket.req_parts().headers.get(header::ORIGIN);
    allowed.is_empty()
        || origin.is_none_or(|o| o.to_str().is_ok_and(|o| allowed.iter().any(|a| a == o)))
}

fn client_address(guard: &GuardConfig, socket: &SocketRef) -> IpAddr {
    let parts = socket.req_parts();
    let peer = parts.extensions.get::<ConnectInfo<SocketAddr>>();
    guard.client_address(&parts.headers, peer.map(|info| info.0))
}

fn limit_error(refusal: Refusal) -> ClientError {
    let (message, retry_ms) = match refusal {
        Refusal::HandshakeRate { retry_after } => (
            "too many new connections from your address",
            retry_after.as_millis().max(1) as u64,
        ),
        Refusal::NodeFull => ("this node is full; try again", 1000),
        Refusal::UserFull => ("too many connections for your user; close one", 5000),
        Refusal::AddressFull => ("too many connections from your address", 5000),
    };
    ClientError::rate_limited(message, retry_ms).with_details(json!({ "reason": refusal.reason() }))
}

/// Greets an admitted socket and starts its session; tells a refused one
/// why and disconnects it.
pub async fn on_connect(socket: SocketRef, State(gateway): State<Arc<Gateway>>) {
    if let Some(Refused(error)) = socket.extensions.remove::<Refused>() {
        return turn_away(socket, &gateway, &error);
    }
    // Not refused: the middleware left a session.
    if let Some(session) = socket.extensions.get::<Arc<Session>>() {
        start(socket, session, gateway);
    }
}

/// The refused socket's one `error`, then its disconnect; its WebSocket is
/// ended after the connect timeout if its client keeps it open.
fn turn_away(socket: SocketRef, gateway: &Gateway, error: &ClientError) {
    // A new socket's queue is empty: neither can find it full.
    socket.emit("error", &error.payload()).ok();
    socket.clone().disconnect().ok();
    if let Some(end) = own_connection(&socket) {
        let after = Duration::from_secs(gateway.guard.connect_timeout_seconds);
        tokio::spawn(async move {
            tokio::time::sleep(after).await;
            end.end();
        });
    }
}

/// The TCP connection under `socket`, when its Engine.IO session opened as
/// a WebSocket (the handshake request is then the upgrade, whose connection
/// carries that WebSocket alone). A session opened with long-polling has
/// none of its own: its handshake's keep-alive connection may carry the
/// page's next session.
fn own_connection(socket: &SocketRef) -> Option<ConnectionEnd> {
    let parts = socket.req_parts();
    let query = parts.uri.query().unwrap_or_default();
    let websocket = query.split('&').any(|pair| pair == "transport=websocket");
    websocket.then(|| parts.extensions.get::<ConnectionEnd>().cloned())?
}

fn start(socket: SocketRef, session: Arc<Session>, gateway: Arc<Gateway>) {
    gateway.metrics.clients_connected.inc();
    // socketioxide runs this handler after the socket joined its namespace,
    // and requests may already have been served (see `authenticate`). The
    // client may already be gone, and then no disconnect handler will ever
    // run: cleanup is registered, then the socket checked.
    socket.on_disconnect(on_disconnect);
    if !socket.connected() {
        return end(&gateway, &session);
    }
    tokio::spawn(credential::watch(
        gateway.clone(),
        Client::new(&socket, &session),
    ));
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
    let inbox_cursor = replay::live_cursor(&gateway, &topics_of(&inbox.key, inbox.actions));
    let greeting = Connected {
        session_id: socket.id.to_string(),
        user_id: session.principal.user.as_str(),
        timestamp: now_rfc3339(),
        notifications_cursor: inbox_cursor.to_string(),
    };
    socket.emit("connected", &greeting).ok();
    let client = Client::new(&socket, &session);
    let resumed = match socket.extensions.remove::<NotificationsSince>() {
        None => session.subscribe(&gateway, &client, &inbox).map(|_| false),
        Some(NotificationsSince(since)) => {
            // The replay plans from the request's own cursor: without it,
            // it would start at the oldest record and repeat every
            // notification the user ever had.
            let request = SubscriptionRequest {
                since: Some(since.clone()),
                ..inbox
            };
            // Nothing to acknowledge: `connected` already went out.
            session.subscribe_replaying(&gateway, &client, request, since, || {})
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
    end(&gateway, &session);
    tracing::debug!(sid = %socket.id, ?reason, "client disconnected");
}

/// Once per connection, however it ends.
fn end(gateway: &Gateway, session: &Session) {
    if session.end(gateway) {
        gateway.metrics.clients_connected.dec();
    }
}

impl Gateway {
    fn next_client_id(&self) -> u64 {
        self.next_client.fetch_add(1, Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::bearer_token;

    #[test]
    fn the_bearer_scheme_is_case_insensitive() {
        for value in ["Bearer abc", "bearer abc", "BEARER abc", "BeArEr  abc "] {
            assert_eq!(bearer_token(value), Some("abc"), "{value:?}");
        }
    }

    #[test]
    fn other_schemes_and_empty_tokens_are_not_bearer_tokens() {
        for value in ["Basic abc", "Bearer", "Bearer ", "Bearerabc", "abc"] {
            assert_eq!(bearer_token(value), None, "{value:?}");
        }
    }
}
