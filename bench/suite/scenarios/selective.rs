//! Scenario 3, selective routing: every client subscribed to 5 deals by id,
//! 10,000 deals in all, so each deal has 5 subscribers (with 10,000
//! clients); 20,000 records/s spread evenly over the deals. Measures
//! records per CPU-second of the server, and latency; each client checks it
//! got exactly the events of its own deals.
//!
//! Then crm-bridge again with permissions on: the role the bench's tokens
//! carry (`user`) sees only the deals granted to it, and the permissions
//! topic grants each client's user exactly its five deals (50,000 grants),
//! so the deliveries are the same and each is decided against the grants.
//! Its CPU per record beside the run with permissions off is the cost of
//! permissions end to end.

use std::time::{Duration, Instant};

use crm_bridge::domain::{Grant, Granted, Grantee, OrgId, ResourceKind, UserId};

use super::{ORG, Scale, check, client, deal_subscription, user_of};
use crate::feed::Feed;
use crate::load::{Fleet, RAMP};
use crate::report::{Better, Figure, Report, Row};
use crate::servers::{Kind, Server};
use crate::support::avro::encoder;
use crate::support::{Broker, Producer, eventually};

const DEALS: u64 = 10_000;
const PER_CLIENT: u64 = 5;
const RATE: u64 = 20_000;
/// The permissions topic of the run with permissions on.
const ACCESS: &str = "crm.access";

fn deal_name(deal: u64) -> String {
    format!("deal_{deal}")
}

/// The deals client `index` subscribes to.
fn deals_of(index: usize) -> impl Iterator<Item = u64> {
    (0..PER_CLIENT).map(move |k| (index as u64 * PER_CLIENT + k) % DEALS)
}

/// The deal record `seq` is about: a stride coprime with DEALS, so every
/// deal gets its share.
fn deal_of(seq: u64) -> u64 {
    (seq * 7919 + 13) % DEALS
}

struct Measured {
    records_per_cpu_second: f64,
    p50_ms: Option<f64>,
    p99_ms: Option<f64>,
    problem: Option<String>,
}

/// The configuration of the run with permissions on.
fn permissions_toml(broker: &Broker) -> String {
    format!(
        "[permissions]\nenabled = true\ntopic = \"{}\"\n\
         [permissions.roles.user]\ndeal = {{ see = \"granted\" }}\n",
        broker.topic(ACCESS)
    )
}

/// Grants each client's user its deals, and waits until `server` holds
/// them all.
async fn grant_deals(broker: &Broker, server: &Server, clients: usize) {
    let producer = Producer::new(broker);
    let org = OrgId::new(ORG).expect("a valid organisation");
    let grants: Vec<(String, Vec<u8>)> = (0..clients)
        .flat_map(|client| deals_of(client).map(move |deal| (client, deal)))
        .map(|(client, deal)| {
            let grant = Grant {
                org: org.clone(),
                grantee: Grantee::User(UserId::new(&user_of(client)).expect("a valid user")),
                granted: Granted::Resource(ResourceKind::Deal, deal_name(deal).into()),
                granted_at_ms: 0,
            };
            let value = encoder()
                .encode_grant(&grant)
                .expect("the bundled grant schema");
            (format!("grant-{client}-{deal}"), value)
        })
        .collect();
    for chunk in grants.chunks(5_000) {
        let sends = chunk
            .iter()
            .map(|(key, value)| producer.send(ACCESS, key, value));
        futures::future::join_all(sends).await;
    }
    let all = grants.len() as u64;
    let held = async || server.stat("grants").await;
    eventually("the bridge to hold every grant", held, |held| *held >= all).await;
}

