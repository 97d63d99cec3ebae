// Who is in a collaboration room and who is typing there, drawn as avatars
// and a "… is typing" line. Fed by the `join-room` acknowledgement (and
// `room-rejoined` after a reconnect: the room as it is now), then by
// `user-joined`, `user-left` and `user-typing`. The bridge sends no
// "stopped typing": an indicator lapses at its `expiresAt`.

import { avatar } from "./dom.js";

export class RoomView {
  /** `room` `{ type, id }`; draws into `avatars` and `typing` (either may be null). */
  constructor(room, { avatars, typing }) {
    this.room = room;
    this.avatars = avatars;
    this.typingLine = typing;
    this.members = new Map(); // userId → userName
    this.typing = new Map(); // userId + field → { userId, userName, field, timer }
  }

  is(type, id) {
    return this.room.type === type && this.room.id === id;
  }

  /** A `join-room` acknowledgement: who else is here, who is typing. */
  reset(ack) {
    this.members = new Map((ack.members ?? []).map((m) => [m.userId, m.userName]));
    for (const entry of this.typing.values()) clearTimeout(entry.timer);
    this.typing.clear();
    for (const t of ack.typing ?? []) this.typed(t, Date.parse(t.expiresAt) - Date.now());
    this.render();
  }

  joined({ userId, userName }) {
    this.members.set(userId, userName);
    this.render();
  }

  left({ userId }) {
    this.members.delete(userId);
    for (const [key, entry] of this.typing) {
      if (entry.userId === userId) this.lapse(key);
    }
    this.render();
  }

  /** `user-typing`; it lasts until `expiresAt` (measured from its own timestamp: no clock skew). */
  typed(data, lasts = Date.parse(data.expiresAt) - Date.parse(data.timestamp)) {
    const key = `${data.userId}\u0000${data.field}`;
    clearTimeout(this.typing.get(key)?.timer);
    const timer = setTimeout(() => this.lapse(key), Math.max(0, lasts || 0));
    this.typing.set(key, { userId: data.userId, userName: data.userName, field: data.field, timer });
    this.render();
  }

  lapse(key) {
    clearTimeout(this.typing.get(key)?.timer);
    this.typing.delete(key);
    this.render();
  }

  render() {
    if (this.avatars) {
      const typists = new Set([...this.typing.values()].map((t) => t.userId));
      this.avatars.replaceChildren(
        ...[...this.members].map(([id, name]) => avatar(id, name, typists.has(id) ? ".is-typing" : "")),
      );
    }
    if (this.typingLine) {
      const names = [...new Set([...this.typing.values()].map((t) => t.userName))];
      this.typingLine.textContent = names.length ? `${listed(names)} ${names.length === 1 ? "is" : "are"} typing…` : "";
    }
  }

  close() {
    for (const entry of this.typing.values()) clearTimeout(entry.timer);
  }
}

function listed(names) {
  return names.length < 3 ? names.join(" and ") : `${names.slice(0, -1).join(", ")} and ${names.at(-1)}`;
}
