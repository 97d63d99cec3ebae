// Drives the official socket.io-client for the Rust integration tests.
//
// Reads one JSON command per line on stdin, writes one JSON observation per
// line on stdout. Commands:
//   {"op":"connect","client":"a","url":"http://127.0.0.1:3000","auth":{...},
//    "headers":{...},"transports":["websocket"],"localAddress":"127.0.0.5"}
//      ("transports" defaults to ["websocket"]; ["polling","websocket"] is the
//      stock client's default. "localAddress": the source address of every
//      request, polling and websocket, through an http.Agent. "authCallback":
//      true passes `auth` as socket.io's callback, `(cb) => cb({...auth})`,
//      not as an object. "onConnect": [{"event","data","ack"}, ...] is emitted
//      on every `connect`, each time as new objects, as the seed's Best
//      Practices re-subscribe.)
//   {"op":"emit","client":"a","event":"subscribe","data":{...},"ack":"r1"}
//      ("data" absent: emit with no argument; "ack" absent: no callback;
//      "args": [...] instead of "data" sends several arguments. Anywhere in
//      them, {"$buffer":"<base64>"} is sent as a Buffer: a binary attachment.)
//   {"op":"flood","client":"a","event":"ping","count":1000,"ack":"f"}
//      (emits `count` times at once; acknowledgements come back as "ack"
//      observations with ref "f")
//   {"op":"raw","client":"a","text":"2[\"x\""}   (an engine.io message the client
//      library would never send: the text goes out as is)
//   {"op":"raw","client":"a","bytes":"<base64>"}   (a websocket *text* frame of
//      these bytes, valid UTF-8 or not)
//   {"op":"disconnect","client":"a"}
//   {"op":"drop","client":"a"}         (cut the transport: the client reconnects)
//   {"op":"reconnect","client":"a","auth":{...}}   (optionally with new auth:
//      set on the page's own `socket.auth`, as the seed's Error Recovery
//      does, or yielded by its callback from then on)
// "module": true on connect uses the project's client module (client/), with
// reconnection on; otherwise the stock client with reconnection off.
// Observations: {"client","type":"connect"|"connect_error"|"disconnect"|"event"|"ack"|"recovered"|"room-rejoined"|"upgrade", ...}
// ("upgrade": {"transport":"websocket"} once a polling session upgraded.
// "connect_error" is the network's: the bridge refuses a handshake with
// "connect", an "error" event, then "disconnect" "io server disconnect".)
import { Agent } from "node:http";
import { createInterface } from "node:readline";
import { io } from "socket.io-client";
import { withRecovery } from "../../client/recovery.js";

const recoveringIo = withRecovery(io);

const sockets = new Map();
const out = (obj) => process.stdout.write(JSON.stringify(obj) + "\n");

/** client → what its `auth` callback yields (clients connected with "authCallback"). */
const callbackAuth = new Map();

function connect({ client, url, auth, headers, transports, localAddress, module, authCallback, onConnect }) {
  if (authCallback) callbackAuth.set(client, { ...auth });
  const socket = (module ? recoveringIo : io)(url, {
    auth: authCallback ? (cb) => cb({ ...callbackAuth.get(client) }) : (auth ?? {}),
    extraHeaders: headers ?? {},
    transports: transports ?? ["websocket"],
    // engine.io-client hands `agent` to both Node transports (xmlhttprequest-ssl, ws).
    ...(localAddress && { agent: new Agent({ localAddress, keepAlive: true }) }),
    reconnection: Boolean(module),
    reconnectionDelay: 100,
    reconnectionDelayMax: 500,
    forceNew: true,
    timeout: 10000,
  });
  socket.on("recovered", (data) => out({ client, type: "recovered", data }));
  socket.on("room-rejoined", (data) => out({ client, type: "room-rejoined", data }));
  sockets.set(client, socket);
  socket.io.on("open", () =>
    socket.io.engine.on("upgrade", (transport) => out({ client, type: "upgrade", transport: transport.name })),
  );
  socket.on("connect", () => out({ client, type: "connect", id: socket.id }));
  socket.on("connect", () => (onConnect ?? []).forEach((command) => emit({ client, ...structuredClone(command) })));
  socket.on("connect_error", (err) =>
    out({ client, type: "connect_error", message: err.message, data: err.data ?? null }),
  );
  socket.on("disconnect", (reason) =>
    out({ client, type: "disconnect", reason, at: performance.timeOrigin + performance.now() }),
  );
  // `at`: wall-clock receive time in ms (sub-ms precision), for latency benchmarks.
  socket.onAny((event, ...args) =>
    out({ client, type: "event", event, data: args[0] ?? null, at: performance.timeOrigin + performance.now() }),
  );
}

// {"$buffer": base64} → Buffer, anywhere in a value.
function withBuffers(value) {
  if (Array.isArray(value)) return value.map(withBuffers);
  if (value && typeof value === "object") {
    if (typeof value.$buffer === "string") return Buffer.from(value.$buffer, "base64");
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, withBuffers(v)]));
  }
  return value;
}

function emit({ client, event, data, args: many, ack }) {
  const socket = sockets.get(client);
  const args = withBuffers(many ?? (data === undefined ? [] : [data]));
  if (ack !== undefined) {
    args.push((reply) => out({ client, type: "ack", ref: ack, data: reply ?? null }));
  }
  socket.emit(event, ...args);
}

const lines = createInterface({ input: process.stdin });
lines.on("line", (line) => {
  if (!line.trim()) return;
  const command = JSON.parse(line);
  switch (command.op) {
    case "connect":
      return connect(command);
    case "emit":
      return emit(command);
    case "raw": {
      const engine = sockets.get(command.client).io.engine;
      if (command.text !== undefined) return engine.write(command.text);
      return engine.transport.ws.send(Buffer.from(command.bytes, "base64"), { binary: false });
    }
    case "disconnect":
      return sockets.get(command.client)?.disconnect();
    case "drop":
      return sockets.get(command.client)?.io.engine.close();
    case "flood": {
      for (let i = 0; i < command.count; i++) emit(command);
      return;
    }
    case "reconnect": {
      const socket = sockets.get(command.client);
      if (command.auth && callbackAuth.has(command.client)) {
        Object.assign(callbackAuth.get(command.client), command.auth);
      } else if (command.auth) {
        Object.assign(socket.auth, command.auth);
      }
      return socket.connect();
    }
    default:
      out({ type: "driver_error", message: `unknown op ${command.op}` });
  }
});
// The test closed our stdin: it is done (or failed). Leave nothing behind.
lines.on("close", () => {
  for (const socket of sockets.values()) socket.disconnect();
  process.exit(0);
});
