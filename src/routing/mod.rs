//! The subscription index: which clients want which events.
//!
//! A subscription is a [`SubscriptionKey`] (organisation + what it selects) and an
//! [`ActionSet`](crate::domain::ActionSet). Because the organisation is part of
//! every key, and an event is only ever looked up under its own organisation,
//! a client can never be matched to another tenant's event: isolation is a
//! property of the data structure, not a check someone might forget.

mod index;
mod key;

pub use index::{ClientId, SubscriptionIndex};
pub use key::{Scope, Selector, SubscriptionKey, event_matches, key_matches, topics_of};
