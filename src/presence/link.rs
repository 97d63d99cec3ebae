//! [`Presence`]: the roster behind one lock, wired to the presence topic.
//!
//! Local changes are applied at once (a joining socket's acknowledgement
//! already lists the room) and published; other instances' records are
//! applied as they arrive. Effects are carried out under the lock, so the
//! events a socket sees and the records others see keep the roster's order.
//! Emitting and publishing never wait: a socket's queue and the producer's
//! queue are bounded, and presence is best effort past them (counted; the
//! periodic resync heals what a lost record left behind). Snapshots are
//! split into records well below Kafka's record limit.
//!
//! Start-up: the consumer is placed at the topic's end, then this instance
//! says `hello`; every other instance answers with a snapshot of what it
//! holds, which is how a node that starts late learns the current presence.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::producer::{BaseRecord, Producer};
use rdkafka::{Message as _, Offset, TopicPartitionList};
use socketioxide::extract::SocketRef;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::PresenceConfig;
use super::roster::{Effects, NotInRoom, RoomView, Roster};
use super::wire::{Envelope, InstanceId, Message};
use crate::domain::{RoomKey, UserId};
use crate::kafka::{BridgeContext, KafkaConfig, PolledProducer, partitions_of};
use crate::metrics::Metrics;
use crate::routing::ClientId;

const LOOKUP_TIMEOUT: Duration = Duration::from_secs(5);
const RETRY_EVERY: Duration = Duration::from_millis(500);
/// How long shutdown waits for the `bye` record to leave.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(2);

type PresenceConsumer = StreamConsumer<BridgeContext>;

pub struct Presence {
    me: InstanceId,
    node: Box<str>,
    topic: String,
    heartbeat: Duration,
    roster: Mutex<Roster<SocketRef>>,
    producer: PolledProducer<BridgeContext>,
    metrics: Arc<Metrics>,
    /// When this instance saw its own `hello` come back (Unix ms; 0: not yet).
    hello_seen_at: AtomicU64,
    /// When a record of its own last came back (Unix ms).
    own_seen_at: AtomicU64,
    /// Start-up sync is done.
    ready: AtomicBool,
}

impl Presence {
    /// Connects to Kafka and starts the task that follows the presence topic.
    pub fn start(
        config: &PresenceConfig,
        kafka: &KafkaConfig,
        context: &BridgeContext,
        metrics: Arc<Metrics>,
        tasks: &TaskTracker,
        shutdown: CancellationToken,
    ) -> anyhow::Result<Arc<Self>> {
        let node = kafka.node_id();
        let me: InstanceId = uuid::Uuid::new_v4().to_string().into();
        let producer_config = kafka
            .client_config()
            .set("client.id", format!("crm-bridge-presence-{node}"))
            // Typing is latency-bound: send at once, and keep one request in
            // flight so an instance's records stay in order through retries.
            .set("linger.ms", "0")
            .set("max.in.flight.requests.per.connection", "1")
            .set("queue.buffering.max.messages", "100000")
            .clone();
        let producer = PolledProducer::create(
            &producer_config,
            context.for_client("the presence producer"),
            "presence-producer",
        )?;
        let fetch_wait = config.fetch_wait_ms.to_string();
        let settings = [
            ("enable.auto.commit", "false"),
            ("fetch.wait.max.ms", fetch_wait.as_str()),
        ];
        let group = format!("{}-{node}-presence", kafka.group_prefix);
        let consumer: PresenceConsumer = kafka
            .consumer_config(&format!("crm-bridge-presence-{node}"), &group, &settings)
            .create_with_context(
                context.for_client(format!("the presence consumer (group {group})")),
            )?;
        let presence = Arc::new(Self {
            roster: Mutex::new(Roster::new(me.clone(), config.timing())),
            me,
            node: node.into(),
            topic: config.topic.clone(),
            heartbeat: Duration::from_millis(config.heartbeat_ms),
            producer,
            metrics,
            hello_seen_at: AtomicU64::new(0),
            own_seen_at: AtomicU64::new(0),
            ready: AtomicBool::new(false),
        });
        let resync = Duration::from_secs(config.resync_seconds.max(1));
        tasks.spawn(follow(presence.clone(), consumer, resync, shutdown));
        Ok(presence)
    }

