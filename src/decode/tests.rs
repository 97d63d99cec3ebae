use std::path::Path;

use apache_avro::types::{Record, Value};

use super::*;
use crate::domain::{Action, EventBody, Position, TopicKind};

const DEALS_0: Position = Position {
    topic: TopicKind::Deals,
    partition: 0,
    offset: 0,
};

fn local() -> LocalRegistry {
    LocalRegistry::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("schemas")).unwrap()
}

fn decoder() -> Decoder {
    Decoder::new(Arc::new(SchemaRegistry::Local(local())))
}

fn deal_record(schema: &Schema, org: &str) -> Vec<u8> {
    let mut r = Record::new(schema).unwrap();
    r.put("eventId", "e1");
    r.put("dealId", "deal_1");
    r.put("organizationId", org);
    r.put("pipelineId", "pipeline_1");
    r.put("action", Value::Enum(3, "stage_change".into()));
    r.put("actorUserId", "user_1");
    r.put("occurredAt", Value::TimestampMillis(1_000));
    r.put(
        "previousStage",
        Value::Union(1, Box::new(Value::String("lead".into()))),
    );
    r.put(
        "newStage",
        Value::Union(1, Box::new(Value::String("won".into()))),
    );
    r.put(
        "changes",
        Value::Map(
            [(
                "amount".to_string(),
                Value::Union(2, Box::new(Value::Long(5))),
            )]
            .into(),
        ),
    );
    apache_avro::to_avro_datum(schema, r).unwrap()
}

fn block_on<F: Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
        .block_on(f)
}

#[test]
fn decodes_a_framed_record() {
    let (id, schema) = local().latest("crm.deals-value").unwrap();
    let framed = frame(id, &deal_record(&schema, "org-1"));
    let event = block_on(decoder().decode(DEALS_0, Some(&framed))).unwrap();
    assert_eq!(event.org.as_str(), "org-1");
    let EventBody::Deal(deal) = event.body else {
        panic!("not a deal")
    };
    assert_eq!(deal.action, Action::StageChange);
    assert_eq!(deal.new_stage.as_deref(), Some("won"));
    assert_eq!(deal.changes["amount"], 5);
}

#[test]
fn failures_have_their_reason() {
    let d = decoder();
    let reason = |topic, value: &[u8]| block_on(d.decode(topic, Some(value))).unwrap_err().reason();
    let (id, schema) = local().latest("crm.deals-value").unwrap();
    let good = frame(id, &deal_record(&schema, "org-1"));

    assert_eq!(reason(DEALS_0, &good[..3]), "truncated");
    assert_eq!(reason(DEALS_0, b"{\"not\":\"avro\"}"), "bad_magic");
    assert_eq!(reason(DEALS_0, &frame(999, &good[5..])), "unknown_schema");
    assert_eq!(reason(DEALS_0, &good[..good.len() - 4]), "avro");
    assert_eq!(
        reason(DEALS_0, &frame(id, &deal_record(&schema, ""))),
        "invalid_field"
    );
    assert_eq!(
        block_on(d.decode(DEALS_0, None)).unwrap_err().reason(),
        "empty_value"
    );
}

#[test]
fn a_writer_schema_with_an_added_field_still_decodes() {
    let mut json: serde_json::Value =
        serde_json::from_str(reader_schema_json(TopicKind::Deals)).unwrap();
    json["fields"].as_array_mut().unwrap().insert(
        2,
        serde_json::json!({"name": "region", "type": "string", "default": "eu"}),
    );
    let v2 = Schema::parse(&json).unwrap();
    let mut r = Record::new(&v2).unwrap();
    for (name, value) in [
        ("eventId", Value::String("e".into())),
        ("dealId", Value::String("deal_9".into())),
        ("region", Value::String("us".into())),
        ("organizationId", Value::String("org-2".into())),
        ("pipelineId", Value::String("p".into())),
        ("action", Value::Enum(1, "update".into())),
        ("actorUserId", Value::String("u".into())),
        ("occurredAt", Value::TimestampMillis(5)),
        ("previousStage", Value::Union(0, Box::new(Value::Null))),
        ("newStage", Value::Union(0, Box::new(Value::Null))),
        ("changes", Value::Map(Default::default())),
    ] {
        r.put(name, value);
    }
    let body = apache_avro::to_avro_datum(&v2, r).unwrap();

    let dir = tempdir_with_v2(&json);
    let registry = LocalRegistry::load(&dir).unwrap();
    let decoder = Decoder::new(Arc::new(SchemaRegistry::Local(registry)));
    let event = block_on(decoder.decode(DEALS_0, Some(&frame(102, &body)))).unwrap();
    let EventBody::Deal(deal) = event.body else {
        panic!("not a deal")
    };
    assert_eq!(
        (deal.deal_id.as_str(), deal.action),
        ("deal_9", Action::Update)
    );
}

/// A registry directory holding the v2 schema under id 102.
fn tempdir_with_v2(schema: &serde_json::Value) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("crm-bridge-registry-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("deal-v2.avsc"), schema.to_string()).unwrap();
    std::fs::write(
        dir.join("registry.toml"),
        "[[schema]]\nid = 102\nsubject = \"crm.deals-value\"\nfile = \"deal-v2.avsc\"\n",
    )
    .unwrap();
    dir
}

#[test]
fn the_bundled_registry_lists_every_topic() {
    let registry = local();
    for subject in [
        "crm.contacts-value",
        "crm.deals-value",
        "crm.email-value",
        "crm.notifications-value",
    ] {
        assert!(registry.latest(subject).is_some(), "{subject}");
    }
}
