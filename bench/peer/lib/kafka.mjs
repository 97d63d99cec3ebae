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

/** Creates the topics that are missing; tolerates them existing (or appearing meanwhile). */
export async function ensureTopics(admin, topics, numPartitions) {
  const existing = new Set(await admin.listTopics());
  const missing = topics.filter((t) => !existing.has(t));
  if (missing.length) {
    await admin.createTopics({ topics: missing.map((topic) => ({ topic, numPartitions })), waitForLeaders: true });
  }
}

/** Consumer settings shared by the live consumer and the replays. */
export const fetchSettings = ({ maxWaitMs }) => ({
  // tansu holds an idle fetch for its full wait, so this bounds the latency
  // added (crm-bridge uses fetch.wait.max.ms = 5 for the same reason).
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
  constructor({ kafka, admin, topics, groupId, fromBeginning, maxWaitMs, onRecord, onBatchDone, log }) {
    Object.assign(this, { kafka, admin, topics, groupId, fromBeginning, maxWaitMs, onRecord, onBatchDone, log });
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
    await this.consumer.subscribe({ topics: this.topics, fromBeginning: this.fromBeginning });
    const running = this.consumer.run({
      partitionsConsumedConcurrently: 4,
      eachBatch: (ctx) => this.eachBatch(ctx),
    });
    // run() creates the group synchronously, so these seeks precede the first fetch.
    for (const [topic, partitions] of starts) {
      const frontier = new Map();
      for (const [partition, offset] of partitions) {
        this.consumer.seek({ topic, partition, offset: String(offset) });
        frontier.set(partition, offset);
      }
      this.frontier.set(topic, frontier);
    }
    await running;
  }

  /** Per partition: the group's committed offset if any, else earliest/latest. */
  async startOffsets() {
    const committed = new Map();
    for (const { topic, partitions } of await this.admin.fetchOffsets({ groupId: this.groupId, topics: this.topics })) {
      for (const { partition, offset } of partitions) {
        if (Number(offset) >= 0) committed.set(`${topic}/${partition}`, Number(offset));
      }
    }
    const starts = new Map();
    for (const topic of this.topics) {
      const byPartition = new Map();
      for (const { partition, high, low } of await this.admin.fetchTopicOffsets(topic)) {
        const start = committed.get(`${topic}/${partition}`) ?? Number(this.fromBeginning ? low : high);
        byPartition.set(partition, start);
      }
      starts.set(topic, byPartition);
    }
    return starts;
  }

  async eachBatch({ batch, heartbeat }) {
    const { topic, partition, messages } = batch;
    const frontier = this.frontier.get(topic);
    // Synchronous from the first record to the replay check: the frontier and
    // the rooms never change under a replay deciding where its seam is.
    let next = frontier.get(partition);
    for (const message of messages) {
      const offset = Number(message.offset);
      // tansu can repeat records in a response to a fetch that starts inside
      // a batch; anything below the frontier was handled already.
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
