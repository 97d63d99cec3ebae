// Thousands of socket.io-clients in one Node process, each the project's
// client module (client/recovery.js: it resumes subscriptions with `since`
// after every reconnect), for the rolling-restart test and benchmark
// (tests/support/fleet.rs drives it). Cheaper than driver.mjs per client: it
// checks every event as it arrives and reports sums on request, instead of
// writing a line per event.
//
// One JSON command per line on stdin, one JSON answer per line on stdout:
//   {"op":"start","url":"http://127.0.0.1:8080","pipelines":20,
//    "clients":[{"token":"...","address":"127.1.0.1","pipeline":"pipeline_3"}],
//    "reconnectionDelay":1000,"reconnectionDelayMax":5000,"concurrency":100}
//      connects every client from its source address (nginx hashes it), at
//      most `concurrency` between connecting and subscribed, each subscribed
//      to its pipeline's deals; answers {"type":"subscribed","count":N}.
//      The reconnection delays default to socket.io-client's own.
//   {"op":"phase","name":"restart-a"}   what follows is recorded under this
//      phase (latencies, outages); answers {"type":"phase"}
//   {"op":"report","phases":true}   answers {"type":"report", ...} (see
//      `report` below); without "phases", none (cheap enough to poll)
//
// Checks, per client: each event is of its own pipeline (a record's
// `changes.seq` modulo `pipelines` is its pipeline's index), each `seq`
// arrives once, and each Kafka position is past the last of its partition.
import { Agent } from "node:http";
import { createInterface } from "node:readline";
import { io } from "socket.io-client";
import { withRecovery } from "../../client/recovery.js";

const connect = withRecovery(io);
const out = (obj) => process.stdout.write(JSON.stringify(obj) + "\n");
const now = () => performance.timeOrigin + performance.now();

let phase = "connect";
/** phase → producer-to-client latencies (ms) of the events received in it */
const latencies = new Map([[phase, []]]);
/** phase → client index → outage: from its first disconnect to its last recovery */
const outages = new Map([[phase, new Map()]]);
const members = [];
/** connect_error message → how often (the failed reconnection attempts) */
const connectErrors = new Map();
/** disconnect reason → how often ("io server disconnect": socket.io-client does not reconnect) */
const disconnectReasons = new Map();
const count = (map, key) => map.set(key, (map.get(key) ?? 0) + 1);

function member(index, { token, address, pipeline }, pipelines, options, subscribed) {
  const socket = connect(options.url, {
    auth: { token },
    transports: ["websocket"],
    agent: new Agent({ localAddress: address, keepAlive: true }),
    forceNew: true,
    timeout: 10000,
    ...(options.reconnectionDelay && { reconnectionDelay: options.reconnectionDelay }),
    ...(options.reconnectionDelayMax && { reconnectionDelayMax: options.reconnectionDelayMax }),
  });
  const state = {
    socket,
    pipelineIndex: Number(pipeline.split("_").pop()),
    /** seq / pipelines → times received */
    seen: new Uint8Array(1024),
    distinct: 0,
    duplicates: 0,
    outOfOrder: 0,
    misrouted: 0,
    errors: 0,
    unrecovered: 0,
    /** partition → last offset received */
    last: new Map(),
    down: false,
  };
  members[index] = state;

  socket.on("resource-update", (event) => {
    const seq = Number(event?.data?.seq);
    if (!Number.isInteger(seq) || seq % pipelines !== state.pipelineIndex) return void (state.misrouted += 1);
    const [topic, partition, offset] = event.position.split(".");
    const key = topic + partition;
    if (state.last.has(key) && Number(offset) <= state.last.get(key)) state.outOfOrder += 1;
    state.last.set(key, Math.max(Number(offset), state.last.get(key) ?? -1));
    const slot = Math.floor(seq / pipelines);
    if (slot >= state.seen.length) {
      const grown = new Uint8Array(Math.max(slot + 1, state.seen.length * 2));
      grown.set(state.seen);
      state.seen = grown;
    }
    if (state.seen[slot] > 0) state.duplicates += 1;
    else state.distinct += 1;
    state.seen[slot] = Math.min(255, state.seen[slot] + 1);
    latencies.get(phase).push(now() - Number(event.data.sentAtUs) / 1000);
  });
  socket.on("error", () => (state.errors += 1));
  socket.on("connect_error", (err) => count(connectErrors, err.message));
  socket.on("disconnect", (reason) => {
    count(disconnectReasons, reason);
    const at = now();
    const outage = outages.get(phase);
    const known = outage.get(index);
    if (known) Object.assign(known, { recoveredAt: null, disconnects: known.disconnects + 1 });
    else outage.set(index, { client: index, disconnectedAt: at, connectedAt: null, recoveredAt: null, disconnects: 1 });
    state.down = true;
  });
  socket.on("connect", () => {
    const known = outages.get(phase).get(index);
    if (known) known.connectedAt = now();
  });
  socket.on("recovered", ({ recovered }) => {
    if (!recovered) state.unrecovered += 1;
    const known = outages.get(phase).get(index);
    if (known) known.recoveredAt = now();
    state.down = false;
  });
  socket.once("connect", () =>
    socket.emit("subscribe", { resource: "deal", filter: { pipelineId: pipeline } }, (reply) => {
      if (!reply?.ok) state.errors += 1;
      subscribed();
    }),
  );
}

