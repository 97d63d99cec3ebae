use proptest::prelude::*;

use super::*;
use crate::domain::{
    Action, ContactEvent, CrmEvent, DealEvent, EmailEvent, EventBody, FilterField,
    NotificationEvent, OrgId, Position, ResourceKind, TopicKind, UserId,
};

const POSITION: Position = Position {
    topic: TopicKind::Deals,
    partition: 0,
    offset: 0,
};
use crate::routing::{Scope, Selector};

fn org(i: u8) -> OrgId {
    OrgId::new(&format!("org-{i}")).unwrap()
}

fn deal(org_id: u8, deal_id: &str, pipeline: &str, action: Action) -> CrmEvent {
    CrmEvent {
        position: POSITION,
        org: org(org_id),
        body: EventBody::Deal(DealEvent {
            deal_id: deal_id.into(),
            pipeline_id: pipeline.into(),
            action,
            actor_user_id: "u".into(),
            occurred_at_ms: 0,
            previous_stage: None,
            new_stage: None,
            changes: Default::default(),
        }),
    }
}

fn key(org_id: u8, scope: Scope) -> SubscriptionKey {
    SubscriptionKey {
        org: org(org_id),
        scope,
    }
}

fn routed(index: &SubscriptionIndex<u64>, event: &CrmEvent) -> Vec<u64> {
    let mut out = Vec::new();
    index.route(event.keys(), &mut out);
    let mut ids: Vec<u64> = out.into_iter().map(|(_, h)| h).collect();
    ids.sort_unstable();
    ids
}

#[test]
fn routes_by_id_filter_and_organisation_once_per_client() {
    let index = SubscriptionIndex::new(4);
    let all = ResourceKind::Deal.all_actions();
    let by_id = key(
        1,
        Scope::Resource(ResourceKind::Deal, Selector::Id("deal_1".into())),
    );
    let by_pipeline = key(
        1,
        Scope::Resource(
            ResourceKind::Deal,
            Selector::Field(FilterField::PipelineId, "p1".into()),
        ),
    );
    let whole_org = key(
        1,
        Scope::Resource(ResourceKind::Deal, Selector::Organization),
    );
    index.insert(by_id.clone(), ClientId(1), 1, all);
    index.insert(by_pipeline.clone(), ClientId(1), 1, all);
    index.insert(by_pipeline, ClientId(2), 2, all);
    index.insert(whole_org, ClientId(3), 3, all);
    index.insert(
        by_id.clone(),
        ClientId(4),
        4,
        [Action::Delete].into_iter().collect(),
    );

    assert_eq!(
        routed(&index, &deal(1, "deal_1", "p1", Action::Update)),
        [1, 2, 3]
    );
    assert_eq!(
        routed(&index, &deal(1, "deal_1", "p1", Action::Delete)),
        [1, 2, 3, 4]
    );
    assert_eq!(
        routed(&index, &deal(1, "deal_2", "p2", Action::Update)),
        [3]
    );
    // The same ids in another organisation reach nobody.
    assert!(routed(&index, &deal(2, "deal_1", "p1", Action::Update)).is_empty());

    assert!(index.remove(&by_id, ClientId(1)));
    assert!(!index.remove(&by_id, ClientId(1)));
    assert_eq!(
        routed(&index, &deal(1, "deal_1", "p9", Action::Update)),
        [3]
    );
}

#[test]
fn resubscribing_replaces_the_action_set() {
    let index = SubscriptionIndex::new(1);
    let k = key(
        1,
        Scope::Resource(ResourceKind::Deal, Selector::Id("d".into())),
    );
    assert!(index.insert(
        k.clone(),
        ClientId(1),
        1,
        [Action::Update].into_iter().collect()
    ));
    assert!(!index.insert(k, ClientId(1), 1, [Action::Delete].into_iter().collect()));
    assert!(routed(&index, &deal(1, "d", "p", Action::Update)).is_empty());
    assert_eq!(routed(&index, &deal(1, "d", "p", Action::Delete)), [1]);
}

