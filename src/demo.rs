//! The demo producer `make run` starts: realistic CRM activity across two
//! organisations, written the way a real producing service would (Avro,
//! Confluent framing, key = resource id). With `schemas.registry_url` set it
//! registers each topic's schema under `<topic>-value` and frames records
//! with the id the registry returns, as Confluent's serializers do; without,
//! it writes the local registry's ids.

use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rdkafka::producer::{FutureProducer, FutureRecord};
use serde_json::{Map, Value};
use tokio_util::sync::CancellationToken;

use crate::decode::SchemaConfig;
use crate::decode::{Encoder, HttpRegistry, LocalRegistry};
use crate::dev_tenants::{DevOrg, ORGS};
use crate::domain::{
    Action, ContactEvent, DealEvent, EmailEvent, EventBody, NotificationEvent, UserId,
};
use crate::kafka::KafkaConfig;

pub const STAGES: [&str; 6] = [
    "lead",
    "qualified",
    "proposal",
    "negotiation",
    "closed-won",
    "closed-lost",
];
const SUBJECTS: [&str; 4] = [
    "Re: Follow up",
    "Pricing question",
    "Contract draft",
    "Meeting next week",
];

/// One record to produce: its key and event.
struct Activity {
    key: String,
    org: &'static str,
    body: EventBody,
}

