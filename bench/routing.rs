//! Routing cost per record: the subscription index against socket.io-style
//! rooms (the Node peer's way, `bench/peer/lib/events.mjs`: a room name per
//! (organisation, resource, selector, event), built as a string for every
//! record and looked up in one map of rooms to members), in one run, on the
//! two loads of the suite:
//! - *quiet*: 50,000 subscriptions to deals no record is about (scenario 4);
//! - *selective*: 10,000 clients × 5 subscriptions over 10,000 deals, each
//!   record matching about five clients (scenario 3).
//!
//! No broker, no sockets: the lookups alone, on one thread. The ratio is the
//! figure; nanoseconds are context on a shared machine.
//!
//! Run: `make bench-routing` (or `cargo bench --bench routing`).

use std::collections::{HashMap, HashSet};
use std::hint::black_box;
use std::sync::Mutex;
use std::time::Instant;

use crm_bridge::domain::{About, Action, EventKeys, OrgId, ResourceKind};
use crm_bridge::routing::{ClientId, Scope, Selector, SubscriptionIndex, SubscriptionKey};

const ORG: &str = "org_bench";
const PIPELINE: &str = "pipeline_bench";
const RECORDS: usize = 1_000_000;
const ROUNDS: usize = 5;

/// The peer's rooms: what a subscription joins and a record names.
#[derive(Default)]
struct Rooms(Mutex<HashMap<String, HashSet<ClientId>>>);

fn room(selector: &str, event: &str) -> String {
    format!("{ORG}|deal|{selector}|{event}")
}

impl Rooms {
    /// A deal subscription joins one room per event it asked for.
    fn join(&self, deal: &str, client: ClientId) {
        let mut rooms = self.0.lock().unwrap();
        for event in ["deal:created", "deal:updated", "deal:deleted"] {
            let name = room(&format!("id:{deal}"), event);
            rooms.entry(name).or_default().insert(client);
        }
    }

    /// The distinct members of the rooms an updated deal names.
    fn route(&self, deal: &str, out: &mut HashSet<ClientId>) {
        let names = [
            room(&format!("id:{deal}"), "deal:updated"),
            room("org", "deal:updated"),
            room(&format!("pipelineId:{PIPELINE}"), "deal:updated"),
        ];
        let rooms = self.0.lock().unwrap();
        for name in &names {
            if let Some(members) = rooms.get(name) {
                out.extend(members);
            }
        }
    }
}

fn deal_key(org: &OrgId, deal: &str) -> SubscriptionKey {
    SubscriptionKey {
        org: org.clone(),
        scope: Scope::Resource(ResourceKind::Deal, Selector::Id(deal.into())),
    }
}

fn updated(deal: &str) -> EventKeys<'_> {
    EventKeys {
        org: ORG,
        about: About::Resource {
            kind: ResourceKind::Deal,
            id: deal,
            action: Action::Update,
            pipeline_id: Some(PIPELINE),
            contact_id: None,
        },
    }
}

/// Nanoseconds per record through `route`, and the deliveries it found.
fn time(deals: &[String], mut route: impl FnMut(&str) -> usize) -> (f64, usize) {
    let mut found = 0;
    let started = Instant::now();
    for n in 0..RECORDS {
        found += route(black_box(&deals[n % deals.len()]));
    }
    (started.elapsed().as_nanos() as f64 / RECORDS as f64, found)
}

/// Routes updates of `deals` where `subscriptions` (deal, client) are held.
fn compare(load: &str, subscriptions: &[(String, ClientId)], deals: &[String]) {
    let org = OrgId::new(ORG).expect("a valid organisation");
    let index = SubscriptionIndex::new(64);
    let rooms = Rooms::default();
    for (deal, client) in subscriptions {
        index.insert(
            deal_key(&org, deal),
            *client,
            *client,
            ResourceKind::Deal.all_actions(),
        );
        rooms.join(deal, *client);
    }
    let (mut matched, mut members) = (Vec::new(), HashSet::new());
    // Rounds alternate, and each side keeps its best: a slow spell on a
    // shared machine then weighs on both or on neither.
    let (mut index_ns, mut rooms_ns) = (f64::MAX, f64::MAX);
    let (mut index_found, mut rooms_found) = (0, 0);
    for _ in 0..ROUNDS {
        let (ns, found) = time(deals, |deal| {
            matched.clear();
            index.route(updated(deal), &mut matched);
            matched.len()
        });
        (index_ns, index_found) = (index_ns.min(ns), found);
        let (ns, found) = time(deals, |deal| {
            members.clear();
            rooms.route(deal, &mut members);
            members.len()
        });
        (rooms_ns, rooms_found) = (rooms_ns.min(ns), found);
    }
    assert_eq!(index_found, rooms_found, "both must find the same clients");
    println!(
        "| {load} | {index_ns:.0} ns | {rooms_ns:.0} ns | {:.2}× | {:.1} |",
        rooms_ns / index_ns,
        index_found as f64 / RECORDS as f64,
    );
}

fn main() {
    println!("| load | index | rooms (the peer's way) | ratio | clients per record |");
    println!("|---|---|---|---|---|");
    let quiet: Vec<_> = (0..50_000)
        .map(|i| (format!("quiet_deal_{i}"), ClientId(i / 5)))
        .collect();
    let busy: Vec<_> = (0..10_000).map(|i| format!("deal_{i}")).collect();
    compare("quiet: 50,000 subscriptions, none matching", &quiet, &busy);
    // As in scenario 3: client c holds deals 5c..5c+4 (mod 10,000), so
    // every deal has five subscribers.
    let selective: Vec<_> = (0..10_000u64)
        .flat_map(|c| (0..5).map(move |k| (format!("deal_{}", (c * 5 + k) % 10_000), ClientId(c))))
        .collect();
    compare("selective: 10,000 × 5 over 10,000 deals", &selective, &busy);
}
