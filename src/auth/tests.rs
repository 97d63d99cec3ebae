//! The authenticator as a whole: API keys from the file, their reload, and
//! revocation. JWT checks are in `jwt/tests.rs`.

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use super::*;

const CONFIGURED_KEY: &str = "configured-key-0123456789";
const FILE_KEY_A: &str = "file-key-a-0123456789";
const FILE_KEY_B: &str = "file-key-b-0123456789";

/// A file under the temp dir, removed when the test ends.
struct TempFile(PathBuf);

impl TempFile {
    fn new() -> Self {
        Self(std::env::temp_dir().join(format!("crm-bridge-keys-{}.toml", uuid::Uuid::new_v4())))
    }

    /// Writes `text` and stamps it `version` seconds after the epoch, so each
    /// write is a new version however coarse the file system's clock is.
    fn write(&self, text: &str, version: u64) {
        std::fs::write(&self.0, text).unwrap();
        std::fs::File::options()
            .write(true)
            .open(&self.0)
            .unwrap()
            .set_modified(SystemTime::UNIX_EPOCH + Duration::from_secs(version))
            .unwrap();
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn entry(key: &str, user: &str) -> String {
    format!(
        "[[api_keys]]\nsha256 = \"{}\"\norganization_id = \"org-1\"\nuser_id = \"{user}\"\nname = \"{user}\"\n",
        hash_api_key(key)
    )
}

fn authenticator(file: &TempFile) -> Authenticator {
    Authenticator::new(&AuthConfig {
        jwt: JwtConfig {
            hs_secret: Some(Secret::new("a-test-secret-of-at-least-32-bytes!!")),
            ..JwtConfig::default()
        },
        api_keys: vec![ApiKeyConfig {
            sha256: hash_api_key(CONFIGURED_KEY),
            organization_id: "org-1".into(),
            user_id: "svc-configured".into(),
            name: "Configured".into(),
            roles: vec![],
            teams: vec![],
        }],
        api_keys_file: Some(file.0.clone()),
        reload_seconds: 1,
    })
    .unwrap()
}

async fn key(auth: &Authenticator, key: &str) -> Result<Principal, AuthError> {
    auth.authenticate(Some(Credential::ApiKey(key))).await
}

#[tokio::test]
async fn keys_from_the_file_and_from_the_configuration_both_work() {
    let file = TempFile::new();
    file.write(&entry(FILE_KEY_A, "svc-a"), 1);
    let auth = authenticator(&file);
    assert_eq!(key(&auth, FILE_KEY_A).await.unwrap().user.as_str(), "svc-a");
    assert_eq!(
        key(&auth, CONFIGURED_KEY).await.unwrap().user.as_str(),
        "svc-configured"
    );
    assert_eq!(key(&auth, FILE_KEY_B).await, Err(AuthError::UnknownApiKey));
}

#[tokio::test]
async fn a_key_removed_from_the_file_is_refused_and_revoked_after_the_reload() {
    let file = TempFile::new();
    file.write(
        &(entry(FILE_KEY_A, "svc-a") + &entry(FILE_KEY_B, "svc-b")),
        1,
    );
    let auth = authenticator(&file);
    let a = key(&auth, FILE_KEY_A).await.unwrap();
    let b = key(&auth, FILE_KEY_B).await.unwrap();
    assert!(!auth.is_revoked(&a) && !auth.is_revoked(&b));

    file.write(&entry(FILE_KEY_B, "svc-b"), 2);
    // Nothing changes until the file is looked at again.
    assert!(key(&auth, FILE_KEY_A).await.is_ok());
    auth.api_keys_file.as_ref().unwrap().reload_if_changed();
    assert_eq!(key(&auth, FILE_KEY_A).await, Err(AuthError::UnknownApiKey));
    assert!(auth.is_revoked(&a));
    assert!(!auth.is_revoked(&b));
}

#[tokio::test]
async fn a_key_now_acting_as_another_user_is_revoked_for_the_old_one() {
    let file = TempFile::new();
    file.write(&entry(FILE_KEY_A, "svc-a"), 1);
    let auth = authenticator(&file);
    let before = key(&auth, FILE_KEY_A).await.unwrap();
    file.write(&entry(FILE_KEY_A, "svc-other"), 2);
    auth.api_keys_file.as_ref().unwrap().reload_if_changed();
    assert!(auth.is_revoked(&before));
    let after = key(&auth, FILE_KEY_A).await.unwrap();
    assert!(!auth.is_revoked(&after));
}

#[tokio::test]
async fn a_broken_or_missing_file_keeps_the_previous_keys() {
    let file = TempFile::new();
    file.write(&entry(FILE_KEY_A, "svc-a"), 1);
    let auth = authenticator(&file);
    let reloader = auth.api_keys_file.as_ref().unwrap();
    let a = key(&auth, FILE_KEY_A).await.unwrap();

    file.write("[[api_keys]]\nsha256 = \"not hex\"\n", 2);
    reloader.reload_if_changed();
    assert!(key(&auth, FILE_KEY_A).await.is_ok());
    file.write("this is not toml [", 3);
    reloader.reload_if_changed();
    assert!(key(&auth, FILE_KEY_A).await.is_ok());
    std::fs::remove_file(&file.0).unwrap();
    reloader.reload_if_changed();
    assert!(key(&auth, FILE_KEY_A).await.is_ok());
    assert!(!auth.is_revoked(&a));

    // Fixed again: the new contents apply.
    file.write(&entry(FILE_KEY_B, "svc-b"), 4);
    reloader.reload_if_changed();
    assert!(key(&auth, FILE_KEY_A).await.is_err());
    assert!(key(&auth, FILE_KEY_B).await.is_ok());
}

#[tokio::test]
async fn an_empty_file_revokes_every_key_it_held_but_not_configured_ones() {
    let file = TempFile::new();
    file.write(&entry(FILE_KEY_A, "svc-a"), 1);
    let auth = authenticator(&file);
    let a = key(&auth, FILE_KEY_A).await.unwrap();
    let configured = key(&auth, CONFIGURED_KEY).await.unwrap();
    file.write("", 2);
    auth.api_keys_file.as_ref().unwrap().reload_if_changed();
    assert!(auth.is_revoked(&a));
    assert!(!auth.is_revoked(&configured));
    assert!(key(&auth, CONFIGURED_KEY).await.is_ok());
}

#[tokio::test]
async fn jwt_principals_are_never_revoked() {
    let file = TempFile::new();
    file.write("", 1);
    let auth = authenticator(&file);
    let token = sign_dev_token(
        "a-test-secret-of-at-least-32-bytes!!",
        "u",
        "U",
        "org-1",
        60,
    );
    let principal = auth
        .authenticate(Some(Credential::Token(&token)))
        .await
        .unwrap();
    assert!(!auth.is_revoked(&principal));
}

#[test]
fn the_file_must_load_at_start_up() {
    let file = TempFile::new();
    let mut config = AuthConfig {
        jwt: JwtConfig {
            hs_secret: Some(Secret::new("a-test-secret-of-at-least-32-bytes!!")),
            ..JwtConfig::default()
        },
        api_keys_file: Some(file.0.clone()),
        ..AuthConfig::default()
    };
    assert!(Authenticator::new(&config).is_err(), "missing file");
    file.write("api_keys = 3", 1);
    assert!(Authenticator::new(&config).is_err(), "malformed file");
    file.write("", 2);
    config.reload_seconds = 0;
    assert!(Authenticator::new(&config).is_err(), "zero reload interval");
    config.reload_seconds = 5;
    assert!(Authenticator::new(&config).is_ok());
}
