//! The demo producer `make run` starts: realistic CRM activity across two
//! organisations, written the way a real producing service would (Avro,
//! Confluent framing, key = resource id). With `schemas.registry_url` set it
//! registers each topic's schema under `<topic>-value` and frames records
//! with the id the registry returns, as Confluent's serializers do; without,
//! it writes the local registry's ids.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use apache_avro::Schema;
use apache_avro::types::{Record, Value};
use rdkafka::producer::{FutureProducer, FutureRecord};
use tokio_util::sync::CancellationToken;

use crate::config::SchemaConfig;
use crate::decode::{HttpRegistry, LocalRegistry, frame};
use crate::domain::TopicKind;
use crate::kafka::KafkaConfig;

pub const STAGES: [&str; 6] = [
    "lead",
    "qualified",
    "proposal",
    "negotiation",
    "closed-won",
    "closed-lost",
];
const CONTACT_ACTIONS: [&str; 6] = ["create", "update", "delete", "activity", "email", "note"];
const DEAL_ACTIONS: [&str; 6] = [
    "create",
    "update",
    "delete",
    "stage_change",
    "assignment",
    "comment",
];
const EMAIL_ACTIONS: [&str; 3] = ["new_email", "reply", "forward"];
const SUBJECTS: [&str; 4] = [
    "Re: Follow up",
    "Pricing question",
    "Contract draft",
    "Meeting next week",
];

/// A demo organisation: its users (id, display name) and resources. Its
/// users are the ones the dashboard's dev sign-in offers.
pub struct DemoOrg {
    pub id: &'static str,
    pub name: &'static str,
    pub users: &'static [(&'static str, &'static str)],
    pub pipeline: &'static str,
    /// Deal ids and titles.
    pub deals: &'static [(&'static str, &'static str)],
    pub contacts: &'static [(&'static str, &'static str)],
}

pub const ORGS: [DemoOrg; 2] = [
    DemoOrg {
        id: "org-acme",
        name: "Acme",
        users: &[
            ("user_alice", "Alice Martin"),
            ("user_bob", "Bob Chen"),
            ("user_carol", "Carol Diaz"),
        ],
        pipeline: "pipeline_acme_sales",
        deals: &[
            ("deal_acme_1", "Northwind renewal"),
            ("deal_acme_2", "Contoso expansion"),
            ("deal_acme_3", "Fabrikam pilot"),
            ("deal_acme_4", "Tailspin migration"),
            ("deal_acme_5", "Litware onboarding"),
        ],
        contacts: &[
            ("contact_acme_1", "jane@northwind.example"),
            ("contact_acme_2", "li@contoso.example"),
            ("contact_acme_3", "omar@fabrikam.example"),
        ],
    },
    DemoOrg {
        id: "org-globex",
        name: "Globex",
        users: &[("user_dave", "Dave Okafor"), ("user_erin", "Erin Walsh")],
        pipeline: "pipeline_globex_enterprise",
        deals: &[
            ("deal_globex_1", "Initech licences"),
            ("deal_globex_2", "Umbrella support plan"),
            ("deal_globex_3", "Hooli integration"),
        ],
        contacts: &[
            ("contact_globex_1", "hank@initech.example"),
            ("contact_globex_2", "ivy@umbrella.example"),
        ],
    },
];

/// One record to produce: its topic, key and Avro fields.
struct Activity {
    topic: TopicKind,
    key: String,
    fields: Vec<(&'static str, Value)>,
}

fn pick<T: Copy>(items: &[T]) -> T {
    items[fastrand::usize(..items.len())]
}

fn s(v: &str) -> Value {
    Value::String(v.to_owned())
}

fn optional(v: Option<&str>) -> Value {
    match v {
        Some(v) => Value::Union(1, Box::new(s(v))),
        None => Value::Union(0, Box::new(Value::Null)),
    }
}

/// A value of the `changes` map (`["null", "boolean", "long", "double", "string"]`).
fn change_string(v: &str) -> Value {
    Value::Union(4, Box::new(s(v)))
}

fn change_long(v: i64) -> Value {
    Value::Union(2, Box::new(Value::Long(v)))
}

fn now_ms() -> Value {
    let ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    Value::TimestampMillis(ms)
}

fn symbol(symbols: &[&str], name: &str) -> Value {
    let index = symbols
        .iter()
        .position(|s| *s == name)
        .expect("known symbol") as u32;
    Value::Enum(index, name.to_owned())
}

fn uuid() -> Value {
    Value::String(uuid::Uuid::new_v4().to_string())
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

    fn stage_change(&mut self, org: &DemoOrg, user: &str) -> Activity {
        let (deal, _) = pick(org.deals);
        let stage = self.stages.entry(deal).or_insert(0);
        let previous = STAGES[*stage];
        *stage = (*stage + 1 + fastrand::usize(..2)) % STAGES.len();
        let next = STAGES[*stage];
        let changes = HashMap::from([("stage".to_owned(), change_string(next))]);
        deal_activity(
            org,
            deal,
            user,
            "stage_change",
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
            changes.insert("stage".to_owned(), change_string(STAGES[0]));
            deal_activity(org, deal.0, owner, "create", None, changes)
        })
    })
}

/// A deal's title, value (whole currency units) and owner, as `changes`.
fn deal_fields((_, title): (&str, &str), owner: &str, owner_name: &str) -> HashMap<String, Value> {
    HashMap::from([
        ("title".to_owned(), change_string(title)),
        (
            "value".to_owned(),
            change_long(i64::from(fastrand::u32(5..500)) * 1000),
        ),
        ("owner".to_owned(), change_string(owner)),
        ("ownerName".to_owned(), change_string(owner_name)),
    ])
}

