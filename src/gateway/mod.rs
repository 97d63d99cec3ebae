//! The Socket.IO edge: authenticates connections, turns client requests into
//! subscriptions in the index, and delivers routed events to sockets.
//!
//! - `connect.rs`: handshake checks (origin, rates, connection limits,
//!   authentication) and the `connected` event.
//! - `credential.rs`: disconnecting a client whose token expired or whose
//!   API key was revoked.
//! - `requests.rs`: `subscribe`, `unsubscribe`, `ping`.
//! - `rooms.rs`: `join-room`, `leave-room`, `typing` (the state is in
//!   [`crate::presence`]; a room's CRM events are a session subscription).
//! - `seam.rs`: the seam between replay and live delivery, pure: one
//!   connection's subscriptions, rooms, replays and held live events.
//! - `session.rs`: what one connection holds (principal, its seam under a
//!   lock), applying each seam step to the index, presence and metrics.
//! - `replay.rs`: the per-connection replay worker.
//! - `dispatch.rs`: the [`Deliver`](crate::kafka::Deliver) sink: route,
//!   decide each recipient's share, render once per set of hidden fields,
//!   emit to each socket shown it without waiting.
//! - `permits.rs`: the permissions policy here: `FORBIDDEN` subscriptions
//!   and rooms, each recipient's share of an event.
//! - `revoke.rs`: ending what a revoked grant showed
//!   (`subscription-revoked`).
//! - `replies.rs`: the payloads composed here (acknowledgements,
//!   `connected`, `subscription-resumed`), as structs the contract reads.
//! - `rate.rs`: charging each inbound event to the connection's rate.
//! - `overflow.rs`: cutting off a client (too slow, flooding, credential
//!   lapsed).
//!
//! Imports point down these layers (`super::` paths between the files
//! here; `tests/layering.rs` checks them), and `seam` imports nothing of
//! the gateway and nothing that does I/O:
//!
//! ```text
//! connect
//! rooms
//! requests
//! credential rate revoke
//! dispatch replay
//! overflow permits
//! session
//! seam replies
//! ```

mod connect;
mod credential;
mod dispatch;
mod overflow;
mod permits;
mod rate;
mod replay;
mod replies;
mod requests;
mod revoke;
mod rooms;
mod seam;
mod session;

use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use socketioxide::SocketIo;
use socketioxide::extract::SocketRef;
use socketioxide::handler::ConnectHandler;

pub use dispatch::Dispatcher;
pub use replies::{
    Connected, Done, Joined, Nothing, Refused, Replaying, Subscribed, SubscriptionGap,
    SubscriptionResumed, SubscriptionRevoked, Typed, ack_schema,
};
pub use revoke::spawn_revocations;

use crate::access::{Grants, Policy};
use crate::auth::Authenticator;
use crate::guard::{ConnectionGate, GuardConfig};
use crate::kafka::LivePositions;
use crate::metrics::Metrics;
use crate::presence::Presence;
use crate::replay::{Replayer, Shares, Slots};
use crate::routing::SubscriptionIndex;
use session::Session;

/// Per-connection bounds.
#[derive(Clone, Debug, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct ClientLimits {
    /// Active subscriptions per connection (the seed's limit).
    pub max_subscriptions: usize,
    /// Packets queued per socket before it counts as too slow. At ~300 bytes
    /// an event this is ~150 KB per socket at worst; a client that falls this
    /// far behind is disconnected rather than buffered without bound.
    pub socket_buffer: usize,
    /// Largest inbound message, in bytes (the seed's 1 MB).
    pub max_message_bytes: usize,
    /// Collaboration rooms one connection may be in at once.
    pub max_rooms: usize,
    /// Each websocket's read buffer, in bytes. Client messages are small;
    /// a larger one grows it as far as `max_message_bytes`. Every idle
    /// connection holds one, so it is most of what a connection costs.
    pub read_buffer_bytes: usize,
}