#[test]
fn emails_reach_subscribers_of_their_contact_that_asked_for_email() {
    let index = SubscriptionIndex::new(2);
    let contact = key(
        1,
        Scope::Resource(ResourceKind::Contact, Selector::Id("c1".into())),
    );
    index.insert(
        contact.clone(),
        ClientId(1),
        1,
        [Action::Email].into_iter().collect(),
    );
    index.insert(
        contact,
        ClientId(2),
        2,
        [Action::Update].into_iter().collect(),
    );
    let email = CrmEvent {
        position: POSITION,
        org: org(1),
        body: EventBody::Email(EmailEvent {
            email_id: "e".into(),
            thread_id: "t".into(),
            contact_id: Some("c1".into()),
            action: Action::NewEmail,
            subject: "s".into(),
            from: "f".into(),
            occurred_at_ms: 0,
        }),
    };
    assert_eq!(routed(&index, &email), [1]);
}

#[test]
fn removing_the_last_subscriber_drops_the_key() {
    let index = SubscriptionIndex::new(2);
    let k = key(1, Scope::Inbox(UserId::new("u").unwrap()));
    index.insert(k.clone(), ClientId(1), 1, ActionSet::default());
    assert_eq!(index.key_count(), 1);
    index.remove(&k, ClientId(1));
    assert_eq!(index.key_count(), 0);
}

// --- Property: the index agrees with a brute-force model, and never crosses
// organisations. Small id spaces make collisions (the interesting case) common.

#[derive(Clone, Debug)]
struct Sub {
    client: u64,
    key: SubscriptionKey,
    actions: ActionSet,
}

fn arb_action(kind: ResourceKind) -> impl Strategy<Value = Action> {
    proptest::sample::select(kind.actions())
}

fn arb_kind() -> impl Strategy<Value = ResourceKind> {
    proptest::sample::select(ResourceKind::ALL.to_vec())
}

fn arb_event() -> impl Strategy<Value = CrmEvent> {
    let id = || (0u8..3).prop_map(|i| format!("r{i}"));
    (
        0u8..3,
        arb_kind(),
        id(),
        id(),
        proptest::option::of(id()),
        0u8..3,
    )
        .prop_flat_map(move |(o, kind, rid, other, contact, user)| {
            arb_action(kind).prop_map(move |action| {
                let body = match (kind, user) {
                    (_, 0) => EventBody::Notification(NotificationEvent {
                        notification_id: "n".into(),
                        target_user: UserId::new(&format!(
                            "u{o}{}",
                            u8::from(other.ends_with('0'))
                        ))
                        .unwrap(),
                        kind: "mention".into(),
                        title: "t".into(),
                        message: "m".into(),
                        link: None,
                        occurred_at_ms: 0,
                    }),
                    (ResourceKind::Contact, _) => EventBody::Contact(ContactEvent {
                        contact_id: rid.clone(),
                        action,
                        actor_user_id: "u".into(),
                        occurred_at_ms: 0,
                        changes: Default::default(),
                    }),
                    (ResourceKind::Deal, _) => EventBody::Deal(DealEvent {
                        deal_id: rid.clone(),
                        pipeline_id: other.clone(),
                        action,
                        actor_user_id: "u".into(),
                        occurred_at_ms: 0,
                        previous_stage: None,
                        new_stage: None,
                        changes: Default::default(),
                    }),
                    (ResourceKind::EmailThread, _) => EventBody::Email(EmailEvent {
                        email_id: "e".into(),
                        thread_id: rid.clone(),
                        contact_id: contact.clone(),
                        action,
                        subject: "s".into(),
                        from: "f".into(),
                        occurred_at_ms: 0,
                    }),
                };
                CrmEvent {
                    org: org(o),
                    position: POSITION,
                    body,
                }
            })
        })
}

