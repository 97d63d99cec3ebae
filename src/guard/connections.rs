//! How many Socket.IO connections this node holds: in all, per user and per
//! client address; and how fast one address may open new ones. A connection
//! holds a [`ConnectionSlot`] until its socket is gone; the slot gives its
//! place back when dropped.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use super::{GuardConfig, TokenBucket};
use crate::domain::{OrgId, UserId};

/// Above this many addresses tracked, idle (full) handshake buckets are
/// forgotten (they carry no information), at most once per [`PRUNE_EVERY`]
/// so that many addresses cannot make every handshake scan them all.
const PRUNE_ABOVE: usize = 10_000;
const PRUNE_EVERY: Duration = Duration::from_secs(1);

#[derive(Debug, PartialEq)]
pub enum Refusal {
    /// New connections from this address come too fast.
    HandshakeRate {
        retry_after: Duration,
    },
    NodeFull,
    UserFull,
    AddressFull,
}

impl Refusal {
    /// The label clients see in `details.reason` and metrics count by.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::HandshakeRate { .. } => "handshake_rate",
            Self::NodeFull => "node_full",
            Self::UserFull => "user_connections",
            Self::AddressFull => "address_connections",
        }
    }
}

pub struct ConnectionGate {
    config: GuardConfig,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    total: usize,
    per_user: HashMap<(OrgId, UserId), usize>,
    per_address: HashMap<IpAddr, usize>,
    handshakes: Buckets,
    engine_opens: Buckets,
}

/// One token bucket per address, forgotten once full again.
#[derive(Default)]
struct Buckets {
    by_address: HashMap<IpAddr, TokenBucket>,
    pruned_at: Option<Instant>,
}

impl Buckets {
    /// Takes a token of `address`'s bucket (`rate` per second, `burst`);
    /// `Err` is how long until one is due.
    fn take(
        &mut self,
        address: IpAddr,
        rate: u32,
        burst: u32,
        now: Instant,
    ) -> Result<(), Duration> {
        let due = self
            .pruned_at
            .is_none_or(|at| now.saturating_duration_since(at) >= PRUNE_EVERY);
        if self.by_address.len() > PRUNE_ABOVE && due {
            self.by_address.retain(|_, bucket| !bucket.is_full(now));
            self.pruned_at = Some(now);
        }
        self.by_address
            .entry(limited_as(address))
            .or_insert_with(|| TokenBucket::new(rate, burst, now))
            .take(now)
    }
}

/// One admitted connection's place in the counts.
pub struct ConnectionSlot {
    gate: Arc<ConnectionGate>,
    user: (OrgId, UserId),
    address: IpAddr,
}

impl ConnectionGate {
    pub fn new(config: &GuardConfig) -> Arc<Self> {
        Arc::new(Self {
            config: config.clone(),
            state: Mutex::default(),
        })
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A handshake from `address`, before any credential is checked.
    pub fn handshake(&self, address: IpAddr, now: Instant) -> Result<(), Refusal> {
        let (rate, burst) = (
            self.config.handshakes_per_second_per_address,
            self.config.handshake_burst,
        );
        self.state()
            .handshakes
            .take(address, rate, burst, now)
            .map_err(|retry_after| Refusal::HandshakeRate { retry_after })
    }

    /// A new Engine.IO session from `address`, before its Socket.IO
    /// CONNECT; `Err` is how long until another is allowed.
    pub fn engine_open(&self, address: IpAddr, now: Instant) -> Result<(), Duration> {
        let (rate, burst) = (
            self.config.engine_opens_per_second_per_address,
            self.config.engine_open_burst,
        );
        self.state().engine_opens.take(address, rate, burst, now)
    }

    /// A place for an authenticated connection of `user` from `address`.
    pub fn admit(
        self: &Arc<Self>,
        user: (OrgId, UserId),
        address: IpAddr,
    ) -> Result<ConnectionSlot, Refusal> {
        let address = limited_as(address);
        let mut state = self.state();
        let state = &mut *state;
        if state.total >= self.config.max_connections {
            return Err(Refusal::NodeFull);
        }
        let of_user = state.per_user.get(&user).copied().unwrap_or(0);
        if of_user >= self.config.max_connections_per_user {
            return Err(Refusal::UserFull);
        }
        let of_address = state.per_address.get(&address).copied().unwrap_or(0);
        if of_address >= self.config.max_connections_per_address {
            return Err(Refusal::AddressFull);
        }
        state.total += 1;
        state.per_user.insert(user.clone(), of_user + 1);
        state.per_address.insert(address, of_address + 1);
        Ok(ConnectionSlot {
            gate: self.clone(),
            user,
            address,
        })
    }

    fn release(&self, user: &(OrgId, UserId), address: IpAddr) {
        let mut state = self.state();
        state.total -= 1;
        decrement(&mut state.per_user, user);
        decrement(&mut state.per_address, &address);
    }
}

/// The address limits apply to: IPv4 as is, IPv6 by its /64 (one host
/// commonly holds a whole /64, so single addresses would not limit it).
fn limited_as(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V4(_) => address,
        IpAddr::V6(v6) => {
            let prefix = u128::from(v6) & !((1u128 << 64) - 1);
            IpAddr::V6(prefix.into())
        }
    }
}

