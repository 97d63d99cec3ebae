//! The HTTP registry against small servers on `127.0.0.1:0`: one that
//! checks the `Authorization` header and answers like the Confluent API,
//! and a TLS one with certificates made by the test, which requires the
//! bridge's client certificate.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::get;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::*;

/// The deal reader schema, as a registry stores it.
fn avro_answer() -> String {
    json!({ "schema": crate::decode::reader_schema_json(TopicKind::Deals) }).to_string()
}

/// Serves `GET /schemas/ids/{id}`: 401 unless the request carries
/// `expected` as its `Authorization`; id 1 is Avro (no `schemaType`, as
/// Confluent answers), 2 says `"AVRO"`, 3 is Protobuf, 4 JSON Schema.
async fn fake_registry(expected: Option<&'static str>) -> (SocketAddr, Arc<Counter>) {
    let asked = Arc::new(Counter::default());
    let counted = asked.clone();
    let app = Router::new().route(
        "/schemas/ids/{id}",
        get(
            move |axum::extract::Path(id): axum::extract::Path<u32>, headers: HeaderMap| {
                let counted = counted.clone();
                async move {
                    counted.inc();
                    let authorization = headers.get("authorization").and_then(|v| v.to_str().ok());
                    if authorization != expected {
                        return (StatusCode::UNAUTHORIZED, String::new());
                    }
                    let schema = crate::decode::reader_schema_json(TopicKind::Deals);
                    let body = match id {
                        1 => avro_answer(),
                        2 => json!({ "schema": schema, "schemaType": "AVRO" }).to_string(),
                        // The text is valid Avro: only `schemaType` tells it apart.
                        3 => json!({ "schema": schema, "schemaType": "PROTOBUF" }).to_string(),
                        4 => json!({ "schema": "{\"type\":\"object\"}", "schemaType": "JSON" })
                            .to_string(),
                        _ => return (StatusCode::NOT_FOUND, String::new()),
                    };
                    (StatusCode::OK, body)
                }
            },
        ),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (addr, asked)
}

#[derive(Default)]
struct Counter(std::sync::atomic::AtomicU64);

impl Counter {
    fn inc(&self) {
        self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }

    fn get(&self) -> u64 {
        self.0.load(std::sync::atomic::Ordering::Relaxed)
    }
}

#[tokio::test]
async fn basic_authentication_is_sent_and_a_refusal_is_transient() {
    // "bridge:s3cret", base64.
    let (addr, _) = fake_registry(Some("Basic YnJpZGdlOnMzY3JldA==")).await;
    let url = format!("http://{addr}");
    let access = RegistryAccess {
        basic: Some(("bridge", "s3cret")),
        ..RegistryAccess::default()
    };
    let registry = HttpRegistry::new(&url, &access).unwrap();
    registry.get(1).await.unwrap();
    registry.get(2).await.unwrap();

    let anonymous = HttpRegistry::new(&url, &RegistryAccess::default()).unwrap();
    let error = anonymous.get(1).await.unwrap_err();
    // Retried, not skipped: fixing the credentials loses no record.
    assert!(
        matches!(&error, RegistryError::Unavailable(m) if m.contains("401")),
        "{error}"
    );
}

#[tokio::test]
async fn a_bearer_token_is_sent() {
    let (addr, _) = fake_registry(Some("Bearer tok.en-123")).await;
    let access = RegistryAccess {
        bearer: Some("tok.en-123"),
        ..RegistryAccess::default()
    };
    let registry = HttpRegistry::new(&format!("http://{addr}"), &access).unwrap();
    registry.get(1).await.unwrap();
    assert!(matches!(
        registry.get(9).await.unwrap_err(),
        RegistryError::UnknownId(9)
    ));
}

#[test]
fn credentials_never_print() {
    let access = RegistryAccess {
        basic: Some(("bridge", "hunter2")),
        ..RegistryAccess::default()
    };
    let registry = HttpRegistry::new("http://127.0.0.1:1", &access).unwrap();
    for printed in [format!("{access:?}"), format!("{:?}", registry.client)] {
        assert!(!printed.contains("hunter2"), "{printed}");
        // base64 of "bridge:hunter2"
        assert!(!printed.contains("YnJpZGdlOmh1bnRlcjI"), "{printed}");
    }
    let bad = RegistryAccess {
        bearer: Some("line\nbreak"),
        ..RegistryAccess::default()
    };
    let error = HttpRegistry::new("http://127.0.0.1:1", &bad)
        .err()
        .unwrap()
        .to_string();
    assert!(!error.contains("line"), "{error}");
}

#[tokio::test]
async fn protobuf_and_json_schemas_are_refused_not_read_as_avro_and_asked_once() {
    let (addr, asked) = fake_registry(None).await;
    let registry =
        HttpRegistry::new(&format!("http://{addr}"), &RegistryAccess::default()).unwrap();
    for (id, schema_type) in [(3, "PROTOBUF"), (4, "JSON")] {
        let error = registry.get(id).await.unwrap_err();
        assert!(
            matches!(&error, RegistryError::NotAvro { id: i, schema_type: t } if *i == id && t == schema_type),
            "{error}"
        );
        assert_eq!(
            error.to_string(),
            format!("schema id {id} is a {schema_type} schema; the bridge decodes Avro only")
        );
        let decode = crate::decode::DecodeError::from(error);
        assert_eq!(decode.reason(), "schema_type");
        assert!(
            !decode.is_transient(),
            "skipped and dead-lettered, not retried"
        );
    }
    let before = asked.get();
    registry.get(3).await.unwrap_err();
    assert_eq!(asked.get(), before, "a refusal is cached like a schema");
}

#[test]
fn unparsable_pem_is_refused_at_start_up() {
    let access = RegistryAccess {
        ca_pem: Some("not a certificate"),
        ..RegistryAccess::default()
    };
    assert!(HttpRegistry::new("https://registry.example", &access).is_err());
    let access = RegistryAccess {
        identity_pem: Some(("not a certificate", "not a key")),
        ..RegistryAccess::default()
    };
    assert!(HttpRegistry::new("https://registry.example", &access).is_err());
}

/// A private CA, a server certificate for 127.0.0.1 and a client certificate,
/// all PEM.
struct Pki {
    ca_pem: String,
    server_cert_pem: String,
    server_key_pem: String,
    client_cert_pem: String,
    client_key_pem: String,
}

fn pki() -> Pki {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let server_key = KeyPair::generate().unwrap();
    let server = CertificateParams::new(vec!["127.0.0.1".to_owned()])
        .unwrap()
        .signed_by(&server_key, &ca, &ca_key)
        .unwrap();
    let client_key = KeyPair::generate().unwrap();
    let client = CertificateParams::new(vec!["crm-bridge".to_owned()])
        .unwrap()
        .signed_by(&client_key, &ca, &ca_key)
        .unwrap();
    Pki {
        ca_pem: ca.pem(),
        server_cert_pem: server.pem(),
        server_key_pem: server_key.serialize_pem(),
        client_cert_pem: client.pem(),
        client_key_pem: client_key.serialize_pem(),
    }
}

/// A TLS server that requires a client certificate from `pki`'s CA and
/// answers every request with `body` (HTTP/1.1, one request per connection).
async fn tls_registry(pki: &Pki, body: String) -> SocketAddr {
    use tokio_rustls::rustls::pki_types::pem::PemObject;
    use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
    use tokio_rustls::rustls::{RootCertStore, ServerConfig, crypto, server::WebPkiClientVerifier};
    let provider = Arc::new(crypto::ring::default_provider());
    let mut roots = RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(pki.ca_pem.as_bytes()).unwrap())
        .unwrap();
    let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .build()
        .unwrap();
    let config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_client_cert_verifier(verifier)
        .with_single_cert(
            vec![CertificateDer::from_pem_slice(pki.server_cert_pem.as_bytes()).unwrap()],
            PrivateKeyDer::from_pem_slice(pki.server_key_pem.as_bytes()).unwrap(),
        )
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let (tcp, _) = listener.accept().await.unwrap();
            let acceptor = acceptor.clone();
            let body = body.clone();
            tokio::spawn(async move {
                // A handshake without a trusted client certificate fails here.
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let mut head = Vec::new();
                let mut buf = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match tls.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let response = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = tls.write_all(response.as_bytes()).await;
                let _ = tls.shutdown().await;
            });
        }
    });
    addr
}

#[tokio::test]
async fn a_private_ca_and_a_client_certificate_reach_a_mutual_tls_registry() {
    let pki = pki();
    let addr = tls_registry(&pki, avro_answer()).await;
    let url = format!("https://{addr}");

    let access = RegistryAccess {
        ca_pem: Some(&pki.ca_pem),
        identity_pem: Some((&pki.client_cert_pem, &pki.client_key_pem)),
        ..RegistryAccess::default()
    };
    HttpRegistry::new(&url, &access)
        .unwrap()
        .get(1)
        .await
        .unwrap();

    // Without the CA the server is not trusted; without the client
    // certificate the server refuses the handshake.
    let no_ca = RegistryAccess {
        identity_pem: access.identity_pem,
        ..RegistryAccess::default()
    };
    let no_identity = RegistryAccess {
        ca_pem: access.ca_pem,
        ..RegistryAccess::default()
    };
    for refused in [no_ca, no_identity] {
        let error = HttpRegistry::new(&url, &refused)
            .unwrap()
            .get(1)
            .await
            .unwrap_err();
        assert!(matches!(error, RegistryError::Unavailable(_)), "{error}");
    }
}
