//! The load generator: thousands of simulated clients in one process
//! (Socket.IO for crm-bridge and the Node peer, Centrifugo's own protocol
//! for Centrifugo), written against the wire protocol (not a client
//! library) so it stays far cheaper than the servers it drives. Each client checks what it
//! receives as it arrives (see [`ledger`]); the fleet sums the checks.

pub mod centrifugo;
pub mod histogram;
pub mod ledger;
pub mod session;
pub mod wire;

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;

use histogram::Histogram;
use ledger::Ledger;

/// What the clients speak to a server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    SocketIo,
    Centrifugo,
}

/// Who a client is and what it asks for.
pub struct ClientSpec {
    /// The Socket.IO handshake's `auth`.
    pub auth: Value,
    pub subscriptions: Vec<Value>,
    /// The resource ids it may receive; `None`: whatever its subscriptions match.
    pub allowed_ids: Option<Vec<String>>,
}

pub struct Client {
    pub spec: ClientSpec,
    pub ledger: Mutex<Ledger>,
}

/// Counters every connection task updates.
#[derive(Default)]
pub struct Shared {
    pub latency: Histogram,
    /// Sessions whose subscriptions are all acknowledged.
    pub ready: AtomicUsize,
    /// Sessions whose resumed subscriptions all finished replaying.
    pub resumed: AtomicUsize,
    /// Connections currently open.
    pub open: AtomicUsize,
    pub refused: AtomicUsize,
    pub failures: AtomicU64,
    pub reconnect: AtomicBool,
    /// When each of the `resumed` sessions resumed, in order.
    pub resumed_at: Mutex<Vec<Instant>>,
}

impl Shared {
    fn note_failure(&self, what: &str) {
        if self.failures.fetch_add(1, Relaxed) < 5 {
            eprintln!("load: {what}");
        }
    }

    fn note_resumed(&self) {
        self.resumed_at.lock().unwrap().push(Instant::now());
        self.resumed.fetch_add(1, Relaxed);
    }
}

/// What the whole fleet received since the last reset.
#[derive(Debug, Default, Clone, Copy)]
pub struct Totals {
    pub received: u64,
    pub replayed: u64,
    pub repeated: u64,
    pub misrouted: u64,
    pub errors: u64,
}

/// The ramp-up pace: how many clients may be between connecting and
/// subscribed at once.
pub const RAMP: usize = 200;

pub struct Fleet {
    url: String,
    protocol: Protocol,
    pub clients: Vec<Arc<Client>>,
    pub shared: Arc<Shared>,
    tasks: Vec<JoinHandle<()>>,
}

impl Fleet {
    pub fn new(server_url: &str, protocol: Protocol, specs: Vec<ClientSpec>) -> Self {
        let url = match protocol {
            Protocol::SocketIo => wire::websocket_url(server_url),
            Protocol::Centrifugo => centrifugo::websocket_url(server_url),
        };
        Self {
            url,
            protocol,
            clients: specs
                .into_iter()
                .map(|spec| {
                    Arc::new(Client {
                        spec,
                        ledger: Mutex::default(),
                    })
                })
                .collect(),
            shared: Arc::default(),
            tasks: Vec::new(),
        }
    }

    /// Connects every client (resuming from its cursors if `resume`), at
    /// most `in_flight` between connecting and subscribed at a time, and
    /// returns once all are subscribed, or `None` on `timeout`.
    pub async fn connect_all(
        &mut self,
        resume: bool,
        in_flight: usize,
        timeout: Duration,
    ) -> Option<Duration> {
        let started = Instant::now();
        let target = self.shared.ready.load(Relaxed) + self.clients.len();
        let gate = Arc::new(Semaphore::new(in_flight));
        for client in &self.clients {
            let permit = gate.clone().acquire_owned().await.unwrap();
            self.tasks.push(tokio::spawn(session::run(
                self.url.clone(),
                self.protocol,
                client.clone(),
                self.shared.clone(),
                resume,
                Some(permit),
            )));
        }
        self.wait(|s| s.ready.load(Relaxed) >= target, timeout)
            .await
            .then(|| started.elapsed())
    }

    /// Drops every connection (the servers see a transport close).
    pub fn disconnect_all(&mut self) {
        self.shared.reconnect.store(false, Relaxed);
        self.tasks.drain(..).for_each(|task| task.abort());
    }

    /// Polls `done` every 10 ms until it holds (`true`) or `timeout` passes.
    pub async fn wait(&self, done: impl Fn(&Shared) -> bool, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while !done(&self.shared) {
            if Instant::now() > deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        true
    }

    /// Waits until the fleet received `total` events in all, or `timeout`.
    pub async fn wait_received(&self, total: u64, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while self.totals().received < total {
            if Instant::now() > deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        true
    }

    pub fn totals(&self) -> Totals {
        self.clients
            .iter()
            .fold(Totals::default(), |mut t, client| {
                let ledger = client.ledger.lock().unwrap();
                t.received += ledger.received;
                t.replayed += ledger.replayed;
                t.repeated += ledger.repeated;
                t.misrouted += ledger.misrouted;
                t.errors += ledger.errors;
                t
            })
    }

    /// Per client, what it received; for checking against what it should have.
    pub fn received_by_client(&self) -> Vec<u64> {
        self.clients
            .iter()
            .map(|client| client.ledger.lock().unwrap().received)
            .collect()
    }

    pub fn reset_counts(&self) {
        self.shared.latency.reset();
        for client in &self.clients {
            client.ledger.lock().unwrap().reset_counts();
        }
    }
}

impl Drop for Fleet {
    fn drop(&mut self) {
        self.disconnect_all();
    }
}
