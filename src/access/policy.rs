//! The policy: what each role may subscribe to and see, from the
//! configuration's `[permissions]`, checked once at start-up into a
//! [`Policy`] that builds each connection's [`Viewer`].

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::hidden::{Hidden, HiddenField, MAX_HIDDEN_PER_KIND, Mask};
use super::viewer::{Moment, Rule, Viewer};
use crate::domain::{Action, ActionSet, ResourceKind, TeamId, UserId};

/// Roles, resource grants and hidden fields. Off, every user of an
/// organisation sees all of it, as without a policy.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct PermissionsConfig {
    /// Applies the policy below, and follows `topic`.
    pub enabled: bool,
    /// The CRM's compacted topic of grants (`schemas/access-grant.avsc`).
    #[schemars(example = &"crm.access")]
    pub topic: Option<String>,
    /// Replays events from before the grant that lets a user see them.
    /// Off (the default), a user granted a resource while away receives
    /// its events from the grant on.
    pub replay_before_grant: bool,
    /// What each role may see, by role name (a token's `roles`, an API
    /// key's `roles`). A user holds the union of their roles; a role not
    /// listed gives nothing.
    #[schemars(example = &example_roles())]
    pub roles: BTreeMap<String, RoleConfig>,
}

/// One role: a rule per resource kind it may see. A kind left out, it
/// may not see.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RoleConfig {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub contact: Option<RuleConfig>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deal: Option<RuleConfig>,
    #[serde(rename = "email-thread", skip_serializing_if = "Option::is_none")]
    pub email_thread: Option<RuleConfig>,
}

/// What a role sees of one resource kind.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct RuleConfig {
    /// `all` of the organisation's, or only those `granted` to the user
    /// or a team of theirs on the permissions topic.
    pub see: See,
    /// The events (actions) it may receive; absent: all of the kind's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub events: Option<Vec<String>>,
    /// Fields removed from its payloads: `changes.<field>` for contacts
    /// and deals, `subject` or `from` for email threads.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub hide: Vec<String>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum See {
    #[default]
    All,
    Granted,
}

fn example_roles() -> BTreeMap<String, RoleConfig> {
    let rule = |see, events: Option<&[&str]>, hide: &[&str]| RuleConfig {
        see,
        events: events.map(|e| e.iter().map(|s| s.to_string()).collect()),
        hide: hide.iter().map(|s| s.to_string()).collect(),
    };
    BTreeMap::from([
        (
            "rep".to_string(),
            RoleConfig {
                contact: Some(rule(See::Granted, None, &[])),
                deal: Some(rule(See::Granted, None, &[])),
                email_thread: Some(rule(See::Granted, None, &[])),
            },
        ),
        (
            "support".to_string(),
            RoleConfig {
                contact: Some(rule(See::All, None, &[])),
                deal: Some(rule(
                    See::All,
                    Some(&["create", "update", "stage-change"]),
                    &["changes.value"],
                )),
                email_thread: Some(rule(See::All, None, &[])),
            },
        ),
    ])
}

impl RoleConfig {
    fn rules(&self) -> [(ResourceKind, Option<&RuleConfig>); 3] {
        [
            (ResourceKind::Contact, self.contact.as_ref()),
            (ResourceKind::Deal, self.deal.as_ref()),
            (ResourceKind::EmailThread, self.email_thread.as_ref()),
        ]
    }
}

/// The checked policy.
#[derive(Debug)]
pub struct Policy {
    enabled: bool,
    replay_before_grant: bool,
    /// Per kind (indexed as `grants::kind_index`), every field some role
    /// hides: the table a [`Mask`] indexes.
    hidden: [Vec<HiddenField>; 3],
    /// Per role, per kind: its rule.
    roles: BTreeMap<String, [Option<Rule>; 3]>,
}

impl Policy {
    /// Checks the configuration: every event name and hidden field must be
    /// one the kind has.
    pub fn new(config: &PermissionsConfig) -> anyhow::Result<Self> {
        let mut hidden: [Vec<HiddenField>; 3] = Default::default();
        let mut roles = BTreeMap::new();
        for (name, role) in &config.roles {
            let mut compiled: [Option<Rule>; 3] = Default::default();
            for (kind, rule) in role.rules() {
                let Some(rule) = rule else { continue };
                let context = |what: String| format!("permissions.roles.{name}.{kind}: {what}");
                let actions = match &rule.events {
                    None => kind.all_actions(),
                    Some(names) => names
                        .iter()
                        .map(|n| {
                            Action::parse_for(kind, n)
                                .ok_or_else(|| context(format!("a {kind} has no event `{n}`")))
                        })
                        .collect::<Result<ActionSet, _>>()
                        .map_err(anyhow::Error::msg)?,
                };
                if actions.is_empty() {
                    anyhow::bail!(context(
                        "`events` must not be empty; leave the kind out instead".into()
                    ));
                }
                let table = &mut hidden[super::grants::kind_index(kind)];
                let mut hide: Mask = 0;
                for raw in &rule.hide {
                    let field =
                        HiddenField::parse(kind, raw).map_err(|e| anyhow::anyhow!(context(e)))?;
                    let bit = match table.iter().position(|f| *f == field) {
                        Some(bit) => bit,
                        None => {
                            anyhow::ensure!(
                                table.len() < MAX_HIDDEN_PER_KIND,
                                "permissions: more than {MAX_HIDDEN_PER_KIND} hidden fields of {kind}s"
                            );
                            table.push(field);
                            table.len() - 1
                        }
                    };
                    hide |= 1 << bit;
                }
                compiled[super::grants::kind_index(kind)] = Some(Rule {
                    granted_only: rule.see == See::Granted,
                    actions,
                    hide,
                });
            }
            roles.insert(name.clone(), compiled);
        }
        if config.enabled {
            anyhow::ensure!(
                config.topic.is_some(),
                "permissions.topic must name the permissions topic when permissions are enabled"
            );
        }
        Ok(Self {
            enabled: config.enabled,
            replay_before_grant: config.replay_before_grant,
            hidden,
            roles,
        })
    }

    /// No policy: everyone sees all of their organisation.
    pub fn everything() -> Self {
        Self::new(&PermissionsConfig::default()).expect("the empty policy is valid")
    }

    pub fn is_enabled(&self) -> bool {
        self.enabled
    }

    /// How a replay decides on an event written at `occurred_at_ms`: as of
    /// then, unless the policy replays events from before a grant.
    pub fn replay_moment(&self, occurred_at_ms: i64) -> Moment {
        if self.replay_before_grant {
            Moment::Live
        } else {
            Moment::Replayed { occurred_at_ms }
        }
    }

    /// What `mask` hides of a `kind` event.
    pub fn hidden(&self, kind: ResourceKind, mask: Mask) -> Hidden<'_> {
        Hidden::new(&self.hidden[super::grants::kind_index(kind)], mask)
    }

    /// What a user with `roles`, in `teams` by their credential, may see.
    pub fn viewer(&self, user: &UserId, roles: &[String], teams: &[TeamId]) -> Viewer {
        if !self.enabled {
            return Viewer::everything(user);
        }
        let rules = roles.iter().filter_map(|role| self.roles.get(role));
        Viewer::new(user, teams, rules)
    }
}
