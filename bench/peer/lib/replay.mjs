// Replays: `subscribe` with `since` reads what the client missed with a
// kafkajs consumer of its own (a throwaway group, seek per partition), then
// joins the live rooms.
//
// The seam: a replay emits exactly the matching records with
// cursor <= offset < live frontier (the live consumer's next offset), and the
// socket joins the rooms, in one synchronous step, once on every partition the
// replay has handled everything below the frontier. Records it reads at or
// past the frontier are held (and the partition paused) until the frontier
// passes them, or dropped at the join since live delivery sends them.
//
// At most `concurrency` replay consumers run at once; the rest queue.

import { fetchSettings } from './kafka.mjs';
import { TOPICS, formatCursor } from './events.mjs';

// Replays wait for a socket whose engine.io write buffer holds more packets.
const SOCKET_BACKLOG = 1000;

let sequence = 0;

export class Replays {
  constructor({ kafka, names, live, decode, route, groupPrefix, concurrency, timeoutMs, maxWaitMs, log }) {
    Object.assign(this, { kafka, names, live, decode, route, groupPrefix, concurrency, timeoutMs, maxWaitMs, log });
    this.queue = [];
    this.running = new Set();
    this.byTopic = new Map(); // topic -> Set<job> of running jobs, checked after each live batch
    this.started = 0;
    this.completed = 0;
  }

  /** `onJoin(cursor, replayed)` runs synchronously at the seam; `onFail(reason)` if it cannot finish. */
  start({ socket, sub, since, onJoin, onFail }) {
    const job = { socket, sub, since, onJoin, onFail, state: 'queued', replayed: 0 };
    this.queue.push(job);
    this.pump();
    return job;
  }

  cancel(job) {
    if (job.state === 'queued') {
      job.state = 'cancelled';
      this.queue.splice(this.queue.indexOf(job), 1);
    } else if (job.state === 'running') {
      this.stop(job, 'cancelled');
    }
  }

  stats() {
    const { started, completed } = this;
    return { queued: this.queue.length, running: this.running.size, started, completed };
  }

  /** After a live batch on `topic`: flush held records now below the frontier, maybe join. */
  checkTopic(topic) {
    const jobs = this.byTopic.get(topic);
    if (jobs) for (const job of jobs) this.check(job);
  }

  pump() {
    while (this.running.size < this.concurrency && this.queue.length) {
      const job = this.queue.shift();
      this.run(job).catch((err) => {
        this.log(`replay ${job.groupId} failed: ${err.message}`);
        this.stop(job, 'failed');
      });
    }
  }

  async run(job) {
    job.state = 'running';
    this.running.add(job);
    this.started++;
    job.groupId = `${this.groupPrefix}-replay-${++sequence}`;
    job.timer = setTimeout(() => this.stop(job, 'timeout'), this.timeoutMs);

    // Per partition of the subscription's topics: where the replay stands.
    job.parts = new Map();
    for (const topic of job.sub.topics) {
      const parts = new Map();
      for (const [partition, end] of this.live.frontier.get(topic) ?? []) {
        // A partition the cursor does not name starts at its oldest record;
        // a cursor from the future reads nothing.
        const from = Math.min(job.since.get(topic)?.get(partition) ?? 0, end);
        parts.set(partition, { pos: from, held: [], paused: false });
      }
      job.parts.set(topic, parts);
      if (!this.byTopic.has(topic)) this.byTopic.set(topic, new Set());
      this.byTopic.get(topic).add(job);
    }
    // Nothing to read (every partition already at the frontier)?
    this.check(job);
    if (job.state !== 'running') return;

    const consumer = this.kafka.consumer({
      groupId: job.groupId,
      ...fetchSettings({ maxWaitMs: this.maxWaitMs }),
      sessionTimeout: 30000,
      heartbeatInterval: 3000,
    });
    job.consumer = consumer;
    // stop() disconnects only once these settle.
    const topics = job.sub.topics.map(this.names.toKafka);
    job.connected = consumer.connect().then(() => consumer.subscribe({ topics, fromBeginning: true }));
    await job.connected;
    if (job.state !== 'running') return;
    // Seek on every join, not only the first: after a rebalance (a member
    // the coordinator timed out rejoins) a group without commits would start
    // over at the earliest offset.
    consumer.on(consumer.events.GROUP_JOIN, () => {
      for (const [topic, parts] of job.parts) {
        for (const [partition, st] of parts) {
          const next = st.held.length ? Number(st.held[st.held.length - 1].offset) + 1 : st.pos;
          consumer.seek({ topic: this.names.toKafka(topic), partition, offset: String(next) });
        }
      }
    });
    await consumer.run({ autoCommit: false, eachBatch: (ctx) => this.eachBatch(job, ctx) });
  }