impl Default for ClientLimits {
    fn default() -> Self {
        Self {
            max_subscriptions: 1000,
            socket_buffer: 512,
            max_message_bytes: 1_000_000,
            max_rooms: 100,
            read_buffer_bytes: 512,
        }
    }
}

impl ClientLimits {
    pub fn validate(&self) -> anyhow::Result<()> {
        anyhow::ensure!(
            self.max_subscriptions > 0,
            "limits.max_subscriptions must be positive"
        );
        anyhow::ensure!(
            self.socket_buffer > 0,
            "limits.socket_buffer must be positive"
        );
        anyhow::ensure!(self.max_rooms > 0, "limits.max_rooms must be positive");
        anyhow::ensure!(
            self.read_buffer_bytes >= 64,
            "limits.read_buffer_bytes must be at least 64"
        );
        anyhow::ensure!(
            self.max_message_bytes >= 1024,
            "limits.max_message_bytes must be at least 1024"
        );
        Ok(())
    }
}

/// What the index holds for a connection: where to emit, and its session.
#[derive(Clone)]
pub struct Client {
    socket: SocketRef,
    session: Arc<Session>,
}

impl Client {
    fn new(socket: &SocketRef, session: &Arc<Session>) -> Self {
        Self {
            socket: socket.clone(),
            session: session.clone(),
        }
    }
}

/// Shared by every socket handler (socketioxide state).
pub struct Gateway {
    index: SubscriptionIndex<Client>,
    auth: Authenticator,
    limits: ClientLimits,
    metrics: Arc<Metrics>,
    replayer: Arc<Replayer>,
    /// Who may read replays now: the node's, organisations' and users'
    /// shares of `replay.concurrency`.
    replay_slots: Arc<Slots>,
    live: Arc<LivePositions>,
    presence: Arc<Presence>,
    /// What each role may see, and the grants of the permissions topic.
    policy: Policy,
    grants: Arc<Grants>,
    guard: GuardConfig,
    connections: Arc<ConnectionGate>,
    /// How long past `exp` a token is still accepted (the JWT leeway).
    token_grace: Duration,
    /// How often a connection's API key is checked for revocation.
    revocation_check: Duration,
    next_client: AtomicU64,
}

/// What the gateway is built from.
pub struct GatewayParts {
    pub auth: Authenticator,
    pub limits: ClientLimits,
    pub index_shards: usize,
    pub metrics: Arc<Metrics>,
    pub replayer: Arc<Replayer>,
    pub live: Arc<LivePositions>,
    pub presence: Arc<Presence>,
    pub policy: Policy,
    /// Kept current by `kafka::grants` when the policy is enabled.
    pub grants: Arc<Grants>,
    pub guard: GuardConfig,
    /// Shared with the HTTP edge, which counts Engine.IO opens before any
    /// Socket.IO handshake reaches the gateway.
    pub connections: Arc<ConnectionGate>,
    pub token_grace: Duration,
    pub revocation_check: Duration,
}

impl Gateway {
    pub fn new(parts: GatewayParts) -> Self {
        let replay = parts.replayer.config();
        let replay_slots = Slots::new(Shares {
            node: replay.concurrency,
            organization: replay.concurrency_per_organization,
            user: replay.concurrency_per_user,
        });
        Self {
            replay_slots,
            index: SubscriptionIndex::new(parts.index_shards),
            auth: parts.auth,
            limits: parts.limits,
            metrics: parts.metrics,
            replayer: parts.replayer,
            live: parts.live,
            presence: parts.presence,
            policy: parts.policy,
            grants: parts.grants,
            connections: parts.connections,
            guard: parts.guard,
            token_grace: parts.token_grace,
            revocation_check: parts.revocation_check,
            next_client: AtomicU64::new(1),
        }
    }
}

/// Registers the default namespace's handlers on `io`.
pub fn attach(io: &SocketIo) {
    io.ns("/", connect::on_connect.with(connect::authenticate));
}
