//! API keys bound to an organisation, stored only as SHA-256 hashes.
//!
//! Keys are long random strings, so a fast hash is enough (no password
//! stretching needed). Every stored hash is compared in constant time, and all
//! of them are compared, so timing reveals neither a match nor its position.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::{AuthMethod, Principal};
use crate::domain::{OrgId, TeamId, UserId};

/// An API key: the organisation and user it acts as.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ApiKeyConfig {
    /// Hex SHA-256 of the key (`crm-bridge hash-api-key KEY`).
    #[schemars(example = &"<64 hex digits: crm-bridge hash-api-key KEY>")]
    pub sha256: String,
    /// The organisation whose events the key may see.
    #[schemars(example = &"org-1")]
    pub organization_id: String,
    /// The user the key acts as (appears as `userId`).
    #[schemars(example = &"integration-1")]
    pub user_id: String,
    /// A display name, e.g. the integration's name.
    #[schemars(example = &"Billing sync")]
    pub name: String,
    /// The roles the key holds, as a token's `roles` claim.
    #[serde(default)]
    pub roles: Vec<String>,
    /// The teams the key's user is in, as a token's teams claim.
    #[serde(default)]
    pub teams: Vec<String>,
}

/// Which API key a principal came from: the key's SHA-256, never the key.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct ApiKeyId([u8; 32]);

impl ApiKeyId {
    pub fn of(presented: &str) -> Self {
        Self(Sha256::digest(presented.as_bytes()).into())
    }
}

/// Only a prefix of the hash: enough to tell keys apart in a log.
impl std::fmt::Debug for ApiKeyId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ApiKeyId({}…)", hex::encode(&self.0[..4]))
    }
}

struct StoredKey {
    id: ApiKeyId,
    principal: Principal,
}

pub struct ApiKeys(Vec<StoredKey>);

pub fn hash_api_key(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

impl ApiKeys {
    pub fn new(configs: &[ApiKeyConfig]) -> anyhow::Result<Self> {
        configs
            .iter()
            .map(|c| {
                let mut hash = [0u8; 32];
                hex::decode_to_slice(&c.sha256, &mut hash).map_err(|_| {
                    anyhow::anyhow!("api key `{}`: sha256 must be 64 hex digits", c.name)
                })?;
                let org = OrgId::new(&c.organization_id).ok_or_else(|| {
                    anyhow::anyhow!("api key `{}`: organization_id is empty", c.name)
                })?;
                let user = UserId::new(&c.user_id)
                    .ok_or_else(|| anyhow::anyhow!("api key `{}`: user_id is empty", c.name))?;
                let teams = c
                    .teams
                    .iter()
                    .map(|t| TeamId::new(t))
                    .collect::<Option<Vec<_>>>()
                    .ok_or_else(|| anyhow::anyhow!("api key `{}`: a team is empty", c.name))?;
                Ok(StoredKey {
                    id: ApiKeyId(hash),
                    principal: Principal {
                        user,
                        name: c.name.clone(),
                        org,
                        roles: c.roles.clone(),
                        teams,
                        method: AuthMethod::ApiKey(ApiKeyId(hash)),
                        expires_at: None,
                    },
                })
            })
            .collect::<anyhow::Result<_>>()
            .map(Self)
    }

    pub fn count(&self) -> usize {
        self.0.len()
    }

    #[cfg(test)]
    pub fn verify(&self, presented: &str) -> Result<Principal, super::AuthError> {
        self.find(&ApiKeyId::of(presented))
            .cloned()
            .ok_or(super::AuthError::UnknownApiKey)
    }

    /// The principal of the key `id`, comparing every stored hash.
    pub fn find(&self, id: &ApiKeyId) -> Option<&Principal> {
        let mut found = None;
        for stored in &self.0 {
            if bool::from(stored.id.0.ct_eq(&id.0)) {
                found = Some(&stored.principal);
            }
        }
        found
    }

    /// Whether a key here still yields exactly `principal` (same key, user,
    /// organisation, name, roles and teams).
    pub fn holds(&self, principal: &Principal) -> bool {
        self.0.iter().any(|stored| stored.principal == *principal)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::AuthError;

    fn keys() -> ApiKeys {
        ApiKeys::new(&[ApiKeyConfig {
            sha256: hash_api_key("key-one"),
            organization_id: "org-1".into(),
            user_id: "svc-1".into(),
            name: "Ops dashboard".into(),
            roles: vec![],
            teams: vec![],
        }])
        .unwrap()
    }

    #[test]
    fn a_stored_key_yields_its_principal() {
        let principal = keys().verify("key-one").unwrap();
        assert_eq!(
            (principal.org.as_str(), principal.user.as_str()),
            ("org-1", "svc-1")
        );
        assert_eq!(
            principal.method,
            AuthMethod::ApiKey(ApiKeyId::of("key-one"))
        );
        assert!(keys().holds(&principal));
    }

    #[test]
    fn other_keys_are_refused() {
        assert_eq!(keys().verify("key-two"), Err(AuthError::UnknownApiKey));
        assert_eq!(keys().verify(""), Err(AuthError::UnknownApiKey));
    }

    #[test]
    fn a_key_edited_to_act_as_someone_else_no_longer_holds_its_principal() {
        let before = keys().verify("key-one").unwrap();
        let edited = ApiKeys::new(&[ApiKeyConfig {
            sha256: hash_api_key("key-one"),
            organization_id: "org-2".into(),
            user_id: "svc-1".into(),
            name: "Ops dashboard".into(),
            roles: vec![],
            teams: vec![],
        }])
        .unwrap();
        assert!(!edited.holds(&before));
    }

    #[test]
    fn the_key_id_never_prints_the_whole_hash() {
        let printed = format!("{:?}", ApiKeyId::of("key-one"));
        assert!(printed.len() < 24, "{printed}");
    }

    #[test]
    fn a_malformed_hash_is_a_configuration_error() {
        let bad = ApiKeyConfig {
            sha256: "xyz".into(),
            organization_id: "o".into(),
            user_id: "u".into(),
            name: "n".into(),
            roles: vec![],
            teams: vec![],
        };
        assert!(ApiKeys::new(&[bad]).is_err());
    }
}
