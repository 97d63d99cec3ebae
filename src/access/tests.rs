//! The access property: over random policies, grants, revocations, team
//! memberships and events, a viewer is shown an event, and each field of
//! it, exactly when a plain reading of the rules says so, live and on
//! replay. The oracle below is that reading, written from the docs
//! (`docs/permissions.md`) with none of the index's structure: the full
//! list of standing grants, searched.

use std::collections::BTreeMap;

use proptest::prelude::*;

use super::*;
use crate::domain::{
    Action, ContactEvent, CrmEvent, DealEvent, EmailEvent, EventBody, Grant, Granted, Grantee,
    OrgId, Position, ResourceKind, TeamId, TopicKind, UserId,
};

const ORGS: [&str; 2] = ["org-a", "org-b"];
const USERS: [&str; 3] = ["u1", "u2", "u3"];
const TEAMS: [&str; 2] = ["west", "east"];
const IDS: [&str; 3] = ["r1", "r2", "r3"];
const ROLES: [&str; 3] = ["rep", "manager", "support"];
const DEAL_FIELDS: [&str; 2] = ["value", "stage"];
/// Events each kind's rules may name, and events are drawn from.
const CONTACT_EVENTS: [Action; 3] = [Action::Update, Action::Delete, Action::Note];
const DEAL_EVENTS: [Action; 3] = [Action::Update, Action::StageChange, Action::Comment];
const EMAIL_EVENTS: [Action; 2] = [Action::NewEmail, Action::Reply];

/// One rule, as configured.
#[derive(Clone, Debug)]
struct TestRule {
    granted: bool,
    events: Option<Vec<Action>>,
    hide: Vec<&'static str>,
}

impl TestRule {
    fn config(&self, kind: ResourceKind) -> RuleConfig {
        RuleConfig {
            see: if self.granted { See::Granted } else { See::All },
            events: self
                .events
                .as_ref()
                .map(|events| events.iter().map(|a| a.as_str().to_owned()).collect()),
            hide: self
                .hide
                .iter()
                .map(|field| match kind {
                    ResourceKind::EmailThread => (*field).to_owned(),
                    _ => format!("changes.{field}"),
                })
                .collect(),
        }
    }

    fn shows_action(&self, action: Action) -> bool {
        self.events
            .as_ref()
            .is_none_or(|events| events.contains(&action))
    }
}

/// Per role, per kind (contact, deal, email thread): its rule, if any.
type TestPolicy = BTreeMap<&'static str, [Option<TestRule>; 3]>;

fn rule(kind: ResourceKind) -> impl Strategy<Value = Option<TestRule>> {
    let (fields, events): (&[&str], &[Action]) = match kind {
        ResourceKind::Contact => (&DEAL_FIELDS, &CONTACT_EVENTS),
        ResourceKind::Deal => (&DEAL_FIELDS, &DEAL_EVENTS),
        ResourceKind::EmailThread => (&["subject", "from"], &EMAIL_EVENTS),
    };
    let events = prop::sample::subsequence(events.to_vec(), 1..=events.len());
    let hide = prop::sample::subsequence(fields.to_vec(), 0..=fields.len());
    prop::option::weighted(
        0.8,
        (any::<bool>(), prop::option::of(events), hide).prop_map(|(granted, events, hide)| {
            TestRule {
                granted,
                events,
                hide,
            }
        }),
    )
}

fn policies() -> impl Strategy<Value = TestPolicy> {
    let role = (
        rule(ResourceKind::Contact),
        rule(ResourceKind::Deal),
        rule(ResourceKind::EmailThread),
    )
        .prop_map(|(c, d, e)| [c, d, e]);
    prop::collection::vec(role, ROLES.len())
        .prop_map(|roles| ROLES.into_iter().zip(roles).collect())
}

fn policy(test: &TestPolicy, replay_before_grant: bool) -> Policy {
    let roles = test
        .iter()
        .map(|(name, [contact, deal, email])| {
            let role = RoleConfig {
                contact: contact.as_ref().map(|r| r.config(ResourceKind::Contact)),
                deal: deal.as_ref().map(|r| r.config(ResourceKind::Deal)),
                email_thread: email.as_ref().map(|r| r.config(ResourceKind::EmailThread)),
            };
            ((*name).to_owned(), role)
        })
        .collect();
    Policy::new(&PermissionsConfig {
        enabled: true,
        topic: Some("crm.access".into()),
        replay_before_grant,
        roles,
    })
    .unwrap()
}

