//! The fast path: a record written with exactly the bridge's reader schema
//! (the usual case) is decoded straight from its bytes into the typed event,
//! with no generic Avro value tree and no schema resolution. A writer schema
//! that differs in any way takes the general path (apache-avro's resolution,
//! then [`super::mapping`]); both give the same event for the same record,
//! which a property test checks.
//!
//! Decoding is in two steps. [`view`] reads and checks the whole record,
//! every fault below included, but only borrows from its bytes: an
//! [`EventView`] is enough to route it. [`EventView::to_event`] then builds
//! the owned event, for the records someone receives. Most records of a busy
//! topic match nobody on a given node, and skip the allocations.
//!
//! Structural faults (truncation, a bad varint, union branch or enum index,
//! invalid UTF-8, a length past [`MAX_DECLARED_LENGTH`]) are
//! [`DecodeError::Avro`]; meaningless values (an empty id) are
//! [`DecodeError::Field`], as on the general path.

use serde_json::{Map, Number, Value as Json};

use super::{DecodeError, MAX_DECLARED_LENGTH};
use crate::domain::{
    About, Action, ContactEvent, CrmEvent, DealEvent, EmailEvent, EventBody, EventKeys,
    NotificationEvent, OrgId, Position, ResourceKind, TopicKind, UserId,
};

fn malformed(what: &str) -> DecodeError {
    DecodeError::Avro(format!("malformed record: {what}"))
}

/// A cursor over an Avro binary body.
struct Body<'a>(&'a [u8]);

impl<'a> Body<'a> {
    /// A zig-zag varint `long` (at most 10 bytes).
    #[inline]
    fn long(&mut self) -> Result<i64, DecodeError> {
        // Most longs here (lengths, union branches, enum indexes) fit in
        // one byte.
        if let Some(&byte) = self.0.first()
            && byte & 0x80 == 0
        {
            self.0 = &self.0[1..];
            let value = i64::from(byte);
            return Ok((value >> 1) ^ -(value & 1));
        }
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

    #[inline]
    fn take(&mut self, len: usize) -> Result<&'a [u8], DecodeError> {
        if len > self.0.len() {
            return Err(malformed("truncated"));
        }
        let (head, rest) = self.0.split_at(len);
        self.0 = rest;
        Ok(head)
    }

    /// A length-prefixed UTF-8 string, borrowed.
    #[inline]
    fn str(&mut self) -> Result<&'a str, DecodeError> {
        let len = usize::try_from(self.long()?).map_err(|_| malformed("negative length"))?;
        if len > MAX_DECLARED_LENGTH {
            return Err(malformed("length over the limit"));
        }
        std::str::from_utf8(self.take(len)?).map_err(|_| malformed("invalid UTF-8"))
    }

    /// A required string: present and not empty.
    fn id(&mut self, field: &'static str) -> Result<&'a str, DecodeError> {
        match self.str()? {
            "" => Err(DecodeError::Field(field)),
            text => Ok(text),
        }
    }

    /// `["null", "string"]`.
    fn optional(&mut self) -> Result<Option<&'a str>, DecodeError> {
        match self.long()? {
            0 => Ok(None),
            1 => Ok(Some(self.str()?)),
            _ => Err(malformed("bad union branch")),
        }
    }

    /// An `action` enum index: `kind`'s actions are in its symbol order.
    fn action(&mut self, kind: ResourceKind) -> Result<Action, DecodeError> {
        let index = usize::try_from(self.long()?).map_err(|_| malformed("bad enum index"))?;
        kind.actions()
            .get(index)
            .copied()
            .ok_or_else(|| malformed("bad enum index"))
    }

    /// `changes`: a map of `["null", "boolean", "long", "double", "string"]`,
    /// each entry given to `entry` in order.
    fn changes(&mut self, mut entry: impl FnMut(&'a str, Scalar<'a>)) -> Result<(), DecodeError> {
        loop {
            let count = self.long()?;
            if count == 0 {
                return Ok(());
            }
            if count < 0 {
                self.long()?; // the block's size in bytes, for skipping
            }
            let count = count.unsigned_abs();
            if count > MAX_DECLARED_LENGTH as u64 || count > self.0.len() as u64 {
                return Err(malformed("map block larger than the record"));
            }
            for _ in 0..count {
                let key = self.str()?;
                let value = self.scalar()?;
                entry(key, value);
            }
        }
    }

    /// Checks a `changes` map and returns its bytes, for [`Changes::to_map`].
    fn raw_changes(&mut self) -> Result<Changes<'a>, DecodeError> {
        let start = self.0;
        self.changes(|_, _| {})?;
        Ok(Changes(&start[..start.len() - self.0.len()]))
    }

    /// A scalar of `changes`, borrowed.
    fn scalar(&mut self) -> Result<Scalar<'a>, DecodeError> {
        Ok(match self.long()? {
            0 => Scalar::Null,
            1 => match self.take(1)?[0] {
                0 => Scalar::Bool(false),
                1 => Scalar::Bool(true),
                _ => return Err(malformed("bad boolean")),
            },
            2 => Scalar::Long(self.long()?),
            3 => {
                let bytes: [u8; 8] = self.take(8)?.try_into().expect("eight bytes");
                let number = Number::from_f64(f64::from_le_bytes(bytes));
                Scalar::Double(number.ok_or(DecodeError::Field("changes"))?)
            }
            4 => Scalar::Str(self.str()?),
            _ => return Err(malformed("bad union branch")),
        })
    }
}

