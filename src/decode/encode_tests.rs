//! The encoder against the decoder: any event the decoder can give, of
//! every topic, written by [`Encoder`] decodes back to itself, on the fast
//! path and on the general one. And the one action table
//! ([`ResourceKind::actions`]) is what each schema's `action` enum says.

use std::path::Path;
use std::sync::Arc;

use apache_avro::Schema;
use proptest::prelude::*;
use serde_json::{Map, Number, Value as Json};

use super::encode::symbol;
use super::*;
use crate::domain::{
    Action, ContactEvent, DealEvent, EmailEvent, EventBody, NotificationEvent, OrgId, ResourceKind,
    UserId,
};

struct Fixture {
    runtime: tokio::runtime::Runtime,
    registry: Arc<SchemaRegistry>,
    encoder: Encoder,
    decoder: Decoder,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: std::sync::OnceLock<Fixture> = std::sync::OnceLock::new();
    FIXTURE.get_or_init(|| {
        let local =
            || LocalRegistry::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("schemas")).unwrap();
        let registry = Arc::new(SchemaRegistry::Local(local()));
        Fixture {
            runtime: tokio::runtime::Builder::new_current_thread()
                .build()
                .unwrap(),
            encoder: Encoder::latest(&local()).unwrap(),
            decoder: Decoder::new(registry.clone()),
            registry,
        }
    })
}

/// A required id: any text but the empty one.
fn id() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z_0-9]{1,12}",
        any::<String>().prop_filter("empty", |s| !s.is_empty())
    ]
}

/// An organisation or user id as [`OrgId`] and [`UserId`] accept them.
fn principal_id() -> impl Strategy<Value = String> {
    prop_oneof!["[a-z][a-z_0-9-]{0,11}", any::<String>()]
        .prop_filter("not an id", |s| OrgId::is_valid(s))
}

fn text() -> impl Strategy<Value = String> {
    prop_oneof![Just(String::new()), "[a-z ]{1,12}", any::<String>()]
}

/// `changes` as the decoder gives them: scalars only, finite numbers.
fn changes() -> impl Strategy<Value = Map<String, Json>> {
    let scalar = prop_oneof![
        Just(Json::Null),
        any::<bool>().prop_map(Json::Bool),
        any::<i64>().prop_map(Json::from),
        any::<f64>().prop_filter_map("not finite", |f| Number::from_f64(f).map(Json::Number)),
        text().prop_map(Json::String),
    ];
    proptest::collection::btree_map(text(), scalar, 0..5).prop_map(|m| m.into_iter().collect())
}

fn action(kind: ResourceKind) -> impl Strategy<Value = Action> {
    proptest::sample::select(kind.actions())
}

fn body() -> impl Strategy<Value = EventBody> {
    let contact = (
        id(),
        action(ResourceKind::Contact),
        id(),
        any::<i64>(),
        changes(),
    )
        .prop_map(
            |(contact_id, action, actor_user_id, occurred_at_ms, changes)| {
                EventBody::Contact(ContactEvent {
                    contact_id,
                    action,
                    actor_user_id,
                    occurred_at_ms,
                    changes,
                })
            },
        );
    let deal = (
        (id(), id(), action(ResourceKind::Deal), id(), any::<i64>()),
        (
            proptest::option::of(text()),
            proptest::option::of(text()),
            changes(),
        ),
    )
        .prop_map(
            |(
                (deal_id, pipeline_id, action, actor_user_id, occurred_at_ms),
                (previous_stage, new_stage, changes),
            )| {
                EventBody::Deal(DealEvent {
                    deal_id,
                    pipeline_id,
                    action,
                    actor_user_id,
                    occurred_at_ms,
                    previous_stage,
                    new_stage,
                    changes,
                })
            },
        );
    let email = (
        (id(), id(), proptest::option::of(text())),
        (
            action(ResourceKind::EmailThread),
            text(),
            id(),
            any::<i64>(),
        ),
    )
        .prop_map(
            |((email_id, thread_id, contact_id), (action, subject, from, occurred_at_ms))| {
                EventBody::Email(EmailEvent {
                    email_id,
                    thread_id,
                    contact_id,
                    action,
                    subject,
                    from,
                    occurred_at_ms,
                })
            },
        );
    let notification = (
        (id(), principal_id(), id()),
        (text(), text(), proptest::option::of(text()), any::<i64>()),
    )
        .prop_map(
            |((notification_id, target_user, kind), (title, message, link, occurred_at_ms))| {
                EventBody::Notification(NotificationEvent {
                    notification_id,
                    target_user: UserId::new(&target_user).expect("a valid id"),
                    kind,
                    title,
                    message,
                    link,
                    occurred_at_ms,
                })
            },
        );
    prop_oneof![contact, deal, email, notification]
}

