use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::json;

use super::*;

const RS_PRIVATE: &str = include_str!("../../../tests/fixtures/jwt/rs256-private.pem");
const RS_PUBLIC: &str = include_str!("../../../tests/fixtures/jwt/rs256-public.pem");
const ES_PRIVATE: &str = include_str!("../../../tests/fixtures/jwt/es256-private.pem");
const ES_PUBLIC: &str = include_str!("../../../tests/fixtures/jwt/es256-public.pem");
const SECRET: &str = "a-test-secret-of-at-least-32-bytes!!";

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn claims(exp: u64) -> serde_json::Value {
    json!({"sub": "user_1", "name": "Jane", "organizationId": "org-1", "roles": ["admin"], "exp": exp})
}

fn config(algorithms: Vec<Algorithm>) -> JwtConfig {
    JwtConfig {
        algorithms,
        hs_secret: Some(Secret::new(SECRET)),
        keys: vec![
            PublicKeyConfig {
                kid: Some("rsa-1".into()),
                algorithm: Algorithm::RS256,
                pem: RS_PUBLIC.into(),
            },
            PublicKeyConfig {
                kid: None,
                algorithm: Algorithm::ES256,
                pem: ES_PUBLIC.into(),
            },
        ],
        ..JwtConfig::default()
    }
}

fn all() -> JwtVerifier {
    JwtVerifier::new(&config(vec![
        Algorithm::HS256,
        Algorithm::RS256,
        Algorithm::ES256,
    ]))
    .unwrap()
}

fn sign(header: Header, claims: &serde_json::Value, key: &EncodingKey) -> String {
    jsonwebtoken::encode(&header, claims, key).unwrap()
}

fn hs(claims: &serde_json::Value) -> String {
    sign(
        Header::new(Algorithm::HS256),
        claims,
        &EncodingKey::from_secret(SECRET.as_bytes()),
    )
}

#[tokio::test]
async fn accepts_hs256_rs256_and_es256() {
    let rs = {
        let mut h = Header::new(Algorithm::RS256);
        h.kid = Some("rsa-1".into());
        sign(
            h,
            &claims(now() + 60),
            &EncodingKey::from_rsa_pem(RS_PRIVATE.as_bytes()).unwrap(),
        )
    };
    let es = sign(
        Header::new(Algorithm::ES256),
        &claims(now() + 60),
        &EncodingKey::from_ec_pem(ES_PRIVATE.as_bytes()).unwrap(),
    );
    for token in [hs(&claims(now() + 60)), rs, es] {
        let p = all().verify(&token).await.unwrap();
        assert_eq!(
            (p.user.as_str(), p.org.as_str(), p.name.as_str()),
            ("user_1", "org-1", "Jane")
        );
        assert_eq!(p.roles, ["admin"]);
    }
}

#[tokio::test]
async fn dev_tokens_verify_with_the_dev_secret() {
    let cfg = JwtConfig {
        hs_secret: Some(Secret::new(DEV_JWT_SECRET)),
        ..JwtConfig::default()
    };
    let p = JwtVerifier::new(&cfg)
        .unwrap()
        .verify(&sign_dev_token(DEV_JWT_SECRET, "u", "U", "o", 60))
        .await
        .unwrap();
    assert_eq!(p.user.as_str(), "u");
}

#[tokio::test]
async fn refuses_expired_tampered_and_unsigned_tokens() {
    let v = all();
    assert!(matches!(
        v.verify(&hs(&claims(now() - 3600))).await,
        Err(AuthError::InvalidToken(_))
    ));
    // Within the leeway an expired token still passes.
    assert!(v.verify(&hs(&claims(now() - 5))).await.is_ok());
    let mut tampered = hs(&claims(now() + 60));
    tampered.pop();
    assert!(v.verify(&tampered).await.is_err());
    let wrong_secret = sign(
        Header::new(Algorithm::HS256),
        &claims(now() + 60),
        &EncodingKey::from_secret(b"another-secret-of-at-least-32-bytes"),
    );
    assert!(v.verify(&wrong_secret).await.is_err());
    // alg "none": header {"alg":"none"} with no signature.
    let none = format!(
        "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.{}.",
        base64::Engine::encode(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD,
            claims(now() + 60).to_string()
        )
    );
    assert!(v.verify(&none).await.is_err());
    assert!(v.verify("not a jwt").await.is_err());
}

