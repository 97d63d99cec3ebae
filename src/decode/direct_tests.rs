//! The fast path against the general one: any record a producer can write
//! with the reader schema decodes to the same event (or fails for the same
//! reason) both ways.

use apache_avro::Schema;
use apache_avro::types::Value;
use proptest::prelude::*;

use super::{direct, mapping, reader_schema_json};
use crate::domain::{Position, TopicKind};

/// Any value of `schema` (the shapes the reader schemas use), with empty and
/// odd strings often enough to reach the field checks.
fn arbitrary(schema: &Schema) -> BoxedStrategy<Value> {
    match schema {
        Schema::Record(record) => {
            let fields: Vec<_> = record
                .fields
                .iter()
                .map(|f| {
                    arbitrary(&f.schema).prop_map({
                        let name = f.name.clone();
                        move |v| (name.clone(), v)
                    })
                })
                .collect();
            fields.prop_map(Value::Record).boxed()
        }
        Schema::String => prop_oneof![Just(String::new()), "[a-z_0-9]{1,12}", any::<String>(),]
            .prop_map(Value::String)
            .boxed(),
        Schema::Enum(e) => {
            let symbols = e.symbols.clone();
            (0..symbols.len())
                .prop_map(move |i| Value::Enum(i as u32, symbols[i].clone()))
                .boxed()
        }
        Schema::TimestampMillis => any::<i64>().prop_map(Value::TimestampMillis).boxed(),
        Schema::Long => any::<i64>().prop_map(Value::Long).boxed(),
        Schema::Null => Just(Value::Null).boxed(),
        Schema::Boolean => any::<bool>().prop_map(Value::Boolean).boxed(),
        Schema::Double => any::<f64>().prop_map(Value::Double).boxed(),
        Schema::Union(union) => {
            let branches: Vec<_> = union
                .variants()
                .iter()
                .enumerate()
                .map(|(i, s)| arbitrary(s).prop_map(move |v| Value::Union(i as u32, Box::new(v))))
                .collect();
            proptest::strategy::Union::new(branches).boxed()
        }
        Schema::Map(map) => {
            proptest::collection::hash_map("[a-z]{0,6}", arbitrary(&map.types), 0..5)
                .prop_map(|m| Value::Map(m.into_iter().collect()))
                .boxed()
        }
        other => panic!("no generator for {other:?}"),
    }
}

fn topic_and_record() -> impl Strategy<Value = (TopicKind, Schema, Value)> {
    proptest::sample::select(TopicKind::ALL.to_vec()).prop_flat_map(|kind| {
        let schema = Schema::parse_str(reader_schema_json(kind)).unwrap();
        arbitrary(&schema).prop_map(move |value| (kind, schema.clone(), value))
    })
}

proptest! {
    #[test]
    fn the_fast_path_agrees_with_resolution((kind, schema, value) in topic_and_record()) {
        let body = apache_avro::to_avro_datum(&schema, value).unwrap();
        let position = Position { topic: kind, partition: 1, offset: 7 };
        let fast = direct::decode(position, &body);
        let general = apache_avro::from_avro_datum(&schema, &mut &body[..], Some(&schema))
            .map_err(|e| super::DecodeError::Avro(e.to_string()))
            .and_then(|v| mapping::to_event(position, v));
        match (fast, general) {
            (Ok(fast), Ok(general)) => prop_assert_eq!(fast, general),
            (Err(fast), Err(general)) => prop_assert_eq!(fast.reason(), general.reason()),
            (fast, general) => prop_assert!(false, "fast {fast:?} vs general {general:?}"),
        }
    }

    #[test]
    fn a_view_routes_as_its_event((kind, schema, value) in topic_and_record()) {
        let body = apache_avro::to_avro_datum(&schema, value).unwrap();
        let position = Position { topic: kind, partition: 1, offset: 7 };
        if let Ok(view) = direct::view(position, &body) {
            let event = view.to_event();
            prop_assert_eq!(view.keys(), event.keys());
        }
    }

    #[test]
    fn the_fast_path_never_panics_on_arbitrary_bytes(
        kind in proptest::sample::select(TopicKind::ALL.to_vec()),
        body in proptest::collection::vec(any::<u8>(), 0..200),
    ) {
        let position = Position { topic: kind, partition: 0, offset: 0 };
        let _ = direct::decode(position, &body);
    }
}
