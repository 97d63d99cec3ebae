//! A string that never prints: not in `Debug`, not when serialised.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize, Serializer};

/// What stands for a secret wherever a configuration is shown (`Debug`,
/// `crm-bridge check-config`).
pub const REDACTED: &str = "[redacted]";

#[derive(Clone, Default, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Secret({REDACTED})")
    }
}

/// Serialises as [`REDACTED`]: a serialised configuration is for showing
/// (`crm-bridge check-config`), and no secret has a default for the
/// configuration reference to show.
impl Serialize for Secret {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(REDACTED)
    }
}

#[cfg(test)]
mod tests {
    use super::Secret;

    #[test]
    fn debug_never_shows_the_value() {
        assert_eq!(
            format!("{:?}", Secret::new("hunter2")),
            "Secret([redacted])"
        );
    }

    #[test]
    fn serialising_never_shows_the_value() {
        let json = serde_json::to_string(&Secret::new("hunter2")).unwrap();
        assert_eq!(json, r#""[redacted]""#);
    }
}
