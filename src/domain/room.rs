//! Collaboration rooms: one per CRM resource a team works on together.

use std::fmt;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::OrgId;

/// A kind of room, as named in `join-room { type }`.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum RoomKind {
    Pipeline,
    Deal,
    Contact,
    EmailThread,
}

impl RoomKind {
    pub const ALL: [RoomKind; 4] = [Self::Pipeline, Self::Deal, Self::Contact, Self::EmailThread];

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.as_str() == name)
    }

    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Pipeline => "pipeline",
            Self::Deal => "deal",
            Self::Contact => "contact",
            Self::EmailThread => "email-thread",
        }
    }
}

impl fmt::Display for RoomKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One room, always inside one organisation: users of two organisations
/// who name the same room id are in two different rooms.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct RoomKey {
    pub org: OrgId,
    #[serde(rename = "type")]
    pub kind: RoomKind,
    pub id: Box<str>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_round_trips_by_name() {
        for kind in RoomKind::ALL {
            assert_eq!(RoomKind::parse(kind.as_str()), Some(kind));
            let json = serde_json::to_value(kind).unwrap();
            assert_eq!(json, kind.as_str());
        }
        assert_eq!(RoomKind::parse("invoice"), None);
    }
}