fn deal_activity(
    org: &DemoOrg,
    deal: &str,
    user: &str,
    action: &str,
    stages: Option<(&str, &str)>,
    changes: HashMap<String, Value>,
) -> Activity {
    Activity {
        topic: TopicKind::Deals,
        key: deal.to_owned(),
        fields: vec![
            ("eventId", uuid()),
            ("dealId", s(deal)),
            ("organizationId", s(org.id)),
            ("pipelineId", s(org.pipeline)),
            ("action", symbol(&DEAL_ACTIONS, action)),
            ("actorUserId", s(user)),
            ("occurredAt", now_ms()),
            ("previousStage", optional(stages.map(|s| s.0))),
            ("newStage", optional(stages.map(|s| s.1))),
            ("changes", Value::Map(changes)),
        ],
    }
}

/// `user` takes a deal over and revises its value.
fn deal_update(org: &DemoOrg, user: &str, user_name: &str) -> Activity {
    let deal = pick(org.deals);
    let changes = deal_fields(deal, user, user_name);
    deal_activity(org, deal.0, user, "update", None, changes)
}

fn contact_change(org: &DemoOrg, user: &str) -> Activity {
    let (contact, email) = pick(org.contacts);
    let changes = HashMap::from([
        ("email".to_owned(), change_string(email)),
        (
            "leadScore".to_owned(),
            change_long(i64::from(fastrand::u8(..100))),
        ),
    ]);
    Activity {
        topic: TopicKind::Contacts,
        key: contact.to_owned(),
        fields: vec![
            ("eventId", uuid()),
            ("contactId", s(contact)),
            ("organizationId", s(org.id)),
            (
                "action",
                symbol(
                    &CONTACT_ACTIONS,
                    pick(&["update", "update", "activity", "note"]),
                ),
            ),
            ("actorUserId", s(user)),
            ("occurredAt", now_ms()),
            ("changes", Value::Map(changes)),
        ],
    }
}

fn email(org: &DemoOrg) -> Activity {
    let (contact, from) = pick(org.contacts);
    let thread = format!("thread_{contact}");
    Activity {
        topic: TopicKind::Email,
        key: thread.clone(),
        fields: vec![
            ("eventId", uuid()),
            (
                "emailId",
                Value::String(format!("email_{}", fastrand::u32(..1_000_000))),
            ),
            ("threadId", Value::String(thread)),
            ("organizationId", s(org.id)),
            ("contactId", optional(Some(contact))),
            ("action", symbol(&EMAIL_ACTIONS, "new_email")),
            ("subject", s(pick(&SUBJECTS))),
            ("from", s(from)),
            ("occurredAt", now_ms()),
        ],
    }
}

/// `user` mentions a random teammate.
fn mention(org: &DemoOrg, user: &str, user_name: &str) -> Activity {
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
        topic: TopicKind::Notifications,
        key: target.to_owned(),
        fields: vec![
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
            (
                "link",
                optional(Some(&format!("/deals/{}", pick(org.deals).0))),
            ),
            ("occurredAt", now_ms()),
        ],
    }
}

/// Encodes with the latest schema of each topic's subject (`<topic>-value`).
struct Encoder {
    schemas: HashMap<TopicKind, (u32, Arc<Schema>)>,
}

impl Encoder {
    /// Each topic's schema is the local registry's latest for its default
    /// subject (`crm.deals-value` for `crm.deals`); with `registry`, it is
    /// registered there under the configured topic's subject, and records
    /// carry the id the registry gives it.
    async fn new(
        kafka: &KafkaConfig,
        local: &LocalRegistry,
        registry: Option<&HttpRegistry>,
    ) -> anyhow::Result<Self> {
        let mut schemas = HashMap::new();
        for (kind, topic) in kafka.topics.all() {
            let bundled = format!("crm.{}-value", kind.label());
            let (local_id, schema) = local
                .latest(&bundled)
                .ok_or_else(|| anyhow::anyhow!("no schema for subject {bundled}"))?;
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
            schemas.insert(kind, (id, schema));
        }
        Ok(Self { schemas })
    }

    fn encode(&self, activity: Activity) -> anyhow::Result<Vec<u8>> {
        let (id, schema) = &self.schemas[&activity.topic];
        let mut record =
            Record::new(schema).ok_or_else(|| anyhow::anyhow!("schema {id} is not a record"))?;
        for (name, value) in activity.fields {
            record.put(name, value);
        }
        Ok(frame(*id, &apache_avro::to_avro_datum(schema, record)?))
    }
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
    let encoder = Encoder::new(kafka, &local, registry.as_ref())
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
        let topic = kafka.topics.name(activity.topic);
        let key = activity.key.clone();
        let value = encoder.encode(activity)?;
        match producer
            .send(
                FutureRecord::to(topic).key(&key).payload(&value),
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
    use super::*;
    use crate::decode::{Decoder, SchemaRegistry};

    #[tokio::test]
    async fn every_simulated_activity_decodes_in_the_bridge() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("schemas");
        let encoder = Encoder::new(
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
            let kind = activity.topic;
            let framed = encoder.encode(activity).unwrap();
            let position = crate::domain::Position {
                topic: kind,
                partition: 0,
                offset: 0,
            };
            let event = decoder.decode(position, Some(&framed)).await.unwrap();
            assert!(ORGS.iter().any(|org| org.id == event.org.as_str()));
        }
    }
}
