//! `subscribe` / `unsubscribe` requests, parsed into routing keys.
//!
//! Parsing works on `serde_json::Value` rather than a derived struct so that
//! every malformed request gets a message naming the field at fault. The key
//! is always built under the caller's own organisation, which is what makes a
//! cross-tenant subscription impossible to express.

use serde_json::{Map, Value, json};

use super::{ClientError, ErrorCode};
use crate::domain::Cursor;
use crate::domain::{Action, ActionSet, FilterField, OrgId, ResourceKind, UserId};
use crate::routing::{Scope, Selector, SubscriptionKey};

/// Longest resource id or filter value accepted; CRM ids are far shorter.
pub(super) const MAX_ID_LEN: usize = 256;

/// How a subscription request looks, for error messages.
const SUBSCRIPTION_SHAPE: &str = "{ resource, id, events }";

/// The resource name of a user's own notifications.
pub(super) const NOTIFICATION: &str = "notification";

/// The fields `subscribe` and `unsubscribe` accept.
pub(super) const SUBSCRIPTION_FIELDS: [&str; 5] = ["resource", "id", "filter", "events", "since"];

/// Who is asking: every key is built inside their organisation.
#[derive(Clone, Copy)]
pub struct Caller<'a> {
    pub org: &'a OrgId,
    pub user: &'a UserId,
}

/// A valid subscription request: what to match and which actions.
#[derive(Clone, Debug, PartialEq)]
pub struct SubscriptionRequest {
    pub key: SubscriptionKey,
    pub actions: ActionSet,
    /// Resume from this cursor: replay what the client missed first.
    pub since: Option<Cursor>,
}

impl SubscriptionRequest {
    /// The subscription as the client named it, echoed in acknowledgements.
    pub fn describe(&self) -> Value {
        describe_key(&self.key, Some(self.actions))
    }
}

pub fn describe_key(key: &SubscriptionKey, actions: Option<ActionSet>) -> Value {
    let mut out = Map::new();
    let (kind, selector) = match &key.scope {
        Scope::Resource(kind, selector) => (kind, selector),
        Scope::Inbox(_) => return json!({ "resource": NOTIFICATION }),
    };
    out.insert("resource".into(), kind.as_str().into());
    {
        match selector {
            Selector::Id(id) => {
                out.insert("id".into(), (**id).into());
            }
            Selector::Field(field, value) => {
                out.insert("filter".into(), json!({ field.as_str(): **value }));
            }
            Selector::Organization => {
                out.insert(
                    "filter".into(),
                    json!({ "organizationId": key.org.as_str() }),
                );
            }
        }
    }
    if let Some(actions) = actions {
        let names: Vec<&str> = actions.iter().map(Action::as_str).collect();
        out.insert("events".into(), names.into());
    }
    Value::Object(out)
}

/// Parses `{ resource, id | filter, events? }`. `events` absent means every
/// action the resource has.
///
/// `{ resource: "notification", since? }` resumes the caller's own
/// notifications, which every connection receives without subscribing.
pub fn parse_subscribe(
    caller: Caller<'_>,
    raw: Option<&Value>,
) -> Result<SubscriptionRequest, ClientError> {
    let fields = as_object(raw, SUBSCRIPTION_SHAPE)?;
    reject_unknown(fields, &SUBSCRIPTION_FIELDS)?;
    let since = match fields.get("since") {
        None | Some(Value::Null) => None,
        Some(Value::String(text)) => Some(Cursor::parse(text).map_err(|_| {
            ClientError::invalid(
                "`since` must be a cursor from an acknowledgement or the client module",
            )
        })?),
        Some(_) => return Err(ClientError::invalid("`since` must be a string")),
    };
    let key = parse_key(caller, fields)?;
    let Some(kind) = key.resource() else {
        return Ok(SubscriptionRequest {
            key,
            actions: ActionSet::default(),
            since,
        });
    };
    let actions = match fields.get("events") {
        None | Some(Value::Null) => kind.all_actions(),
        Some(Value::Array(names)) if names.is_empty() => {
            return Err(ClientError::invalid(
                "`events` must not be empty; omit it for all events",
            ));
        }
        Some(Value::Array(names)) if names.len() > kind.actions().len() * 4 => {
            return Err(ClientError::invalid("`events` lists too many entries"));
        }
        Some(Value::Array(names)) => names
            .iter()
            .map(|name| {
                name.as_str()
                    .and_then(|n| Action::parse_for(kind, n))
                    .ok_or_else(|| unknown_event(kind, name))
            })
            .collect::<Result<ActionSet, _>>()?,
        Some(_) => {
            return Err(ClientError::invalid(
                "`events` must be an array of event names",
            ));
        }
    };
    Ok(SubscriptionRequest {
        key,
        actions,
        since,
    })
}

/// Parses `{ resource, id | filter }`; `events`, if sent, is ignored.
pub fn parse_unsubscribe(
    caller: Caller<'_>,
    raw: Option<&Value>,
) -> Result<SubscriptionKey, ClientError> {
    let fields = as_object(raw, SUBSCRIPTION_SHAPE)?;
    reject_unknown(fields, &SUBSCRIPTION_FIELDS)?;
    parse_key(caller, fields)
}