    /// `socket` joins `room`; returns who else is there and who is typing.
    pub fn join(
        &self,
        room: &RoomKey,
        client: ClientId,
        socket: SocketRef,
        user: &UserId,
        name: &str,
    ) -> RoomView {
        let mut roster = self.roster();
        let (view, effects) = roster.join(room, client, socket, user, name, now_ms());
        self.carry_out(effects);
        view
    }

    /// False if the socket was not in the room.
    pub fn leave(&self, room: &RoomKey, client: ClientId) -> bool {
        let mut roster = self.roster();
        match roster.leave(room, client, now_ms()) {
            Some(effects) => {
                self.carry_out(effects);
                true
            }
            None => false,
        }
    }

    /// Shows the socket's user typing; `Ok(false)` when throttled.
    pub fn typing(&self, room: &RoomKey, client: ClientId, field: &str) -> Result<bool, NotInRoom> {
        let mut roster = self.roster();
        let shown = roster.typing(room, client, field, now_ms())?;
        Ok(shown.map(|effects| self.carry_out(effects)).is_some())
    }

    /// Ready once this instance's `hello` came back, a heartbeat interval
    /// passed (so every live instance was heard), and every instance heard
    /// has said what it holds. Start-up only: once ready, it stays ready (a
    /// peer that times out and returns must not take every node out of the
    /// load balancer while it resyncs).
    pub fn is_ready(&self) -> bool {
        if self.ready.load(Ordering::Acquire) {
            return true;
        }
        let seen = self.hello_seen_at.load(Ordering::Acquire);
        let ready =
            seen != 0 && now_ms() >= seen + self.heartbeat_ms() && self.roster().is_synced();
        if ready {
            self.ready.store(true, Ordering::Release);
        }
        ready
    }

    /// Other bridge instances this one knows of.
    pub fn peers(&self) -> usize {
        self.roster().peer_count()
    }

    fn roster(&self) -> MutexGuard<'_, Roster<SocketRef>> {
        self.roster.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Emits and publishes `effects`; the caller holds the roster lock.
    fn carry_out(&self, effects: Effects<SocketRef>) {
        for notice in effects.notices {
            for socket in notice.to {
                if socket.emit(notice.event, &notice.payload).is_err() {
                    self.metrics.dropped.inc("presence");
                }
            }
        }
        for message in effects.publish {
            self.publish(message);
        }
    }

    fn publish(&self, message: Message) {
        let envelope = Envelope {
            from: self.me.clone(),
            node: self.node.clone(),
            at: now_ms(),
            message,
        };
        let Ok(payload) = serde_json::to_vec(&envelope) else {
            return;
        };
        let record = BaseRecord::to(&self.topic)
            .key(self.me.as_bytes())
            .payload(&payload);
        match self.producer.send(record) {
            Ok(()) => self.metrics.presence_sent.inc(),
            Err((e, _)) => {
                self.metrics.presence_failures.inc("send");
                let trouble = self.producer.context().trouble();
                trouble.warn("cannot publish a presence record", &e);
            }
        }
    }

    fn receive(&self, payload: Option<&[u8]>) {
        let Some(envelope) = payload.and_then(|p| serde_json::from_slice::<Envelope>(p).ok())
        else {
            self.metrics.presence_failures.inc("decode");
            return;
        };
        self.metrics.presence_received.inc();
        if envelope.from == self.me {
            let now = now_ms();
            self.own_seen_at.store(now, Ordering::Release);
            if envelope.message == Message::Hello {
                self.hello_seen_at.store(now, Ordering::Release);
            }
            return;
        }
        let mut roster = self.roster();
        let effects = roster.apply(&envelope, now_ms());
        self.carry_out(effects);
    }

