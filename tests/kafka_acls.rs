//! Least privilege, proven: with Kafka's authorizer on (StandardAuthorizer),
//! a bridge whose user holds exactly the ACLs of the table in
//! docs/configuration.md ("The ACLs the bridge needs") works end to end, and
//! for each row, a bridge whose user holds all the others shows the part
//! that row is for failing, with a clear error. The table is read from that
//! page, so the test and the documentation cannot drift apart.
//!
//! One node with a SASL_PLAINTEXT listener (SCRAM-SHA-512, a user per
//! bridge); the PLAINTEXT listener, whose anonymous principal is a super
//! user, is the tests' own (topics, ACLs, producer).

mod support;

use crm_bridge::domain::Action;
use serde_json::json;
use support::avro::deal;
use support::bridge::wait_ready;
use support::broker::NodeExtras;
use support::process::BridgeProcess;
use support::semantics::create_topics;
use support::{Broker, Clients, Producer, eventually, free_port, repo_path, token};

const PASSWORD: &str = "acl-test-password";
const DEAD_LETTERS: &str = "crm.dead-letters";

/// One row of the documented table.
#[derive(Debug)]
struct Acl {
    operation: String,
    resource: String,
    name: String,
}

/// The rows of docs/configuration.md's ACL table.
fn documented_acls() -> Vec<Acl> {
    let page = std::fs::read_to_string(repo_path("docs/configuration.md")).unwrap();
    let table = page
        .split("### The ACLs the bridge needs")
        .nth(1)
        .expect("docs/configuration.md's ACL section");
    let rows: Vec<Acl> = table
        .lines()
        .skip_while(|line| !line.starts_with("| Operation"))
        .skip(2)
        .take_while(|line| line.starts_with('|'))
        .map(|line| {
            let cells: Vec<&str> = line.split('|').map(str::trim).collect();
            Acl {
                operation: cells[1].to_owned(),
                resource: cells[2].to_owned(),
                name: cells[3].to_owned(),
            }
        })
        .collect();
    assert!(rows.len() >= 4, "{rows:?}");
    rows
}

impl Acl {
    /// The resource options of `kafka-acls.sh` for this row, with the
    /// bridge's default names (the dedicated node's topics have no prefix).
    fn resources(&self) -> Vec<String> {
        let topics = |names: &[&str]| -> Vec<String> {
            names
                .iter()
                .flat_map(|name| ["--topic".to_owned(), (*name).to_owned()])
                .collect()
        };
        match (self.resource.as_str(), self.name.as_str()) {
            ("Topic", "each of `kafka.topics`") => topics(&[
                "crm.contacts",
                "crm.deals",
                "crm.email",
                "crm.notifications",
            ]),
            ("Topic", "`presence.topic`") => topics(&["crm-bridge.presence"]),
            ("Topic", "`kafka.dead_letter_topic`") => topics(&[DEAD_LETTERS]),
            ("Group", "prefix `kafka.group_prefix` and `-`") => [
                "--group",
                "crm-bridge-",
                "--resource-pattern-type",
                "prefixed",
            ]
            .map(str::to_owned)
            .to_vec(),
            other => panic!("a row this test cannot grant: {other:?}"),
        }
    }

    fn label(&self) -> String {
        format!("{} on {} {}", self.operation, self.resource, self.name)
    }
}

fn user(index: usize) -> String {
    format!("bridge{index}")
}