/// A record of the topic: a grant under a key, or (`None`) its tombstone.
type Record = (u8, Option<Grant>);

fn grant() -> impl Strategy<Value = Grant> {
    let kind = prop::sample::select(ResourceKind::ALL.to_vec());
    let org = prop::sample::select(ORGS.to_vec());
    let user = prop::sample::select(USERS.to_vec()).prop_map(|u| UserId::new(u).unwrap());
    let team = prop::sample::select(TEAMS.to_vec()).prop_map(|t| TeamId::new(t).unwrap());
    let id = prop::sample::select(IDS.to_vec());
    let what = prop_oneof![
        (user.clone(), kind.clone(), id.clone())
            .prop_map(|(u, k, i)| (Grantee::User(u), Granted::Resource(k, i.into()))),
        (team.clone(), kind, id)
            .prop_map(|(t, k, i)| (Grantee::Team(t), Granted::Resource(k, i.into()))),
        (user, team).prop_map(|(u, t)| (Grantee::User(u), Granted::Team(t))),
    ];
    (org, what, 0i64..100).prop_map(|(org, (grantee, granted), at)| Grant {
        org: OrgId::new(org).unwrap(),
        grantee,
        granted,
        granted_at_ms: at,
    })
}

fn records() -> impl Strategy<Value = Vec<Record>> {
    prop::collection::vec((0u8..8, prop::option::weighted(0.75, grant())), 0..24)
}

fn event() -> impl Strategy<Value = CrmEvent> {
    let org = prop::sample::select(ORGS.to_vec());
    let id = prop::sample::select(IDS.to_vec());
    let contact = prop::option::of(prop::sample::select(IDS.to_vec()));
    (org, 0u8..3, id, contact, 0usize..3, 0i64..100).prop_map(
        |(org, kind, id, contact, action, at)| {
            let body = match kind {
                0 => EventBody::Contact(ContactEvent {
                    contact_id: id.into(),
                    action: CONTACT_EVENTS[action],
                    actor_user_id: "actor".into(),
                    occurred_at_ms: at,
                    changes: changes(),
                }),
                1 => EventBody::Deal(DealEvent {
                    deal_id: id.into(),
                    pipeline_id: "p1".into(),
                    action: DEAL_EVENTS[action],
                    actor_user_id: "actor".into(),
                    occurred_at_ms: at,
                    previous_stage: None,
                    new_stage: None,
                    changes: changes(),
                }),
                _ => EventBody::Email(EmailEvent {
                    email_id: "e1".into(),
                    thread_id: id.into(),
                    contact_id: contact.map(Into::into),
                    action: EMAIL_EVENTS[action % EMAIL_EVENTS.len()],
                    subject: "s".into(),
                    from: "f".into(),
                    occurred_at_ms: at,
                }),
            };
            CrmEvent {
                org: OrgId::new(org).unwrap(),
                position: Position {
                    topic: TopicKind::Deals,
                    partition: 0,
                    offset: 0,
                },
                body,
            }
        },
    )
}

fn changes() -> serde_json::Map<String, serde_json::Value> {
    DEAL_FIELDS
        .iter()
        .map(|f| ((*f).to_owned(), 1.into()))
        .collect()
}

/// A connection: its user, its token's roles and teams.
#[derive(Clone, Debug)]
struct Connection {
    user: &'static str,
    roles: Vec<&'static str>,
    teams: Vec<&'static str>,
}

fn connection() -> impl Strategy<Value = Connection> {
    (
        prop::sample::select(USERS.to_vec()),
        prop::sample::subsequence(ROLES.to_vec(), 0..=ROLES.len()),
        prop::sample::subsequence(TEAMS.to_vec(), 0..=TEAMS.len()),
    )
        .prop_map(|(user, roles, teams)| Connection { user, roles, teams })
}