/// A value of `changes` before it becomes JSON.
enum Scalar<'a> {
    Null,
    Bool(bool),
    Long(i64),
    Double(Number),
    Str(&'a str),
}

impl Scalar<'_> {
    fn to_json(&self) -> Json {
        match self {
            Self::Null => Json::Null,
            Self::Bool(b) => Json::Bool(*b),
            Self::Long(n) => Json::from(*n),
            Self::Double(n) => Json::Number(n.clone()),
            Self::Str(s) => Json::String((*s).to_owned()),
        }
    }
}

/// The bytes of a `changes` map that has been checked.
#[derive(Clone, Copy, Debug)]
struct Changes<'a>(&'a [u8]);

impl Changes<'_> {
    fn to_map(self) -> Map<String, Json> {
        let mut map = Map::new();
        Body(self.0)
            .changes(|key, value| {
                map.insert(key.to_owned(), value.to_json());
            })
            .expect("checked when the record was read");
        map
    }
}

/// A record read and checked, borrowing its bytes: the fields of its
/// event, not yet owned.
#[derive(Clone, Copy, Debug)]
pub struct EventView<'a> {
    position: Position,
    org: &'a str,
    body: BodyView<'a>,
}

#[derive(Clone, Copy, Debug)]
enum BodyView<'a> {
    Contact {
        contact_id: &'a str,
        action: Action,
        actor_user_id: &'a str,
        occurred_at_ms: i64,
        changes: Changes<'a>,
    },
    Deal {
        deal_id: &'a str,
        pipeline_id: &'a str,
        action: Action,
        actor_user_id: &'a str,
        occurred_at_ms: i64,
        previous_stage: Option<&'a str>,
        new_stage: Option<&'a str>,
        changes: Changes<'a>,
    },
    Email {
        email_id: &'a str,
        thread_id: &'a str,
        contact_id: Option<&'a str>,
        action: Action,
        subject: &'a str,
        from: &'a str,
        occurred_at_ms: i64,
    },
    Notification {
        notification_id: &'a str,
        target_user: &'a str,
        kind: &'a str,
        title: &'a str,
        message: &'a str,
        link: Option<&'a str>,
        occurred_at_ms: i64,
    },
}

