//! Property tests: random bytes and damaged Confluent-framed records (wrong
//! magic byte, unknown schema id, truncated, mutated, organisation missing or
//! empty) through [`Decoder::decode`]. It never panics; every failure has a
//! reason label and is not mistaken for a registry outage; nothing it cannot
//! fully read becomes an event.

use std::path::Path;
use std::sync::Arc;

use apache_avro::Schema;
use proptest::prelude::*;

use super::*;
use crate::domain::{Action, DealEvent, EventBody, Position, TopicKind};

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
    let bundled = bundled();
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

fn bundled() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("schemas")
}

/// An update of `deal_1`, nothing changed.
pub(super) fn update() -> EventBody {
    EventBody::Deal(DealEvent {
        deal_id: "deal_1".into(),
        pipeline_id: "pipeline_1".into(),
        action: Action::Update,
        actor_user_id: "user_1".into(),
        occurred_at_ms: 1_000,
        previous_stage: None,
        new_stage: None,
        changes: Default::default(),
    })
}

/// [`update`] of `org`, written with the bundled schemas.
fn deal(org: &str) -> Vec<u8> {
    Encoder::latest(&LocalRegistry::load(&bundled()).unwrap())
        .unwrap()
        .encode("e1", org, &update())
        .unwrap()
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
        Fixture {
            runtime: tokio::runtime::Builder::new_current_thread()
                .build()
                .unwrap(),
            decoder: Decoder::new(Arc::new(SchemaRegistry::Local(registry))),
            good_deal: deal("org-1"),
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
    let no_org_writer = Encoder::new(
        [(
            TopicKind::Deals,
            (NO_ORG_ID, Arc::new(no_org_deal_schema())),
        )]
        .into(),
    );
    let no_org = no_org_writer.encode("e1", "org-1", &update()).unwrap();
    assert_eq!(
        decode(TopicKind::Deals, &no_org).unwrap_err().reason(),
        "avro"
    );
    assert!(decode(TopicKind::Deals, &fixture().good_deal).is_ok());
    assert_eq!(
        decode(TopicKind::Deals, &deal("")).unwrap_err().reason(),
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
