//! What the reader schemas' fields become in client payloads, as JSON
//! Schema: the client contract (`crate::contract`) describes a payload
//! field copied from a record (`resource-update`'s `data`, from
//! `changes`) from the Avro schema itself, as [`super::mapping`] converts it.

use apache_avro::Schema;
use serde_json::{Value, json};

use super::reader_schema_json;
use crate::domain::TopicKind;

/// `resource-update`'s `data`: a contact's or deal's `changes` map (the
/// two schemas declare it alike; a test holds them to it).
pub fn changes_json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    let schema = field_json_schema(TopicKind::Contacts, "changes");
    schemars::Schema::try_from(schema).expect("an object schema")
}

/// The JSON Schema of field `name` of `kind`'s reader schema, as decoded
/// into JSON: scalars as themselves, unions as any of their branches, maps
/// as objects.
pub(super) fn field_json_schema(kind: TopicKind, name: &str) -> Value {
    let schema = Schema::parse_str(reader_schema_json(kind)).expect("valid bundled schemas");
    let Schema::Record(record) = schema else {
        unreachable!("every reader schema is a record")
    };
    let field = record
        .fields
        .iter()
        .find(|f| f.name == name)
        .unwrap_or_else(|| panic!("{kind:?} has no field {name}"));
    let mut out = to_json_schema(&field.schema);
    if let Some(doc) = &field.doc {
        out["description"] = doc.as_str().into();
    }
    out
}

fn to_json_schema(schema: &Schema) -> Value {
    match schema {
        Schema::Null => json!({ "type": "null" }),
        Schema::Boolean => json!({ "type": "boolean" }),
        Schema::Int | Schema::Long => json!({ "type": "integer" }),
        Schema::Float | Schema::Double => json!({ "type": "number" }),
        Schema::String => json!({ "type": "string" }),
        Schema::Map(map) => {
            json!({ "type": "object", "additionalProperties": to_json_schema(&map.types) })
        }
        Schema::Union(union) => {
            let types: Vec<Value> = union
                .variants()
                .iter()
                .map(|variant| to_json_schema(variant)["type"].clone())
                .collect();
            json!({ "type": types })
        }
        other => unreachable!("no payload field copies an Avro {other:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_become_an_object_of_scalars() {
        let contact = field_json_schema(TopicKind::Contacts, "changes");
        assert_eq!(
            contact["additionalProperties"]["type"],
            json!(["null", "boolean", "integer", "number", "string"])
        );
        // `data` is described once, from the contacts' schema.
        assert_eq!(contact, field_json_schema(TopicKind::Deals, "changes"));
    }
}
