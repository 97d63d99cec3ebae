// A stand-in for socket.io-client's socket, what the client module and the
// React provider use of it: no bridge, no network. The test plays the
// bridge: `fire` delivers a server event, `replies` answers acknowledged
// emits, `sent` records what went out.

export function fakeSocket(replies = () => ({ ok: true })) {
  const handlers = new Map();
  return {
    sent: [],
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
      if (typeof callback === "function") callback(replies(event, args[0]));
      return this;
    },
    fire(event, data) {
      for (const handler of this.listeners(event)) handler(data);
    },
    /** socket.io-client's packet writer (the module adds to the handshake's). */
    packet() {},
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
