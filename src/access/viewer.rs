//! One connection's share of its organisation: the rules of its roles, per
//! resource kind, and the decisions made from them for each event, each
//! subscription and each room.

use super::grants::{Held, kind_index};
use super::hidden::Mask;
use crate::domain::{About, Action, ActionSet, EventKeys, ResourceKind, TeamId, UserId};

/// One role's rule for one kind, checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Rule {
    /// Only resources granted on the permissions topic, not all of them.
    pub granted_only: bool,
    pub actions: ActionSet,
    pub hide: Mask,
}

/// What one connection may see. Built once, at the handshake, from its
/// credential's roles and teams; the grants it is checked against change
/// while it is connected.
#[derive(Clone, Debug)]
pub struct Viewer {
    user: UserId,
    teams: Box<[TeamId]>,
    /// The rules of its roles, per kind (indexed as `kind_index`).
    rules: [Vec<Rule>; 3],
    /// Per kind, the union of its rules' actions.
    actions: [ActionSet; 3],
    /// Per kind, the actions a rule shows of every resource with nothing
    /// hidden: decided without the rules or the grants (every action of
    /// every kind with no policy, a delivery's common case; measured at 3%
    /// of the bridge's CPU in fan-out before).
    open: [ActionSet; 3],
}

/// Why a request is refused: the `FORBIDDEN` error's message.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Refusal(pub String);

/// When the event to decide on was written, if a replay sends it: a grant
/// newer than that does not show it (see [`super::Policy::replay_moment`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Moment {
    Live,
    Replayed { occurred_at_ms: i64 },
}

impl Viewer {
    /// Every kind, every action, nothing hidden: no policy.
    pub(super) fn everything(user: &UserId) -> Self {
        let rule = |kind: ResourceKind| Rule {
            granted_only: false,
            actions: kind.all_actions(),
            hide: 0,
        };
        Self {
            user: user.clone(),
            teams: Box::default(),
            rules: ResourceKind::ALL.map(|kind| vec![rule(kind)]),
            actions: ResourceKind::ALL.map(ResourceKind::all_actions),
            open: ResourceKind::ALL.map(ResourceKind::all_actions),
        }
    }

    pub(super) fn new<'a>(
        user: &UserId,
        teams: &[TeamId],
        roles: impl Iterator<Item = &'a [Option<Rule>; 3]>,
    ) -> Self {
        let mut rules: [Vec<Rule>; 3] = Default::default();
        for role in roles {
            for (kind, rule) in role.iter().enumerate() {
                rules[kind].extend(rule.iter().copied());
            }
        }
        // Two roles with the same rule decide alike: keep one.
        for kind in &mut rules {
            let mut unique = Vec::with_capacity(kind.len());
            for rule in kind.drain(..) {
                if !unique.contains(&rule) {
                    unique.push(rule);
                }
            }
            *kind = unique;
        }
        let union = |kind: usize, shows: fn(&Rule) -> bool| {
            rules[kind]
                .iter()
                .filter(|r| shows(r))
                .fold(ActionSet::default(), |all, r| all.union(r.actions))
        };
        let actions = std::array::from_fn(|kind| union(kind, |_| true));
        let open = std::array::from_fn(|kind| union(kind, |r| !r.granted_only && r.hide == 0));
        Self {
            user: user.clone(),
            teams: teams.into(),
            rules,
            actions,
            open,
        }
    }

    /// Whether this viewer may see the event with `keys`, and if so what it
    /// must not see of it; `held`: what the view holds of its resource
    /// ([`super::View::about`] of the same keys). A user's own notifications are always theirs.
    ///
    /// Of the rules that show the event, the fields hidden are those every
    /// one of them hides: a role that shows a field shows it.
    pub fn decide(&self, keys: EventKeys<'_>, held: &Held<'_>, moment: Moment) -> Option<Mask> {
        let About::Resource { kind, action, .. } = keys.about else {
            return Some(0);
        };
        let k = kind_index(kind);
        if self.open[k].contains(action) {
            return Some(0);
        }
        if !self.actions[k].contains(action) {
            return None;
        }
        let mut since: Option<Option<i64>> = None;
        let mut shown: Option<Mask> = None;
        for rule in &self.rules[k] {
            if !rule.actions.contains(action) {
                continue;
            }
            if rule.granted_only {
                let since = *since.get_or_insert_with(|| held.since(&self.user, &self.teams));
                let shows = match (since, moment) {
                    (None, _) => false,
                    (Some(_), Moment::Live) => true,
                    (Some(since), Moment::Replayed { occurred_at_ms }) => since <= occurred_at_ms,
                };
                if !shows {
                    continue;
                }
            }
            shown = Some(shown.map_or(rule.hide, |mask| mask & rule.hide));
        }
        shown
    }

    /// Whether it may see the resource `kind`/`id` at all now: what an `id`
    /// subscription and a room need.
    /// `held`: what the view holds of that resource.
    pub fn can_see(&self, kind: ResourceKind, held: &Held<'_>) -> bool {
        let rules = &self.rules[kind_index(kind)];
        rules.iter().any(|r| !r.granted_only)
            || (rules.iter().any(|r| r.granted_only)
                && held.since(&self.user, &self.teams).is_some())
    }

    /// Whether it may see any resource of `kind`.
    pub fn sees_kind(&self, kind: ResourceKind) -> bool {
        !self.rules[kind_index(kind)].is_empty()
    }

    /// The actions of `kind` a subscription asking for `actions` receives.
    /// `listed`: the client named them; an action its roles do not allow is
    /// then refused. Unlisted (all events), they are narrowed to what it may
    /// receive.
    pub fn admit_actions(
        &self,
        kind: ResourceKind,
        actions: ActionSet,
        listed: bool,
    ) -> Result<ActionSet, Refusal> {
        if !self.sees_kind(kind) {
            return Err(Refusal(format!("your roles may not see {kind} resources")));
        }
        let allowed = self.actions[kind_index(kind)];
        let refused: Vec<&str> = actions
            .iter()
            .filter(|a| !allowed.contains(*a))
            .map(Action::as_str)
            .collect();
        if listed && !refused.is_empty() {
            return Err(Refusal(format!(
                "your roles may not receive {kind} events {}",
                refused.join(", ")
            )));
        }
        Ok(actions.iter().filter(|a| allowed.contains(*a)).collect())
    }
}