/// The node, with a SCRAM user per bridge: `bridge0` … `bridge{users-1}`.
fn authorizing_broker(users: usize) -> (Broker, String) {
    let sasl = format!("127.0.0.1:{}", free_port());
    let properties = |plaintext: u16, controller: u16| {
        let plaintext = format!("PLAINTEXT://127.0.0.1:{plaintext}");
        vec![
            format!(
                "listeners={plaintext},CONTROLLER://127.0.0.1:{controller},SASL_PLAINTEXT://{sasl}"
            ),
            format!("advertised.listeners={plaintext},SASL_PLAINTEXT://{sasl}"),
            "listener.security.protocol.map=\
             PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT,SASL_PLAINTEXT:SASL_PLAINTEXT"
                .to_owned(),
            "sasl.enabled.mechanisms=SCRAM-SHA-512".to_owned(),
            "listener.name.sasl_plaintext.scram-sha-512.sasl.jaas.config=\
             org.apache.kafka.common.security.scram.ScramLoginModule required;"
                .to_owned(),
            "authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer"
                .to_owned(),
            // The PLAINTEXT and CONTROLLER listeners' principal.
            "super.users=User:ANONYMOUS".to_owned(),
        ]
    };
    let scram = (0..users)
        .map(|i| {
            format!(
                "--add-scram SCRAM-SHA-512=[name={},password={PASSWORD}]",
                user(i)
            )
        })
        .collect::<Vec<_>>()
        .join(" ");
    let extras = NodeExtras {
        format_args: &scram,
        ..Default::default()
    };
    (Broker::dedicated_with(properties, extras), sasl)
}

/// Grants `acl` to each of `users`, in one call of Kafka's ACL tool.
fn grant(broker: &Broker, acl: &Acl, users: &[String]) {
    let mut args = vec!["--add".to_owned()];
    for user in users {
        args.extend(["--allow-principal".to_owned(), format!("User:{user}")]);
    }
    args.extend(["--operation".to_owned(), acl.operation.clone()]);
    args.extend(acl.resources());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    broker.tool("org.apache.kafka.tools.AclCommand", &args);
}

/// A bridge binary reading as `user` through the SASL listener.
fn bridge_as(broker: &Broker, sasl: &str, user: &str) -> BridgeProcess {
    let env = [
        ("CRM_BRIDGE_KAFKA__BROKERS", sasl),
        ("CRM_BRIDGE_KAFKA__DEAD_LETTER_TOPIC", DEAD_LETTERS),
        (
            "CRM_BRIDGE_KAFKA_PROPERTY_SECURITY_PROTOCOL",
            "SASL_PLAINTEXT",
        ),
        ("CRM_BRIDGE_KAFKA_PROPERTY_SASL_MECHANISM", "SCRAM-SHA-512"),
        ("CRM_BRIDGE_KAFKA_PROPERTY_SASL_USERNAME", user),
        ("CRM_BRIDGE_KAFKA_PROPERTY_SASL_PASSWORD", PASSWORD),
    ];
    BridgeProcess::spawn_unready(broker, free_port(), user, "", &env)
}

