use std::path::Path;

use super::*;
use crate::domain::{Action, DealEvent, EventBody, Position, TopicKind};

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

/// A stage change of `deal_1`, with one change.
fn stage_change() -> EventBody {
    EventBody::Deal(DealEvent {
        deal_id: "deal_1".into(),
        pipeline_id: "pipeline_1".into(),
        action: Action::StageChange,
        actor_user_id: "user_1".into(),
        occurred_at_ms: 1_000,
        previous_stage: Some("lead".into()),
        new_stage: Some("won".into()),
        changes: [("amount".to_owned(), 5.into())].into_iter().collect(),
    })
}

/// [`stage_change`] of `org`, written with the bundled schema.
fn deal_record(org: &str) -> Vec<u8> {
    Encoder::latest(&local())
        .unwrap()
        .encode("e1", org, &stage_change())
        .unwrap()
}

fn block_on<F: Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
        .block_on(f)
}

#[test]
fn decodes_a_framed_record() {
    let framed = deal_record("org-1");
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
    let good = deal_record("org-1");

    assert_eq!(reason(DEALS_0, &good[..3]), "truncated");
    assert_eq!(reason(DEALS_0, b"{\"not\":\"avro\"}"), "bad_magic");
    assert_eq!(reason(DEALS_0, &frame(999, &good[5..])), "unknown_schema");
    assert_eq!(reason(DEALS_0, &good[..good.len() - 4]), "avro");
    assert_eq!(reason(DEALS_0, &deal_record("")), "invalid_field");
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
    let v2 = Arc::new(Schema::parse(&json).unwrap());
    let v2_writer = Encoder::new([(TopicKind::Deals, (102, v2))].into());
    let update = EventBody::Deal(DealEvent {
        deal_id: "deal_9".into(),
        pipeline_id: "p".into(),
        action: Action::Update,
        actor_user_id: "u".into(),
        occurred_at_ms: 5,
        previous_stage: None,
        new_stage: None,
        changes: Default::default(),
    });
    let framed = v2_writer.encode("e", "org-2", &update).unwrap();

    let dir = tempdir_with_v2(&json);
    let registry = LocalRegistry::load(&dir).unwrap();
    let decoder = Decoder::new(Arc::new(SchemaRegistry::Local(registry)));
    let event = block_on(decoder.decode(DEALS_0, Some(&framed))).unwrap();
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