/// The request's fields; `shape` names them in the error for anything else.
pub(super) fn as_object<'a>(
    raw: Option<&'a Value>,
    shape: &str,
) -> Result<&'a Map<String, Value>, ClientError> {
    match raw {
        Some(Value::Object(fields)) => Ok(fields),
        _ => Err(ClientError::invalid(format!(
            "expected an object such as {shape}"
        ))),
    }
}

pub(super) fn reject_unknown(
    fields: &Map<String, Value>,
    allowed: &[&str],
) -> Result<(), ClientError> {
    match fields.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(extra) => Err(ClientError::invalid(format!(
            "unknown field `{}`; allowed: {}",
            truncate(extra),
            allowed.join(", ")
        ))),
        None => Ok(()),
    }
}

fn parse_key(
    caller: Caller<'_>,
    fields: &Map<String, Value>,
) -> Result<SubscriptionKey, ClientError> {
    let org = caller.org;
    if fields.get("resource").and_then(Value::as_str) == Some(NOTIFICATION) {
        if fields.contains_key("id")
            || fields.contains_key("filter")
            || fields.contains_key("events")
        {
            return Err(ClientError::invalid(
                "notifications take no `id`, `filter` or `events`",
            ));
        }
        return Ok(SubscriptionKey {
            org: org.clone(),
            scope: Scope::Inbox(caller.user.clone()),
        });
    }
    let kind = match fields.get("resource") {
        Some(Value::String(name)) => ResourceKind::parse(name).ok_or_else(|| {
            ClientError::new(
                ErrorCode::ResourceNotFound,
                format!("unknown resource `{}`", truncate(name)),
            )
            .with_details(json!({ "resources": ResourceKind::ALL.map(ResourceKind::as_str) }))
        })?,
        _ => {
            return Err(ClientError::invalid(
                "`resource` must be a string such as \"contact\"",
            ));
        }
    };
    let selector = match (fields.get("id"), fields.get("filter")) {
        (Some(id), None) => Selector::Id(id_value("id", id)?),
        (None, Some(Value::Object(filter))) => parse_filter(org, kind, filter)?,
        (None, Some(_)) => return Err(ClientError::invalid("`filter` must be an object")),
        (Some(_), Some(_)) => {
            return Err(ClientError::invalid(
                "send either `id` or `filter`, not both",
            ));
        }
        (None, None) => return Err(ClientError::invalid("`id` or `filter` is required")),
    };
    Ok(SubscriptionKey {
        org: org.clone(),
        scope: Scope::Resource(kind, selector),
    })
}

/// A filter names `organizationId` (which must be the caller's own) and/or one
/// narrower field. With only `organizationId`, it selects the whole organisation.
fn parse_filter(
    org: &OrgId,
    kind: ResourceKind,
    filter: &Map<String, Value>,
) -> Result<Selector, ClientError> {
    let mut narrower = None;
    for (name, value) in filter {
        let field = FilterField::parse_for(kind, name).ok_or_else(|| {
            let allowed: Vec<&str> = kind.filter_fields().iter().map(|f| f.as_str()).collect();
            ClientError::invalid(format!(
                "`{}` cannot filter {kind}; allowed: {}",
                truncate(name),
                allowed.join(", ")
            ))
        })?;
        let value = id_value(name, value)?;
        match field {
            FilterField::OrganizationId if *value != *org.as_str() => {
                return Err(ClientError::new(
                    ErrorCode::Forbidden,
                    "you can only subscribe within your own organization",
                ));
            }
            FilterField::OrganizationId => {}
            _ if narrower.is_some() => {
                return Err(ClientError::invalid(
                    "a filter may name one field besides organizationId",
                ));
            }
            _ => narrower = Some(Selector::Field(field, value)),
        }
    }
    match (narrower, filter.is_empty()) {
        (_, true) => Err(ClientError::invalid("`filter` must name a field")),
        (Some(selector), _) => Ok(selector),
        (None, _) => Ok(Selector::Organization),
    }
}

/// An id or filter value: 1 to [`MAX_ID_LEN`] bytes, no control characters
/// (CRM ids have none; they would only bloat what nodes tell each other).
pub(super) fn id_value(name: &str, value: &Value) -> Result<Box<str>, ClientError> {
    match value {
        Value::String(s)
            if !s.is_empty() && s.len() <= MAX_ID_LEN && !s.chars().any(char::is_control) =>
        {
            Ok(s.as_str().into())
        }
        _ => Err(ClientError::invalid(format!(
            "`{}` must be a non-empty string of at most {MAX_ID_LEN} bytes, without control characters",
            truncate(name)
        ))),
    }
}

fn unknown_event(kind: ResourceKind, name: &Value) -> ClientError {
    let allowed: Vec<&str> = kind.actions().iter().map(|a| a.as_str()).collect();
    let shown = name.as_str().map(truncate).unwrap_or("(not a string)");
    ClientError::invalid(format!("{kind} has no event `{shown}`"))
        .with_details(json!({ "events": allowed }))
}

/// Echo at most 64 bytes of client input in messages.
pub(super) fn truncate(s: &str) -> &str {
    let mut end = s.len().min(64);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

#[cfg(test)]
mod tests;