fn pick<T: Copy>(items: &[T]) -> T {
    items[fastrand::usize(..items.len())]
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// Invents activity: deals move through stages (remembered per deal), deals
/// and contacts change, emails arrive, teammates get mentioned.
struct Simulation {
    stages: HashMap<&'static str, usize>,
}

impl Simulation {
    fn next(&mut self) -> Activity {
        let org = &ORGS[fastrand::usize(..ORGS.len())];
        let (user, user_name) = pick(org.users);
        match fastrand::u8(..100) {
            0..=34 => self.stage_change(org, user),
            35..=59 => deal_update(org, user, user_name),
            60..=74 => contact_change(org, user),
            75..=89 => email(org),
            _ => mention(org, user, user_name),
        }
    }

    fn stage_change(&mut self, org: &DevOrg, user: &str) -> Activity {
        let (deal, _) = pick(org.deals);
        let stage = self.stages.entry(deal).or_insert(0);
        let previous = STAGES[*stage];
        *stage = (*stage + 1 + fastrand::usize(..2)) % STAGES.len();
        let next = STAGES[*stage];
        let changes = Map::from_iter([("stage".to_owned(), Value::from(next))]);
        deal_activity(
            org,
            deal,
            user,
            Action::StageChange,
            Some((previous, next)),
            changes,
        )
    }
}

/// `create` of every demo deal, in the first stage, with the fields a
/// dashboard shows (title, value, owner): produced once at start-up, so a
/// board open from the beginning knows every deal.
fn deal_creates() -> impl Iterator<Item = Activity> {
    ORGS.iter().flat_map(|org| {
        org.deals.iter().map(move |deal| {
            let (owner, owner_name) = pick(org.users);
            let mut changes = deal_fields(*deal, owner, owner_name);
            changes.insert("stage".to_owned(), Value::from(STAGES[0]));
            deal_activity(org, deal.0, owner, Action::Create, None, changes)
        })
    })
}

/// A deal's title, value (whole currency units) and owner, as `changes`.
fn deal_fields((_, title): (&str, &str), owner: &str, owner_name: &str) -> Map<String, Value> {
    Map::from_iter([
        ("title".to_owned(), Value::from(title)),
        (
            "value".to_owned(),
            Value::from(i64::from(fastrand::u32(5..500)) * 1000),
        ),
        ("owner".to_owned(), Value::from(owner)),
        ("ownerName".to_owned(), Value::from(owner_name)),
    ])
}

fn deal_activity(
    org: &DevOrg,
    deal: &str,
    user: &str,
    action: Action,
    stages: Option<(&str, &str)>,
    changes: Map<String, Value>,
) -> Activity {
    Activity {
        key: deal.to_owned(),
        org: org.id,
        body: EventBody::Deal(DealEvent {
            deal_id: deal.to_owned(),
            pipeline_id: org.pipeline.to_owned(),
            action,
            actor_user_id: user.to_owned(),
            occurred_at_ms: now_ms(),
            previous_stage: stages.map(|s| s.0.to_owned()),
            new_stage: stages.map(|s| s.1.to_owned()),
            changes,
        }),
    }
}

/// `user` takes a deal over and revises its value.
fn deal_update(org: &DevOrg, user: &str, user_name: &str) -> Activity {
    let deal = pick(org.deals);
    let changes = deal_fields(deal, user, user_name);
    deal_activity(org, deal.0, user, Action::Update, None, changes)
}

fn contact_change(org: &DevOrg, user: &str) -> Activity {
    let (contact, email) = pick(org.contacts);
    let changes = Map::from_iter([
        ("email".to_owned(), Value::from(email)),
        (
            "leadScore".to_owned(),
            Value::from(i64::from(fastrand::u8(..100))),
        ),
    ]);
    Activity {
        key: contact.to_owned(),
        org: org.id,
        body: EventBody::Contact(ContactEvent {
            contact_id: contact.to_owned(),
            action: pick(&[
                Action::Update,
                Action::Update,
                Action::Activity,
                Action::Note,
            ]),
            actor_user_id: user.to_owned(),
            occurred_at_ms: now_ms(),
            changes,
        }),
    }
}

fn email(org: &DevOrg) -> Activity {
    let (contact, from) = pick(org.contacts);
    let thread = format!("thread_{contact}");
    Activity {
        key: thread.clone(),
        org: org.id,
        body: EventBody::Email(EmailEvent {
            email_id: format!("email_{}", fastrand::u32(..1_000_000)),
            thread_id: thread,
            contact_id: Some(contact.to_owned()),
            action: Action::NewEmail,
            subject: pick(&SUBJECTS).to_owned(),
            from: from.to_owned(),
            occurred_at_ms: now_ms(),
        }),
    }
}

/// `user` mentions a random teammate.
fn mention(org: &DevOrg, user: &str, user_name: &str) -> Activity {
    let teammates: Vec<&str> = org
        .users
        .iter()
        .map(|(id, _)| *id)
        .filter(|id| *id != user)
        .collect();
    let target = if teammates.is_empty() {
        user
    } else {
        pick(&teammates)
    };
    Activity {
        key: target.to_owned(),
        org: org.id,
        body: EventBody::Notification(NotificationEvent {
            notification_id: format!("notif-{}", fastrand::u32(..1_000_000)),
            target_user: UserId::new(target).expect("the demo's user ids are valid"),
            kind: "mention".to_owned(),
            title: "You were mentioned".to_owned(),
            message: format!("{user_name} mentioned you in a comment"),
            link: Some(format!("/deals/{}", pick(org.deals).0)),
            occurred_at_ms: now_ms(),
        }),
    }
}

/// Writes each topic's records with the local registry's latest schema for
/// it; with `registry`, that schema is registered there under the
/// configured topic's subject (`<topic>-value`), and records carry the id
/// the registry gives it.
async fn encoder(
    kafka: &KafkaConfig,
    local: &LocalRegistry,
    registry: Option<&HttpRegistry>,
) -> anyhow::Result<Encoder> {
    let mut writers = HashMap::new();
    for (kind, topic) in kafka.topics.all() {
        let (local_id, schema) = local
            .latest_of(kind)
            .ok_or_else(|| anyhow::anyhow!("no schema for {} records", kind.label()))?;
        let subject = format!("{topic}-value");
        let id = match registry {
            // The schema as Avro JSON with its defaults, as a Java
            // producer registers `Schema.toString()`.
            Some(registry) => {
                registry
                    .register(&subject, &serde_json::to_string(&*schema)?)
                    .await?
            }
            None => local_id,
        };
        tracing::info!(topic, subject, schema_id = id, "demo producer writing");
        writers.insert(kind, (id, schema));
    }
    Ok(Encoder::new(writers))
}

/// The record value of `activity`, under a fresh event id.
fn encode(encoder: &Encoder, activity: &Activity) -> anyhow::Result<Vec<u8>> {
    let event_id = uuid::Uuid::new_v4().to_string();
    Ok(encoder.encode(&event_id, activity.org, &activity.body)?)
}

/// Produces `rate` events per second until `stop` is cancelled.
pub async fn run(
    kafka: &KafkaConfig,
    schemas: &SchemaConfig,
    rate: f64,
    stop: CancellationToken,
) -> anyhow::Result<()> {
    use anyhow::Context as _;
    let local = LocalRegistry::load(&schemas.local_dir).context("loading schemas")?;
    let registry = schemas.http_registry()?;
    let encoder = encoder(kafka, &local, registry.as_ref())
        .await
        .context("registering the demo's schemas")?;
    let producer: FutureProducer = kafka.client_config().set("linger.ms", "5").create()?;
    let mut simulation = Simulation {
        stages: HashMap::new(),
    };
    let mut interval = tokio::time::interval(Duration::from_secs_f64(1.0 / rate.max(0.01)));
    let mut produced = 0u64;
    let mut creates = deal_creates();
    loop {
        tokio::select! {
            _ = stop.cancelled() => return Ok(()),
            _ = interval.tick() => {}
        }
        let activity = creates.next().unwrap_or_else(|| simulation.next());
        let topic = kafka.topics.name(activity.body.topic());
        let value = encode(&encoder, &activity)?;
        match producer
            .send(
                FutureRecord::to(topic).key(&activity.key).payload(&value),
                Duration::from_secs(5),
            )
            .await
        {
            Err((e, _)) => tracing::warn!(error = %e, topic, "demo producer could not send"),
            Ok(_) => {
                produced += 1;
                if produced.is_multiple_of(100) {
                    tracing::info!(produced, "demo producer progress");
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::decode::{Decoder, SchemaRegistry};

    #[tokio::test]
    async fn every_simulated_activity_decodes_in_the_bridge() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("schemas");
        let encoder = encoder(
            &KafkaConfig::default(),
            &LocalRegistry::load(&dir).unwrap(),
            None,
        )
        .await
        .unwrap();
        let decoder = Decoder::new(Arc::new(SchemaRegistry::Local(
            LocalRegistry::load(&dir).unwrap(),
        )));
        let mut simulation = Simulation {
            stages: HashMap::new(),
        };
        for activity in deal_creates().chain(std::iter::repeat_with(|| simulation.next()).take(300))
        {
            let framed = encode(&encoder, &activity).unwrap();
            let position = crate::domain::Position {
                topic: activity.body.topic(),
                partition: 0,
                offset: 0,
            };
            let event = decoder.decode(position, Some(&framed)).await.unwrap();
            assert!(ORGS.iter().any(|org| org.id == event.org.as_str()));
            assert_eq!(
                (event.org.as_str(), &event.body),
                (activity.org, &activity.body)
            );
        }
    }
}
