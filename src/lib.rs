//! crm-bridge streams CRM domain events from Kafka to authorised Socket.IO
//! clients.
//!
//! The data flow, and the module that owns each step:
//!
//! ```text
//! Kafka record ─► kafka::consumer ─► decode ─► routing::SubscriptionIndex ─► gateway::dispatch ─► socket
//!                 (assign, offsets)  (Avro)    (who subscribed, same org)    (render once, emit)
//!                                               ▲
//! client request ─► gateway::requests ─► protocol (parse) ─┘
//!
//! permissions topic ─► kafka::grants ─► access::Grants ─► gateway (each recipient's share, hidden fields)
//! ```
//!
//! - [`domain`]: tenants, users, resources, actions and typed events. Pure.
//! - [`decode`]: Confluent wire format, schema registries, Avro → [`domain`].
//! - [`routing`]: the sharded subscription index; isolation by organisation.
//! - [`protocol`]: the client contract: requests, payloads, error object. Pure.
//! - [`access`]: within an organisation, who may see what: roles, grants
//!   from the CRM's permissions topic, hidden fields. Pure.
//! - [`auth`]: JWT (configured keys, JWKS) and API-key verification into an
//!   [`auth::Principal`]; keeps those key sets current while running.
//! - [`kafka`]: the live consumer and topic set-up.
//! - [`replay`]: resume cursors, replay planning and replay reads from Kafka.
//! - [`presence`]: collaboration rooms: presence and typing across nodes,
//!   shared through a Kafka topic of the bridge's own.
//! - [`guard`]: abuse limits: event rates, connection counts, handshake rates.
//! - [`gateway`]: Socket.IO handlers and delivery to sockets.
//! - [`http`], [`metrics`], [`telemetry`]: the operational edges; [`http`]
//!   also serves the dashboard (`web/`, built into the binary).
//! - [`net`]: whether a configured URL stays on this machine. A leaf.
//! - [`secret`]: a configured string that never prints. A leaf.
//! - [`drain`]: how a leaving node closes its connections, paced. A leaf.
//! - [`contract`]: the client contract as an AsyncAPI 3 document and
//!   TypeScript declarations, generated from the code that speaks it.
//! - [`app`]: wires it all together and owns start-up and shutdown order.
//! - [`demo`]: the demo producer `make run` starts.
//! - [`dev_tenants`]: the dev organisations and users, whose activity the
//!   demo producer writes and whom the dashboard's dev sign-in offers.
//!
//! Imports point down these layers, never up or sideways: a module uses
//! only modules on lines below its own (`tests/layering.rs` checks every
//! `crate::` path outside test code against this block). `domain` and
//! `protocol` know nothing of sockets or Kafka; `config` gathers each
//! part's own settings, so nothing below it reads the whole configuration.
//!
//! ```text
//! app
//! http
//! demo contract
//! config
//! gateway
//! presence replay
//! kafka
//! protocol
//! access auth decode guard routing telemetry
//! domain metrics net dev_tenants secret drain
//! ```

pub mod access;
pub mod app;
pub mod auth;
pub mod config;
pub mod contract;
pub mod decode;
pub mod demo;
pub mod dev_tenants;
pub mod domain;
pub mod drain;
pub mod gateway;
pub mod guard;
pub mod http;
pub mod kafka;
pub mod metrics;
pub mod net;
pub mod presence;
pub mod protocol;
pub mod replay;
pub mod routing;
pub mod secret;
pub mod telemetry;
