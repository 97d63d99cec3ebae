// A stand-in for socket.io-client's socket, what the client module and the
// React provider use of it: no bridge, no network. The test plays the
// bridge: `fire` delivers a server event, `replies(event, data)` answers
// acknowledged emits at once (`undefined` leaves the acknowledgement in
// `acks` for the test to answer), `sent` records what went out, and
// `handshake()` sends a CONNECT packet as socket.io-client does, from
// `auth` (an object or a callback).

export function fakeSocket(replies = () => ({ ok: true })) {
  const handlers = new Map();
  return {
    sent: [],
    acks: [],
    handshakes: [],
    io: {},
    flags: {},
    auth: {},
    active: false,
    connects: 0,
    disconnects: 0,
    on(event, handler) {
      if (!handlers.has(event)) handlers.set(event, []);
      handlers.get(event).push(handler);
      return this;
    },
    listeners: (event) => handlers.get(event) ?? [],
    emit(event, ...args) {
      this.sent.push([event, ...args]);
      const callback = args[args.length - 1];
      if (typeof callback !== "function") return this;
      const reply = replies(event, args[0]);
      if (reply === undefined) this.acks.push({ event, data: args[0], answer: callback });
      else callback(reply);
      return this;
    },
    fire(event, data) {
      for (const handler of this.listeners(event)) handler(data);
    },
    /** socket.io-client's packet writer (the module adds to the handshake's). */
    packet(packet) {
      this.handshakes.push(packet.data);
    },
    handshake() {
      if (typeof this.auth === "function") this.auth((data) => this.packet({ type: 0, data }));
      else this.packet({ type: 0, data: this.auth });
    },
    connect() {
      this.connects += 1;
      this.active = true;
    },
    disconnect() {
      this.disconnects += 1;
      this.active = false;
    },
    /** The requests sent as `event`, in order. */
    requests(event) {
      return this.sent.filter(([name]) => name === event).map(([, request]) => request);
    },
  };
}
