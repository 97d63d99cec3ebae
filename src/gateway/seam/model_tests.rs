//! A model-based property test of the seam: a model of Kafka's log, of live
//! delivery (route, then offer, one record in flight at a time, as the
//! consumer does) and of the replay worker (chase, fix the end, read up to
//! it, flush; as `replay.rs` does), driven step by step through random
//! interleavings against the real [`Seam`]. Whatever the interleaving, the
//! client gets every offset of a replayed subscription from its cursor on,
//! and every offset of a live one, once each and in order per partition.

use std::collections::VecDeque;
use std::sync::Arc;

use proptest::prelude::*;
use tokio_util::sync::CancellationToken;

use super::*;
use crate::domain::{Action, DealEvent, EventBody, OrgId, Position, ResourceKind, TopicKind};
use crate::protocol::{Delivery, render};
use crate::replay::{Range, catch_up};
use crate::routing::{Scope, Selector};

const PARTITIONS: i32 = 2;
const TOPIC: TopicKind = TopicKind::Deals;
/// The deal the replaying subscription follows, and one followed live.
const REPLAYED: &str = "replayed";
const LIVE: &str = "live";
const BOUNDS: Bounds = Bounds {
    max_subscriptions: 10,
    max_rooms: 10,
    max_replays: 10,
};
/// Never reached here: overflow is `dispatch.rs`'s concern.
const HELD_LIMIT: usize = usize::MAX;

#[derive(Clone, Debug)]
enum Op {
    /// A producer appends a record for `REPLAYED` (or `LIVE`) to a partition.
    Produce { partition: i32, replayed: bool },
    /// Live delivery takes a partition's next record: in flight, routed to
    /// the subscriptions the index holds now.
    Route { partition: i32 },
    /// Live delivery offers the record in flight and is done with it.
    Offer,
    /// The client subscribes to `REPLAYED` with a cursor: per partition, a
    /// fraction (in 1/8) of the log produced so far.
    Subscribe { since: [u8; 2] },
    /// The replay worker takes one step: one record read or flushed, or one
    /// seam call.
    Work,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0..PARTITIONS, any::<bool>())
            .prop_map(|(partition, replayed)| Op::Produce { partition, replayed }),
        3 => (0..PARTITIONS).prop_map(|partition| Op::Route { partition }),
        3 => Just(Op::Offer),
        1 => any::<[u8; 2]>().prop_map(|since| Op::Subscribe {
            since: since.map(|f| f % 9)
        }),
        5 => Just(Op::Work),
    ]
}

fn key(deal: &str) -> SubscriptionKey {
    SubscriptionKey {
        org: OrgId::new("org-1").unwrap(),
        scope: Scope::Resource(ResourceKind::Deal, Selector::Id(deal.into())),
    }
}

fn request(deal: &str) -> SubscriptionRequest {
    SubscriptionRequest {
        key: key(deal),
        actions: ResourceKind::Deal.all_actions(),
        since: None,
    }
}

fn event(deal: &str, partition: i32, offset: i64) -> CrmEvent {
    CrmEvent {
        org: OrgId::new("org-1").unwrap(),
        position: Position {
            topic: TOPIC,
            partition,
            offset,
        },
        body: EventBody::Deal(DealEvent {
            deal_id: deal.into(),
            pipeline_id: "p".into(),
            action: Action::Update,
            actor_user_id: "u".into(),
            occurred_at_ms: 0,
            previous_stage: None,
            new_stage: None,
            changes: Default::default(),
        }),
    }
}

/// The replay worker, one step at a time (see `replay.rs`: `run`, `chase`).
enum Worker {
    /// Not running: the next replaying subscribe starts it.
    Stopped,
    /// Asks the seam for its next step.
    Idle,
    Replaying(Replay),
    Flushing(VecDeque<Arc<Waiting>>),
}

struct Replay {
    job: ReplayJob,
    reached: Cursor,
    ranges: VecDeque<Range>,
    fixed: bool,
}

