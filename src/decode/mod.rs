//! Kafka record value → [`CrmEvent`]: Confluent framing, writer-schema lookup,
//! then either the fast path ([`direct`]: the writer used the bridge's own
//! reader schema) or Avro resolution against the reader schema and mapping
//! to types ([`mapping`]).
//!
//! The permissions topic's records become [`Grant`]s the same way, always
//! by resolution: a handful a second at most, against millions of events.
//!
//! Failures are typed ([`DecodeError`]) so the consumer can count them by
//! reason; only a registry that cannot be reached is worth retrying.
//!
//! Its inverse, [`Encoder`], writes records as producers do, for the demo
//! producer, the tests and the benchmarks.

mod config;
mod direct;
mod encode;
mod json_schema;
mod mapping;
mod registry;
mod wire;

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use std::time::Duration;

use apache_avro::Schema;
use tokio_util::sync::CancellationToken;

pub use config::SchemaConfig;
pub use encode::{EncodeError, Encoder};
pub use json_schema::changes_json_schema;
pub use registry::{HttpRegistry, LocalRegistry, RegistryAccess, RegistryError, SchemaRegistry};
pub use wire::{WireError, frame, split_frame};

use crate::domain::{CrmEvent, EventKeys, Grant, Position, TopicKind};

pub use direct::EventView;

/// Longest wait between decode attempts while the schema registry is down.
const MAX_REGISTRY_BACKOFF: Duration = Duration::from_secs(5);

/// The reader schema of a topic: the shape this build of the bridge
/// understands. Writers may use any compatible version (schema resolution).
pub fn reader_schema_json(kind: TopicKind) -> &'static str {
    match kind {
        TopicKind::Contacts => include_str!("../../schemas/contact-event.avsc"),
        TopicKind::Deals => include_str!("../../schemas/deal-event.avsc"),
        TopicKind::Email => include_str!("../../schemas/email-event.avsc"),
        TopicKind::Notifications => include_str!("../../schemas/notification-event.avsc"),
    }
}

/// The reader schema of the permissions topic.
pub const GRANT_READER_SCHEMA: &str = include_str!("../../schemas/access-grant.avsc");

/// Why a record could not become an event.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("record has no value")]
    EmptyValue,
    #[error(transparent)]
    Wire(#[from] WireError),
    #[error(transparent)]
    Registry(#[from] RegistryError),
    #[error("avro: {0}")]
    Avro(String),
    #[error("invalid field `{0}`")]
    Field(&'static str),
}

impl DecodeError {
    /// True when retrying the same record may succeed (the registry is down).
    /// Every other failure is a property of the record itself.
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Registry(RegistryError::Unavailable(_)))
    }

    /// A short, fixed label for counting failures by reason.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::EmptyValue => "empty_value",
            Self::Wire(WireError::Truncated) => "truncated",
            Self::Wire(WireError::BadMagic(_)) => "bad_magic",
            Self::Registry(RegistryError::UnknownId(_)) => "unknown_schema",
            Self::Registry(RegistryError::InvalidSchema(_)) => "invalid_schema",
            Self::Registry(RegistryError::NotAvro { .. }) => "schema_type",
            Self::Registry(RegistryError::Unavailable(_)) => "registry_unavailable",
            Self::Avro(_) => "avro",
            Self::Field(_) => "invalid_field",
        }
    }
}

/// Decodes record values of the CRM topics. Cheap to share between tasks.
pub struct Decoder {
    registry: Arc<SchemaRegistry>,
    readers: HashMap<TopicKind, Schema>,
    grant_reader: Schema,
    /// Per writer schema id and topic: is it exactly the reader schema (so
    /// the fast path applies)? Ids never change meaning, so this only grows.
    /// Looked up for every record: hashbrown's hasher, not SipHash.
    exact: RwLock<hashbrown::HashMap<(u32, TopicKind), bool>>,
}

/// The longest string, byte array, array or map a record may declare: 1 MiB,
/// Kafka's default largest record (`message.max.bytes`), so no honest record
/// comes near it. apache-avro allocates what a length announces before
/// reading it; without this bound, a 36-byte record announcing a map of
/// half a billion entries asks for gigabytes. Set once for the process.
pub const MAX_DECLARED_LENGTH: usize = 1 << 20;

impl Decoder {
    pub fn new(registry: Arc<SchemaRegistry>) -> Self {
        apache_avro::util::max_allocation_bytes(MAX_DECLARED_LENGTH);
        let readers = TopicKind::ALL
            .into_iter()
            .map(|kind| {
                let schema = Schema::parse_str(reader_schema_json(kind))
                    .expect("the bundled reader schemas are valid Avro");
                (kind, schema)
            })
            .collect();
        let grant_reader =
            Schema::parse_str(GRANT_READER_SCHEMA).expect("the bundled grant schema is valid Avro");
        Self {
            registry,
            readers,
            grant_reader,
            exact: RwLock::default(),
        }
    }

    /// Whether writer schema `id` is known to be exactly `kind`'s reader
    /// schema (`None`: not looked at yet).
    fn known_exact(&self, id: u32, kind: TopicKind) -> Option<bool> {
        self.exact.read().unwrap().get(&(id, kind)).copied()
    }

    fn writes_reader_schema(&self, id: u32, kind: TopicKind, writer: &Schema) -> bool {
        if let Some(exact) = self.known_exact(id, kind) {
            return exact;
        }
        let exact = writer.canonical_form() == self.readers[&kind].canonical_form();
        self.exact.write().unwrap().insert((id, kind), exact);
        exact
    }

