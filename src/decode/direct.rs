//! The fast path: a record written with exactly the bridge's reader schema
//! (the usual case) is decoded straight from its bytes into the typed event,
//! with no generic Avro value tree and no schema resolution. A writer schema
//! that differs in any way takes the general path (apache-avro's resolution,
//! then [`super::mapping`]); both give the same event for the same record,
//! which a property test checks.
//!
//! Structural faults (truncation, a bad varint, union branch or enum index,
//! invalid UTF-8, a length past [`MAX_DECLARED_LENGTH`]) are
//! [`DecodeError::Avro`]; meaningless values (an empty id) are
//! [`DecodeError::Field`], as on the general path.

use serde_json::{Map, Number, Value as Json};

use super::{DecodeError, MAX_DECLARED_LENGTH};
use crate::domain::{
    Action, ContactEvent, CrmEvent, DealEvent, EmailEvent, EventBody, NotificationEvent, OrgId,
    Position, TopicKind, UserId,
};

/// The actions of each topic's enum, in the reader schema's symbol order.
const CONTACT_ACTIONS: [Action; 6] = [
    Action::Create,
    Action::Update,
    Action::Delete,
    Action::Activity,
    Action::Email,
    Action::Note,
];
const DEAL_ACTIONS: [Action; 6] = [
    Action::Create,
    Action::Update,
    Action::Delete,
    Action::StageChange,
    Action::Assignment,
    Action::Comment,
];
const EMAIL_ACTIONS: [Action; 3] = [Action::NewEmail, Action::Reply, Action::Forward];

fn malformed(what: &str) -> DecodeError {
    DecodeError::Avro(format!("malformed record: {what}"))
}

/// A cursor over an Avro binary body.
struct Body<'a>(&'a [u8]);

impl<'a> Body<'a> {
    /// A zig-zag varint `long` (at most 10 bytes).
    fn long(&mut self) -> Result<i64, DecodeError> {
        let mut value: u64 = 0;
        for (index, byte) in self.0.iter().take(10).enumerate() {
            value |= u64::from(byte & 0x7f) << (7 * index);
            if byte & 0x80 == 0 {
                self.0 = &self.0[index + 1..];
                return Ok((value >> 1) as i64 ^ -((value & 1) as i64));
            }
        }
        Err(malformed("bad varint"))
    }

    fn take(&mut self, len: usize) -> Result<&'a [u8], DecodeError> {
        if len > self.0.len() {
            return Err(malformed("truncated"));
        }
        let (head, rest) = self.0.split_at(len);
        self.0 = rest;
        Ok(head)
    }

    /// A length-prefixed UTF-8 string, borrowed.
    fn str(&mut self) -> Result<&'a str, DecodeError> {
        let len = usize::try_from(self.long()?).map_err(|_| malformed("negative length"))?;
        if len > MAX_DECLARED_LENGTH {
            return Err(malformed("length over the limit"));
        }
        std::str::from_utf8(self.take(len)?).map_err(|_| malformed("invalid UTF-8"))
    }

    /// A required string: present and not empty.
    fn id(&mut self, field: &'static str) -> Result<String, DecodeError> {
        match self.str()? {
            "" => Err(DecodeError::Field(field)),
            text => Ok(text.to_owned()),
        }
    }

    /// `["null", "string"]`.
    fn optional(&mut self) -> Result<Option<String>, DecodeError> {
        match self.long()? {
            0 => Ok(None),
            1 => Ok(Some(self.str()?.to_owned())),
            _ => Err(malformed("bad union branch")),
        }
    }

    fn action(&mut self, actions: &[Action]) -> Result<Action, DecodeError> {
        let index = usize::try_from(self.long()?).map_err(|_| malformed("bad enum index"))?;
        actions
            .get(index)
            .copied()
            .ok_or_else(|| malformed("bad enum index"))
    }

    /// `changes`: a map of `["null", "boolean", "long", "double", "string"]`.
    fn changes(&mut self) -> Result<Map<String, Json>, DecodeError> {
        let mut map = Map::new();
        loop {
            let count = self.long()?;
            if count == 0 {
                return Ok(map);
            }
            if count < 0 {
                self.long()?; // the block's size in bytes, for skipping
            }
            let count = count.unsigned_abs();
            if count > MAX_DECLARED_LENGTH as u64 || count > self.0.len() as u64 {
                return Err(malformed("map block larger than the record"));
            }
            for _ in 0..count {
                let key = self.str()?.to_owned();
                let value = self.scalar()?;
                map.insert(key, value);
            }
        }
    }

    fn scalar(&mut self) -> Result<Json, DecodeError> {
        Ok(match self.long()? {
            0 => Json::Null,
            1 => match self.take(1)?[0] {
                0 => Json::Bool(false),
                1 => Json::Bool(true),
                _ => return Err(malformed("bad boolean")),
            },
            2 => Json::from(self.long()?),
            3 => {
                let bytes: [u8; 8] = self.take(8)?.try_into().expect("eight bytes");
                let number = Number::from_f64(f64::from_le_bytes(bytes));
                Json::Number(number.ok_or(DecodeError::Field("changes"))?)
            }
            4 => Json::String(self.str()?.to_owned()),
            _ => return Err(malformed("bad union branch")),
        })
    }
}