async fn measure(kind: Kind, broker: &Broker, scale: &Scale, permissions: bool) -> Measured {
    let server = if permissions {
        let server = Server::start_with(kind, broker, &permissions_toml(broker)).await;
        grant_deals(broker, &server, scale.clients).await;
        server
    } else {
        Server::start(kind, broker).await
    };
    let specs = (0..scale.clients)
        .map(|i| {
            let deals: Vec<String> = deals_of(i).map(deal_name).collect();
            let subscriptions = deals.iter().map(|d| deal_subscription(d)).collect();
            client(i, subscriptions, Some(deals))
        })
        .collect();
    let mut fleet = Fleet::new(&server.url, server.protocol(), specs);
    fleet
        .connect_all(false, RAMP, Duration::from_secs(180))
        .await;
    let mut feed = Feed::new(broker, server.kind);
    let consumed_before = server.consumed().await;
    let cpu_before = server.cpu_seconds();
    let sent = feed
        .paced(
            RATE,
            Duration::from_secs(scale.seconds),
            ORG,
            "pipeline_selective",
            |seq| deal_name(deal_of(seq)),
        )
        .await;
    let mut per_deal = vec![0u64; DEALS as usize];
    sent.clone()
        .for_each(|seq| per_deal[deal_of(seq) as usize] += 1);
    let expected = |client: usize| deals_of(client).map(|d| per_deal[d as usize]).sum::<u64>();
    let all: u64 = (0..scale.clients).map(expected).sum();
    fleet.wait_received(all, Duration::from_secs(60)).await;
    let deadline = Instant::now() + Duration::from_secs(60);
    let records = sent.end - sent.start;
    while server.consumed().await < consumed_before + records && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let cpu = server.cpu_seconds() - cpu_before;
    println!(
        "  {}: {} of {all} delivered, {cpu:.2} s CPU for {records} records",
        kind.label(),
        fleet.totals().received
    );
    Measured {
        records_per_cpu_second: records as f64 / cpu,
        p50_ms: fleet.shared.latency.quantile_ms(0.50),
        p99_ms: fleet.shared.latency.quantile_ms(0.99),
        problem: check(&fleet, expected),
    }
}

pub async fn run(broker: &Broker, scale: &Scale, report: &mut Report) {
    let b = measure(Kind::CrmBridge, broker, scale, false).await;
    let p = measure(Kind::NodePeer, broker, scale, false).await;
    let c = measure(Kind::Centrifugo, broker, scale, false).await;
    let on = measure(Kind::CrmBridge, broker, scale, true).await;
    let scenario = format!(
        "3. selective, {} clients × {PER_CLIENT} ids, {RATE} records/s",
        scale.clients
    );
    report.add(Row {
        scenario: scenario.clone(),
        measure: "records per CPU-second".into(),
        unit: "/s".into(),
        better: Better::Higher,
        bridge: Figure::checked(Some(b.records_per_cpu_second), b.problem.clone()),
        peer: Figure::checked(Some(p.records_per_cpu_second), p.problem.clone()),
        centrifugo: Figure::checked(Some(c.records_per_cpu_second), c.problem.clone()),
        goal: Some((
            "≥ 3× the peer's".into(),
            b.problem.is_none() && b.records_per_cpu_second >= 3.0 * p.records_per_cpu_second,
        )),
    });
    report.add(Row {
        scenario: scenario.clone(),
        measure: "latency p50".into(),
        unit: "ms".into(),
        better: Better::Lower,
        bridge: Figure::checked(b.p50_ms, b.problem.clone()),
        peer: Figure::checked(p.p50_ms, p.problem.clone()),
        centrifugo: Figure::checked(c.p50_ms, c.problem.clone()),
        goal: None,
    });
    let met = matches!((b.p99_ms, p.p99_ms), (Some(b), Some(p)) if b * 2.0 <= p);
    report.add(Row {
        scenario: scenario.clone(),
        measure: "latency p99".into(),
        unit: "ms".into(),
        better: Better::Lower,
        bridge: Figure::checked(b.p99_ms, b.problem.clone()),
        peer: Figure::checked(p.p99_ms, p.problem.clone()),
        centrifugo: Figure::checked(c.p99_ms, c.problem.clone()),
        goal: Some(("≤ half the peer's".into(), met && b.problem.is_none())),
    });
    // CPU per record, on ÷ off, is records per CPU-second off ÷ on.
    let cost = b.records_per_cpu_second / on.records_per_cpu_second;
    println!("  permissions on ÷ off, CPU per record: {cost:.2}×");
    report.add(Row {
        scenario,
        measure: format!(
            "records per CPU-second, permissions on ({} grants)",
            scale.clients as u64 * PER_CLIENT
        ),
        unit: "/s".into(),
        better: Better::Higher,
        bridge: Figure::checked(Some(on.records_per_cpu_second), on.problem.clone()),
        peer: Figure::checked(Some(p.records_per_cpu_second), p.problem.clone()),
        centrifugo: Figure::not_comparable("no per-resource permissions on a Kafka stream"),
        goal: Some((
            format!("CPU per record ≤ 1.2× permissions off ({cost:.2}×)"),
            on.problem.is_none() && b.problem.is_none() && cost <= 1.2,
        )),
    });
}
