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
//! Then the cost of permissions, on the selective load: per matched record,
//! routing, each recipient's decision and a render per distinct set of
//! hidden fields, against routing and one render with permissions off
//! (what the dispatcher does either way, less the sockets). Two policies:
//! reps who see only the deals granted to them (a grant per subscription,
//! 50,000 in the view), and the same with half the clients in support,
//! whose deals hide `changes.value` (two renders per record).
//!
//! Run: `make bench-routing` (or `cargo bench --bench routing`).

use std::collections::{HashMap, HashSet};
use std::hint::black_box;
use std::sync::Mutex;
use std::time::Instant;

use crm_bridge::access::{
    Grants, Mask, Moment, PermissionsConfig, Policy, RoleConfig, RuleConfig, See, Viewer,
};
use crm_bridge::domain::{
    About, Action, CrmEvent, DealEvent, EventBody, EventKeys, Grant, Granted, Grantee, OrgId,
    Position, ResourceKind, TopicKind, UserId,
};
use crm_bridge::protocol::{Delivery, render};
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

/// An update of `deal` with a value and a stage among its changes.
fn deal_event(org: &OrgId, deal: &str, offset: i64) -> CrmEvent {
    let changes = [
        ("value".to_owned(), 5000.into()),
        ("stage".to_owned(), "won".into()),
    ];
    CrmEvent {
        org: org.clone(),
        position: Position {
            topic: TopicKind::Deals,
            partition: 0,
            offset,
        },
        body: EventBody::Deal(DealEvent {
            deal_id: deal.to_owned(),
            pipeline_id: PIPELINE.to_owned(),
            action: Action::Update,
            actor_user_id: "user_bench".to_owned(),
            occurred_at_ms: 1_700_000_000_000,
            previous_stage: None,
            new_stage: None,
            changes: changes.into_iter().collect(),
        }),
    }
}

fn policy() -> Policy {
    let deals = |see, hide: &[&str]| RoleConfig {
        deal: Some(RuleConfig {
            see,
            events: None,
            hide: hide.iter().map(|f| (*f).to_owned()).collect(),
        }),
        ..RoleConfig::default()
    };
    Policy::new(&PermissionsConfig {
        enabled: true,
        topic: Some("crm.access".into()),
        replay_before_grant: false,
        roles: [
            ("rep".into(), deals(See::Granted, &[])),
            ("support".into(), deals(See::All, &["changes.value"])),
        ]
        .into(),
    })
    .expect("a valid policy")
}

/// Routes and renders updates of `deals` for `subscriptions`, with
/// permissions off and then on with each client's role from `role_of`.
fn compare_permissions(
    load: &str,
    subscriptions: &[(String, ClientId)],
    deals: &[String],
    role_of: impl Fn(ClientId) -> &'static str,
) {
    let org = OrgId::new(ORG).expect("a valid organisation");
    let index = SubscriptionIndex::new(64);
    let grants = Grants::default();
    for (n, (deal, client)) in subscriptions.iter().enumerate() {
        index.insert(
            deal_key(&org, deal),
            *client,
            *client,
            ResourceKind::Deal.all_actions(),
        );
        let grant = Grant {
            org: org.clone(),
            grantee: Grantee::User(user(*client)),
            granted: Granted::Resource(ResourceKind::Deal, deal.as_str().into()),
            granted_at_ms: 0,
        };
        grants.apply(&n.to_be_bytes(), Some(grant));
    }
    let policy = policy();
    let clients = subscriptions.iter().map(|(_, c)| c.0).max().unwrap_or(0) + 1;
    let viewers: Vec<Viewer> = (0..clients)
        .map(|c| {
            let client = ClientId(c);
            policy.viewer(&user(client), &[role_of(client).to_owned()], &[])
        })
        .collect();
    let events: Vec<CrmEvent> = deals
        .iter()
        .enumerate()
        .map(|(n, deal)| deal_event(&org, deal, n as i64))
        .collect();
    let by_deal: HashMap<&str, &CrmEvent> = deals
        .iter()
        .map(String::as_str)
        .zip(events.iter())
        .collect();
    let mut matched = Vec::new();
    let mut rendered: Vec<Mask> = Vec::new();
    let (mut off_ns, mut on_ns) = (f64::MAX, f64::MAX);
    let (mut off_found, mut on_found) = (0, 0);
    for _ in 0..ROUNDS {
        let (ns, found) = time(deals, |deal| {
            let event = by_deal[deal];
            matched.clear();
            index.route(event.keys(), &mut matched);
            black_box(render(
                event,
                Delivery::Live,
                None,
                policy.hidden(ResourceKind::Deal, 0),
            ));
            matched.len()
        });
        (off_ns, off_found) = (off_ns.min(ns), found);
        let (ns, found) = time(deals, |deal| {
            let event = by_deal[deal];
            matched.clear();
            index.route(event.keys(), &mut matched);
            rendered.clear();
            let view = grants.read();
            let held = view.about(event.keys());
            let mut shown = 0;
            for (client, _) in &matched {
                let viewer = &viewers[client.0 as usize];
                let Some(mask) = viewer.decide(event.keys(), &held, Moment::Live) else {
                    continue;
                };
                shown += 1;
                if !rendered.contains(&mask) {
                    rendered.push(mask);
                    let hidden = policy.hidden(ResourceKind::Deal, mask);
                    black_box(render(event, Delivery::Live, None, hidden));
                }
            }
            shown
        });
        (on_ns, on_found) = (on_ns.min(ns), found);
    }
    assert_eq!(
        off_found, on_found,
        "every subscriber holds a grant or sees all"
    );
    println!(
        "| {load} | {off_ns:.0} ns | {on_ns:.0} ns | {:.2}× |",
        on_ns / off_ns,
    );
}

fn user(client: ClientId) -> UserId {
    UserId::new(&format!("user_{}", client.0)).expect("a valid user id")
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

    println!();
    println!("| selective load, per matched record | permissions off | on | on ÷ off |");
    println!("|---|---|---|---|");
    let reps = |_| "rep";
    compare_permissions(
        "reps, each deal granted to its subscribers",
        &selective,
        &busy,
        reps,
    );
    let mixed = |c: ClientId| {
        if c.0.is_multiple_of(2) {
            "rep"
        } else {
            "support"
        }
    };
    let load = "half reps, half support (value hidden: two renders)";
    compare_permissions(load, &selective, &busy, mixed);
}
