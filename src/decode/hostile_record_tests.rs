//! Property tests: random bytes and damaged Confluent-framed records (wrong
//! magic byte, unknown schema id, truncated, mutated, organisation missing or
//! empty) through [`Decoder::decode`]. It never panics; every failure has a
//! reason label and is not mistaken for a registry outage; nothing it cannot
//! fully read becomes an event.

use std::path::Path;
use std::sync::Arc;

use apache_avro::Schema;
use apache_avro::types::{Record, Value};
use proptest::prelude::*;

use super::*;
use crate::domain::{Position, TopicKind};

/// Every label [`DecodeError::reason`] can give for a record's own fault.
const RECORD_FAULTS: &[&str] = &[
    "empty_value",
    "truncated",
    "bad_magic",
    "unknown_schema",
    "invalid_schema",
    "avro",
    "invalid_field",
];

/// The bundled deal schema's id (`schemas/registry.toml`).
const BUNDLED_DEAL_ID: u32 = 2;

/// The id `registry()` holds a deal schema without `organizationId` under.
const NO_ORG_ID: u32 = 200;

fn position(topic: TopicKind) -> Position {
    Position {
        topic,
        partition: 0,
        offset: 9,
    }
}

/// The bundled schemas, plus a deal writer schema that lacks `organizationId`.
fn registry() -> LocalRegistry {
    let bundled = Path::new(env!("CARGO_MANIFEST_DIR")).join("schemas");
    let dir = std::env::temp_dir().join(format!("crm-bridge-hostile-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut manifest = std::fs::read_to_string(bundled.join("registry.toml")).unwrap();
    for entry in std::fs::read_dir(&bundled).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "avsc") {
            std::fs::copy(&path, dir.join(path.file_name().unwrap())).unwrap();
        }
    }
    std::fs::write(
        dir.join("deal-no-org.avsc"),
        no_org_deal_schema().canonical_form(),
    )
    .unwrap();
    manifest.push_str(&format!(
        "\n[[schema]]\nid = {NO_ORG_ID}\nsubject = \"crm.deals-value\"\nfile = \"deal-no-org.avsc\"\n"
    ));
    std::fs::write(dir.join("registry.toml"), manifest).unwrap();
    LocalRegistry::load(&dir).unwrap()
}

fn no_org_deal_schema() -> Schema {
    let mut json: serde_json::Value =
        serde_json::from_str(reader_schema_json(TopicKind::Deals)).unwrap();
    json["fields"]
        .as_array_mut()
        .unwrap()
        .retain(|f| f["name"] != "organizationId");
    Schema::parse(&json).unwrap()
}

fn deal_body(schema: &Schema, org: Option<&str>) -> Vec<u8> {
    let mut r = Record::new(schema).unwrap();
    r.put("eventId", "e1");
    r.put("dealId", "deal_1");
    if let Some(org) = org {
        r.put("organizationId", org);
    }
    r.put("pipelineId", "pipeline_1");
    r.put("action", Value::Enum(1, "update".into()));
    r.put("actorUserId", "user_1");
    r.put("occurredAt", Value::TimestampMillis(1_000));
    r.put("previousStage", Value::Union(0, Box::new(Value::Null)));
    r.put("newStage", Value::Union(0, Box::new(Value::Null)));
    r.put("changes", Value::Map(Default::default()));
    apache_avro::to_avro_datum(schema, r).unwrap()
}

struct Fixture {
    runtime: tokio::runtime::Runtime,
    decoder: Decoder,
    /// A valid framed deal of `org-1`.
    good_deal: Vec<u8>,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: std::sync::OnceLock<Fixture> = std::sync::OnceLock::new();
    FIXTURE.get_or_init(|| {
        let registry = registry();
        let deal = registry.get(BUNDLED_DEAL_ID).unwrap();
        let good_deal = frame(BUNDLED_DEAL_ID, &deal_body(&deal, Some("org-1")));
        Fixture {
            runtime: tokio::runtime::Builder::new_current_thread()
                .build()
                .unwrap(),
            decoder: Decoder::new(Arc::new(SchemaRegistry::Local(registry))),
            good_deal,
        }
    })
}