struct World {
    seam: Seam,
    /// Per partition, the deal of each offset.
    log: Vec<Vec<&'static str>>,
    /// Per partition, the next offset live delivery routes.
    next: Vec<i64>,
    /// The record live delivery is routing, and whether the index routed it
    /// to this connection.
    in_flight: Option<(i32, bool)>,
    /// The replaying subscription's cursor, once subscribed.
    since: Option<Cursor>,
    live_subscribed: bool,
    worker: Worker,
    /// Records at most this far behind live delivery make the replay fix
    /// its end (`replay.live_buffer / 2` in `replay.rs`).
    slack: i64,
    flush_batch: usize,
    /// What the client got: deal, partition, offset.
    received: Vec<(&'static str, i32, i64)>,
}

impl World {
    fn new(live_subscribed: bool, slack: i64, flush_batch: usize) -> Self {
        let mut seam = Seam::default();
        if live_subscribed {
            seam.subscribe(&request(LIVE), BOUNDS).unwrap();
        }
        Self {
            seam,
            log: vec![Vec::new(); PARTITIONS as usize],
            next: vec![0; PARTITIONS as usize],
            in_flight: None,
            since: None,
            live_subscribed,
            worker: Worker::Stopped,
            slack,
            flush_batch,
            received: Vec::new(),
        }
    }

    /// Where live delivery stands: one past the record in flight, if any
    /// (`kafka/positions.rs`).
    fn live_end(&self) -> Cursor {
        let mut cursor = Cursor::default();
        for partition in 0..PARTITIONS {
            let mut end = self.next[partition as usize];
            if let Some((p, _)) = self.in_flight
                && p == partition
            {
                end += 1;
            }
            cursor.set(TOPIC, partition, end);
        }
        cursor
    }

    fn deal_at(&self, partition: i32, offset: i64) -> &'static str {
        self.log[partition as usize][offset as usize]
    }

    /// Applies `op`; false if it cannot happen now (then nothing changed).
    fn apply(&mut self, op: &Op) -> bool {
        match *op {
            Op::Produce {
                partition,
                replayed,
            } => {
                let deal = if replayed { REPLAYED } else { LIVE };
                self.log[partition as usize].push(deal);
                true
            }
            Op::Route { partition } => self.route(partition),
            Op::Offer => self.offer(),
            Op::Subscribe { since } => self.subscribe(since),
            Op::Work => self.work(),
        }
    }

    fn route(&mut self, partition: i32) -> bool {
        let next = self.next[partition as usize];
        if self.in_flight.is_some() || next >= self.log[partition as usize].len() as i64 {
            return false;
        }
        let routed = match self.deal_at(partition, next) {
            REPLAYED => self.since.is_some(),
            _ => self.live_subscribed,
        };
        self.in_flight = Some((partition, routed));
        true
    }

    fn offer(&mut self) -> bool {
        let Some((partition, routed)) = self.in_flight.take() else {
            return false;
        };
        let offset = self.next[partition as usize];
        self.next[partition as usize] += 1;
        if !routed {
            return true;
        }
        let deal = self.deal_at(partition, offset);
        let event = event(deal, partition, offset);
        let hold = || Waiting {
            outbound: Arc::new(render(
                &event,
                Delivery::Live,
                None,
                crate::access::Hidden::NOTHING,
            )),
            event: Arc::new(event.clone()),
            hidden: 0,
            reset_epoch: 0,
        };
        let received = &mut self.received;
        let emit = || {
            received.push((deal, partition, offset));
            Offer::Emitted
        };
        let offered = self.seam.offer(HELD_LIMIT, &event, 0, hold, emit);
        assert!(
            matches!(offered, Offer::Emitted | Offer::Held | Offer::Skipped),
            "{offered:?}"
        );
        true
    }

    fn subscribe(&mut self, fractions: [u8; 2]) -> bool {
        if self.since.is_some() {
            return false;
        }
        let mut since = Cursor::default();
        for (partition, fraction) in (0..PARTITIONS).zip(fractions) {
            let produced = self.log[partition as usize].len() as i64;
            since.set(TOPIC, partition, produced * i64::from(fraction) / 8);
        }
        let mut replaying = request(REPLAYED);
        replaying.since = Some(since.clone());
        let cancel = CancellationToken::new();
        let queued = self
            .seam
            .subscribe_replaying(replaying, since.clone(), 1, cancel, BOUNDS)
            .unwrap();
        if queued.start_worker {
            assert!(matches!(self.worker, Worker::Stopped));
            self.worker = Worker::Idle;
        }
        self.since = Some(since);
        true
    }

