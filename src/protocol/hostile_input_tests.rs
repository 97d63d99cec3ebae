//! Property tests: arbitrary JSON (wrong types, missing and extra fields,
//! huge arrays, deep nesting, long and non-ASCII strings) through every
//! inbound parser. None panics; every refusal carries a seed code a client
//! can act on and a bounded message; whatever is accepted lies inside the
//! caller's organisation.

use proptest::prelude::*;
use serde_json::{Map, Value, json};

use super::*;
use crate::domain::{OrgId, UserId};
use crate::routing::{Scope, SubscriptionKey};

const OWN_ORG: &str = "org-1";

/// Field names and values the parsers know, so that generated requests reach
/// past the first check as often as they fail it.
const KEYS: &[&str] = &[
    "resource",
    "id",
    "filter",
    "events",
    "since",
    "type",
    "roomType",
    "roomId",
    "field",
    "organizationId",
    "pipelineId",
    "contactId",
];
const WORDS: &[&str] = &[
    "contact",
    "deal",
    "email-thread",
    "notification",
    "pipeline",
    "invoice",
    "update",
    "stage-change",
    "new-email",
    OWN_ORG,
    "org-2",
    "d1",
    "",
    "1:d0.5",
];

fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => proptest::sample::select(WORDS).prop_map(str::to_owned),
        2 => ".{0,40}",
        1 => "[\u{80}-\u{10FFFF}]{1,300}",
    ]
}

fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(|f| json!(f)),
        text().prop_map(Value::from),
    ]
}

fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        5 => proptest::sample::select(KEYS).prop_map(str::to_owned),
        1 => text(),
    ]
}

