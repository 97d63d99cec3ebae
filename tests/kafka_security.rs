//! The bridge reaches a Kafka that wants TLS and SASL, as managed Kafkas do:
//! SCRAM-SHA-512 over TLS, and TLS with client certificates (mTLS), against
//! a CA and certificates each test makes. Events go end to end through the
//! secured listener; the tests' own producer uses the node's PLAINTEXT one.
//!
//! When Kafka will not let it in (a wrong password, a broker certificate it
//! does not trust), the bridge binary stays up and unready, says why on
//! `/readyz`, logs it once and counts every attempt, and gets in as soon as
//! the fault is fixed on Kafka's side.

mod support;

use std::path::PathBuf;

use crm_bridge::kafka::{BridgeContext, ensure_topics};
use support::bridge::wait_ready;
use support::broker::NodeExtras;
use support::process::BridgeProcess;
use support::semantics::{assert_exactly_once_in_order, deal_of, producer, send_deal, subscribe};
use support::{Broker, Clients, TestBridge, eventually, free_port};

const USER: &str = "bridge";
const PASSWORD: &str = "scram-secret-of-the-test";

/// A CA, the broker's certificate (for 127.0.0.1) and a client's, as PEM
/// files in a directory of the test's own.
struct Pki {
    dir: PathBuf,
}