#[tokio::test]
async fn algorithms_are_pinned_by_configuration() {
    let hs_only = JwtVerifier::new(&config(vec![Algorithm::HS256])).unwrap();
    let es = sign(
        Header::new(Algorithm::ES256),
        &claims(now() + 60),
        &EncodingKey::from_ec_pem(ES_PRIVATE.as_bytes()).unwrap(),
    );
    assert_eq!(
        hs_only.verify(&es).await,
        Err(AuthError::AlgorithmNotAllowed)
    );
    // Algorithm confusion: an HS256 token "signed" with the RSA public key.
    let rs_only = JwtVerifier::new(&config(vec![Algorithm::RS256])).unwrap();
    let confused = sign(
        Header::new(Algorithm::HS256),
        &claims(now() + 60),
        &EncodingKey::from_secret(RS_PUBLIC.as_bytes()),
    );
    assert_eq!(
        rs_only.verify(&confused).await,
        Err(AuthError::AlgorithmNotAllowed)
    );
}

#[tokio::test]
async fn unknown_kid_is_refused() {
    let mut h = Header::new(Algorithm::RS256);
    h.kid = Some("rsa-2".into());
    let token = sign(
        h,
        &claims(now() + 60),
        &EncodingKey::from_rsa_pem(RS_PRIVATE.as_bytes()).unwrap(),
    );
    assert_eq!(all().verify(&token).await, Err(AuthError::UnknownKey));
}

#[tokio::test]
async fn requires_organization_and_checks_issuer_and_audience() {
    let v = all();
    let no_org = json!({"sub": "u", "exp": now() + 60});
    assert!(v.verify(&hs(&no_org)).await.is_err());
    let empty_org = json!({"sub": "u", "organizationId": "", "exp": now() + 60});
    assert_eq!(
        v.verify(&hs(&empty_org)).await,
        Err(AuthError::BadClaims("organizationId"))
    );

    let mut cfg = config(vec![Algorithm::HS256]);
    cfg.issuer = Some("https://auth.example".into());
    cfg.audience = Some("crm-bridge".into());
    let strict = JwtVerifier::new(&cfg).unwrap();
    let mut good = claims(now() + 60);
    good["iss"] = json!("https://auth.example");
    good["aud"] = json!("crm-bridge");
    assert!(strict.verify(&hs(&good)).await.is_ok());
    assert!(strict.verify(&hs(&claims(now() + 60))).await.is_err());
}

#[test]
fn configuration_must_have_keys_for_its_algorithms() {
    let mut cfg = JwtConfig::default();
    assert!(JwtVerifier::new(&cfg).is_err(), "HS256 without a secret");
    cfg.hs_secret = Some(Secret::new("short"));
    assert!(
        JwtVerifier::new(&cfg).is_err(),
        "a secret shorter than 32 bytes"
    );
}

/// A token whose header is `header` (JSON), signed with the test secret.
fn hs_with_header(header: &serde_json::Value, claims: &serde_json::Value) -> String {
    use base64::Engine;
    let encode = |value: &serde_json::Value| {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(value.to_string())
    };
    let message = format!("{}.{}", encode(header), encode(claims));
    let key = EncodingKey::from_secret(SECRET.as_bytes());
    let signature = jsonwebtoken::crypto::sign(message.as_bytes(), &key, Algorithm::HS256).unwrap();
    format!("{message}.{signature}")
}

#[tokio::test]
async fn refuses_tokens_with_critical_extensions() {
    let verifier = all();
    let plain = json!({"alg": "HS256", "typ": "JWT"});
    assert!(
        verifier
            .verify(&hs_with_header(&plain, &claims(now() + 60)))
            .await
            .is_ok()
    );
    let critical = json!({"alg": "HS256", "typ": "JWT", "crit": ["exp-ext"], "exp-ext": 1});
    let refused = verifier
        .verify(&hs_with_header(&critical, &claims(now() + 60)))
        .await;
    assert!(
        matches!(refused, Err(AuthError::InvalidToken(_))),
        "{refused:?}"
    );
}

#[tokio::test]
async fn refuses_overlong_ids_and_names() {
    let verifier = all();
    let longest = "x".repeat(MAX_CLAIM_BYTES);
    let mut fits = claims(now() + 60);
    fits["sub"] = longest.clone().into();
    fits["name"] = longest.clone().into();
    fits["organizationId"] = longest.clone().into();
    assert!(verifier.verify(&hs(&fits)).await.is_ok());
    for claim in ["sub", "name", "organizationId"] {
        let mut overlong = claims(now() + 60);
        overlong[claim] = format!("{longest}x").into();
        let refused = verifier.verify(&hs(&overlong)).await;
        assert!(
            matches!(refused, Err(AuthError::BadClaims(c)) if c == claim),
            "{claim}: {refused:?}"
        );
    }
}
