//! The permissions topic's records: what the CRM writes is the grant read
//! back, and a record that would grant something it does not say is
//! refused.

use std::path::Path;

use apache_avro::types::Value;
use proptest::prelude::*;

use super::*;
use crate::domain::{Granted, Grantee, OrgId, ResourceKind, TeamId, UserId};

fn local() -> LocalRegistry {
    LocalRegistry::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("schemas")).unwrap()
}

fn decoder() -> Decoder {
    Decoder::new(Arc::new(SchemaRegistry::Local(local())))
}

fn decode(value: &[u8]) -> Result<Grant, DecodeError> {
    futures::executor::block_on(decoder().decode_grant(value))
}

fn grant(grantee: Grantee, granted: Granted) -> Grant {
    Grant {
        org: OrgId::new("org_1").unwrap(),
        grantee,
        granted,
        granted_at_ms: 1_700_000_000_000,
    }
}

/// A record of the bundled schema with each field as given, framed with
/// its id: what a careless producer could write.
fn raw(fields: [(&str, Value); 6]) -> Vec<u8> {
    let (id, schema) = local().latest("crm.access-value").unwrap();
    let record = Value::Record(fields.map(|(k, v)| (k.to_owned(), v)).into());
    let value = record.resolve(&schema).unwrap();
    frame(id, &apache_avro::to_avro_datum(&schema, value).unwrap())
}

fn text(s: &str) -> Value {
    Value::String(s.to_owned())
}

fn symbol(s: &str) -> Value {
    Value::Enum(0, s.to_owned())
}

fn record(org: &str, principal: (&str, &str), resource: (&str, &str)) -> Vec<u8> {
    raw([
        ("organizationId", text(org)),
        ("principalType", symbol(principal.0)),
        ("principalId", text(principal.1)),
        ("resourceType", symbol(resource.0)),
        ("resourceId", text(resource.1)),
        ("grantedAt", Value::Long(5)),
    ])
}

fn ids() -> impl Strategy<Value = String> {
    "[a-z0-9_-]{1,12}"
}

fn grants() -> impl Strategy<Value = Grant> {
    let kind = prop_oneof![
        Just(ResourceKind::Contact),
        Just(ResourceKind::Deal),
        Just(ResourceKind::EmailThread),
    ];
    let granted_to_user = prop_oneof![
        (kind.clone(), ids()).prop_map(|(kind, id)| Granted::Resource(kind, id.into())),
        ids().prop_map(|id| Granted::Team(TeamId::new(&id).unwrap())),
    ];
    prop_oneof![
        (ids(), granted_to_user)
            .prop_map(|(user, granted)| { (Grantee::User(UserId::new(&user).unwrap()), granted) }),
        (ids(), kind, ids()).prop_map(|(team, kind, id)| {
            let team = Grantee::Team(TeamId::new(&team).unwrap());
            (team, Granted::Resource(kind, id.into()))
        }),
    ]
    .prop_flat_map(|(grantee, granted)| {
        (ids(), any::<i64>()).prop_map(move |(org, at)| Grant {
            org: OrgId::new(&org).unwrap(),
            grantee: grantee.clone(),
            granted: granted.clone(),
            granted_at_ms: at,
        })
    })
}

proptest! {
    #[test]
    fn what_the_crm_writes_is_read_back(grant in grants()) {
        let value = Encoder::latest(&local()).unwrap().encode_grant(&grant).unwrap();
        prop_assert_eq!(decode(&value).unwrap(), grant);
    }
}

#[test]
fn a_membership_and_a_team_grant_are_read() {
    let member = record("org_1", ("USER", "u1"), ("TEAM", "west"));
    let expected = grant(
        Grantee::User(UserId::new("u1").unwrap()),
        Granted::Team(TeamId::new("west").unwrap()),
    );
    assert_eq!(
        decode(&member).unwrap(),
        Grant {
            granted_at_ms: 5,
            ..expected
        }
    );
    let thread = record("org_1", ("TEAM", "west"), ("EMAIL_THREAD", "t1"));
    assert_eq!(
        decode(&thread).unwrap().granted,
        Granted::Resource(ResourceKind::EmailThread, "t1".into())
    );
}

#[test]
fn a_team_cannot_be_a_member_of_a_team() {
    let nested = record("org_1", ("TEAM", "west"), ("TEAM", "all"));
    assert!(matches!(
        decode(&nested),
        Err(DecodeError::Field("resourceType"))
    ));
}

#[test]
fn empty_ids_grant_nothing() {
    let cases = [
        (record("", ("USER", "u1"), ("DEAL", "d1")), "organizationId"),
        (record("org_1", ("USER", ""), ("DEAL", "d1")), "principalId"),
        (record("org_1", ("USER", "u1"), ("DEAL", "")), "resourceId"),
        (record("org_1", ("USER", "u1"), ("TEAM", "")), "resourceId"),
    ];
    for (value, field) in cases {
        assert!(
            matches!(decode(&value), Err(DecodeError::Field(f)) if f == field),
            "{field}"
        );
    }
}

#[test]
fn hostile_framing_is_refused_not_granted() {
    let value = record("org_1", ("USER", "u1"), ("DEAL", "d1"));
    let unknown_schema = [&[0, 0, 0, 0, 99][..], &value[5..]].concat();
    assert!(matches!(
        decode(&unknown_schema),
        Err(DecodeError::Registry(RegistryError::UnknownId(99)))
    ));
    for cut in 0..value.len() {
        assert!(decode(&value[..cut]).is_err(), "cut at {cut}");
    }
    // An event's schema is not a grant's: resolution fails.
    let deal_schema = [&[0, 0, 0, 0, 2][..], &value[5..]].concat();
    assert!(decode(&deal_schema).is_err());
}

#[test]
fn a_writer_without_a_writer_schema_for_grants_says_so() {
    let encoder = Encoder::new(Default::default());
    let g = grant(
        Grantee::User(UserId::new("u1").unwrap()),
        Granted::Resource(ResourceKind::Deal, "d1".into()),
    );
    assert!(matches!(
        encoder.encode_grant(&g),
        Err(EncodeError::NoGrantWriter)
    ));
}
