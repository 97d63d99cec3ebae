//! The permissions policy at the gateway: what a connection may subscribe
//! to and join (refused `FORBIDDEN`, with the reason), and what of each
//! event it is shown (see [`crate::access`]).

use crate::access::{Held, Hidden, Mask, Moment, Refusal};
use crate::domain::{About, CrmEvent, ResourceKind, RoomKey, RoomKind};
use crate::protocol::{ClientError, Delivery, ErrorCode, Outbound, SubscriptionRequest};
use crate::routing::{Scope, Selector};

use super::Gateway;
use super::session::Session;

/// The request as the policy lets it stand. Naming some events, each must
/// be one the connection's roles receive; omitting them (or naming every
/// event of the kind), they are narrowed to those. An `id` subscription
/// needs a grant of that resource, unless a role sees all of its kind.
pub(super) fn admit_subscription(
    gateway: &Gateway,
    session: &Session,
    mut request: SubscriptionRequest,
) -> Result<SubscriptionRequest, ClientError> {
    let Scope::Resource(kind, selector) = &request.key.scope else {
        return Ok(request); // the connection's own notifications
    };
    let listed = request.actions != kind.all_actions();
    let viewer = &session.viewer;
    request.actions = viewer
        .admit_actions(*kind, request.actions, listed)
        .map_err(forbidden)?;
    if let Selector::Id(id) = selector {
        see_resource(gateway, session, *kind, id)?;
    }
    Ok(request)
}

/// A room is joined only by a connection that may see its resource (a
/// pipeline room: deals at all), so presence shows nothing of the rest.
pub(super) fn admit_room(
    gateway: &Gateway,
    session: &Session,
    room: &RoomKey,
) -> Result<(), ClientError> {
    match room_resource(room.kind) {
        None if session.viewer.sees_kind(ResourceKind::Deal) => Ok(()),
        None => Err(forbidden(Refusal(
            "your roles may not see deal resources".into(),
        ))),
        Some(kind) => see_resource(gateway, session, kind, &room.id),
    }
}

/// The resource a room is about; `None` for a pipeline's.
const fn room_resource(kind: RoomKind) -> Option<ResourceKind> {
    match kind {
        RoomKind::Pipeline => None,
        RoomKind::Deal => Some(ResourceKind::Deal),
        RoomKind::Contact => Some(ResourceKind::Contact),
        RoomKind::EmailThread => Some(ResourceKind::EmailThread),
    }
}

/// The room about one resource of `kind`.
pub(super) const fn room_kind(kind: ResourceKind) -> RoomKind {
    match kind {
        ResourceKind::Deal => RoomKind::Deal,
        ResourceKind::Contact => RoomKind::Contact,
        ResourceKind::EmailThread => RoomKind::EmailThread,
    }
}

/// Whether `session` may see `kind`/`id` now.
pub(super) fn sees(gateway: &Gateway, session: &Session, kind: ResourceKind, id: &str) -> bool {
    let org = session.principal.org.as_str();
    let view = gateway.grants.read();
    session.viewer.can_see(kind, &view.resource(org, kind, id))
}

fn see_resource(
    gateway: &Gateway,
    session: &Session,
    kind: ResourceKind,
    id: &str,
) -> Result<(), ClientError> {
    if sees(gateway, session, kind, id) {
        Ok(())
    } else if !gateway.grants.is_ready() {
        // A node still reading the permissions topic (it is not ready, so
        // a load balancer sends it no one, but a client may come straight
        // here) cannot tell a refusal from a grant it has not read yet.
        Err(ClientError::new(
            ErrorCode::ServerError,
            "permissions are still being read on this node; try again",
        ))
    } else {
        Err(forbidden(Refusal(format!(
            "no grant lets you see {kind} {id}"
        ))))
    }
}

fn forbidden(refusal: Refusal) -> ClientError {
    ClientError::new(ErrorCode::Forbidden, refusal.to_string())
}

/// A replayed event as `session` may see it now, rendered: `None` when the
/// policy does not show it (counted).
pub(super) fn replayed(
    gateway: &Gateway,
    session: &Session,
    event: &CrmEvent,
    render: impl FnOnce(Hidden<'_>) -> Outbound,
) -> Option<Outbound> {
    let moment = gateway.policy.replay_moment(event.occurred_at_ms());
    let view = gateway.grants.read();
    let held = view.about(event.keys());
    let mask = decide(gateway, session, event, &held, moment, Delivery::Replayed)?;
    Some(render(hidden(gateway, event, mask)))
}

/// See [`crate::access::Viewer::decide`]; counts what it withholds.
pub(super) fn decide(
    gateway: &Gateway,
    session: &Session,
    event: &CrmEvent,
    held: &Held<'_>,
    moment: Moment,
    delivery: Delivery,
) -> Option<Mask> {
    let shown = session.viewer.decide(event.keys(), held, moment);
    if shown.is_none() {
        let label = match delivery {
            Delivery::Live => "live",
            Delivery::Replayed => "replayed",
        };
        gateway.metrics.withheld.inc(label);
    }
    shown
}

/// What `mask` hides of `event`.
pub(super) fn hidden<'a>(gateway: &'a Gateway, event: &CrmEvent, mask: Mask) -> Hidden<'a> {
    match event.keys().about {
        About::Resource { kind, .. } if mask != 0 => gateway.policy.hidden(kind, mask),
        _ => Hidden::NOTHING,
    }
}