/// The oracle's reading of "when may `who` see the resource `kind`/`id`":
/// the earliest moment any chain of standing grants lets them (a chain
/// through a membership holds from its later link on), `None` if none.
fn oracle_since(
    standing: &[Grant],
    who: &Connection,
    org: &str,
    kind: ResourceKind,
    id: &str,
    contact: Option<&str>,
) -> Option<i64> {
    let in_org = || standing.iter().filter(|g| g.org.as_str() == org);
    let membership = |team: &str| -> Option<i64> {
        if who.teams.contains(&team) {
            return Some(i64::MIN);
        }
        in_org()
            .filter(|g| matches!(&g.grantee, Grantee::User(u) if u.as_str() == who.user))
            .filter(|g| matches!(&g.granted, Granted::Team(t) if t.as_str() == team))
            .map(|g| g.granted_at_ms)
            .min()
    };
    let grants_of = |kind: ResourceKind, id: &str| -> Option<i64> {
        in_org()
            .filter(|g| g.granted == Granted::Resource(kind, id.into()))
            .filter_map(|g| match &g.grantee {
                Grantee::User(u) => (u.as_str() == who.user).then_some(g.granted_at_ms),
                Grantee::Team(t) => membership(t.as_str()).map(|m| m.max(g.granted_at_ms)),
            })
            .min()
    };
    let by_contact = match (kind, contact) {
        (ResourceKind::EmailThread, Some(contact)) => grants_of(ResourceKind::Contact, contact),
        _ => None,
    };
    [grants_of(kind, id), by_contact]
        .into_iter()
        .flatten()
        .min()
}

/// The oracle's decision: `None` if not shown, else each field's name and
/// whether it is hidden.
fn oracle(
    test: &TestPolicy,
    standing: &[Grant],
    who: &Connection,
    event: &CrmEvent,
    replay: Option<i64>,
) -> Option<Vec<(&'static str, bool)>> {
    let (kind, id, action, contact) = match &event.body {
        EventBody::Contact(e) => (ResourceKind::Contact, &*e.contact_id, e.action, None),
        EventBody::Deal(e) => (ResourceKind::Deal, &*e.deal_id, e.action, None),
        EventBody::Email(e) => (
            ResourceKind::EmailThread,
            &*e.thread_id,
            e.action,
            e.contact_id.as_deref(),
        ),
        EventBody::Notification(_) => unreachable!("not generated"),
    };
    let index = ResourceKind::ALL.iter().position(|k| *k == kind).unwrap();
    let since = oracle_since(standing, who, event.org.as_str(), kind, id, contact);
    let granted = since.is_some_and(|since| replay.is_none_or(|at| since <= at));
    let showing: Vec<&TestRule> = who
        .roles
        .iter()
        .filter_map(|role| test[role][index].as_ref())
        .filter(|rule| rule.shows_action(action) && (!rule.granted || granted))
        .collect();
    if showing.is_empty() {
        return None;
    }
    let fields: &[&'static str] = match kind {
        ResourceKind::EmailThread => &["subject", "from"],
        _ => &DEAL_FIELDS,
    };
    Some(
        fields
            .iter()
            .map(|f| (*f, showing.iter().all(|rule| rule.hide.contains(f))))
            .collect(),
    )
}

/// What the real code decides, in the oracle's terms.
fn decided(
    policy: &Policy,
    grants: &Grants,
    who: &Connection,
    event: &CrmEvent,
    replay: Option<i64>,
) -> Option<Vec<(&'static str, bool)>> {
    let roles: Vec<String> = who.roles.iter().map(|r| (*r).to_owned()).collect();
    let teams: Vec<TeamId> = who.teams.iter().map(|t| TeamId::new(t).unwrap()).collect();
    let viewer = policy.viewer(&UserId::new(who.user).unwrap(), &roles, &teams);
    let moment = replay.map_or(Moment::Live, |at| policy.replay_moment(at));
    let keys = event.keys();
    let mask = viewer.decide(keys, &grants.read().about(keys), moment)?;
    let kind = match &event.body {
        EventBody::Contact(_) => ResourceKind::Contact,
        EventBody::Deal(_) => ResourceKind::Deal,
        _ => ResourceKind::EmailThread,
    };
    let hidden = policy.hidden(kind, mask);
    Some(match kind {
        ResourceKind::EmailThread => vec![("subject", hidden.subject()), ("from", hidden.from())],
        _ => DEAL_FIELDS.iter().map(|f| (*f, hidden.change(f))).collect(),
    })
}