    /// Decodes the value of the record at `position` into its event.
    pub async fn decode(
        &self,
        position: Position,
        value: Option<&[u8]>,
    ) -> Result<CrmEvent, DecodeError> {
        self.decode_view(position, value)
            .await
            .map(Decoded::into_event)
    }

    /// Decodes the value of the record at `position`, as far as routing
    /// needs: on the fast path the event is built only when asked for.
    /// Fails exactly when [`Self::decode`] does.
    pub async fn decode_view<'a>(
        &self,
        position: Position,
        value: Option<&'a [u8]>,
    ) -> Result<Decoded<'a>, DecodeError> {
        if let Some(decoded) = self.decode_known(position, value) {
            return decoded;
        }
        let kind = position.topic;
        let (schema_id, mut body) = split_frame(value.ok_or(DecodeError::EmptyValue)?)?;
        let writer = self.registry.writer_schema(schema_id).await?;
        if self.writes_reader_schema(schema_id, kind, &writer) {
            return direct::view(position, body).map(Decoded::View);
        }
        let reader = &self.readers[&kind];
        let value = apache_avro::from_avro_datum(&writer, &mut body, Some(reader))
            .map_err(|e| DecodeError::Avro(e.to_string()))?;
        mapping::to_event(position, value).map(Decoded::Event)
    }

    /// Decodes the value of a permissions topic record into its grant
    /// (`None`, a tombstone, is a revocation: the caller's to handle).
    pub async fn decode_grant(&self, value: &[u8]) -> Result<Grant, DecodeError> {
        let (schema_id, mut body) = split_frame(value)?;
        let writer = self.registry.writer_schema(schema_id).await?;
        let value = apache_avro::from_avro_datum(&writer, &mut body, Some(&self.grant_reader))
            .map_err(|e| DecodeError::Avro(e.to_string()))?;
        mapping::to_grant(value)
    }

    /// [`Self::decode_view`] without waiting, for the usual case: a record
    /// that is not framed, or whose writer is known to be the reader schema
    /// (no schema needed). `None` when the registry has to be asked. The
    /// consumer calls this first: it spares the async machinery of the
    /// general path (moving its large futures) for every record.
    pub fn decode_known<'a>(
        &self,
        position: Position,
        value: Option<&'a [u8]>,
    ) -> Option<Result<Decoded<'a>, DecodeError>> {
        let framed = value
            .ok_or(DecodeError::EmptyValue)
            .and_then(|value| Ok(split_frame(value)?));
        match framed {
            Err(e) => Some(Err(e)),
            Ok((schema_id, body)) => (self.known_exact(schema_id, position.topic) == Some(true))
                .then(|| direct::view(position, body).map(Decoded::View)),
        }
    }

    /// [`Self::decode_view`], retrying with backoff while the failure is
    /// transient (the registry is down): skipping would lose a record that
    /// is fine. `None` once `cancel` fires.
    pub async fn decode_with_retry<'a>(
        &self,
        position: Position,
        value: Option<&'a [u8]>,
        cancel: &CancellationToken,
    ) -> Option<Result<Decoded<'a>, DecodeError>> {
        retrying(cancel, || self.decode_view(position, value)).await
    }

    /// [`Self::decode_grant`], retrying as [`Self::decode_with_retry`] does.
    pub async fn decode_grant_with_retry(
        &self,
        value: &[u8],
        cancel: &CancellationToken,
    ) -> Option<Result<Grant, DecodeError>> {
        retrying(cancel, || self.decode_grant(value)).await
    }
}

/// Runs `attempt` until it succeeds or fails for good, waiting with backoff
/// after each transient failure. `None` once `cancel` fires.
async fn retrying<T, F: Future<Output = Result<T, DecodeError>>>(
    cancel: &CancellationToken,
    mut attempt: impl FnMut() -> F,
) -> Option<Result<T, DecodeError>> {
    let mut backoff = Duration::from_millis(100);
    loop {
        match attempt().await {
            Err(e) if e.is_transient() => {
                tracing::warn!(error = %e, retry_in = ?backoff, "cannot decode yet; retrying");
                tokio::select! {
                    _ = cancel.cancelled() => return None,
                    _ = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(MAX_REGISTRY_BACKOFF);
            }
            decoded => return Some(decoded),
        }
    }
}

/// A record decoded as far as routing needs: a view of its bytes (the fast
/// path) or, when its writer schema needed resolution, its event.
pub enum Decoded<'a> {
    View(EventView<'a>),
    Event(CrmEvent),
}

impl Decoded<'_> {
    pub fn keys(&self) -> EventKeys<'_> {
        match self {
            Self::View(view) => view.keys(),
            Self::Event(event) => event.keys(),
        }
    }

    /// The event, built now if it was not yet.
    pub fn event(&self) -> Cow<'_, CrmEvent> {
        match self {
            Self::View(view) => Cow::Owned(view.to_event()),
            Self::Event(event) => Cow::Borrowed(event),
        }
    }

    pub fn into_event(self) -> CrmEvent {
        match self {
            Self::View(view) => view.to_event(),
            Self::Event(event) => event,
        }
    }
}

#[cfg(test)]
mod direct_tests;
#[cfg(test)]
mod encode_tests;
#[cfg(test)]
mod grant_tests;
#[cfg(test)]
mod hostile_record_tests;
#[cfg(test)]
mod tests;
