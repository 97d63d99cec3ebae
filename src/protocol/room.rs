//! Collaboration requests (`join-room`, `leave-room`, `typing`) and the
//! payloads rooms send (`user-joined`, `user-left`, `user-typing`).
//!
//! A room is always built under the caller's own organisation, as
//! subscriptions are. `organizationId`, when a request names it, must be the
//! caller's (`FORBIDDEN` otherwise), for clients that carry it with a room.

use schemars::JsonSchema;
use serde::Serialize;
use serde_json::{Map, Value, json};

use super::request::{MAX_ID_LEN, as_object, id_value, reject_unknown, truncate};
use super::{Caller, ClientError, ErrorCode, format_millis};
use crate::domain::{RoomKey, RoomKind, UserId};

/// Longest `typing.field` accepted (a form field's name).
pub(super) const MAX_FIELD_LEN: usize = 64;

/// The fields `join-room` and `leave-room` accept.
pub(super) const ROOM_FIELDS: [&str; 3] = ["type", "id", "organizationId"];
/// The fields `typing` accepts.
pub(super) const TYPING_FIELDS: [&str; 4] = ["roomType", "roomId", "field", "organizationId"];

/// Parses `{ type, id, organizationId? }` for `join-room` and `leave-room`.
pub fn parse_room(caller: Caller<'_>, raw: Option<&Value>) -> Result<RoomKey, ClientError> {
    let fields = as_object(raw, "{ type, id }")?;
    reject_unknown(fields, &ROOM_FIELDS)?;
    room_key(caller, fields, "type", "id")
}

/// Parses `{ roomType, roomId, field }` for `typing`.
pub fn parse_typing(
    caller: Caller<'_>,
    raw: Option<&Value>,
) -> Result<(RoomKey, Box<str>), ClientError> {
    let fields = as_object(raw, "{ roomType, roomId, field }")?;
    reject_unknown(fields, &TYPING_FIELDS)?;
    let room = room_key(caller, fields, "roomType", "roomId")?;
    let field = match fields.get("field") {
        Some(Value::String(f)) if !f.is_empty() && f.len() <= MAX_FIELD_LEN => f.as_str().into(),
        _ => {
            return Err(ClientError::invalid(format!(
                "`field` must be a non-empty string of at most {MAX_FIELD_LEN} bytes"
            )));
        }
    };
    Ok((room, field))
}

fn room_key(
    caller: Caller<'_>,
    fields: &Map<String, Value>,
    type_field: &str,
    id_field: &str,
) -> Result<RoomKey, ClientError> {
    let kind = match fields.get(type_field) {
        Some(Value::String(name)) => RoomKind::parse(name).ok_or_else(|| {
            ClientError::new(
                ErrorCode::ResourceNotFound,
                format!("unknown room type `{}`", truncate(name)),
            )
            .with_details(json!({ "roomTypes": RoomKind::ALL.map(RoomKind::as_str) }))
        })?,
        _ => {
            return Err(ClientError::invalid(format!(
                "`{type_field}` must be a string such as \"pipeline\""
            )));
        }
    };
    let id = match fields.get(id_field) {
        Some(value) => id_value(id_field, value)?,
        None => {
            return Err(ClientError::invalid(format!(
                "`{id_field}` is required (at most {MAX_ID_LEN} bytes)"
            )));
        }
    };
    if let Some(org) = fields.get("organizationId")
        && id_value("organizationId", org)?.as_ref() != caller.org.as_str()
    {
        return Err(ClientError::new(
            ErrorCode::Forbidden,
            "you can only join rooms of your own organization",
        ));
    }
    Ok(RoomKey {
        org: caller.org.clone(),
        kind,
        id,
    })
}

/// The room as the client named it, echoed in acknowledgements.
pub fn describe_room(room: &RoomKey) -> Value {
    json!({ "type": room.kind.as_str(), "id": &*room.id })
}

/// `user-joined` and `user-left`.
#[derive(Clone, Debug, PartialEq, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PresenceChange<'a> {
    pub user_id: &'a UserId,
    pub user_name: &'a str,
    #[schemars(with = "RoomKind")]
    pub room_type: &'static str,
    pub room_id: &'a str,
    #[schemars(extend("format" = "date-time"))]
    pub timestamp: String,
}

impl<'a> PresenceChange<'a> {
    pub fn new(room: &'a RoomKey, user: &'a UserId, name: &'a str, at_ms: u64) -> Self {
        Self {
            user_id: user,
            user_name: name,
            room_type: room.kind.as_str(),
            room_id: &room.id,
            timestamp: format_millis(at_ms as i64),
        }
    }
}