async function start(command) {
  const { clients, pipelines, concurrency = 100 } = command;
  let done = 0;
  let next = 0;
  await new Promise((resolve) => {
    const launch = () => {
      if (next >= clients.length) return;
      const index = next++;
      member(index, clients[index], pipelines, command, () => {
        done += 1;
        if (done === clients.length) resolve();
        launch();
      });
    };
    for (let i = 0; i < Math.min(concurrency, clients.length); i++) launch();
  });
  out({ type: "subscribed", count: done });
}

/** The `q` quantile of sorted `values`. */
function quantile(values, q) {
  if (values.length === 0) return null;
  return values[Math.min(values.length - 1, Math.max(0, Math.ceil(values.length * q) - 1))];
}

function summary(values) {
  const sorted = Float64Array.from(values).sort();
  return { count: sorted.length, p50: quantile(sorted, 0.5), p99: quantile(sorted, 0.99), max: quantile(sorted, 1) };
}

/** Sums over the clients, each client's distinct count, and per phase its latencies and outages. */
function report(withPhases) {
  const sum = (field) => members.reduce((total, m) => total + m[field], 0);
  const phases = {};
  for (const [name, values] of withPhases ? latencies : []) {
    phases[name] = { latency: summary(values), outages: [...outages.get(name).values()] };
  }
  out({
    type: "report",
    connected: members.filter((m) => m.socket.connected).length,
    down: members.filter((m) => m.down).length,
    received: members.map((m) => m.distinct),
    duplicates: sum("duplicates"),
    outOfOrder: sum("outOfOrder"),
    misrouted: sum("misrouted"),
    errors: sum("errors"),
    unrecovered: sum("unrecovered"),
    connectErrors: Object.fromEntries(connectErrors),
    disconnectReasons: Object.fromEntries(disconnectReasons),
    phases,
  });
}

const lines = createInterface({ input: process.stdin });
lines.on("line", (line) => {
  if (!line.trim()) return;
  const command = JSON.parse(line);
  switch (command.op) {
    case "start":
      return void start(command);
    case "phase":
      phase = command.name;
      if (!latencies.has(phase)) latencies.set(phase, []);
      if (!outages.has(phase)) outages.set(phase, new Map());
      return out({ type: "phase" });
    case "report":
      return report(Boolean(command.phases));
    default:
      out({ type: "driver_error", message: `unknown op ${command.op}` });
  }
});
// The harness closed our stdin: it is done (or failed). Leave nothing behind.
lines.on("close", () => {
  for (const m of members) m?.socket.disconnect();
  process.exit(0);
});