fn decode(topic: TopicKind, value: &[u8]) -> Result<CrmEvent, DecodeError> {
    let f = fixture();
    f.runtime
        .block_on(f.decoder.decode(position(topic), Some(value)))
}

/// The invariants every outcome must hold.
fn holds(topic: TopicKind, outcome: &Result<CrmEvent, DecodeError>) -> Result<(), TestCaseError> {
    match outcome {
        Ok(event) => {
            prop_assert!(!event.org.as_str().is_empty());
            prop_assert_eq!(event.position, position(topic));
        }
        Err(error) => {
            prop_assert!(RECORD_FAULTS.contains(&error.reason()), "{error}");
            prop_assert!(!error.is_transient(), "{error}");
        }
    }
    Ok(())
}

fn topic() -> impl Strategy<Value = TopicKind> {
    proptest::sample::select(TopicKind::ALL.to_vec())
}

/// Found by `make fuzz` (record_decoder): a deal whose `changes` map
/// announces ~10 GB worth of entries.
#[test]
fn a_record_announcing_a_huge_map_is_refused_without_allocating_it() {
    let value =
        hex::decode("000000000100000000000001000000ffc99a3b0400e500000000000000000000016500")
            .unwrap();
    let outcome = decode(TopicKind::Deals, &value);
    assert!(
        matches!(&outcome, Err(e) if e.reason() == "avro"),
        "{outcome:?}"
    );
}

#[test]
fn a_record_without_or_with_an_empty_organisation_is_refused() {
    let no_org = frame(NO_ORG_ID, &deal_body(&no_org_deal_schema(), None));
    assert_eq!(
        decode(TopicKind::Deals, &no_org).unwrap_err().reason(),
        "avro"
    );
    assert!(decode(TopicKind::Deals, &fixture().good_deal).is_ok());
    let deal = Schema::parse_str(reader_schema_json(TopicKind::Deals)).unwrap();
    let empty = frame(BUNDLED_DEAL_ID, &deal_body(&deal, Some("")));
    assert_eq!(
        decode(TopicKind::Deals, &empty).unwrap_err().reason(),
        "invalid_field"
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2_000))]

    #[test]
    fn random_bytes_never_panic_and_fail_with_a_reason(
        topic in topic(),
        bytes in proptest::collection::vec(any::<u8>(), 0..512),
    ) {
        holds(topic, &decode(topic, &bytes))?;
    }

    #[test]
    fn random_bodies_behind_a_known_schema_id_fail_with_a_reason(
        topic in topic(),
        id in 1u32..=4,
        body in proptest::collection::vec(any::<u8>(), 0..512),
    ) {
        holds(topic, &decode(topic, &frame(id, &body)))?;
    }

    #[test]
    fn a_wrong_magic_byte_is_bad_magic(magic in 1u8..) {
        let mut value = fixture().good_deal.clone();
        value[0] = magic;
        prop_assert_eq!(decode(TopicKind::Deals, &value).unwrap_err().reason(), "bad_magic");
    }

    #[test]
    fn an_unknown_schema_id_is_unknown_schema(id in 5u32..) {
        prop_assume!(id != NO_ORG_ID);
        let value = frame(id, &fixture().good_deal[5..]);
        prop_assert_eq!(decode(TopicKind::Deals, &value).unwrap_err().reason(), "unknown_schema");
    }

    #[test]
    fn every_truncation_is_refused(cut in 0usize..1_000) {
        let good = &fixture().good_deal;
        let value = &good[..cut % good.len()];
        let error = decode(TopicKind::Deals, value).unwrap_err();
        prop_assert!(["truncated", "avro"].contains(&error.reason()), "{error}");
    }

    #[test]
    fn mutated_records_decode_whole_or_fail_with_a_reason(
        topic in topic(),
        flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..8),
    ) {
        let mut value = fixture().good_deal.clone();
        for (at, byte) in flips {
            let at = at % value.len();
            value[at] = byte;
        }
        holds(topic, &decode(topic, &value))?;
    }
}
