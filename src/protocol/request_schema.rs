//! The JSON Schemas of the requests, for the client contract
//! (`crate::contract`). The parsers read `serde_json::Value` by hand (so
//! each refusal names the field at fault), so no derive can describe them:
//! these are built from the same tables the parsers read (resources, their
//! events and filter fields, room types), and the tests below hold them to
//! the parsers' field lists and run requests they describe through them.

use schemars::Schema;
use serde_json::{Value, json};

use super::request::{MAX_ID_LEN, NOTIFICATION};
use crate::domain::{ResourceKind, RoomKind};

/// `subscribe`'s request: per resource, `{ resource, id | filter, events?,
/// since? }` with that resource's filter fields and events, or the user's
/// own notifications, `{ resource: "notification", since? }`.
/// `with_since: false` is the subscription as acknowledgements echo it.
pub fn subscription_schema(with_since: bool) -> Schema {
    let since = with_since.then(|| {
        json!({ "type": "string", "description": "Resume from this cursor (an acknowledgement's or `subscription-resumed`'s): what was missed is replayed first." })
    });
    let mut variants: Vec<Value> = ResourceKind::ALL
        .into_iter()
        .flat_map(|kind| {
            let events: Vec<&str> = kind.actions().iter().map(|a| a.as_str()).collect();
            let filter_fields: serde_json::Map<String, Value> = kind
                .filter_fields()
                .iter()
                .map(|f| (f.as_str().to_owned(), id_schema()))
                .collect();
            let selectors = [
                ("id", id_schema()),
                (
                    "filter",
                    json!({ "type": "object", "properties": filter_fields, "additionalProperties": false, "minProperties": 1 }),
                ),
            ];
            let since = since.clone();
            selectors.into_iter().map(move |(selector, schema)| {
                let mut properties = json!({
                    "resource": { "const": kind.as_str() },
                    selector: schema,
                    "events": {
                        "type": "array", "items": { "enum": events.clone() }, "minItems": 1,
                        "description": "Omit for every event the resource has."
                    },
                });
                if let Some(since) = &since {
                    properties["since"] = since.clone();
                }
                object(properties, &["resource", selector])
            })
        })
        .collect();
    let mut inbox = json!({ "resource": { "const": NOTIFICATION } });
    if let Some(since) = since {
        inbox["since"] = since;
    }
    variants.push(object(inbox, &["resource"]));
    schema(json!({ "oneOf": variants }))
}

/// `unsubscribe`'s request: a subscription as `subscribe` named it.
pub fn unsubscribe_schema() -> Schema {
    subscription_schema(false)
}

/// `join-room` and `leave-room`: `{ type, id, organizationId? }`.
pub fn room_schema() -> Schema {
    schema(object(
        json!({ "type": room_types(), "id": id_schema(), "organizationId": id_schema() }),
        &["type", "id"],
    ))
}

/// `typing`: `{ roomType, roomId, field, organizationId? }`.
pub fn typing_schema() -> Schema {
    let field =
        json!({ "type": "string", "minLength": 1, "maxLength": super::room::MAX_FIELD_LEN });
    schema(object(
        json!({ "roomType": room_types(), "roomId": id_schema(), "field": field, "organizationId": id_schema() }),
        &["roomType", "roomId", "field"],
    ))
}

/// A room as acknowledgements echo it: `{ type, id }`.
pub fn room_echo_schema() -> Schema {
    schema(object(
        json!({ "type": room_types(), "id": { "type": "string" } }),
        &["type", "id"],
    ))
}

fn room_types() -> Value {
    json!({ "enum": RoomKind::ALL.map(RoomKind::as_str) })
}

fn id_schema() -> Value {
    json!({ "type": "string", "minLength": 1, "maxLength": MAX_ID_LEN })
}

fn object(properties: Value, required: &[&str]) -> Value {
    json!({ "type": "object", "properties": properties, "required": required, "additionalProperties": false })
}

fn schema(value: Value) -> Schema {
    Schema::try_from(value).expect("an object schema")
}

#[cfg(test)]
mod tests {
    use super::super::request::SUBSCRIPTION_FIELDS;
    use super::super::room::{ROOM_FIELDS, TYPING_FIELDS};
    use super::super::{Caller, parse_room, parse_subscribe, parse_typing};
    use super::*;
    use crate::domain::{OrgId, UserId};

    fn property_names(schema: &Value) -> Vec<String> {
        let mut names: Vec<String> = schema["properties"]
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect();
        names.sort();
        names
    }

    fn sorted(fields: &[&str]) -> Vec<String> {
        let mut names: Vec<String> = fields.iter().map(|f| f.to_string()).collect();
        names.sort();
        names
    }

    #[test]
    fn the_schemas_name_the_fields_the_parsers_accept() {
        let subscribe = subscription_schema(true);
        let mut named: Vec<String> = subscribe.as_value()["oneOf"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(property_names)
            .collect();
        named.sort();
        named.dedup();
        assert_eq!(named, sorted(&SUBSCRIPTION_FIELDS));
        assert_eq!(
            property_names(room_schema().as_value()),
            sorted(&ROOM_FIELDS)
        );
        assert_eq!(
            property_names(typing_schema().as_value()),
            sorted(&TYPING_FIELDS)
        );
    }

    /// Every resource with every event, by id and by each filter field,
    /// resumed or not, as the schema describes it: the parser takes it.
    #[test]
    fn what_the_subscribe_schema_describes_parses() {
        let (org, user) = (OrgId::new("org-a").unwrap(), UserId::new("u1").unwrap());
        let caller = Caller {
            org: &org,
            user: &user,
        };
        let since = "1:d0.1";
        for variant in subscription_schema(true).as_value()["oneOf"]
            .as_array()
            .unwrap()
        {
            let properties = &variant["properties"];
            let mut request =
                json!({ "resource": properties["resource"]["const"], "since": since });
            if let Some(events) = properties.get("events") {
                request["events"] = events["items"]["enum"].clone();
            }
            let requests = match (properties.get("id"), properties.get("filter")) {
                (Some(_), _) => vec![json!({ "id": "x1" })],
                (_, Some(filter)) => filter["properties"]
                    .as_object()
                    .unwrap()
                    .keys()
                    .map(|field| json!({ "filter": { field: "org-a" } }))
                    .collect(),
                (None, None) => vec![json!({})],
            };
            for selector in requests {
                let mut request = request.clone();
                request
                    .as_object_mut()
                    .unwrap()
                    .extend(selector.as_object().unwrap().clone());
                parse_subscribe(caller, Some(&request))
                    .unwrap_or_else(|e| panic!("{request}: {e}"));
            }
        }
        for kind in RoomKind::ALL.map(RoomKind::as_str) {
            let room = json!({ "type": kind, "id": "r1", "organizationId": "org-a" });
            parse_room(caller, Some(&room)).unwrap();
            let typing = json!({ "roomType": kind, "roomId": "r1", "field": "notes" });
            parse_typing(caller, Some(&typing)).unwrap();
        }
    }
}