/// The grants standing after `records`: the last record under each key.
fn standing(records: &[Record]) -> Vec<Grant> {
    let mut by_key = BTreeMap::new();
    for (key, grant) in records {
        by_key.insert(*key, grant.clone());
    }
    by_key.into_values().flatten().collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]
    #[test]
    fn nobody_is_shown_an_event_or_field_the_rules_do_not_give_them(
        test in policies(),
        records in records(),
        connections in prop::collection::vec(connection(), 1..4),
        events in prop::collection::vec(event(), 1..12),
        replay_before_grant in any::<bool>(),
    ) {
        let policy = policy(&test, replay_before_grant);
        let grants = Grants::default();
        // Checked after every record: each moment of delivery, revocations
        // included, not only the end state.
        for end in 0..=records.len() {
            if end > 0 {
                let (key, grant) = &records[end - 1];
                grants.apply(&[*key], grant.clone());
            }
            let standing = standing(&records[..end]);
            for who in &connections {
                for event in &events {
                    let live = decided(&policy, &grants, who, event, None);
                    prop_assert_eq!(&live, &oracle(&test, &standing, who, event, None));
                    let at = event.occurred_at_ms();
                    let replayed = decided(&policy, &grants, who, event, Some(at));
                    let as_of = (!replay_before_grant).then_some(at);
                    prop_assert_eq!(replayed, oracle(&test, &standing, who, event, as_of));
                }
            }
        }
    }

    #[test]
    fn a_resource_grant_cut_is_queued_for_a_recheck(records in records()) {
        let grants = Grants::default();
        let mut by_key = BTreeMap::new();
        for (key, grant) in &records {
            grants.apply(&[*key], grant.clone());
            let rechecks = grants.take_rechecks();
            let before: Option<Grant> = by_key.insert(*key, grant.clone()).flatten();
            if let Some(Grant { org, granted: Granted::Resource(kind, id), .. }) = before
                && grant.as_ref().is_none_or(|now| now.granted != Granted::Resource(kind, id.clone()) || now.org != org)
            {
                let cut = ResourceRef { org, kind, id };
                prop_assert!(rechecks.contains(&cut), "{cut:?} not in {rechecks:?}");
            }
        }
    }
}

#[test]
fn a_grant_cut_is_seen_at_once_and_replaced_grants_leave_nothing_behind() {
    let test: TestPolicy = [(
        "rep",
        [
            None,
            Some(TestRule {
                granted: true,
                events: None,
                hide: vec!["value"],
            }),
            None,
        ],
    )]
    .into();
    let policy = policy(&test, false);
    let grants = Grants::default();
    let rep = Connection {
        user: "u1",
        roles: vec!["rep"],
        teams: vec![],
    };
    let deal = |org: &str| {
        let mut event = CrmEvent {
            org: OrgId::new(org).unwrap(),
            position: Position {
                topic: TopicKind::Deals,
                partition: 0,
                offset: 0,
            },
            body: EventBody::Deal(DealEvent {
                deal_id: "r1".into(),
                pipeline_id: "p1".into(),
                action: Action::Update,
                actor_user_id: "a".into(),
                occurred_at_ms: 50,
                previous_stage: None,
                new_stage: None,
                changes: changes(),
            }),
        };
        event.position.offset = 1;
        event
    };
    let own = |org: &str| Grant {
        org: OrgId::new(org).unwrap(),
        grantee: Grantee::User(UserId::new("u1").unwrap()),
        granted: Granted::Resource(ResourceKind::Deal, "r1".into()),
        granted_at_ms: 10,
    };
    assert_eq!(decided(&policy, &grants, &rep, &deal("org-a"), None), None);
    grants.apply(b"k", Some(own("org-a")));
    let shown = decided(&policy, &grants, &rep, &deal("org-a"), None);
    assert_eq!(shown, Some(vec![("value", true), ("stage", false)]));
    // The same key now grants in another organisation: the first is gone.
    grants.apply(b"k", Some(own("org-b")));
    assert_eq!(decided(&policy, &grants, &rep, &deal("org-a"), None), None);
    assert!(!grants.take_rechecks().is_empty());
    grants.apply(b"k", None);
    assert_eq!(decided(&policy, &grants, &rep, &deal("org-b"), None), None);
    assert!(grants.read().is_empty());
}