impl Pki {
    fn make() -> Self {
        use rcgen::{BasicConstraints, Certificate, CertificateParams, DnType, IsCa, KeyPair};
        let dir = std::env::temp_dir().join(format!("crm-bridge-pki-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let authority = |name: &str| {
            let key = KeyPair::generate().unwrap();
            let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
            params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
            // Names of their own: OpenSSL takes a certificate whose issuer
            // reads as its subject (rcgen's default name for all) for
            // self-signed.
            params.distinguished_name.push(DnType::CommonName, name);
            (params.self_signed(&key).unwrap(), key)
        };
        let signed = |name: &str, ca: &Certificate, ca_key: &KeyPair| {
            let key = KeyPair::generate().unwrap();
            let mut params = CertificateParams::new(vec![name.to_owned()]).unwrap();
            params.distinguished_name.push(DnType::CommonName, name);
            let cert = params.signed_by(&key, ca, ca_key).unwrap();
            (cert.pem(), key.serialize_pem())
        };
        let (ca, ca_key) = authority("crm-bridge test CA");
        let (broker_cert, broker_key) = signed("127.0.0.1", &ca, &ca_key);
        let (client_cert, client_key) = signed("crm-bridge", &ca, &ca_key);
        // Another CA, and the broker's name signed by it.
        let (other_ca, other_ca_key) = authority("crm-bridge test CA, another");
        let (other_cert, other_key) = signed("127.0.0.1", &other_ca, &other_ca_key);
        let write = |name: &str, pem: &str| std::fs::write(dir.join(name), pem).unwrap();
        write("ca.pem", &ca.pem());
        write("other-ca.pem", &other_ca.pem());
        // Kafka's PEM key store: the PKCS#8 key, then the certificate chain.
        write("broker.pem", &format!("{broker_key}{broker_cert}"));
        write(
            "broker-of-other-ca.pem",
            &format!("{other_key}{other_cert}"),
        );
        write("client.pem", &client_cert);
        write("client.key", &client_key);
        Self { dir }
    }

    fn path(&self, name: &str) -> String {
        self.dir.join(name).display().to_string()
    }
}

impl Drop for Pki {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A node with a SASL_SSL listener (SCRAM-SHA-512, user [`USER`]) and an
/// SSL listener, `MTLS`, that requires a client certificate of `pki`'s CA,
/// beside its PLAINTEXT one; returns it with the two listeners' addresses.
fn secured_broker(pki: &Pki) -> (Broker, String, String) {
    let (sasl_ssl, mtls) = (
        format!("127.0.0.1:{}", free_port()),
        format!("127.0.0.1:{}", free_port()),
    );
    let properties = |plaintext: u16, controller: u16| {
        let plaintext = format!("PLAINTEXT://127.0.0.1:{plaintext}");
        let secured = format!("SASL_SSL://{sasl_ssl},MTLS://{mtls}");
        vec![
            format!("listeners={plaintext},CONTROLLER://127.0.0.1:{controller},{secured}"),
            format!("advertised.listeners={plaintext},{secured}"),
            "listener.security.protocol.map=\
             PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT,SASL_SSL:SASL_SSL,MTLS:SSL"
                .to_owned(),
            "sasl.enabled.mechanisms=SCRAM-SHA-512".to_owned(),
            "listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=\
             org.apache.kafka.common.security.scram.ScramLoginModule required;"
                .to_owned(),
            "ssl.keystore.type=PEM".to_owned(),
            format!("ssl.keystore.location={}", pki.path("broker.pem")),
            "listener.name.mtls.ssl.client.auth=required".to_owned(),
            "listener.name.mtls.ssl.truststore.type=PEM".to_owned(),
            format!(
                "listener.name.mtls.ssl.truststore.location={}",
                pki.path("ca.pem")
            ),
        ]
    };
    let users = format!("--add-scram SCRAM-SHA-512=[name={USER},password={PASSWORD}]");
    let extras = NodeExtras {
        format_args: &users,
        ..Default::default()
    };
    let broker = Broker::dedicated_with(properties, extras);
    (broker, sasl_ssl, mtls)
}

/// A bridge reading through `brokers` with `properties`, a live client, and
/// three deals produced through the PLAINTEXT listener delivered to it.
async fn delivers_through(broker: &Broker, brokers: &str, properties: &[(&str, String)]) {
    let bridge = TestBridge::start_with(broker, |c| {
        c.kafka.brokers = brokers.to_owned();
        for (key, value) in properties {
            c.kafka.properties.insert((*key).to_owned(), value.clone());
        }
    })
    .await;
    let mut clients = Clients::spawn().await;
    subscribe(&mut clients, "live", &bridge.url, None).await;
    let producer = producer(broker, &[]);
    for seq in 0..3 {
        send_deal(&producer, broker, &deal_of(seq), seq, None).await;
    }
    assert_exactly_once_in_order(&clients.deliveries("live", 3).await, 0..3);
    let stats = bridge.stats().await;
    assert!(stats["recordsConsumed"].as_u64() >= Some(3), "{stats}");
    bridge.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bridge_delivers_through_sasl_scram_over_tls() {
    let pki = Pki::make();
    let (broker, sasl_ssl, _) = secured_broker(&pki);
    delivers_through(
        &broker,
        &sasl_ssl,
        &[
            ("security.protocol", "SASL_SSL".into()),
            ("sasl.mechanism", "SCRAM-SHA-512".into()),
            ("sasl.username", USER.into()),
            ("sasl.password", PASSWORD.into()),
            ("ssl.ca.location", pki.path("ca.pem")),
        ],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bridge_delivers_through_tls_with_a_client_certificate() {
    let pki = Pki::make();
    let (broker, _, mtls) = secured_broker(&pki);
    delivers_through(
        &broker,
        &mtls,
        &[
            ("security.protocol", "SSL".into()),
            ("ssl.ca.location", pki.path("ca.pem")),
            ("ssl.certificate.location", pki.path("client.pem")),
            ("ssl.key.location", pki.path("client.key")),
        ],
    )
    .await;
}

/// The bridge binary reading through `brokers` with the librdkafka
/// `properties` (from the environment, as a Kubernetes Secret would set
/// them), which Kafka refuses until `fix`: it stays up and unready, says
/// `why` on `/readyz`, logs it once and counts every attempt as `kind`;
/// once fixed it gets in and delivers.
async fn refused_until_fixed(
    broker: &Broker,
    brokers: &str,
    properties: &[(&str, &str)],
    (why, kind): (&str, &str),
    fix: impl FnOnce(),
) {
    let mut topics = crm_bridge::config::Config::default();
    broker.name_topics(&mut topics);
    let mut names: Vec<&str> = topics.kafka.topics.all().map(|(_, name)| name).collect();
    names.push(&topics.presence.topic);
    let plaintext = crm_bridge::kafka::KafkaConfig {
        brokers: broker.addr.clone(),
        ..Default::default()
    };
    ensure_topics(
        &plaintext,
        &BridgeContext::new(Default::default()),
        &names,
        1,
    )
    .await
    .unwrap();
    let env: Vec<(String, String)> = properties
        .iter()
        .map(|(name, value)| {
            let name = name.replace('.', "_").to_uppercase();
            (
                format!("CRM_BRIDGE_KAFKA_PROPERTY_{name}"),
                (*value).to_owned(),
            )
        })
        .chain([("CRM_BRIDGE_KAFKA__BROKERS".to_owned(), brokers.to_owned())])
        .collect();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let (port, node) = (free_port(), format!("refused-{kind}"));
    let log = BridgeProcess::log_path(port, &node);
    let mut bridge = BridgeProcess::spawn_unready(broker, port, &node, "", &env);

    // Three attempts refused: librdkafka went on retrying. (What /readyz
    // answers, and the refused attempts counted, once the bridge listens.)
    let refused = async || {
        assert!(
            bridge.is_running(),
            "the bridge exited; see {}",
            log.display()
        );
        let response = reqwest::get(format!("{}/readyz", bridge.internal_url))
            .await
            .ok()?;
        let status = response.status().as_u16();
        let body = response.text().await.unwrap();
        let attempts = bridge.stats().await["kafkaClientErrors"][kind].as_u64();
        Some((status, body, attempts))
    };
    let what = format!("/readyz to say {why:?} after 3 refused attempts");
    let (status, reason, _) = eventually(&what, refused, |answer| {
        answer
            .as_ref()
            .is_some_and(|(_, body, attempts)| body.contains(why) && *attempts >= Some(3))
    })
    .await
    .expect("an answer");
    assert_eq!(status, 503, "{reason}");
    assert!(bridge.is_running(), "no crash loop: the bridge stays up");
    let logged = std::fs::read_to_string(&log).unwrap();
    let complaints: Vec<&str> = logged
        .lines()
        .filter(|line| line.contains(" WARN ") || line.contains(" ERROR "))
        .collect();
    assert_eq!(complaints.len(), 1, "one log line: {complaints:#?}");
    assert!(complaints[0].contains(why), "{}", complaints[0]);
    for (_, secret) in properties
        .iter()
        .filter(|(name, _)| name.contains("password"))
    {
        assert!(!logged.contains(secret), "a secret in the log");
        assert!(!reason.contains(secret), "a secret on /readyz: {reason}");
    }

    fix();
    wait_ready(&bridge.internal_url).await;
    let mut clients = Clients::spawn().await;
    subscribe(&mut clients, "live", &bridge.url, None).await;
    let producer = producer(broker, &[]);
    for seq in 0..3 {
        send_deal(&producer, broker, &deal_of(seq), seq, None).await;
    }
    assert_exactly_once_in_order(&clients.deliveries("live", 3).await, 0..3);
    let logged = std::fs::read_to_string(&log).unwrap();
    assert!(
        logged.contains("Kafka lets the bridge in again"),
        "{logged}"
    );
    bridge.terminate().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_password_leaves_the_bridge_up_and_unready_until_kafka_takes_it() {
    let pki = Pki::make();
    let (broker, sasl_ssl, _) = secured_broker(&pki);
    let ca = pki.path("ca.pem");
    let wrong = "a-password-kafka-does-not-know";
    refused_until_fixed(
        &broker,
        &sasl_ssl,
        &[
            ("security.protocol", "SASL_SSL"),
            ("sasl.mechanism", "SCRAM-SHA-512"),
            ("sasl.username", USER),
            ("sasl.password", wrong),
            ("ssl.ca.location", &ca),
        ],
        ("Kafka authentication failed", "authentication"),
        // The operator gives the bridge's user the password it has.
        || {
            let password = format!("SCRAM-SHA-512=[password={wrong}]");
            broker.tool(
                "kafka.admin.ConfigCommand",
                &["--alter", "--entity-type", "users", "--entity-name", USER]
                    .into_iter()
                    .chain(["--add-config", &password])
                    .collect::<Vec<_>>(),
            );
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_untrusted_broker_certificate_leaves_the_bridge_up_and_unready_until_kafka_shows_a_trusted_one()
 {
    let pki = Pki::make();
    let (broker, sasl_ssl, _) = secured_broker(&pki);
    let other_ca = pki.path("other-ca.pem");
    refused_until_fixed(
        &broker,
        &sasl_ssl,
        &[
            ("security.protocol", "SASL_SSL"),
            ("sasl.mechanism", "SCRAM-SHA-512"),
            ("sasl.username", USER),
            ("sasl.password", PASSWORD),
            ("ssl.ca.location", &other_ca),
        ],
        ("Kafka TLS handshake failed", "tls"),
        // The broker's certificate renewed by the CA the bridge trusts, put
        // in place while the broker runs (same name, so Kafka takes it).
        || {
            let keystore = format!(
                "listener.name.sasl_ssl.ssl.keystore.location={}",
                pki.path("broker-of-other-ca.pem")
            );
            broker.tool(
                "kafka.admin.ConfigCommand",
                &[
                    "--alter",
                    "--entity-type",
                    "brokers",
                    "--entity-name",
                    "1",
                    "--add-config",
                    &keystore,
                ],
            );
        },
    )
    .await;
}

/// OAUTHBEARER with OIDC client credentials (librdkafka's `oidc` method),
/// as Confluent Cloud's OAuth asks for: the bridge fetches a token from the
/// identity provider's token endpoint; the broker checks it against the
/// provider's JWKS (Kafka's `OAuthBearerValidatorCallbackHandler`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bridge_delivers_through_oauthbearer_with_oidc_client_credentials() {
    use support::idp::{Idp, Issuer, jwks, rsa_key};
    let key = rsa_key("rs256-private.pem");
    let issuer = Issuer {
        client_id: "crm-bridge",
        client_secret: "oidc-secret-of-the-test",
        kid: "kafka-kid",
        key: rsa_key("rs256-private.pem"),
    };
    let idp = Idp::start_issuing(jwks(&[("kafka-kid", &key)]), Some(issuer)).await;
    let oauth = format!("127.0.0.1:{}", free_port());
    let jwks_url = idp.jwks_url.clone();
    let properties = |plaintext: u16, controller: u16| {
        let plaintext = format!("PLAINTEXT://127.0.0.1:{plaintext}");
        let listener = "listener.name.oauth.oauthbearer";
        vec![
            format!("listeners={plaintext},CONTROLLER://127.0.0.1:{controller},OAUTH://{oauth}"),
            format!("advertised.listeners={plaintext},OAUTH://{oauth}"),
            "listener.security.protocol.map=\
             PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT,OAUTH:SASL_PLAINTEXT"
                .to_owned(),
            "sasl.enabled.mechanisms=OAUTHBEARER".to_owned(),
            format!(
                "{listener}.sasl.jaas.config=\
                 org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required;"
            ),
            format!(
                "{listener}.sasl.server.callback.handler.class=\
                 org.apache.kafka.common.security.oauthbearer.OAuthBearerValidatorCallbackHandler"
            ),
            format!("sasl.oauthbearer.jwks.endpoint.url={jwks_url}"),
        ]
    };
    // Kafka 4 fetches only from URLs a system property allows.
    let allowed = format!("-Dorg.apache.kafka.sasl.oauthbearer.allowed.urls={jwks_url}");
    let extras = NodeExtras {
        jvm_options: &allowed,
        ..Default::default()
    };
    let broker = Broker::dedicated_with(properties, extras);
    delivers_through(
        &broker,
        &oauth,
        &[
            ("security.protocol", "SASL_PLAINTEXT".into()),
            ("sasl.mechanism", "OAUTHBEARER".into()),
            ("sasl.oauthbearer.method", "oidc".into()),
            ("sasl.oauthbearer.client.id", "crm-bridge".into()),
            (
                "sasl.oauthbearer.client.secret",
                "oidc-secret-of-the-test".into(),
            ),
            ("sasl.oauthbearer.token.endpoint.url", idp.token_url.clone()),
        ],
    )
    .await;
    let issued = idp.issued.load(std::sync::atomic::Ordering::Relaxed);
    assert!(issued >= 1, "the bridge fetched no token");
}
