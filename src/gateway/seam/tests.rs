//! The seam rule: which held live events still go out after a replay.

use super::*;
use crate::domain::{DealEvent, EventBody, OrgId, Position, ResourceKind, TopicKind};
use crate::routing::{Scope, Selector};

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

fn request(deal: &str, since: Option<i64>) -> SubscriptionRequest {
    SubscriptionRequest {
        key: key(deal),
        actions: ResourceKind::Deal.all_actions(),
        since: since.map(cursor),
    }
}

const BOUNDS: Bounds = Bounds {
    max_subscriptions: 10,
    max_rooms: 10,
    max_replays: 10,
};

fn replay_from(seam: &mut Seam, deal: &str, since: i64) -> Queued {
    let request = request(deal, Some(since));
    let cancel = CancellationToken::new();
    let queued = seam.subscribe_replaying(request, cursor(since), 1, cancel, BOUNDS);
    queued.unwrap()
}

fn held(event: CrmEvent) -> impl FnOnce() -> Waiting {
    move || Waiting {
        outbound: Arc::new(crate::protocol::render(
            &event,
            crate::protocol::Delivery::Live,
            None,
            crate::access::Hidden::NOTHING,
        )),
        event: Arc::new(event),
        hidden: 0,
        reset_epoch: 0,
    }
}

fn never_emitted() -> Offer {
    panic!("a replaying connection emits nothing live")
}

#[test]
fn a_flush_skips_what_a_replay_queued_after_it_was_held_sent() {
    let mut seam = Seam::default();
    seam.subscribe(&request("d1", None), BOUNDS).unwrap();
    assert!(replay_from(&mut seam, "d2", 0).start_worker);
    // d1 is live while d2 replays: its event waits.
    let event = deal_event("d1", 5);
    let offered = seam.offer(10, &event, 0, held(event.clone()), never_emitted);
    assert_eq!(offered, Offer::Held);
    // The client resumes d1 from 3 meanwhile: that replay sends offset 5.
    let queued = replay_from(&mut seam, "d1", 3);
    assert!(!queued.start_worker && !queued.replaced);
    for _ in 0..2 {
        let Step::Replay(job) = seam.next_step(10) else {
            panic!("two replays queued");
        };
        let end = seam.fix_replay_end(&job.request.key, job.id, || cursor(10));
        assert_eq!(end, Some(cursor(10)));
    }
    match seam.next_step(10) {
        Step::Flush(batch) => assert!(batch.is_empty(), "offset 5 was replayed"),
        _ => panic!("the held event is flushed or dropped"),
    }
    assert!(matches!(seam.next_step(10), Step::Done));
}

#[test]
fn resubscribing_with_since_replaces_the_queued_replay_and_its_window() {
    let mut seam = Seam::default();
    let first = replay_from(&mut seam, "d1", 3);
    assert!(first.start_worker && first.subscribed.is_new);
    let again = replay_from(&mut seam, "d1", 7);
    assert!(again.replaced && !again.start_worker && !again.subscribed.is_new);
    let Step::Replay(job) = seam.next_step(10) else {
        panic!("one replay queued");
    };
    assert_eq!(job.request.since, Some(cursor(7)), "the second one");
    assert_eq!(
        seam.fix_replay_end(&key("d1"), job.id - 1, || cursor(9)),
        None
    );
    assert!(matches!(seam.next_step(10), Step::Done));
}

#[test]
fn the_replay_limit_counts_queued_and_running_replays() {
    let mut seam = Seam::default();
    let bounds = Bounds {
        max_replays: 2,
        ..BOUNDS
    };
    let replay = |seam: &mut Seam, deal: &str| {
        let request = request(deal, Some(0));
        seam.subscribe_replaying(request, cursor(0), 1, CancellationToken::new(), bounds)
    };
    replay(&mut seam, "d1").unwrap();
    assert!(matches!(seam.next_step(10), Step::Replay(_)), "d1 runs");
    replay(&mut seam, "d2").unwrap();
    let refused = replay(&mut seam, "d3").unwrap_err();
    assert_eq!(refused.code, ErrorCode::RateLimited);
    assert!(
        replay(&mut seam, "d1").unwrap().replaced,
        "replacing is not more"
    );
}

#[test]
fn unsubscribing_keeps_a_key_a_room_holds_and_cancels_its_replay() {
    let mut seam = Seam::default();
    let room = RoomKey {
        org: OrgId::new("org-1").unwrap(),
        kind: crate::domain::RoomKind::Deal,
        id: "d1".into(),
    };
    replay_from(&mut seam, "d1", 0);
    let Step::Replay(job) = seam.next_step(10) else {
        panic!("one replay queued");
    };
    assert!(seam.join_room(&room, BOUNDS).unwrap().is_some());
    assert!(
        seam.join_room(&room, BOUNDS).unwrap().is_none(),
        "joined once"
    );
    let unsubscribed = seam.unsubscribe(&key("d1")).unwrap();
    assert!(unsubscribed.cancelled_replay && unsubscribed.counted);
    assert!(job.cancel.is_cancelled());
    assert_eq!(
        unsubscribed.indexed,
        Indexed::Actions(ResourceKind::Deal.all_actions()),
        "the room still delivers every action"
    );
    assert_eq!(seam.leave_room(&room), Some(Indexed::Removed));
    assert!(seam.unsubscribe(&key("d1")).is_none());
}

#[test]
fn a_closed_seam_refuses_everything_and_hands_back_what_it_held() {
    let mut seam = Seam::default();
    seam.subscribe(&request("d1", None), BOUNDS).unwrap();
    let closed = seam.close().expect("the first close");
    assert_eq!(closed.keys, vec![(key("d1"), true)]);
    assert!(seam.close().is_none(), "once");
    assert!(seam.subscribe(&request("d2", None), BOUNDS).is_err());
    let event = deal_event("d1", 1);
    let offered = seam.offer(10, &event, 0, held(event.clone()), never_emitted);
    assert_eq!(offered, Offer::Closed);
}
