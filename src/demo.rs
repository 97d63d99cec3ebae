//! The demo producer `make run` starts: realistic CRM activity across two
//! organisations, written the way a real producing service would (Avro,
//! Confluent framing with the local registry's ids, key = resource id).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use apache_avro::Schema;
use apache_avro::types::{Record, Value};
use rdkafka::producer::{FutureProducer, FutureRecord};
use tokio_util::sync::CancellationToken;

use crate::decode::{LocalRegistry, frame};
use crate::kafka::KafkaConfig;

pub const STAGES: [&str; 6] = [
    "lead",
    "qualified",
    "proposal",
    "negotiation",
    "closed-won",
    "closed-lost",
];

/// A demo organisation: its users and resources.
pub struct DemoOrg {
    pub id: &'static str,
    pub users: &'static [(&'static str, &'static str)],
    pub pipeline: &'static str,
    pub deals: &'static [&'static str],
    pub contacts: &'static [(&'static str, &'static str)],
}

pub const ORGS: [DemoOrg; 2] = [
    DemoOrg {
        id: "org-acme",
        users: &[
            ("user_alice", "Alice Martin"),
            ("user_bob", "Bob Chen"),
            ("user_carol", "Carol Diaz"),
        ],
        pipeline: "pipeline_acme_sales",
        deals: &[
            "deal_acme_1",
            "deal_acme_2",
            "deal_acme_3",
            "deal_acme_4",
            "deal_acme_5",
        ],
        contacts: &[
            ("contact_acme_1", "jane@northwind.example"),
            ("contact_acme_2", "li@contoso.example"),
            ("contact_acme_3", "omar@fabrikam.example"),
        ],
    },
    DemoOrg {
        id: "org-globex",
        users: &[("user_dave", "Dave Okafor"), ("user_erin", "Erin Walsh")],
        pipeline: "pipeline_globex_enterprise",
        deals: &["deal_globex_1", "deal_globex_2", "deal_globex_3"],
        contacts: &[
            ("contact_globex_1", "hank@initech.example"),
            ("contact_globex_2", "ivy@umbrella.example"),
        ],
    },
];

struct Encoder {
    schemas: HashMap<&'static str, (u32, Arc<Schema>)>,
}

impl Encoder {
    fn encode(&self, subject: &str, fields: Vec<(&str, Value)>) -> anyhow::Result<Vec<u8>> {
        let (id, schema) = &self.schemas[subject];
        let mut record =
            Record::new(schema).ok_or_else(|| anyhow::anyhow!("{subject} is not a record"))?;
        for (name, value) in fields {
            record.put(name, value);
        }
        Ok(frame(*id, &apache_avro::to_avro_datum(schema, record)?))
    }
}

fn s(v: &str) -> Value {
    Value::String(v.to_owned())
}

fn some(v: &str) -> Value {
    Value::Union(1, Box::new(s(v)))
}

fn now_ms() -> Value {
    let ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    Value::TimestampMillis(ms)
}

fn action(symbols: &[&str], symbol: &str) -> Value {
    let index = symbols
        .iter()
        .position(|s| *s == symbol)
        .expect("known symbol") as u32;
    Value::Enum(index, symbol.to_owned())
}

const CONTACT_ACTIONS: [&str; 6] = ["create", "update", "delete", "activity", "email", "note"];
const DEAL_ACTIONS: [&str; 6] = [
    "create",
    "update",
    "delete",
    "stage_change",
    "assignment",
    "comment",
];