fn decrement<K: std::hash::Hash + Eq + Clone>(counts: &mut HashMap<K, usize>, key: &K) {
    if let Some(count) = counts.get_mut(key) {
        *count -= 1;
        if *count == 0 {
            counts.remove(key);
        }
    }
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        self.gate.release(&self.user, self.address);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gate() -> Arc<ConnectionGate> {
        ConnectionGate::new(&GuardConfig {
            max_connections: 3,
            max_connections_per_user: 2,
            max_connections_per_address: 2,
            handshakes_per_second_per_address: 10,
            handshake_burst: 2,
            ..GuardConfig::default()
        })
    }

    fn user(id: &str) -> (OrgId, UserId) {
        (OrgId::new("org").unwrap(), UserId::new(id).unwrap())
    }

    fn address(last: u8) -> IpAddr {
        IpAddr::from([10, 0, 0, last])
    }

    #[test]
    fn each_limit_refuses_only_its_excess_and_slots_give_their_place_back() {
        let gate = gate();
        let a = gate.admit(user("u1"), address(1)).unwrap();
        let b = gate.admit(user("u2"), address(1)).unwrap();
        let refused = gate.admit(user("u3"), address(1)).err();
        assert_eq!(refused, Some(Refusal::AddressFull));
        let c = gate.admit(user("u1"), address(2)).unwrap();
        let refused = gate.admit(user("u3"), address(3)).err();
        assert_eq!(refused, Some(Refusal::NodeFull));
        drop(b);
        let refused = gate.admit(user("u1"), address(3)).err();
        assert_eq!(refused, Some(Refusal::UserFull));
        let d = gate.admit(user("u3"), address(3)).unwrap();
        drop((a, c, d));
        let state = gate.state();
        assert_eq!(state.total, 0);
        assert!(state.per_user.is_empty() && state.per_address.is_empty());
    }

    #[test]
    fn handshakes_are_rate_limited_per_address() {
        let gate = gate();
        let now = Instant::now();
        gate.handshake(address(1), now).unwrap();
        gate.handshake(address(1), now).unwrap();
        let refused = gate.handshake(address(1), now);
        assert_eq!(
            refused,
            Err(Refusal::HandshakeRate {
                retry_after: Duration::from_millis(100)
            })
        );
        gate.handshake(address(2), now).unwrap();
        gate.handshake(address(1), now + Duration::from_millis(100))
            .unwrap();
    }

    #[test]
    fn engine_opens_have_a_bucket_of_their_own() {
        let gate = ConnectionGate::new(&GuardConfig {
            engine_opens_per_second_per_address: 4,
            engine_open_burst: 1,
            handshake_burst: 1,
            ..GuardConfig::default()
        });
        let now = Instant::now();
        gate.engine_open(address(1), now).unwrap();
        assert_eq!(
            gate.engine_open(address(1), now),
            Err(Duration::from_millis(250))
        );
        // Neither limit spends the other's tokens.
        gate.handshake(address(1), now).unwrap();
        gate.engine_open(address(2), now).unwrap();
        gate.engine_open(address(1), now + Duration::from_millis(250))
            .unwrap();
    }

    #[test]
    fn ipv6_addresses_count_by_their_64_prefix() {
        let gate = gate();
        let host = |last: u16| IpAddr::from([0x2001, 0xdb8, 0, 1, 0, 0, 0, last]);
        let _a = gate.admit(user("u1"), host(1)).unwrap();
        let _b = gate.admit(user("u2"), host(2)).unwrap();
        let refused = gate.admit(user("u3"), host(3)).err();
        assert_eq!(refused, Some(Refusal::AddressFull));
        let other_net = IpAddr::from([0x2001, 0xdb8, 0, 2, 0, 0, 0, 1]);
        assert!(gate.admit(user("u3"), other_net).is_ok());
    }
}
