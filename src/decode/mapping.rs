//! Resolved Avro values → typed events and grants. The value has already
//! been resolved against the bridge's reader schema, so fields are present
//! with the reader's types; what is checked here is meaning (non-empty ids,
//! known symbols).

use apache_avro::types::Value;
use serde_json::{Map, Number, Value as Json};

use super::DecodeError;
use crate::domain::{
    Action, ContactEvent, CrmEvent, DealEvent, EmailEvent, EventBody, Grant, Granted, Grantee,
    NotificationEvent, OrgId, Position, ResourceKind, TeamId, TopicKind, UserId,
};

/// The fields of one record, by name.
struct Fields(Vec<(String, Value)>);

impl Fields {
    fn take(&mut self, name: &'static str) -> Result<Value, DecodeError> {
        let at = self
            .0
            .iter()
            .position(|(n, _)| n == name)
            .ok_or(DecodeError::Field(name))?;
        Ok(unwrap_union(self.0.swap_remove(at).1))
    }

    fn string(&mut self, name: &'static str) -> Result<String, DecodeError> {
        match self.take(name)? {
            Value::String(s) if !s.is_empty() => Ok(s),
            _ => Err(DecodeError::Field(name)),
        }
    }

    fn optional_string(&mut self, name: &'static str) -> Result<Option<String>, DecodeError> {
        match self.take(name)? {
            Value::Null => Ok(None),
            Value::String(s) => Ok(Some(s)),
            _ => Err(DecodeError::Field(name)),
        }
    }

    fn millis(&mut self, name: &'static str) -> Result<i64, DecodeError> {
        match self.take(name)? {
            Value::TimestampMillis(ms) | Value::Long(ms) => Ok(ms),
            _ => Err(DecodeError::Field(name)),
        }
    }

    /// An `action` enum, resolved against the reader schema: its index
    /// is in `kind`'s actions, which are in that schema's symbol order.
    fn action(&mut self, name: &'static str, kind: ResourceKind) -> Result<Action, DecodeError> {
        let Value::Enum(index, _) = self.take(name)? else {
            return Err(DecodeError::Field(name));
        };
        usize::try_from(index)
            .ok()
            .and_then(|index| kind.actions().get(index).copied())
            .ok_or(DecodeError::Field(name))
    }

    /// An enum's symbol (the reader schema's: resolution mapped the
    /// writer's onto it).
    fn symbol(&mut self, name: &'static str) -> Result<String, DecodeError> {
        match self.take(name)? {
            Value::Enum(_, symbol) => Ok(symbol),
            _ => Err(DecodeError::Field(name)),
        }
    }

    fn changes(&mut self, name: &'static str) -> Result<Map<String, Json>, DecodeError> {
        let Value::Map(entries) = self.take(name)? else {
            return Err(DecodeError::Field(name));
        };
        entries
            .into_iter()
            .map(|(k, v)| {
                Ok((
                    k,
                    scalar_to_json(unwrap_union(v)).ok_or(DecodeError::Field(name))?,
                ))
            })
            .collect()
    }
}

fn unwrap_union(value: Value) -> Value {
    match value {
        Value::Union(_, inner) => *inner,
        other => other,
    }
}

fn scalar_to_json(value: Value) -> Option<Json> {
    Some(match value {
        Value::Null => Json::Null,
        Value::Boolean(b) => Json::Bool(b),
        Value::Int(i) => Json::from(i),
        Value::Long(l) => Json::from(l),
        Value::Float(f) => Json::Number(Number::from_f64(f64::from(f))?),
        Value::Double(d) => Json::Number(Number::from_f64(d)?),
        Value::String(s) => Json::String(s),
        _ => return None,
    })
}