/// Decodes a body written with `kind`'s reader schema, fields in its order.
pub(super) fn decode(position: Position, body: &[u8]) -> Result<CrmEvent, DecodeError> {
    let mut b = Body(body);
    let org = |text: String| OrgId::new(&text).ok_or(DecodeError::Field("organizationId"));
    if position.topic != TopicKind::Notifications {
        b.str()?; // eventId (notifications have none)
    }
    let (org, body) = match position.topic {
        TopicKind::Contacts => {
            let contact_id = b.id("contactId")?;
            let org = org(b.id("organizationId")?)?;
            let event = ContactEvent {
                contact_id,
                action: b.action(&CONTACT_ACTIONS)?,
                actor_user_id: b.id("actorUserId")?,
                occurred_at_ms: b.long()?,
                changes: b.changes()?,
            };
            (org, EventBody::Contact(event))
        }
        TopicKind::Deals => {
            let deal_id = b.id("dealId")?;
            let org = org(b.id("organizationId")?)?;
            let event = DealEvent {
                deal_id,
                pipeline_id: b.id("pipelineId")?,
                action: b.action(&DEAL_ACTIONS)?,
                actor_user_id: b.id("actorUserId")?,
                occurred_at_ms: b.long()?,
                previous_stage: b.optional()?,
                new_stage: b.optional()?,
                changes: b.changes()?,
            };
            (org, EventBody::Deal(event))
        }
        TopicKind::Email => {
            let email_id = b.id("emailId")?;
            let thread_id = b.id("threadId")?;
            let org = org(b.id("organizationId")?)?;
            let event = EmailEvent {
                email_id,
                thread_id,
                contact_id: b.optional()?,
                action: b.action(&EMAIL_ACTIONS)?,
                subject: b.str()?.to_owned(),
                from: b.id("from")?,
                occurred_at_ms: b.long()?,
            };
            (org, EventBody::Email(event))
        }
        TopicKind::Notifications => {
            let notification_id = b.id("notificationId")?;
            let org = org(b.id("organizationId")?)?;
            let target = b.id("targetUserId")?;
            let event = NotificationEvent {
                notification_id,
                target_user: UserId::new(&target).ok_or(DecodeError::Field("targetUserId"))?,
                kind: b.id("type")?,
                title: b.str()?.to_owned(),
                message: b.str()?.to_owned(),
                link: b.optional()?,
                occurred_at_ms: b.long()?,
            };
            (org, EventBody::Notification(event))
        }
    };
    Ok(CrmEvent {
        org,
        position,
        body,
    })
}
