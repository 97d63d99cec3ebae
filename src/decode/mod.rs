//! Kafka record value → [`CrmEvent`]: Confluent framing, writer-schema lookup,
//! Avro resolution against the bridge's reader schemas, and mapping to types.
//!
//! Failures are typed ([`DecodeError`]) so the consumer can count them by
//! reason; only a registry that cannot be reached is worth retrying.

mod mapping;
mod registry;
mod wire;

use std::collections::HashMap;
use std::sync::Arc;

use apache_avro::Schema;

pub use registry::{HttpRegistry, LocalRegistry, RegistryError, SchemaRegistry};
pub use wire::{WireError, frame, split_frame};

use crate::domain::CrmEvent;

/// Which typed event a topic carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TopicKind {
    Contacts,
    Deals,
    Email,
    Notifications,
}

impl TopicKind {
    pub const ALL: [TopicKind; 4] = [
        Self::Contacts,
        Self::Deals,
        Self::Email,
        Self::Notifications,
    ];

    /// The reader schema: the shape this build of the bridge understands.
    /// Writers may use any compatible version (Avro schema resolution).
    pub fn reader_schema_json(self) -> &'static str {
        match self {
            Self::Contacts => include_str!("../../schemas/contact-event.avsc"),
            Self::Deals => include_str!("../../schemas/deal-event.avsc"),
            Self::Email => include_str!("../../schemas/email-event.avsc"),
            Self::Notifications => include_str!("../../schemas/notification-event.avsc"),
        }
    }

    pub const fn label(self) -> &'static str {
        match self {
            Self::Contacts => "contacts",
            Self::Deals => "deals",
            Self::Email => "email",
            Self::Notifications => "notifications",
        }
    }
}

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
}

impl Decoder {
    pub fn new(registry: Arc<SchemaRegistry>) -> Self {
        let readers = TopicKind::ALL
            .into_iter()
            .map(|kind| {
                let schema = Schema::parse_str(kind.reader_schema_json())
                    .expect("the bundled reader schemas are valid Avro");
                (kind, schema)
            })
            .collect();
        Self { registry, readers }
    }

    pub async fn decode(
        &self,
        kind: TopicKind,
        value: Option<&[u8]>,
    ) -> Result<CrmEvent, DecodeError> {
        let (schema_id, mut body) = split_frame(value.ok_or(DecodeError::EmptyValue)?)?;
        let writer = self.registry.writer_schema(schema_id).await?;
        let reader = &self.readers[&kind];
        let value = apache_avro::from_avro_datum(&writer, &mut body, Some(reader))
            .map_err(|e| DecodeError::Avro(e.to_string()))?;
        mapping::to_event(kind, value)
    }
}

#[cfg(test)]
mod tests;
