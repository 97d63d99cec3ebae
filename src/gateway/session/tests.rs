//! The seam rule: which held live events still go out after a replay.

use super::*;
use crate::domain::{DealEvent, EventBody, OrgId, Position, ResourceKind, TopicKind};
use crate::routing::Selector;

fn deal_event(deal: &str, offset: i64) -> CrmEvent {
    CrmEvent {
        org: OrgId::new("org-1").unwrap(),
        position: Position {
            topic: TopicKind::Deals,
            partition: 0,
            offset,
        },
        body: EventBody::Deal(DealEvent {
            deal_id: deal.into(),
            pipeline_id: "p".into(),
            action: crate::domain::Action::Update,
            actor_user_id: "u".into(),
            occurred_at_ms: 0,
            previous_stage: None,
            new_stage: None,
            changes: Default::default(),
        }),
    }
}

fn key(deal: &str) -> SubscriptionKey {
    SubscriptionKey {
        org: OrgId::new("org-1").unwrap(),
        scope: Scope::Resource(ResourceKind::Deal, Selector::Id(deal.into())),
    }
}

fn cursor(offset: i64) -> Cursor {
    let mut c = Cursor::default();
    c.set(TopicKind::Deals, 0, offset);
    c
}

/// A subscription to `deal` replaying `[since, end)` (or live when `None`).
fn subs(entries: &[(&str, Option<(i64, i64)>)]) -> HashMap<SubscriptionKey, Subscription> {
    entries
        .iter()
        .map(|(deal, window)| {
            let replay = window.map(|(since, end)| ReplayWindow {
                job: 0,
                since: cursor(since),
                end: Some(cursor(end)),
                epoch: 1,
            });
            let subscription = Subscription {
                requested: Some(ResourceKind::Deal.all_actions()),
                room: false,
                replay,
            };
            (key(deal), subscription)
        })
        .collect()
}

#[test]
fn events_the_replay_sent_are_not_sent_again() {
    let s = subs(&[("d1", Some((10, 20)))]);
    assert!(!wanted_after_replay(&s, &deal_event("d1", 15), 0));
}

#[test]
fn events_after_the_replay_end_are_sent() {
    let s = subs(&[("d1", Some((10, 20)))]);
    assert!(wanted_after_replay(&s, &deal_event("d1", 20), 0));
    assert!(wanted_after_replay(&s, &deal_event("d1", 99), 0));
}

#[test]
fn events_before_the_cursor_were_already_had() {
    let s = subs(&[("d1", Some((10, 20)))]);
    assert!(!wanted_after_replay(&s, &deal_event("d1", 5), 0));
}

#[test]
fn a_live_subscription_still_gets_what_the_replay_did_not_send() {
    // d1 is live; d2 replays. An event for d1 is wanted whatever its offset.
    let s = subs(&[("d1", None), ("d2", Some((10, 20)))]);
    assert!(wanted_after_replay(&s, &deal_event("d1", 5), 0));
    assert!(wanted_after_replay(&s, &deal_event("d1", 15), 0));
    // Events nobody subscribed to are not wanted.
    assert!(!wanted_after_replay(&s, &deal_event("d9", 30), 0));
}

#[test]
fn a_room_on_a_replaying_key_still_gets_actions_the_replay_did_not_cover() {
    let mut s = subs(&[("d1", Some((10, 20)))]);
    let only_stages = [crate::domain::Action::StageChange].into_iter().collect();
    s.get_mut(&key("d1")).unwrap().requested = Some(only_stages);
    assert!(
        !wanted_after_replay(&s, &deal_event("d1", 15), 0),
        "no room: an update was not asked for"
    );
    s.get_mut(&key("d1")).unwrap().room = true;
    assert!(
        wanted_after_replay(&s, &deal_event("d1", 15), 0),
        "the room wants every action live"
    );
}

#[test]
fn a_window_made_before_its_partition_was_reset_holds_back_nothing() {
    // Made at epoch 1; the partition's log went backwards at epoch 2.
    let s = subs(&[("d1", Some((10, 20)))]);
    assert!(!wanted_after_replay(&s, &deal_event("d1", 5), 1));
    assert!(!wanted_after_replay(&s, &deal_event("d1", 15), 1));
    assert!(wanted_after_replay(&s, &deal_event("d1", 5), 2), "new log");
    assert!(wanted_after_replay(&s, &deal_event("d1", 15), 2), "new log");
    assert!(
        !wanted_after_replay(&s, &deal_event("d9", 5), 2),
        "not subscribed"
    );
}

#[test]
fn a_replay_still_chasing_will_read_everything_after_its_cursor() {
    let mut s = subs(&[("d1", Some((10, 0))), ("d2", None)]);
    s.get_mut(&key("d1")).unwrap().replay.as_mut().unwrap().end = None;
    assert!(
        !wanted_after_replay(&s, &deal_event("d1", 1_000_000), 0),
        "the open window's replay reads it"
    );
    assert!(
        !wanted_after_replay(&s, &deal_event("d1", 5), 0),
        "already had"
    );
    assert!(wanted_after_replay(&s, &deal_event("d2", 1_000_000), 0));
}

#[test]
fn live_delivery_behind_the_cursor_sends_nothing_the_client_had() {
    // A node that just restarted reads from its last commit, behind the
    // client's cursor, and its replay ended where it stood (10).
    let s = subs(&[("d1", Some((20, 10)))]);
    assert!(!wanted_after_replay(&s, &deal_event("d1", 15), 0));
    assert!(wanted_after_replay(&s, &deal_event("d1", 20), 0));
}