/// Produces `rate` events per second until `stop` is cancelled.
pub async fn run(
    kafka: &KafkaConfig,
    registry: &LocalRegistry,
    rate: f64,
    stop: CancellationToken,
) -> anyhow::Result<()> {
    let topics = &kafka.topics;
    let subjects = [
        ("contacts", topics.contacts.as_str()),
        ("deals", topics.deals.as_str()),
        ("email", topics.email.as_str()),
        ("notifications", topics.notifications.as_str()),
    ];
    let mut schemas = HashMap::new();
    for (short, topic) in subjects {
        // Subjects follow the topic name strategy of the bundled registry.
        let subject = format!("crm.{short}-value");
        let found = registry
            .latest(&subject)
            .ok_or_else(|| anyhow::anyhow!("no schema for subject {subject}"))?;
        schemas.insert(short, found);
        tracing::info!(topic, subject, "demo producer writing");
    }
    let encoder = Encoder { schemas };
    let producer: FutureProducer = kafka.client_config().set("linger.ms", "5").create()?;
    let mut stages: HashMap<&str, usize> = HashMap::new();
    let mut interval = tokio::time::interval(Duration::from_secs_f64(1.0 / rate.max(0.01)));
    let mut produced = 0u64;
    loop {
        tokio::select! {
            _ = stop.cancelled() => return Ok(()),
            _ = interval.tick() => {}
        }
        let org = &ORGS[fastrand::usize(..ORGS.len())];
        let (user, user_name) = org.users[fastrand::usize(..org.users.len())];
        let event_id = Value::String(uuid::Uuid::new_v4().to_string());
        let (topic, key, value) = match fastrand::u8(..100) {
            0..=39 => {
                let deal = org.deals[fastrand::usize(..org.deals.len())];
                let stage = stages.entry(deal).or_insert(0);
                let previous = STAGES[*stage];
                *stage = (*stage + 1 + fastrand::usize(..2)) % STAGES.len();
                let next = STAGES[*stage];
                let value = encoder.encode(
                    "deals",
                    vec![
                        ("eventId", event_id),
                        ("dealId", s(deal)),
                        ("organizationId", s(org.id)),
                        ("pipelineId", s(org.pipeline)),
                        ("action", action(&DEAL_ACTIONS, "stage_change")),
                        ("actorUserId", s(user)),
                        ("occurredAt", now_ms()),
                        ("previousStage", some(previous)),
                        ("newStage", some(next)),
                        (
                            "changes",
                            Value::Map(HashMap::from([(
                                "stage".to_owned(),
                                Value::Union(4, Box::new(s(next))),
                            )])),
                        ),
                    ],
                )?;
                (&topics.deals, deal.to_owned(), value)
            }
            40..=54 => {
                let deal = org.deals[fastrand::usize(..org.deals.len())];
                let amount = Value::Union(
                    2,
                    Box::new(Value::Long(i64::from(fastrand::u32(5..500)) * 1000)),
                );
                let value = encoder.encode(
                    "deals",
                    vec![
                        ("eventId", event_id),
                        ("dealId", s(deal)),
                        ("organizationId", s(org.id)),
                        ("pipelineId", s(org.pipeline)),
                        ("action", action(&DEAL_ACTIONS, "update")),
                        ("actorUserId", s(user)),
                        ("occurredAt", now_ms()),
                        ("previousStage", Value::Union(0, Box::new(Value::Null))),
                        ("newStage", Value::Union(0, Box::new(Value::Null))),
                        (
                            "changes",
                            Value::Map(HashMap::from([
                                ("amount".to_owned(), amount),
                                ("owner".to_owned(), Value::Union(4, Box::new(s(user_name)))),
                            ])),
                        ),
                    ],
                )?;
                (&topics.deals, deal.to_owned(), value)
            }
            55..=74 => {
                let (contact, email) = org.contacts[fastrand::usize(..org.contacts.len())];
                let verb = ["update", "update", "activity", "note"][fastrand::usize(..4)];
                let value = encoder.encode(
                    "contacts",
                    vec![
                        ("eventId", event_id),
                        ("contactId", s(contact)),
                        ("organizationId", s(org.id)),
                        ("action", action(&CONTACT_ACTIONS, verb)),
                        ("actorUserId", s(user)),
                        ("occurredAt", now_ms()),
                        (
                            "changes",
                            Value::Map(HashMap::from([
                                ("email".to_owned(), Value::Union(4, Box::new(s(email)))),
                                (
                                    "leadScore".to_owned(),
                                    Value::Union(
                                        2,
                                        Box::new(Value::Long(i64::from(fastrand::u8(..100)))),
                                    ),
                                ),
                            ])),
                        ),
                    ],
                )?;
                (&topics.contacts, contact.to_owned(), value)
            }
            75..=89 => {
                let (contact, from) = org.contacts[fastrand::usize(..org.contacts.len())];
                let thread = format!("thread_{contact}");
                let key = thread.clone();
                let value = encoder.encode(
                    "email",
                    vec![
                        ("eventId", event_id),
                        (
                            "emailId",
                            Value::String(format!("email_{}", fastrand::u32(..1_000_000))),
                        ),
                        ("threadId", Value::String(thread)),
                        ("organizationId", s(org.id)),
                        ("contactId", some(contact)),
                        (
                            "action",
                            action(&["new_email", "reply", "forward"], "new_email"),
                        ),
                        (
                            "subject",
                            s([
                                "Re: Follow up",
                                "Pricing question",
                                "Contract draft",
                                "Meeting next week",
                            ][fastrand::usize(..4)]),
                        ),
                        ("from", s(from)),
                        ("occurredAt", now_ms()),
                    ],
                )?;
                (&topics.email, key, value)
            }
            _ => {
                // Someone else is mentioned: the actor's teammate.
                let (target, _) = org
                    .users
                    .iter()
                    .copied()
                    .find(|(id, _)| *id != user)
                    .unwrap_or((user, user_name));
                let deal = org.deals[fastrand::usize(..org.deals.len())];
                let value = encoder.encode(
                    "notifications",
                    vec![
                        (
                            "notificationId",
                            Value::String(format!("notif-{}", fastrand::u32(..1_000_000))),
                        ),
                        ("organizationId", s(org.id)),
                        ("targetUserId", s(target)),
                        ("type", s("mention")),
                        ("title", s("You were mentioned")),
                        (
                            "message",
                            Value::String(format!("{user_name} mentioned you in a comment")),
                        ),
                        ("link", some(&format!("/deals/{deal}"))),
                        ("occurredAt", now_ms()),
                    ],
                )?;
                (&topics.notifications, target.to_owned(), value)
            }
        };
        let record = FutureRecord::to(topic).key(&key).payload(&value);
        if let Err((e, _)) = producer.send(record, Duration::from_secs(5)).await {
            tracing::warn!(error = %e, topic, "demo producer could not send");
        } else {
            produced += 1;
            if produced.is_multiple_of(100) {
                tracing::info!(produced, "demo producer progress");
            }
        }
    }
}