fn value() -> impl Strategy<Value = Value> {
    leaf().prop_recursive(4, 64, 8, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
            proptest::collection::btree_map(key(), inner, 0..8)
                .prop_map(|m| Value::Object(m.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

/// `value` wrapped in `depth` arrays or objects: far deeper than any request.
fn deeply_nested() -> impl Strategy<Value = Value> {
    (value(), 0usize..500, any::<bool>()).prop_map(|(mut v, depth, arrays)| {
        for _ in 0..depth {
            v = if arrays {
                Value::Array(vec![v])
            } else {
                json!({ "filter": v })
            };
        }
        v
    })
}

/// A request whose known field holds a huge array or a string near the
/// 1 MB message limit.
fn oversized() -> impl Strategy<Value = Value> {
    let huge = prop_oneof![
        (0usize..200_000).prop_map(|n| Value::Array(vec![json!("update"); n])),
        (0usize..1_000_000).prop_map(|n| Value::from("é".repeat(n / 2))),
    ];
    (value(), proptest::sample::select(KEYS), huge).prop_map(|(base, key, huge)| {
        let mut fields = match base {
            Value::Object(fields) => fields,
            _ => Map::new(),
        };
        fields.insert(key.to_owned(), huge);
        Value::Object(fields)
    })
}

/// One of `pool`, as a JSON string.
fn one_of(pool: &'static [&'static str]) -> BoxedStrategy<Value> {
    proptest::sample::select(pool).prop_map(Value::from).boxed()
}

/// A plausible value for a known field, or now and then anything at all.
fn field_value(name: &'static str) -> BoxedStrategy<Value> {
    let orgs: &'static [&'static str] = &[OWN_ORG, "org-2", ""];
    let plausible = match name {
        "resource" => one_of(&["contact", "deal", "email-thread", "notification", "invoice"]),
        "type" | "roomType" => one_of(&["pipeline", "deal", "contact", "email-thread", "invoice"]),
        "organizationId" => one_of(orgs),
        "events" => {
            proptest::collection::vec(one_of(&["update", "stage-change", "reply", "x"]), 0..4)
                .prop_map(Value::Array)
                .boxed()
        }
        "filter" => proptest::collection::btree_map(
            proptest::sample::select(&["organizationId", "pipelineId", "contactId", "x"][..]),
            one_of(orgs),
            0..3,
        )
        .prop_map(|m| json!(m))
        .boxed(),
        "since" => one_of(&["1:d0.5", "2:d@AbCd-_12,d0.5", "2:d@AbCd,d0.5", "garbage"]),
        _ => one_of(&["d1", "notes", ""]),
    };
    prop_oneof![6 => plausible, 1 => value()].boxed()
}

/// A request close to one of the real shapes: each field present or not,
/// each value plausible or not. Reaches the organisation checks often.
fn near_valid() -> impl Strategy<Value = Value> {
    let shapes: [&'static [&'static str]; 4] = [
        &["resource", "id", "events", "since"],
        &["resource", "filter", "events"],
        &["type", "id", "organizationId"],
        &["roomType", "roomId", "field", "organizationId"],
    ];
    proptest::sample::select(shapes.to_vec()).prop_flat_map(|shape| {
        let fields: Vec<_> = shape
            .iter()
            .map(|&name| {
                proptest::option::weighted(0.8, field_value(name)).prop_map(move |v| (name, v))
            })
            .collect();
        fields.prop_map(|fields| {
            let present = fields
                .into_iter()
                .filter_map(|(k, v)| Some((k.to_owned(), v?)));
            Value::Object(present.collect())
        })
    })
}

/// What a handler is given: nothing (no or unreadable argument) or a value.
fn request() -> impl Strategy<Value = Option<Value>> {
    prop_oneof![
        1 => Just(None),
        4 => value().prop_map(Some),
        4 => near_valid().prop_map(Some),
        1 => deeply_nested().prop_map(Some),
        1 => oversized().prop_map(Some),
    ]
}

fn refusal_is_actionable(error: &ClientError) -> Result<(), TestCaseError> {
    prop_assert!(
        matches!(
            error.code,
            ErrorCode::InvalidRequest | ErrorCode::ResourceNotFound | ErrorCode::Forbidden
        ),
        "{error}"
    );
    // At most 64 bytes of client input are echoed.
    prop_assert!(error.message.len() < 400, "{error}");
    Ok(())
}

/// Every `organizationId` a request names, at its top or in its filter.
fn named_orgs(raw: &Option<Value>) -> Vec<&Value> {
    let Some(Value::Object(fields)) = raw else {
        return Vec::new();
    };
    let filter = fields.get("filter").and_then(|f| f.get("organizationId"));
    fields
        .get("organizationId")
        .into_iter()
        .chain(filter)
        .collect()
}

fn check<T>(
    raw: &Option<Value>,
    parsed: Result<T, ClientError>,
    org_of: impl Fn(&T) -> &OrgId,
) -> Result<(), TestCaseError> {
    match parsed {
        Err(error) => refusal_is_actionable(&error),
        Ok(accepted) => {
            prop_assert_eq!(org_of(&accepted).as_str(), OWN_ORG);
            for named in named_orgs(raw) {
                prop_assert_eq!(named, &json!(OWN_ORG));
            }
            Ok(())
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3_000))]

    #[test]
    fn every_inbound_parser_refuses_with_a_seed_code_or_stays_in_the_callers_org(raw in request()) {
        let org = OrgId::new(OWN_ORG).unwrap();
        let user = UserId::new("user_1").unwrap();
        let caller = Caller { org: &org, user: &user };

        let subscribed = parse_subscribe(caller, raw.as_ref());
        if let Ok(SubscriptionRequest { key: SubscriptionKey { scope: Scope::Inbox(owner), .. }, .. }) = &subscribed {
            prop_assert_eq!(owner, &user);
        }
        check(&raw, subscribed, |r| &r.key.org)?;
        check(&raw, parse_unsubscribe(caller, raw.as_ref()), |k| &k.org)?;
        check(&raw, parse_room(caller, raw.as_ref()), |r| &r.org)?;
        check(&raw, parse_typing(caller, raw.as_ref()), |(r, _)| &r.org)?;
    }
}