pub(super) fn to_event(position: Position, value: Value) -> Result<CrmEvent, DecodeError> {
    let Value::Record(fields) = value else {
        return Err(DecodeError::Avro("value is not a record".into()));
    };
    let mut f = Fields(fields);
    let org_field = f.string("organizationId")?;
    let org = OrgId::new(&org_field).ok_or(DecodeError::Field("organizationId"))?;
    let body = match position.topic {
        TopicKind::Contacts => EventBody::Contact(ContactEvent {
            contact_id: f.string("contactId")?,
            action: f.action("action", ResourceKind::Contact)?,
            actor_user_id: f.string("actorUserId")?,
            occurred_at_ms: f.millis("occurredAt")?,
            changes: f.changes("changes")?,
        }),
        TopicKind::Deals => EventBody::Deal(DealEvent {
            deal_id: f.string("dealId")?,
            pipeline_id: f.string("pipelineId")?,
            action: f.action("action", ResourceKind::Deal)?,
            actor_user_id: f.string("actorUserId")?,
            occurred_at_ms: f.millis("occurredAt")?,
            previous_stage: f.optional_string("previousStage")?,
            new_stage: f.optional_string("newStage")?,
            changes: f.changes("changes")?,
        }),
        TopicKind::Email => EventBody::Email(EmailEvent {
            email_id: f.string("emailId")?,
            thread_id: f.string("threadId")?,
            contact_id: f.optional_string("contactId")?,
            action: f.action("action", ResourceKind::EmailThread)?,
            subject: f.optional_string("subject")?.unwrap_or_default(),
            from: f.string("from")?,
            occurred_at_ms: f.millis("occurredAt")?,
        }),
        TopicKind::Notifications => EventBody::Notification(NotificationEvent {
            notification_id: f.string("notificationId")?,
            target_user: UserId::new(&f.string("targetUserId")?)
                .ok_or(DecodeError::Field("targetUserId"))?,
            kind: f.string("type")?,
            title: f.optional_string("title")?.unwrap_or_default(),
            message: f.optional_string("message")?.unwrap_or_default(),
            link: f.optional_string("link")?,
            occurred_at_ms: f.millis("occurredAt")?,
        }),
    };
    Ok(CrmEvent {
        org,
        position,
        body,
    })
}

/// The grant schema's symbols (`schemas/access-grant.avsc`): a principal
/// is a `USER` or a `TEAM`; a resource is a kind's symbol or a `TEAM`.
pub(super) const USER: &str = "USER";
pub(super) const TEAM: &str = "TEAM";

pub(super) const fn resource_symbol(kind: ResourceKind) -> &'static str {
    match kind {
        ResourceKind::Contact => "CONTACT",
        ResourceKind::Deal => "DEAL",
        ResourceKind::EmailThread => "EMAIL_THREAD",
    }
}

/// A record of the permissions topic (`schemas/access-grant.avsc`). A team
/// cannot be granted membership of a team: memberships are one level deep,
/// so what a user sees never depends on a chain of records.
pub(super) fn to_grant(value: Value) -> Result<Grant, DecodeError> {
    let Value::Record(fields) = value else {
        return Err(DecodeError::Avro("value is not a record".into()));
    };
    let mut f = Fields(fields);
    let org =
        OrgId::new(&f.string("organizationId")?).ok_or(DecodeError::Field("organizationId"))?;
    let principal_type = f.symbol("principalType")?;
    let principal = f.string("principalId")?;
    let grantee = match principal_type.as_str() {
        USER => UserId::new(&principal).map(Grantee::User),
        TEAM => TeamId::new(&principal).map(Grantee::Team),
        _ => None,
    }
    .ok_or(DecodeError::Field("principalId"))?;
    let resource_type = f.symbol("resourceType")?;
    let resource = f.string("resourceId")?;
    let kind = ResourceKind::ALL
        .into_iter()
        .find(|kind| resource_type == resource_symbol(*kind));
    let granted = match (kind, resource_type.as_str(), &grantee) {
        (Some(kind), _, _) => Granted::Resource(kind, resource.into()),
        (None, TEAM, Grantee::User(_)) => {
            Granted::Team(TeamId::new(&resource).ok_or(DecodeError::Field("resourceId"))?)
        }
        _ => return Err(DecodeError::Field("resourceType")),
    };
    Ok(Grant {
        org,
        grantee,
        granted,
        granted_at_ms: f.millis("grantedAt")?,
    })
}
