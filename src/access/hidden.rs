//! Fields a policy hides from a role: named as the CRM's records name them
//! (`changes.value`, `subject`), and absent from what the client receives.

use std::fmt;

use crate::domain::ResourceKind;

/// A field that can be hidden.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HiddenField {
    /// One key of a contact's or deal's `changes` (the payload's `data`).
    Change(Box<str>),
    /// An email's subject.
    Subject,
    /// An email's sender.
    From,
}

impl HiddenField {
    /// Parses a `hide` entry for `kind`; the error says what it may be.
    pub fn parse(kind: ResourceKind, raw: &str) -> Result<Self, String> {
        let parsed = match (kind, raw) {
            (ResourceKind::Contact | ResourceKind::Deal, _) => raw
                .strip_prefix("changes.")
                .filter(|key| !key.is_empty())
                .map(|key| Self::Change(key.into())),
            (ResourceKind::EmailThread, "subject") => Some(Self::Subject),
            (ResourceKind::EmailThread, "from") => Some(Self::From),
            (ResourceKind::EmailThread, _) => None,
        };
        parsed.ok_or_else(|| match kind {
            ResourceKind::EmailThread => {
                format!("`{raw}`: an email thread hides `subject` or `from`")
            }
            _ => format!("`{raw}`: a {kind} hides `changes.<field>`"),
        })
    }
}

impl fmt::Display for HiddenField {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Change(key) => write!(f, "changes.{key}"),
            Self::Subject => f.write_str("subject"),
            Self::From => f.write_str("from"),
        }
    }
}

/// Most hide entries one kind may have across all roles: a [`Mask`] has a
/// bit for each.
pub const MAX_HIDDEN_PER_KIND: usize = 32;

/// Which of a kind's hide entries apply, one bit per entry of its table.
pub type Mask = u32;

/// What one recipient must not see of one event: a kind's table of hide
/// entries and the bits of it that apply. Rendering consults it.
#[derive(Clone, Copy, Debug)]
pub struct Hidden<'a> {
    fields: &'a [HiddenField],
    mask: Mask,
}

impl<'a> Hidden<'a> {
    pub const NOTHING: Hidden<'static> = Hidden {
        fields: &[],
        mask: 0,
    };

    pub(super) fn new(fields: &'a [HiddenField], mask: Mask) -> Self {
        Self { fields, mask }
    }

    pub fn is_nothing(&self) -> bool {
        self.mask == 0
    }

    fn applies(&self) -> impl Iterator<Item = &'a HiddenField> + '_ {
        let mask = self.mask;
        self.fields
            .iter()
            .enumerate()
            .filter(move |(bit, _)| mask & (1 << bit) != 0)
            .map(|(_, field)| field)
    }

    pub fn change(&self, key: &str) -> bool {
        self.applies()
            .any(|f| matches!(f, HiddenField::Change(k) if &**k == key))
    }

    pub fn subject(&self) -> bool {
        self.applies().any(|f| *f == HiddenField::Subject)
    }

    pub fn from(&self) -> bool {
        self.applies().any(|f| *f == HiddenField::From)
    }
}
