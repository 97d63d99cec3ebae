// crm-bridge benchmark PEER — not product code.
//
// The Node.js bridge a team would otherwise deploy in front of the CRM's
// Kafka topics: a socket.io 4 server and one kafkajs consumer, decoding the
// same Avro records (Confluent framing) and routing them with the same
// subscription rules as crm-bridge (docs/kafka.md, docs/client-api.md,
// docs/delivery-guarantees.md), so the benchmarks in
// ../*.rs can drive both with the same load generator. It implements the
// subset the benchmarks use: JWT auth, subscribe/unsubscribe (with org
// isolation and cursors), notifications, resume with `since`, /stats, /readyz.
// No rate limits, API keys, collaboration rooms or clustering.
//
// Env: PORT, BROKERS, TOPIC_PREFIX, JWT_SECRET, SCHEMAS_DIR, GROUP_ID, FROM_BEGINNING,
// TOPIC_PARTITIONS, REPLAY_CONCURRENCY, REPLAY_TIMEOUT_MS, FETCH_MAX_WAIT_MS
// (see README.md). Logs go to stderr.

import { createServer } from 'node:http';
import { fileURLToPath } from 'node:url';
import jwt from 'jsonwebtoken';
import { Server } from 'socket.io';

import { loadSchemas, UndecodableRecord } from './lib/schemas.mjs';
import { TOPICS, RequestError, parseSubscription, parseCursor, formatCursor, route, userRoom } from './lib/events.mjs';
import { createKafka, ensureTopics, LiveConsumer, topicNames } from './lib/kafka.mjs';
import { Replays } from './lib/replay.mjs';

const env = process.env;
const config = {
  port: Number(env.PORT ?? 3000),
  brokers: (env.BROKERS ?? '127.0.0.1:9092').split(','),
  topicPrefix: env.TOPIC_PREFIX ?? '',
  jwtSecret: env.JWT_SECRET,
  schemasDir: env.SCHEMAS_DIR ?? fileURLToPath(new URL('../../schemas', import.meta.url)),
  groupId: env.GROUP_ID || `crm-bridge-peer-${process.pid}-${Date.now()}`,
  fromBeginning: env.FROM_BEGINNING === '1',
  topicPartitions: Number(env.TOPIC_PARTITIONS ?? 2),
  replayConcurrency: Number(env.REPLAY_CONCURRENCY ?? 16),
  replayTimeoutMs: Number(env.REPLAY_TIMEOUT_MS ?? 300_000),
  fetchMaxWaitMs: Number(env.FETCH_MAX_WAIT_MS ?? 500),
};
const MAX_SUBSCRIPTIONS = 1000;

const log = (msg) => process.stderr.write(`${new Date().toISOString()} ${msg}\n`);
if (!config.jwtSecret) {
  log('JWT_SECRET is required');
  process.exit(2);
}

const decode = loadSchemas(config.schemasDir);
const topics = Object.keys(TOPICS);
const stats = { consumed: 0, delivered: 0, undecodable: 0 };

// --- HTTP: /stats and /readyz beside socket.io ---------------------------

const httpServer = createServer((req, res) => {
  if (req.method === 'GET' && req.url === '/stats') {
    const body = {
      consumed: live.consumed,
      delivered: stats.delivered,
      connections: io.engine.clientsCount,
      ready: live.ready,
      undecodable: stats.undecodable,
      replays: replays.stats(),
    };
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(body));
  } else if (req.method === 'GET' && req.url === '/readyz') {
    res.writeHead(live.ready ? 200 : 503, { 'content-type': 'text/plain' }).end(live.ready ? 'ready\n' : 'not ready\n');
  } else {
    res.writeHead(404).end();
  }
});

const io = new Server(httpServer, { serveClient: false });
const sockets = io.of('/');

// --- Kafka ----------------------------------------------------------------

const kafka = createKafka({ brokers: config.brokers, clientId: 'crm-bridge-peer', log });
const admin = kafka.admin();
const names = topicNames(config.topicPrefix);

const live = new LiveConsumer({
  kafka,
  admin,
  names,
  topics,
  groupId: config.groupId,
  fromBeginning: config.fromBeginning,
  maxWaitMs: config.fetchMaxWaitMs,
  onRecord: deliver,
  onBatchDone: (topic) => replays.checkTopic(topic),
  log,
});

const replays = new Replays({
  kafka,
  names,
  live,
  decode: decodeValue,
  route,
  groupPrefix: config.groupId,
  concurrency: config.replayConcurrency,
  timeoutMs: config.replayTimeoutMs,
  maxWaitMs: config.fetchMaxWaitMs,
  log,
});

function decodeValue(buf) {
  const value = decode(buf);
  if (!value.organizationId) throw new UndecodableRecord('empty_organization', 'empty organizationId');
  return value;
}

/** One live record: emitted once to the union of the rooms it matches. */
function deliver(topic, partition, message) {
  let record;
  try {
    record = route(topic, decodeValue(message.value), `${TOPICS[topic]}.${partition}.${message.offset}`);
  } catch (err) {
    stats.undecodable++;
    log(`skipping undecodable record ${topic}/${partition}@${message.offset}: ${err.reason ?? 'error'}: ${err.message}`);
    return;
  }
  const rooms = sockets.adapter.rooms;
  let present = null;
  for (const r of record.rooms) {
    if (rooms.has(r)) (present ??= []).push(r);
  }
  if (!present) return;
  if (present.length === 1) {
    stats.delivered += rooms.get(present[0]).size;
  } else {
    const recipients = new Set();
    for (const r of present) for (const id of rooms.get(r)) recipients.add(id);
    stats.delivered += recipients.size;
  }
  io.to(present).emit(record.name, record.payload);
}

