//! Identifier newtypes. Built once at a boundary (token, record) and trusted after.

use std::fmt;
use std::sync::Arc;

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(Arc<str>);

        impl $name {
            /// Returns `None` for an empty or whitespace-only id: an event or a
            /// principal without one cannot be authorised.
            pub fn new(raw: &str) -> Option<Self> {
                Self::is_valid(raw).then(|| Self(Arc::from(raw)))
            }

            /// Whether [`Self::new`] accepts `raw`, without allocating.
            pub fn is_valid(raw: &str) -> bool {
                let trimmed = raw.trim();
                !trimmed.is_empty() && trimmed.len() == raw.len()
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({:?})", stringify!($name), &*self.0)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(&self.0)
            }
        }

        /// A non-empty string (what [`Self::new`] accepts), for the client
        /// contract's JSON Schemas.
        impl schemars::JsonSchema for $name {
            fn schema_name() -> std::borrow::Cow<'static, str> {
                stringify!($name).into()
            }

            fn inline_schema() -> bool {
                true
            }

            fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
                schemars::json_schema!({ "type": "string", "minLength": 1 })
            }
        }

        // Validated like `new`: what comes off a wire is checked once here.
        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let raw = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
                Self::new(&raw).ok_or_else(|| D::Error::custom(concat!("invalid ", stringify!($name))))
            }
        }
    };
}

id_type!(
    /// A tenant. Every event and every principal belongs to exactly one.
    OrgId
);
id_type!(
    /// A CRM user (the JWT `sub`, or the user an API key acts as).
    UserId
);
id_type!(
    /// A team of users, as the permissions topic and a token's teams claim
    /// name it.
    TeamId
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_empty_and_padded_ids() {
        assert!(OrgId::new("").is_none());
        assert!(OrgId::new("  ").is_none());
        assert!(OrgId::new(" org-1").is_none());
        assert_eq!(OrgId::new("org-1").unwrap().as_str(), "org-1");
    }
}