  async eachBatch(job, { batch, heartbeat }) {
    if (job.state !== 'running') return;
    const { partition, messages } = batch;
    const topic = this.names.fromKafka(batch.topic);
    const st = job.parts.get(topic).get(partition);
    if (messages.length === 0) return;
    if (st.held.length) {
      // Fetched before the pause took effect: hold these too.
      const last = Number(st.held[st.held.length - 1].offset);
      for (const m of messages) if (Number(m.offset) > last) st.held.push(m);
      return;
    }
    const end = this.live.frontier.get(topic).get(partition);
    for (let i = 0; i < messages.length; i++) {
      const offset = Number(messages[i].offset);
      if (offset >= end) {
        st.held = messages.slice(i);
        st.paused = true;
        job.consumer.pause([{ topic: batch.topic, partitions: [partition] }]);
        break;
      }
      this.replayOne(job, topic, partition, messages[i]);
      st.pos = offset + 1;
    }
    this.check(job);
    // Backpressure: let a slow socket drain before reading on.
    const conn = job.socket.conn;
    while (job.state === 'running' && conn.readyState === 'open' && conn.writeBuffer.length > SOCKET_BACKLOG) {
      await drainOrTimeout(conn, 1000);
      await heartbeat();
    }
  }

  replayOne(job, topic, partition, message) {
    let record;
    try {
      record = this.route(topic, this.decode(message.value), `${TOPICS[topic]}.${partition}.${message.offset}`);
    } catch {
      return; // undecodable: the live consumer logs and counts it
    }
    if (!record) return;
    const rooms = job.sub.roomSet;
    if (!record.rooms.some((r) => rooms.has(r))) return;
    job.socket.emit(record.name, { ...record.payload, replayed: true });
    job.replayed++;
  }

  /** Flushes held records below the frontier; joins when caught up everywhere. Synchronous. */
  check(job) {
    if (job.state !== 'running') return;
    let caughtUp = true;
    for (const [topic, parts] of job.parts) {
      const frontier = this.live.frontier.get(topic);
      for (const [partition, st] of parts) {
        const end = frontier.get(partition);
        if (st.held.length) {
          let i = 0;
          for (; i < st.held.length && Number(st.held[i].offset) < end; i++) {
            this.replayOne(job, topic, partition, st.held[i]);
            st.pos = Number(st.held[i].offset) + 1;
          }
          st.held = i === st.held.length ? [] : st.held.slice(i);
          if (st.held.length === 0 && st.paused) {
            st.paused = false;
            job.consumer.resume([{ topic: this.names.toKafka(topic), partitions: [partition] }]);
          }
        }
        // Held records start at or past the frontier: everything below it is done.
        if (st.held.length === 0 && st.pos < end) caughtUp = false;
      }
    }
    if (!caughtUp) return;
    const cursor = formatCursor(this.live.frontier, job.sub.topics);
    job.onJoin(cursor, job.replayed);
    this.completed++;
    this.stop(job, 'done');
  }

  stop(job, outcome) {
    if (job.state !== 'running') return;
    job.state = outcome;
    clearTimeout(job.timer);
    for (const topic of job.sub.topics) this.byTopic.get(topic)?.delete(job);
    if (outcome === 'timeout' || outcome === 'failed') job.onFail(outcome);
    // Not awaited: stop() may run inside this consumer's own eachBatch.
    const consumer = job.consumer;
    const disconnected = consumer
      ? job.connected.catch(() => {}).then(() => consumer.disconnect())
      : Promise.resolve();
    disconnected
      .catch((err) => this.log(`replay ${job.groupId}: disconnect: ${err.message}`))
      .finally(() => {
        this.running.delete(job);
        this.pump();
      });
  }
}


function drainOrTimeout(conn, ms) {
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      conn.off('drain', done);
      conn.off('close', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    conn.on('drain', done);
    conn.on('close', done);
  });
}