impl<'a> EventView<'a> {
    /// What routing needs (the same as [`CrmEvent::keys`] of [`Self::to_event`]).
    pub fn keys(&self) -> EventKeys<'a> {
        let about = match self.body {
            BodyView::Contact {
                contact_id, action, ..
            } => About::Resource {
                kind: ResourceKind::Contact,
                id: contact_id,
                action,
                pipeline_id: None,
                contact_id: None,
            },
            BodyView::Deal {
                deal_id,
                pipeline_id,
                action,
                ..
            } => About::Resource {
                kind: ResourceKind::Deal,
                id: deal_id,
                action,
                pipeline_id: Some(pipeline_id),
                contact_id: None,
            },
            BodyView::Email {
                thread_id,
                contact_id,
                action,
                ..
            } => About::Resource {
                kind: ResourceKind::EmailThread,
                id: thread_id,
                action,
                pipeline_id: None,
                contact_id,
            },
            BodyView::Notification { target_user, .. } => About::Inbox(target_user),
        };
        EventKeys {
            org: self.org,
            about,
        }
    }

    /// The owned event. Cannot fail: [`view`] checked everything.
    pub fn to_event(&self) -> CrmEvent {
        let owned = |text: Option<&str>| text.map(str::to_owned);
        let body = match self.body {
            BodyView::Contact {
                contact_id,
                action,
                actor_user_id,
                occurred_at_ms,
                changes,
            } => EventBody::Contact(ContactEvent {
                contact_id: contact_id.to_owned(),
                action,
                actor_user_id: actor_user_id.to_owned(),
                occurred_at_ms,
                changes: changes.to_map(),
            }),
            BodyView::Deal {
                deal_id,
                pipeline_id,
                action,
                actor_user_id,
                occurred_at_ms,
                previous_stage,
                new_stage,
                changes,
            } => EventBody::Deal(DealEvent {
                deal_id: deal_id.to_owned(),
                pipeline_id: pipeline_id.to_owned(),
                action,
                actor_user_id: actor_user_id.to_owned(),
                occurred_at_ms,
                previous_stage: owned(previous_stage),
                new_stage: owned(new_stage),
                changes: changes.to_map(),
            }),
            BodyView::Email {
                email_id,
                thread_id,
                contact_id,
                action,
                subject,
                from,
                occurred_at_ms,
            } => EventBody::Email(EmailEvent {
                email_id: email_id.to_owned(),
                thread_id: thread_id.to_owned(),
                contact_id: owned(contact_id),
                action,
                subject: subject.to_owned(),
                from: from.to_owned(),
                occurred_at_ms,
            }),
            BodyView::Notification {
                notification_id,
                target_user,
                kind,
                title,
                message,
                link,
                occurred_at_ms,
            } => EventBody::Notification(NotificationEvent {
                notification_id: notification_id.to_owned(),
                target_user: UserId::new(target_user).expect("checked when read"),
                kind: kind.to_owned(),
                title: title.to_owned(),
                message: message.to_owned(),
                link: owned(link),
                occurred_at_ms,
            }),
        };
        CrmEvent {
            org: OrgId::new(self.org).expect("checked when read"),
            position: self.position,
            body,
        }
    }
}

/// Decodes a body written with `kind`'s reader schema into its event.
#[cfg(test)]
pub(super) fn decode(position: Position, body: &[u8]) -> Result<CrmEvent, DecodeError> {
    view(position, body).map(|view| view.to_event())
}

/// Reads and checks a body written with `kind`'s reader schema, fields in
/// its order, borrowing its strings.
pub(super) fn view(position: Position, body: &[u8]) -> Result<EventView<'_>, DecodeError> {
    let mut b = Body(body);
    let org = |text: &str| {
        OrgId::is_valid(text)
            .then_some(())
            .ok_or(DecodeError::Field("organizationId"))
    };
    if position.topic != TopicKind::Notifications {
        b.str()?; // eventId (notifications have none)
    }
    let (org, body) = match position.topic {
        TopicKind::Contacts => {
            let contact_id = b.id("contactId")?;
            let org_id = b.id("organizationId")?;
            org(org_id)?;
            let body = BodyView::Contact {
                contact_id,
                action: b.action(ResourceKind::Contact)?,
                actor_user_id: b.id("actorUserId")?,
                occurred_at_ms: b.long()?,
                changes: b.raw_changes()?,
            };
            (org_id, body)
        }
        TopicKind::Deals => {
            let deal_id = b.id("dealId")?;
            let org_id = b.id("organizationId")?;
            org(org_id)?;
            let body = BodyView::Deal {
                deal_id,
                pipeline_id: b.id("pipelineId")?,
                action: b.action(ResourceKind::Deal)?,
                actor_user_id: b.id("actorUserId")?,
                occurred_at_ms: b.long()?,
                previous_stage: b.optional()?,
                new_stage: b.optional()?,
                changes: b.raw_changes()?,
            };
            (org_id, body)
        }
        TopicKind::Email => {
            let email_id = b.id("emailId")?;
            let thread_id = b.id("threadId")?;
            let org_id = b.id("organizationId")?;
            org(org_id)?;
            let body = BodyView::Email {
                email_id,
                thread_id,
                contact_id: b.optional()?,
                action: b.action(ResourceKind::EmailThread)?,
                subject: b.str()?,
                from: b.id("from")?,
                occurred_at_ms: b.long()?,
            };
            (org_id, body)
        }
        TopicKind::Notifications => {
            let notification_id = b.id("notificationId")?;
            let org_id = b.id("organizationId")?;
            org(org_id)?;
            let target_user = b.id("targetUserId")?;
            if !UserId::is_valid(target_user) {
                return Err(DecodeError::Field("targetUserId"));
            }
            let body = BodyView::Notification {
                notification_id,
                target_user,
                kind: b.id("type")?,
                title: b.str()?,
                message: b.str()?,
                link: b.optional()?,
                occurred_at_ms: b.long()?,
            };
            (org_id, body)
        }
    };
    Ok(EventView {
        position,
        org,
        body,
    })
}
