//! Revocation. Live delivery asks the grants view about every event, so a
//! revoked grant stops showing its resource as soon as the view applies
//! the tombstone. This task then tells the connections that held the
//! resource by `id` or by a room, and ends those: `subscription-revoked`,
//! the subscription and the room seat gone (presence says `user-left`).
//! A filter subscription (a pipeline, the organisation) stays: it simply
//! shows the connection its share.

use std::sync::Arc;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::permits::{room_kind, sees};
use super::replies::SubscriptionRevoked;
use super::{Client, Gateway};
use crate::access::ResourceRef;
use crate::domain::RoomKey;
use crate::protocol::{ErrorCode, describe_key, describe_room, now_rfc3339};
use crate::routing::{Scope, Selector, SubscriptionKey};

/// Starts the task that follows the view's revocations; it stops with
/// `shutdown`.
pub fn spawn_revocations(gateway: &Arc<Gateway>, tasks: &TaskTracker, shutdown: CancellationToken) {
    let gateway = gateway.clone();
    tasks.spawn(async move {
        loop {
            tokio::select! {
                () = gateway.grants.changed() => {}
                () = shutdown.cancelled() => return,
            }
            for resource in gateway.grants.take_rechecks() {
                recheck(&gateway, &resource);
            }
        }
    });
}

/// Ends every connection's hold of `resource` that no grant supports now.
fn recheck(gateway: &Gateway, resource: &ResourceRef) {
    let key = SubscriptionKey {
        org: resource.org.clone(),
        scope: Scope::Resource(resource.kind, Selector::Id(resource.id.clone())),
    };
    let room = RoomKey {
        org: resource.org.clone(),
        kind: room_kind(resource.kind),
        id: resource.id.clone(),
    };
    for (_, client) in gateway.index.subscribers(&key) {
        if !sees(gateway, &client.session, resource.kind, &resource.id) {
            end(gateway, &client, resource, &key, &room);
        }
    }
}

fn end(
    gateway: &Gateway,
    client: &Client,
    resource: &ResourceRef,
    key: &SubscriptionKey,
    room: &RoomKey,
) {
    let (subscription, seat) = client.session.revoke(gateway, client, key, room);
    if !(subscription || seat) {
        return; // left, or unsubscribed, meanwhile
    }
    for (what, ended) in [("subscription", subscription), ("room", seat)] {
        if ended {
            gateway.metrics.revoked.inc(what);
        }
    }
    let notice = SubscriptionRevoked {
        subscription: subscription.then(|| describe_key(key, None)),
        room: seat.then(|| describe_room(room)),
        code: ErrorCode::Forbidden,
        message: format!("access to {} {} was revoked", resource.kind, resource.id),
        timestamp: now_rfc3339(),
    };
    client.socket.emit("subscription-revoked", &notice).ok();
}