    /// Beats, and times out silent instances, but only while this
    /// instance's own heartbeats come back: a node cut off from Kafka hears
    /// nobody and must not take everyone else for dead.
    fn tick(&self) {
        self.publish(Message::Heartbeat);
        let now = now_ms();
        let hearing = now <= self.own_seen_at.load(Ordering::Acquire) + 2 * self.heartbeat_ms();
        if !hearing {
            tracing::debug!("own presence records not coming back; not timing out others");
            return;
        }
        let mut roster = self.roster();
        let effects = roster.expire(now);
        self.carry_out(effects);
    }

    fn heartbeat_ms(&self) -> u64 {
        self.heartbeat.as_millis() as u64
    }

    fn resync(&self) {
        let roster = self.roster();
        for message in roster.snapshot() {
            self.publish(message);
        }
    }
}

/// Follows the presence topic from its end: applies records, beats, resyncs.
async fn follow(
    presence: Arc<Presence>,
    consumer: PresenceConsumer,
    resync_every: Duration,
    shutdown: CancellationToken,
) {
    let consumer = Arc::new(consumer);
    if !assign_at_end(&consumer, &presence.topic, &shutdown).await {
        return;
    }
    presence.publish(Message::Hello);
    let mut heartbeat = tokio::time::interval(presence.heartbeat);
    let mut resync = tokio::time::interval(resync_every);
    resync.reset();
    loop {
        tokio::select! {
            biased;
            _ = shutdown.cancelled() => break,
            _ = heartbeat.tick() => presence.tick(),
            _ = resync.tick() => presence.resync(),
            received = consumer.recv() => match received {
                Ok(record) => presence.receive(record.payload()),
                Err(e) => {
                    presence.metrics.presence_failures.inc("consume");
                    consumer.context().trouble().warn("presence topic consume error", &e);
                }
            },
        }
    }
    presence.publish(Message::Bye);
    let flushed = tokio::task::spawn_blocking(move || presence.producer.flush(FLUSH_TIMEOUT)).await;
    if !matches!(flushed, Ok(Ok(()))) {
        tracing::warn!("presence records not all sent at shutdown");
    }
}

/// Assigns every partition of `topic` at its current end, waiting for the
/// topic to exist. False if shut down first.
async fn assign_at_end(
    consumer: &Arc<PresenceConsumer>,
    topic: &str,
    shutdown: &CancellationToken,
) -> bool {
    loop {
        let lookup = {
            let (consumer, topic) = (consumer.clone(), topic.to_owned());
            tokio::task::spawn_blocking(move || end_offsets(&consumer, &topic)).await
        };
        match lookup {
            Ok(Ok(assignment)) => match consumer.assign(&assignment) {
                Ok(()) => return true,
                Err(e) => tracing::warn!(error = %e, "cannot assign the presence topic"),
            },
            Ok(Err(e)) => consumer
                .context()
                .trouble()
                .warn("waiting for the presence topic", &e),
            Err(e) => tracing::warn!(error = %e, "presence topic lookup failed"),
        }
        tokio::select! {
            _ = shutdown.cancelled() => return false,
            _ = tokio::time::sleep(RETRY_EVERY) => {}
        }
    }
}

fn end_offsets(consumer: &PresenceConsumer, topic: &str) -> anyhow::Result<TopicPartitionList> {
    let partitions = partitions_of(consumer, topic, LOOKUP_TIMEOUT)?;
    let mut assignment = TopicPartitionList::new();
    for partition in partitions {
        let (_, high) = consumer.fetch_watermarks(topic, partition, LOOKUP_TIMEOUT)?;
        assignment.add_partition_offset(topic, partition, Offset::Offset(high))?;
    }
    Ok(assignment)
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}