async fn readyz(bridge: &BridgeProcess) -> (u16, String) {
    let response = reqwest::get(format!("{}/readyz", bridge.internal_url))
        .await
        .unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_documented_acls_suffice_and_each_is_needed() {
    let acls = documented_acls();
    // bridge0 holds every row; bridge{i+1} every row but row i.
    let users: Vec<String> = (0..=acls.len()).map(user).collect();
    let (broker, sasl) = authorizing_broker(users.len());
    create_topics(&broker, 1, &[]).await;
    support::semantics::admin(&broker)
        .create_topics(
            &[rdkafka::admin::NewTopic::new(
                DEAD_LETTERS,
                1,
                rdkafka::admin::TopicReplication::Fixed(1),
            )],
            &rdkafka::admin::AdminOptions::new(),
        )
        .await
        .unwrap();
    for (row, acl) in acls.iter().enumerate() {
        let holders: Vec<String> = (0..users.len())
            .filter(|&bridge| bridge != row + 1)
            .map(user)
            .collect();
        grant(&broker, acl, &holders);
    }
    let bridges: Vec<BridgeProcess> = users
        .iter()
        .map(|user| bridge_as(&broker, &sasl, user))
        .collect();

    // Every row granted: ready, delivering, parking a poison record.
    let (all, without) = bridges.split_first().unwrap();
    wait_ready(&all.internal_url).await;
    let mut clients = Clients::spawn().await;
    clients
        .connect("c", &all.url, json!({"token": token("user_acl", "org-1")}))
        .await;
    clients
        .subscribe("c", json!({"resource": "deal", "id": "deal_acl"}))
        .await;
    // Once the bridge that may not park is assigned too (it is ready).
    let dead_letter_row = acls
        .iter()
        .position(|acl| acl.operation == "Write" && acl.name == "`kafka.dead_letter_topic`")
        .expect("a dead-letter row");
    wait_ready(&without[dead_letter_row].internal_url).await;
    let producer = Producer::new(&broker);
    producer.send("crm.deals", "deal_acl", b"not avro").await;
    let good = deal("org-1", "deal_acl", "p", Action::Update, None);
    producer.send("crm.deals", "deal_acl", &good).await;
    assert_eq!(
        clients.event("c", "resource-update").await["id"],
        "deal_acl"
    );
    let parked = async || all.stats().await["deadLettered"].as_u64();
    eventually("the poison record to be parked", parked, |n| *n >= Some(1)).await;
    assert_eq!(readyz(all).await, (200, "ready".to_owned()));

    // Each row withheld: the part it is for fails, saying what Kafka denied.
    for ((acl, bridge), user) in acls.iter().zip(without).zip(&users[1..]) {
        let label = acl.label();
        match acl.denied_shows(user) {
            Denied::Readyz(needle) => {
                let what = format!("/readyz without {label} to say {needle:?}");
                eventually(
                    &what,
                    async || readyz(bridge).await,
                    |(status, body)| *status == 503 && body.contains(&needle),
                )
                .await;
            }
            Denied::Parking => {
                let what = format!("parking without {label} to fail");
                let failures = async || bridge.stats().await["deadLetterFailures"].as_u64();
                eventually(&what, failures, |n| *n >= Some(1)).await;
                let log = std::fs::read_to_string(bridge.log_path_of()).unwrap();
                assert!(
                    log.lines()
                        .any(|line| line.contains("cannot park an undecodable record")
                            && line.contains("TopicAuthorizationFailed")
                            && line.contains(DEAD_LETTERS)),
                    "without {label}: {log}"
                );
                assert_eq!(
                    readyz(bridge).await.0,
                    200,
                    "delivery goes on without {label}"
                );
            }
        }
    }
}

/// How a bridge without a row's ACL shows it.
enum Denied {
    /// `/readyz` fails, naming what was denied.
    Readyz(String),
    /// Undecodable records are not parked (logged, counted); the node
    /// stays ready.
    Parking,
}

impl Acl {
    fn denied_shows(&self, user: &str) -> Denied {
        match (
            self.operation.as_str(),
            self.resource.as_str(),
            self.name.as_str(),
        ) {
            ("Read", "Topic", "each of `kafka.topics`") => Denied::Readyz(
                "the live consumer (group crm-bridge-USER): topic crm.deals: \
                 TopicAuthorizationFailed"
                    .replace("USER", user),
            ),
            ("Read", "Group", _) => Denied::Readyz(format!(
                "the live consumer (group crm-bridge-{user}): FindCoordinator response error: \
                 Group authorization failed"
            )),
            ("Read", "Topic", "`presence.topic`") => Denied::Readyz(format!(
                "the presence consumer (group crm-bridge-{user}-presence): Fetch from broker 1 \
                 failed: Broker: Topic authorization failed"
            )),
            ("Write", "Topic", "`presence.topic`") => Denied::Readyz(
                "the presence producer: writing to topic crm-bridge.presence: Message \
                 production error: TopicAuthorizationFailed"
                    .to_owned(),
            ),
            ("Write", "Topic", "`kafka.dead_letter_topic`") => Denied::Parking,
            other => panic!("a row this test cannot check: {other:?}"),
        }
    }
}
