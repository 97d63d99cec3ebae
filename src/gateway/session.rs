//! What one connection holds: its principal and its subscriptions.

use std::collections::HashMap;
use std::sync::Mutex;

use socketioxide::extract::SocketRef;

use super::Gateway;
use crate::auth::Principal;
use crate::domain::ActionSet;
use crate::protocol::{ClientError, ErrorCode, SubscriptionRequest};
use crate::routing::{ClientId, Scope, SubscriptionKey};

pub struct Session {
    pub client: ClientId,
    pub principal: Principal,
    // std Mutex: held for a map update plus an index update, never across
    // `.await`. It also orders subscribe against disconnect, so a subscription
    // can never be added to the index after the socket's cleanup ran.
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    subscriptions: HashMap<SubscriptionKey, ActionSet>,
    closed: bool,
}

/// Whether a subscribe created a subscription or replaced one's events.
pub enum Subscribed {
    New,
    Replaced,
}

impl Session {
    pub fn new(client: ClientId, principal: Principal) -> Self {
        Self {
            client,
            principal,
            state: Mutex::default(),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The implicit subscription to the user's own notifications.
    pub fn inbox_key(&self) -> SubscriptionKey {
        SubscriptionKey {
            org: self.principal.org.clone(),
            scope: Scope::Inbox(self.principal.user.clone()),
        }
    }

    /// Puts the implicit inbox subscription in the index.
    pub fn open(&self, gateway: &Gateway, socket: &SocketRef) {
        let state = self.state();
        if !state.closed {
            let inbox = self.inbox_key();
            gateway
                .index
                .insert(inbox, self.client, socket.clone(), ActionSet::default());
        }
    }

    pub fn subscribe(
        &self,
        gateway: &Gateway,
        socket: &SocketRef,
        request: &SubscriptionRequest,
    ) -> Result<Subscribed, ClientError> {
        let mut state = self.state();
        if state.closed {
            return Err(ClientError::new(
                ErrorCode::InvalidRequest,
                "connection is closing",
            ));
        }
        let is_new = !state.subscriptions.contains_key(&request.key);
        if is_new && state.subscriptions.len() >= gateway.limits.max_subscriptions {
            return Err(ClientError::new(
                ErrorCode::RateLimited,
                format!(
                    "subscription limit reached ({} per connection); unsubscribe first",
                    gateway.limits.max_subscriptions
                ),
            ));
        }
        state
            .subscriptions
            .insert(request.key.clone(), request.actions);
        gateway.index.insert(
            request.key.clone(),
            self.client,
            socket.clone(),
            request.actions,
        );
        if is_new {
            gateway.metrics.subscriptions.inc();
            Ok(Subscribed::New)
        } else {
            Ok(Subscribed::Replaced)
        }
    }

    /// True if the subscription existed.
    pub fn unsubscribe(&self, gateway: &Gateway, key: &SubscriptionKey) -> bool {
        let mut state = self.state();
        let existed = state.subscriptions.remove(key).is_some();
        if existed {
            gateway.index.remove(key, self.client);
            gateway.metrics.subscriptions.dec();
        }
        existed
    }

    /// Removes everything this connection put in the index. Idempotent:
    /// returns true only for the call that closed it.
    pub fn close(&self, gateway: &Gateway) -> bool {
        let mut state = self.state();
        if state.closed {
            return false;
        }
        state.closed = true;
        for (key, _) in state.subscriptions.drain() {
            gateway.index.remove(&key, self.client);
            gateway.metrics.subscriptions.dec();
        }
        gateway.index.remove(&self.inbox_key(), self.client);
        true
    }
}
