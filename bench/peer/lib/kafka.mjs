// kafkajs: the client, topic set-up and the live consumer.
//
// The live consumer is one consumer group member reading every topic. It
// seeks each partition to a start offset it chose itself (committed offset,
// else earliest or latest), so `frontier` — per partition, the offset of the
// next record live delivery will handle — is known exactly from the start.
// Subscription cursors are read from it, and replays end at it.

import kafkajs from 'kafkajs';

const { Kafka, logLevel } = kafkajs;

const LEVEL = { [logLevel.ERROR]: 'error', [logLevel.WARN]: 'warn', [logLevel.INFO]: 'info', [logLevel.DEBUG]: 'debug' };

export function createKafka({ brokers, clientId, log }) {
  return new Kafka({
    clientId,
    brokers,
    logLevel: logLevel.WARN,
    logCreator: () => ({ namespace, level, log: entry }) => {
      const { message, ...extra } = entry;
      log(`kafkajs ${LEVEL[level]} [${namespace}] ${message} ${JSON.stringify(extra)}`);
    },
    // kafkajs's 1 s connect timeout is too tight for a busy benchmark host.
    connectionTimeout: 10000,
    retry: { initialRetryTime: 100, retries: 8 },
  });
}

/**
 * The Kafka topic of a CRM topic (`crm.deals`) and back: `prefix` + name
 * (TOPIC_PREFIX; the benchmarks give each scenario topics of its own). The
 * rest of the peer knows only the CRM names.
 */
export function topicNames(prefix) {
  return { toKafka: (topic) => prefix + topic, fromKafka: (topic) => topic.slice(prefix.length) };
}

/** Creates the topics that are missing; tolerates them existing (or appearing meanwhile). */
export async function ensureTopics(admin, names, topics, numPartitions) {
  const existing = new Set(await admin.listTopics());
  const missing = topics.map(names.toKafka).filter((t) => !existing.has(t));
  if (missing.length) {
    await admin.createTopics({ topics: missing.map((topic) => ({ topic, numPartitions })), waitForLeaders: true });
  }
}

/** Consumer settings shared by the live consumer and the replays. */
export const fetchSettings = ({ maxWaitMs }) => ({
  // How long the broker may hold a fetch while it has nothing to send; Kafka
  // answers as soon as a record arrives, so this costs idle requests, not
  // latency (FETCH_MAX_WAIT_MS, as crm-bridge's fetch.wait.max.ms).
  maxWaitTimeInMs: maxWaitMs,
  minBytes: 1,
  maxBytes: 50 * 1024 * 1024,
  maxBytesPerPartition: 10 * 1024 * 1024,
});

export class LiveConsumer {
  /**
   * `onRecord(topic, partition, message)` handles one record, synchronously.
   * `onBatchDone(topic)` runs after each batch (replays check their seam).
   */
  constructor({ kafka, admin, names, topics, groupId, fromBeginning, maxWaitMs, onRecord, onBatchDone, log }) {
    Object.assign(this, { kafka, admin, names, topics, groupId, fromBeginning, maxWaitMs, onRecord, onBatchDone, log });
    /** Map<topic, Map<partition, next offset>> */
    this.frontier = new Map();
    this.consumed = 0;
    this.ready = false;
  }

  async start() {
    const starts = await this.startOffsets();
    this.consumer = this.kafka.consumer({
      groupId: this.groupId,
      ...fetchSettings({ maxWaitMs: this.maxWaitMs }),
      sessionTimeout: 30000,
      heartbeatInterval: 3000,
    });
    const { GROUP_JOIN, CRASH } = this.consumer.events;
    this.consumer.on(GROUP_JOIN, ({ payload }) => {
      this.ready = true;
      this.log(`live consumer joined ${this.groupId}: ${JSON.stringify(payload.memberAssignment)}`);
    });
    this.consumer.on(CRASH, ({ payload }) => {
      this.ready = false;
      this.log(`live consumer crashed: ${payload.error?.message} (restart: ${payload.restart})`);
    });

    await this.consumer.connect();
    await this.consumer.subscribe({ topics: this.topics.map(this.names.toKafka), fromBeginning: this.fromBeginning });
    const running = this.consumer.run({
      partitionsConsumedConcurrently: 4,
      eachBatch: (ctx) => this.eachBatch(ctx),
    });
    // run() creates the group synchronously, so these seeks precede the first fetch.
    for (const [topic, partitions] of starts) {
      const frontier = new Map();
      for (const [partition, offset] of partitions) {
        this.consumer.seek({ topic: this.names.toKafka(topic), partition, offset: String(offset) });
        frontier.set(partition, offset);
      }
      this.frontier.set(topic, frontier);
    }
    await running;
  }

  /** Per partition: the group's committed offset if any, else earliest/latest. */
  async startOffsets() {
    const committed = new Map();
    const topics = this.topics.map(this.names.toKafka);
    for (const { topic, partitions } of await this.admin.fetchOffsets({ groupId: this.groupId, topics })) {
      for (const { partition, offset } of partitions) {
        if (Number(offset) >= 0) committed.set(`${this.names.fromKafka(topic)}/${partition}`, Number(offset));
      }
    }
    const starts = new Map();
    for (const topic of this.topics) {
      const byPartition = new Map();
      for (const { partition, high, low } of await this.admin.fetchTopicOffsets(this.names.toKafka(topic))) {
        const start = committed.get(`${topic}/${partition}`) ?? Number(this.fromBeginning ? low : high);
        byPartition.set(partition, start);
      }
      starts.set(topic, byPartition);
    }
    return starts;
  }

  async eachBatch({ batch, heartbeat }) {
    const { partition, messages } = batch;
    const topic = this.names.fromKafka(batch.topic);
    const frontier = this.frontier.get(topic);
    // Synchronous from the first record to the replay check: the frontier and
    // the rooms never change under a replay deciding where its seam is.
    let next = frontier.get(partition);
    for (const message of messages) {
      const offset = Number(message.offset);
      // Below the frontier: handled already (a rebalance restarts the
      // partition at its committed offset, which can lag what was handled).
      if (offset < next) continue;
      this.onRecord(topic, partition, message);
      next = offset + 1;
      this.consumed++;
    }
    frontier.set(partition, next);
    this.onBatchDone(topic);
    await heartbeat();
  }

  async stop() {
    await this.consumer?.disconnect();
  }
}