fn event() -> impl Strategy<Value = CrmEvent> {
    (principal_id(), body(), any::<i32>(), any::<i64>()).prop_map(
        |(org, body, partition, offset)| CrmEvent {
            org: OrgId::new(&org).expect("a valid id"),
            position: Position {
                topic: body.topic(),
                partition,
                offset,
            },
            body,
        },
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1_000))]

    #[test]
    fn what_the_encoder_writes_decodes_to_its_event(event in event(), event_id in text()) {
        let f = fixture();
        let value = f.encoder.encode(&event_id, event.org.as_str(), &event.body).unwrap();
        let fast = f.runtime.block_on(f.decoder.decode(event.position, Some(&value)));
        prop_assert_eq!(fast.as_ref().ok(), Some(&event), "fast path: {:?}", fast);

        let (id, mut body) = split_frame(&value).unwrap();
        let writer = f.runtime.block_on(f.registry.writer_schema(id)).unwrap();
        let reader = &f.decoder.readers[&event.position.topic];
        let general = apache_avro::from_avro_datum(&writer, &mut body, Some(reader))
            .map_err(|e| DecodeError::Avro(e.to_string()))
            .and_then(|v| mapping::to_event(event.position, v));
        prop_assert_eq!(general.as_ref().ok(), Some(&event), "general path: {:?}", general);
    }
}

#[test]
fn each_schemas_action_enum_is_its_kinds_action_table() {
    for (topic, kind) in [
        (TopicKind::Contacts, ResourceKind::Contact),
        (TopicKind::Deals, ResourceKind::Deal),
        (TopicKind::Email, ResourceKind::EmailThread),
    ] {
        let Schema::Record(record) = Schema::parse_str(reader_schema_json(topic)).unwrap() else {
            panic!("{topic:?}: not a record");
        };
        let field = record.fields.iter().find(|f| f.name == "action").unwrap();
        let Schema::Enum(actions) = &field.schema else {
            panic!("{topic:?}: action is not an enum");
        };
        let table: Vec<String> = kind.actions().iter().copied().map(symbol).collect();
        assert_eq!(actions.symbols, table, "{topic:?}");
    }
}

/// One event of each topic, by the name of its seed (the deal is the
/// hostile record tests' good one).
fn samples() -> [(&'static str, EventBody); 4] {
    [
        (
            "contact",
            EventBody::Contact(ContactEvent {
                contact_id: "contact_1".into(),
                action: Action::Note,
                actor_user_id: "user_1".into(),
                occurred_at_ms: 1_000,
                // One entry: apache-avro writes a map in its hash order,
                // which changes from run to run.
                changes: Map::from_iter([("leadScore".to_owned(), Json::from(42))]),
            }),
        ),
        ("deal", hostile_record_tests::update()),
        (
            "email",
            EventBody::Email(EmailEvent {
                email_id: "email_1".into(),
                thread_id: "thread_1".into(),
                contact_id: Some("contact_1".into()),
                action: Action::Reply,
                subject: "Re: Follow up".into(),
                from: "jane@example.com".into(),
                occurred_at_ms: 1_000,
            }),
        ),
        (
            "notification",
            EventBody::Notification(NotificationEvent {
                notification_id: "notif-1".into(),
                target_user: UserId::new("user_1").unwrap(),
                kind: "mention".into(),
                title: "You were mentioned".into(),
                message: "Alice mentioned you".into(),
                link: Some("/deals/deal_1".into()),
                occurred_at_ms: 1_000,
            }),
        ),
    ]
}

/// The seeds `fuzz/fuzz_targets/record_decoder.rs` starts from (a first
/// byte choosing the topic, then the record value): a valid record of each
/// topic and damaged deals, all written by the encoder. Checked here, so
/// they follow the schemas; `CRM_BRIDGE_WRITE_FUZZ_SEEDS=1` rewrites them.
/// (The corpus's other seeds are raw bytes: `short`, and what `make fuzz`
/// found.)
#[test]
fn the_fuzz_seeds_are_what_the_encoder_writes() {
    let encoder = &fixture().encoder;
    let seed = |body: &EventBody, value: &[u8]| {
        let topic = TopicKind::ALL.iter().position(|t| *t == body.topic());
        [&[topic.unwrap() as u8], value].concat()
    };
    let mut seeds = Vec::new();
    for (name, body) in samples() {
        let good = encoder.encode("e1", "org-1", &body).unwrap();
        seeds.push((format!("{name}_good"), seed(&body, &good)));
        if let EventBody::Deal(_) = body {
            let mut bad_magic = good.clone();
            bad_magic[0] = 1;
            let empty_org = encoder.encode("e1", "", &body).unwrap();
            seeds.extend([
                ("deal_bad_magic".to_owned(), seed(&body, &bad_magic)),
                ("deal_empty_org".to_owned(), seed(&body, &empty_org)),
                (
                    "deal_truncated".to_owned(),
                    seed(&body, &good[..good.len() - 3]),
                ),
                (
                    "deal_unknown_id".to_owned(),
                    seed(&body, &frame(4242, &good[5..])),
                ),
            ]);
        }
    }
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/record_decoder");
    for (name, bytes) in seeds {
        let path = dir.join(&name);
        if std::env::var_os("CRM_BRIDGE_WRITE_FUZZ_SEEDS").is_some() {
            std::fs::write(&path, &bytes).unwrap();
        }
        let checked_in = std::fs::read(&path).unwrap_or_default();
        assert!(
            checked_in == bytes,
            "{} is not what the encoder writes: CRM_BRIDGE_WRITE_FUZZ_SEEDS=1 cargo test --lib fuzz_seeds",
            path.display()
        );
    }
}
