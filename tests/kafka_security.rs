//! The bridge reaches a Kafka that wants TLS and SASL, as managed Kafkas do:
//! SCRAM-SHA-512 over TLS, and TLS with client certificates (mTLS), against
//! a CA and certificates each test makes. Events go end to end through the
//! secured listener; the tests' own producer uses the node's PLAINTEXT one.

mod support;

use std::path::PathBuf;

use support::semantics::{assert_exactly_once_in_order, deal_of, producer, send_deal, subscribe};
use support::{Broker, Clients, TestBridge, free_port};

const USER: &str = "bridge";
const PASSWORD: &str = "scram-secret-of-the-test";

/// A CA, the broker's certificate (for 127.0.0.1) and a client's, as PEM
/// files in a directory of the test's own.
struct Pki {
    dir: PathBuf,
}

impl Pki {
    fn make() -> Self {
        use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
        let dir = std::env::temp_dir().join(format!("crm-bridge-pki-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let ca_key = KeyPair::generate().unwrap();
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        // Names of their own: OpenSSL takes a certificate whose issuer reads
        // as its subject (rcgen's default name for all) for self-signed.
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "crm-bridge test CA");
        let ca = ca_params.self_signed(&ca_key).unwrap();
        let signed = |name: &str| {
            let key = KeyPair::generate().unwrap();
            let mut params = CertificateParams::new(vec![name.to_owned()]).unwrap();
            params.distinguished_name.push(DnType::CommonName, name);
            let cert = params.signed_by(&key, &ca, &ca_key).unwrap();
            (cert.pem(), key.serialize_pem())
        };
        let (broker_cert, broker_key) = signed("127.0.0.1");
        let (client_cert, client_key) = signed("crm-bridge");
        let write = |name: &str, pem: &str| std::fs::write(dir.join(name), pem).unwrap();
        write("ca.pem", &ca.pem());
        // Kafka's PEM key store: the PKCS#8 key, then the certificate chain.
        write("broker.pem", &format!("{broker_key}{broker_cert}"));
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
    let broker = Broker::dedicated_with(properties, &users);
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
