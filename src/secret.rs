//! A string that never prints.

use schemars::JsonSchema;
use serde::Deserialize;

// Not `Serialize`, so the configuration reference shows no default value.
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
        f.write_str("Secret([redacted])")
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn debug_never_shows_the_value() {
        assert_eq!(
            format!("{:?}", super::Secret::new("hunter2")),
            "Secret([redacted])"
        );
    }
}