// --- socket.io ------------------------------------------------------------

const errorPayload = (code, message, details) => new RequestError(code, message, details).payload();

io.use((socket, next) => {
  const { auth, headers } = socket.handshake;
  const bearer = /^Bearer (.+)$/i.exec(headers.authorization ?? '')?.[1];
  const token = typeof auth?.token === 'string' ? auth.token : bearer;
  const refuse = (message) => next(new Error(JSON.stringify(errorPayload('UNAUTHORIZED', message))));
  if (!token) return refuse('missing token');
  let claims;
  try {
    claims = jwt.verify(token, config.jwtSecret, { algorithms: ['HS256'] });
  } catch (err) {
    return refuse(err.name === 'TokenExpiredError' ? 'token expired' : 'invalid token');
  }
  const { sub, organizationId, exp } = claims;
  if (typeof sub !== 'string' || !sub || typeof organizationId !== 'string' || !organizationId || typeof exp !== 'number') {
    return refuse('token lacks sub, organizationId or exp');
  }
  socket.data = { userId: sub, org: organizationId, subs: new Map() };
  next();
});

io.on('connection', (socket) => {
  const { userId, org, subs } = socket.data;
  socket.join(userRoom(org, userId)); // notifications need no subscription
  socket.emit('connected', { sessionId: socket.id, userId, timestamp: new Date().toISOString() });

  const refuse = (ack, err) => {
    const error = err instanceof RequestError ? err.payload() : errorPayload('SERVER_ERROR', 'internal error');
    if (!(err instanceof RequestError)) log(`request failed: ${err.stack}`);
    ack?.({ ok: false, error });
    socket.emit('error', error);
  };
  const reply = (ack, body) => ack?.(body);
  // (request?, ack?): the acknowledgement is the last argument, when there is one.
  const on = (event, handle) =>
    socket.on(event, (...args) => handle(args[0], typeof args.at(-1) === 'function' ? args.at(-1) : undefined));

  /** Removes a subscription: its rooms, or its replay if it has not joined yet. */
  const drop = (sub) => {
    subs.delete(sub.key);
    if (sub.replay) replays.cancel(sub.replay);
    else for (const r of sub.rooms) socket.leave(r);
  };

  on('subscribe', (req, ack) => {
    try {
      const sub = parseSubscription(org, req, { withEvents: true });
      const since = req.since === undefined ? null : parseCursor(req.since);
      const previous = subs.get(sub.key);
      if (!previous && subs.size >= MAX_SUBSCRIPTIONS) {
        throw new RequestError('RATE_LIMITED', `at most ${MAX_SUBSCRIPTIONS} subscriptions per connection`);
      }
      if (previous) drop(previous);
      sub.roomSet = new Set(sub.rooms);
      subs.set(sub.key, sub);

      if (!since) {
        socket.join(sub.rooms);
        const cursor = formatCursor(live.frontier, sub.topics);
        return reply(ack, { ok: true, subscription: sub.describe, replaced: !!previous, cursor, replayed: 0 });
      }
      reply(ack, { ok: true, subscription: sub.describe, cursor: req.since, replaying: true });
      const job = replays.start({
        socket,
        sub,
        since,
        // Synchronous with the replay's last record: nothing between them.
        onJoin: (cursor, replayed) => {
          sub.replay = null;
          socket.join(sub.rooms);
          socket.emit('subscription-resumed', { subscription: sub.describe, cursor, replayed, gaps: [] });
        },
        onFail: () => {
          sub.replay = null;
          socket.emit('error', errorPayload('SERVER_ERROR', 'replay unavailable; resume from the same cursor', { reason: 'replay_unavailable' }));
          socket.disconnect(true);
        },
      });
      // (A replay with nothing to read has joined already.)
      if (job.state === 'queued' || job.state === 'running') sub.replay = job;
    } catch (err) {
      refuse(ack, err);
    }
  });

  on('unsubscribe', (req, ack) => {
    try {
      const { key } = parseSubscription(org, req, { withEvents: false });
      const sub = subs.get(key);
      if (!sub) throw new RequestError('RESOURCE_NOT_FOUND', 'no such subscription on this connection');
      drop(sub);
      reply(ack, { ok: true });
    } catch (err) {
      refuse(ack, err);
    }
  });

  on('ping', (_, ack) => {
    socket.emit('pong');
    reply(ack, { ok: true });
  });

  socket.on('disconnect', () => {
    for (const sub of subs.values()) if (sub.replay) replays.cancel(sub.replay);
    subs.clear();
  });
});

// --- start and stop -------------------------------------------------------

httpServer.listen({ port: config.port, host: '127.0.0.1', backlog: 4096 }, () => {
  log(`crm-bridge peer listening on 127.0.0.1:${config.port}; brokers ${config.brokers.join(',')}; group ${config.groupId}`);
});

async function start() {
  await admin.connect();
  await ensureTopics(admin, names, topics, config.topicPartitions);
  await live.start();
}

start().catch((err) => {
  log(`start-up failed: ${err.stack}`);
  process.exit(1);
});

let stopping = false;
async function shutdown(signal) {
  if (stopping) return;
  stopping = true;
  log(`${signal}: stopping`);
  io.close();
  await Promise.allSettled([live.stop(), admin.disconnect()]);
  process.exit(0);
}
process.on('SIGINT', () => shutdown('SIGINT'));
process.on('SIGTERM', () => shutdown('SIGTERM'));