/// `user-typing`: the seed's fields, plus the room (a client may be in
/// several) and when the indicator lapses unless another `typing` arrives.
#[derive(Clone, Debug, PartialEq, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Typing<'a> {
    pub user_id: &'a UserId,
    pub user_name: &'a str,
    /// The form field being typed in.
    pub field: &'a str,
    #[schemars(extend("format" = "date-time"))]
    pub timestamp: String,
    #[schemars(with = "RoomKind")]
    pub room_type: &'static str,
    pub room_id: &'a str,
    /// When the indicator lapses unless another `typing` arrives.
    #[schemars(extend("format" = "date-time"))]
    pub expires_at: String,
}

impl<'a> Typing<'a> {
    pub fn new(
        room: &'a RoomKey,
        user: &'a UserId,
        name: &'a str,
        field: &'a str,
        at_ms: u64,
        expires_ms: u64,
    ) -> Self {
        Self {
            user_id: user,
            user_name: name,
            field,
            timestamp: format_millis(at_ms as i64),
            room_type: room.kind.as_str(),
            room_id: &room.id,
            expires_at: format_millis(expires_ms as i64),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::OrgId;

    fn caller_parts() -> (OrgId, UserId) {
        (OrgId::new("org-a").unwrap(), UserId::new("u1").unwrap())
    }

    fn join(raw: Value) -> Result<RoomKey, ClientError> {
        let (org, user) = caller_parts();
        let caller = Caller {
            org: &org,
            user: &user,
        };
        parse_room(caller, Some(&raw))
    }

    #[test]
    fn a_room_is_built_in_the_callers_organisation() {
        let room = join(json!({ "type": "pipeline", "id": "pipeline_456" })).unwrap();
        assert_eq!(room.org.as_str(), "org-a");
        assert_eq!(room.kind, RoomKind::Pipeline);
        assert_eq!(&*room.id, "pipeline_456");
        let same =
            join(json!({ "type": "pipeline", "id": "pipeline_456", "organizationId": "org-a" }));
        assert_eq!(same.unwrap(), room);
    }

    #[test]
    fn another_organisations_room_is_forbidden() {
        let err =
            join(json!({ "type": "deal", "id": "d1", "organizationId": "org-b" })).unwrap_err();
        assert_eq!(err.code, ErrorCode::Forbidden);
    }

    #[test]
    fn unknown_types_and_malformed_requests_are_refused() {
        let err = join(json!({ "type": "invoice", "id": "i1" })).unwrap_err();
        assert_eq!(err.code, ErrorCode::ResourceNotFound);
        assert_eq!(err.details.unwrap()["roomTypes"][0], "pipeline");
        for raw in [
            json!("pipeline"),
            json!({ "type": "deal" }),
            json!({ "type": 3, "id": "d1" }),
            json!({ "type": "deal", "id": "" }),
            json!({ "type": "deal", "id": "x".repeat(MAX_ID_LEN + 1) }),
            json!({ "type": "deal", "id": "d1", "extra": true }),
        ] {
            assert_eq!(join(raw).unwrap_err().code, ErrorCode::InvalidRequest);
        }
    }

    #[test]
    fn typing_names_its_room_and_field() {
        let (org, user) = caller_parts();
        let caller = Caller {
            org: &org,
            user: &user,
        };
        let raw = json!({ "roomType": "contact", "roomId": "contact_123", "field": "notes" });
        let (room, field) = parse_typing(caller, Some(&raw)).unwrap();
        assert_eq!(
            (room.kind, &*room.id, &*field),
            (RoomKind::Contact, "contact_123", "notes")
        );
        let no_field = json!({ "roomType": "contact", "roomId": "contact_123" });
        let err = parse_typing(caller, Some(&no_field)).unwrap_err();
        assert_eq!(err.code, ErrorCode::InvalidRequest);
    }

    #[test]
    fn payloads_use_the_seed_field_names() {
        let (org, user) = caller_parts();
        let room = RoomKey {
            org,
            kind: RoomKind::Pipeline,
            id: "pipeline_123".into(),
        };
        let joined = PresenceChange::new(&room, &user, "Jane Smith", 1_736_510_400_000);
        assert_eq!(
            serde_json::to_value(&joined).unwrap(),
            json!({
                "userId": "u1", "userName": "Jane Smith", "roomType": "pipeline",
                "roomId": "pipeline_123", "timestamp": "2025-01-10T12:00:00.000Z"
            })
        );
        let typing = Typing::new(
            &room,
            &user,
            "Jane Smith",
            "notes",
            1_736_510_400_000,
            1_736_510_405_000,
        );
        let typing = serde_json::to_value(&typing).unwrap();
        assert_eq!(typing["field"], "notes");
        assert_eq!(typing["expiresAt"], "2025-01-10T12:00:05.000Z");
    }
}
