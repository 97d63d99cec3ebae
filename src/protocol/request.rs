//! `subscribe` / `unsubscribe` requests, parsed into routing keys.
//!
//! Parsing works on `serde_json::Value` rather than a derived struct so that
//! every malformed request gets a message naming the field at fault. The key
//! is always built under the caller's own organisation, which is what makes a
//! cross-tenant subscription impossible to express.

use serde_json::{Map, Value, json};

use super::{ClientError, ErrorCode};
use crate::domain::{Action, ActionSet, FilterField, OrgId, ResourceKind};
use crate::routing::{Scope, Selector, SubscriptionKey};

/// Longest resource id or filter value accepted; CRM ids are far shorter.
const MAX_ID_LEN: usize = 256;

/// A valid subscription request: what to match and which actions.
#[derive(Clone, Debug, PartialEq)]
pub struct SubscriptionRequest {
    pub key: SubscriptionKey,
    pub actions: ActionSet,
}

impl SubscriptionRequest {
    /// The subscription as the client named it, echoed in acknowledgements.
    pub fn describe(&self) -> Value {
        describe_key(&self.key, Some(self.actions))
    }
}

pub fn describe_key(key: &SubscriptionKey, actions: Option<ActionSet>) -> Value {
    let mut out = Map::new();
    if let Scope::Resource(kind, selector) = &key.scope {
        out.insert("resource".into(), kind.as_str().into());
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
pub fn parse_subscribe(
    org: &OrgId,
    raw: Option<&Value>,
) -> Result<SubscriptionRequest, ClientError> {
    let fields = as_object(raw)?;
    reject_unknown(fields, &["resource", "id", "filter", "events"])?;
    let key = parse_key(org, fields)?;
    let kind = key.resource().expect("parse_key builds resource keys");
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
    Ok(SubscriptionRequest { key, actions })
}

/// Parses `{ resource, id | filter }`; `events`, if sent, is ignored.
pub fn parse_unsubscribe(org: &OrgId, raw: Option<&Value>) -> Result<SubscriptionKey, ClientError> {
    let fields = as_object(raw)?;
    reject_unknown(fields, &["resource", "id", "filter", "events"])?;
    parse_key(org, fields)
}

fn as_object(raw: Option<&Value>) -> Result<&Map<String, Value>, ClientError> {
    match raw {
        Some(Value::Object(fields)) => Ok(fields),
        _ => Err(ClientError::invalid(
            "expected an object such as { resource, id, events }",
        )),
    }
}

fn reject_unknown(fields: &Map<String, Value>, allowed: &[&str]) -> Result<(), ClientError> {
    match fields.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(extra) => Err(ClientError::invalid(format!(
            "unknown field `{}`; allowed: {}",
            truncate(extra),
            allowed.join(", ")
        ))),
        None => Ok(()),
    }
}

fn parse_key(org: &OrgId, fields: &Map<String, Value>) -> Result<SubscriptionKey, ClientError> {
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

fn id_value(name: &str, value: &Value) -> Result<Box<str>, ClientError> {
    match value {
        Value::String(s) if !s.is_empty() && s.len() <= MAX_ID_LEN => Ok(s.as_str().into()),
        _ => Err(ClientError::invalid(format!(
            "`{}` must be a non-empty string of at most {MAX_ID_LEN} bytes",
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
fn truncate(s: &str) -> &str {
    let mut end = s.len().min(64);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

#[cfg(test)]
mod tests;