/// Subscriptions are made the way the gateway makes them: always under the
/// subscribing client's own organisation.
fn arb_sub() -> impl Strategy<Value = Sub> {
    (0u64..12, arb_kind(), 0u8..4, 0u8..3, any::<u16>()).prop_map(|(client, kind, sel, v, bits)| {
        let client_org = (client % 3) as u8;
        let value: Box<str> = format!("r{v}").into();
        let scope = match sel {
            0 => Scope::Resource(kind, Selector::Id(value)),
            1 => Scope::Resource(kind, Selector::Organization),
            2 => match kind.filter_fields().last() {
                Some(FilterField::OrganizationId) | None => {
                    Scope::Resource(kind, Selector::Organization)
                }
                Some(field) => Scope::Resource(kind, Selector::Field(*field, value)),
            },
            _ => Scope::Inbox(UserId::new(&format!("u{client_org}{}", client % 2)).unwrap()),
        };
        let actions = kind
            .actions()
            .iter()
            .enumerate()
            .filter(|(i, _)| bits & (1 << i) != 0)
            .map(|(_, a)| *a)
            .collect();
        Sub {
            client,
            key: key(client_org, scope),
            actions,
        }
    })
}

/// The resource a non-notification event is about, with its id and action.
fn resource_of(body: &EventBody) -> (ResourceKind, &str, Action) {
    match body {
        EventBody::Contact(e) => (ResourceKind::Contact, &e.contact_id, e.action),
        EventBody::Deal(e) => (ResourceKind::Deal, &e.deal_id, e.action),
        EventBody::Email(e) => (ResourceKind::EmailThread, &e.thread_id, e.action),
        EventBody::Notification(_) => unreachable!("notifications belong to a user"),
    }
}

/// What a reader of docs/client-api.md ("Subscribing") expects, written as
/// plainly as possible.
fn model_recipients(subs: &[Sub], event: &CrmEvent) -> Vec<u64> {
    let mut out: Vec<u64> = subs
        .iter()
        .filter(|s| s.key.org == event.org)
        .filter(|s| match (&s.key.scope, &event.body) {
            (Scope::Inbox(u), EventBody::Notification(n)) => *u == n.target_user,
            (Scope::Inbox(_), _) | (_, EventBody::Notification(_)) => false,
            (Scope::Resource(kind, selector), body) => {
                let (ekind, id, action) = resource_of(body);
                let direct = *kind == ekind
                    && s.actions.contains(action)
                    && match selector {
                        Selector::Id(sid) => **sid == *id,
                        Selector::Organization => true,
                        Selector::Field(FilterField::PipelineId, v) => {
                            matches!(body, EventBody::Deal(d) if *d.pipeline_id == **v)
                        }
                        Selector::Field(FilterField::ContactId, v) => {
                            matches!(body, EventBody::Email(e) if e.contact_id.as_deref() == Some(&**v))
                        }
                        Selector::Field(FilterField::OrganizationId, _) => false,
                    };
                let contact_email = *kind == ResourceKind::Contact
                    && s.actions.contains(Action::Email)
                    && matches!((selector, body), (Selector::Id(c), EventBody::Email(e)) if e.contact_id.as_deref() == Some(&**c));
                direct || contact_email
            }
        })
        .map(|s| s.client)
        .collect();
    out.sort_unstable();
    out.dedup();
    out
}

proptest! {
    #[test]
    fn index_matches_the_model_and_never_crosses_organisations(
        subs in proptest::collection::vec(arb_sub(), 0..40),
        unsubscribed in proptest::collection::vec(any::<bool>(), 40),
        events in proptest::collection::vec(arb_event(), 1..20),
    ) {
        let index = SubscriptionIndex::new(3);
        // Later subscriptions to the same key replace earlier ones, as in the index.
        let mut live: Vec<Sub> = Vec::new();
        for sub in &subs {
            index.insert(sub.key.clone(), ClientId(sub.client), sub.client, sub.actions);
            live.retain(|s| !(s.client == sub.client && s.key == sub.key));
            live.push(sub.clone());
        }
        for (sub, gone) in subs.iter().zip(&unsubscribed) {
            if *gone {
                index.remove(&sub.key, ClientId(sub.client));
                live.retain(|s| !(s.client == sub.client && s.key == sub.key));
            }
        }
        for event in &events {
            let got = routed(&index, event);
            prop_assert_eq!(&got, &model_recipients(&live, event));
            for client in got {
                let client_org = org((client % 3) as u8);
                prop_assert_eq!(&client_org, &event.org, "event crossed organisations");
            }
        }
    }
}
