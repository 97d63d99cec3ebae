//! Property: whatever clients send (subscriptions and room joins), no event
//! reaches a client of another organisation, and a notification reaches only
//! its target user. Drives the same public pieces the gateway uses: request
//! parsing and the index. (Presence and typing have their own property, in
//! `src/presence/roster/tests.rs`.)

use crm_bridge::domain::{
    Action, ContactEvent, CrmEvent, DealEvent, EmailEvent, EventBody, NotificationEvent, OrgId,
    Position, TopicKind, UserId,
};
use crm_bridge::protocol::{Caller, parse_room, parse_subscribe};
use crm_bridge::routing::{ClientId, Scope, SubscriptionIndex, SubscriptionKey};
use proptest::prelude::*;
use serde_json::{Value, json};

const ORGS: [&str; 3] = ["org-a", "org-b", "org-c"];
const IDS: [&str; 3] = ["x1", "x2", "x3"];
const USERS: [&str; 2] = ["u1", "u2"];

#[derive(Clone, Debug)]
struct Client {
    org: usize,
    user: usize,
}

/// A request: a subscription, or (`true`) a room join.
fn arb_request() -> impl Strategy<Value = (bool, Value)> {
    let room_type = prop::sample::select(vec!["pipeline", "deal", "contact", "email-thread", "x"]);
    let id = prop::sample::select(IDS.to_vec());
    let org = prop::sample::select(ORGS.to_vec());
    prop_oneof![
        arb_subscription().prop_map(|request| (false, request)),
        (room_type.clone(), id.clone()).prop_map(|(t, i)| (true, json!({"type": t, "id": i}))),
        (room_type, id, org)
            .prop_map(|(t, i, o)| (true, json!({"type": t, "id": i, "organizationId": o}))),
    ]
}

fn arb_subscription() -> impl Strategy<Value = Value> {
    let resource = prop::sample::select(vec!["contact", "deal", "email-thread", "invoice"]);
    let id = prop::sample::select(IDS.to_vec());
    let org = prop::sample::select(ORGS.to_vec());
    prop_oneof![
        (resource.clone(), id.clone()).prop_map(|(r, i)| json!({"resource": r, "id": i})),
        (resource.clone(), org.clone())
            .prop_map(|(r, o)| json!({"resource": r, "filter": {"organizationId": o}})),
        (id.clone(), org).prop_map(
            |(i, o)| json!({"resource": "deal", "filter": {"pipelineId": i, "organizationId": o}})
        ),
        (id, resource).prop_map(|(i, r)| json!({"resource": r, "filter": {"contactId": i}})),
    ]
}

fn arb_event() -> impl Strategy<Value = CrmEvent> {
    (
        0..ORGS.len(),
        0..IDS.len(),
        0..IDS.len(),
        0..USERS.len(),
        0u8..4,
    )
        .prop_map(|(o, i, j, u, kind)| {
            let (id, other) = (IDS[i].to_string(), IDS[j].to_string());
            let body = match kind {
                0 => EventBody::Contact(ContactEvent {
                    contact_id: id,
                    action: Action::Update,
                    actor_user_id: "actor".into(),
                    occurred_at_ms: 0,
                    changes: Default::default(),
                }),
                1 => EventBody::Deal(DealEvent {
                    deal_id: id,
                    pipeline_id: other,
                    action: Action::StageChange,
                    actor_user_id: "actor".into(),
                    occurred_at_ms: 0,
                    previous_stage: None,
                    new_stage: None,
                    changes: Default::default(),
                }),
                2 => EventBody::Email(EmailEvent {
                    email_id: "e".into(),
                    thread_id: id,
                    contact_id: Some(other),
                    action: Action::NewEmail,
                    subject: "s".into(),
                    from: "f".into(),
                    occurred_at_ms: 0,
                }),
                _ => EventBody::Notification(NotificationEvent {
                    notification_id: "n".into(),
                    target_user: UserId::new(USERS[u]).unwrap(),
                    kind: "mention".into(),
                    title: "t".into(),
                    message: "m".into(),
                    link: None,
                    occurred_at_ms: 0,
                }),
            };
            CrmEvent {
                org: OrgId::new(ORGS[o]).unwrap(),
                position: Position {
                    topic: TopicKind::Deals,
                    partition: 0,
                    offset: 0,
                },
                body,
            }
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]
    #[test]
    fn no_event_reaches_another_organisation(
        clients in prop::collection::vec((0..ORGS.len(), 0..USERS.len()).prop_map(|(org, user)| Client { org, user }), 1..8),
        requests in prop::collection::vec((0usize..8, arb_request()), 0..40),
        events in prop::collection::vec(arb_event(), 1..30),
    ) {
        let index = SubscriptionIndex::new(4);
        for (n, client) in clients.iter().enumerate() {
            let org = OrgId::new(ORGS[client.org]).unwrap();
            let inbox = SubscriptionKey { org, scope: Scope::Inbox(UserId::new(USERS[client.user]).unwrap()) };
            index.insert(inbox, ClientId(n as u64), n, Default::default());
        }
        for (who, (is_room, request)) in &requests {
            let n = who % clients.len();
            let org = OrgId::new(ORGS[clients[n].org]).unwrap();
            // Refused requests (other org, unknown resource, ...) subscribe nothing.
            let user = UserId::new(USERS[clients[n].user]).unwrap();
            let caller = Caller { org: &org, user: &user };
            if *is_room {
                if let Ok(room) = parse_room(caller, Some(request)) {
                    let key = SubscriptionKey::of_room(&room);
                    let actions = key.resource().map(|kind| kind.all_actions()).unwrap_or_default();
                    index.insert(key, ClientId(n as u64), n, actions);
                }
            } else if let Ok(sub) = parse_subscribe(caller, Some(request)) {
                index.insert(sub.key, ClientId(n as u64), n, sub.actions);
            }
        }
        let mut out = Vec::new();
        for event in &events {
            out.clear();
            index.route(event.keys(), &mut out);
            for (_, n) in &out {
                let client = &clients[*n];
                prop_assert_eq!(ORGS[client.org], event.org.as_str());
                if let EventBody::Notification(note) = &event.body {
                    prop_assert_eq!(USERS[client.user], note.target_user.as_str());
                }
            }
        }
    }
}