    fn work(&mut self) -> bool {
        match std::mem::replace(&mut self.worker, Worker::Stopped) {
            Worker::Stopped => return false,
            Worker::Idle => {
                self.worker = match self.seam.next_step(self.flush_batch) {
                    Step::Done => Worker::Stopped,
                    Step::Flush(batch) => Worker::Flushing(batch.into()),
                    Step::Replay(job) => {
                        // `replay::plan` with every record still in Kafka.
                        let since = job.request.since.clone().expect("a replaying request");
                        let ahead = self.live_end();
                        let ranges = catch_up(&since, &ahead).into();
                        let mut reached = since;
                        reached.advance_to(&ahead);
                        Worker::Replaying(Replay {
                            job,
                            reached,
                            ranges,
                            fixed: false,
                        })
                    }
                }
            }
            Worker::Flushing(mut batch) => {
                self.worker = match batch.pop_front() {
                    Some(waiting) => {
                        let p = waiting.event.position;
                        let deal = self.deal_at(p.partition, p.offset);
                        self.received.push((deal, p.partition, p.offset));
                        Worker::Flushing(batch)
                    }
                    None => Worker::Idle,
                }
            }
            Worker::Replaying(replay) => self.worker = self.chase(replay),
        }
        true
    }

    /// One step of `replay.rs`'s `chase`: read a record of the ranges, or,
    /// with none left, look where live delivery stands and chase it, or fix
    /// the end when little is left.
    fn chase(&mut self, mut replay: Replay) -> Worker {
        if let Some(range) = replay.ranges.front_mut() {
            let (partition, offset) = (range.partition, range.from);
            range.from += 1;
            if range.from == range.to {
                replay.ranges.pop_front();
            }
            if self.deal_at(partition, offset) == REPLAYED {
                self.received.push((REPLAYED, partition, offset));
            }
            return Worker::Replaying(replay);
        }
        if replay.fixed {
            return Worker::Idle;
        }
        let ahead = self.live_end();
        let left: i64 = catch_up(&replay.reached, &ahead)
            .iter()
            .map(|r| r.to - r.from)
            .sum();
        let ahead = if left <= self.slack {
            replay.fixed = true;
            let live_end = self.live_end();
            let key = &replay.job.request.key;
            let end = self.seam.fix_replay_end(key, replay.job.id, || live_end);
            end.expect("the job's own window")
        } else {
            ahead
        };
        replay.ranges = catch_up(&replay.reached, &ahead).into();
        replay.reached.advance_to(&ahead);
        Worker::Replaying(replay)
    }

    /// Runs every process to its end: live delivery routes and offers all
    /// that was produced, the worker finishes.
    fn settle(&mut self) {
        for _ in 0..100_000 {
            let progressed = self.apply(&Op::Offer)
                || (0..PARTITIONS).any(|partition| self.apply(&Op::Route { partition }))
                || self.apply(&Op::Work);
            if !progressed {
                return;
            }
        }
        panic!("the world does not settle");
    }

    /// Offsets of `deal` in `partition` the client got, in the order it got them.
    fn got(&self, deal: &str, partition: i32) -> Vec<i64> {
        let received = self.received.iter();
        received
            .filter(|(d, p, _)| *d == deal && *p == partition)
            .map(|&(_, _, offset)| offset)
            .collect()
    }

    /// Offsets of `deal` in `partition` from `from` on.
    fn logged(&self, deal: &str, partition: i32, from: i64) -> Vec<i64> {
        (from..self.log[partition as usize].len() as i64)
            .filter(|&offset| self.deal_at(partition, offset) == deal)
            .collect()
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2_000))]

    #[test]
    fn every_offset_is_delivered_once_and_in_order_per_partition(
        ops in prop::collection::vec(op(), 0..120),
        live_subscribed in any::<bool>(),
        slack in 0i64..4,
        flush_batch in 1usize..4,
    ) {
        let mut world = World::new(live_subscribed, slack, flush_batch);
        for op in &ops {
            world.apply(op);
        }
        world.subscribe([0, 0]); // if it never happened: from the start
        world.settle();
        let since = world.since.clone().unwrap();
        for partition in 0..PARTITIONS {
            let from = since.get(TOPIC, partition).unwrap();
            prop_assert_eq!(
                world.got(REPLAYED, partition),
                world.logged(REPLAYED, partition, from),
                "replayed subscription, partition {}", partition
            );
            let live = if live_subscribed { world.logged(LIVE, partition, 0) } else { vec![] };
            prop_assert_eq!(world.got(LIVE, partition), live, "live subscription, partition {}", partition);
        }
    }
}
