// Resume cursors and event positions, as the bridge writes them
// (docs/client-api.md, "Cursors and log tags"): parsed into a Map the
// module advances with every event's `position`, and written back as the
// `since` of a resume.

/**
 * Cursor text → Map: "1:d0.120,d1.87" → Map("d0" → 120, "d1" → 87); version 2
 * also names each topic's log: "2:d@AbCd-_12,d0.120" → Map("d@" → "AbCd-_12", "d0" → 120).
 */
export function parseCursor(text) {
  const map = new Map();
  if (typeof text !== "string" || !(text.startsWith("1:") || text.startsWith("2:"))) return map;
  for (const entry of text.slice(2).split(",")) {
    if (entry[1] === "@") {
      map.set(entry.slice(0, 2), entry.slice(2));
      continue;
    }
    const dot = entry.indexOf(".");
    if (dot > 1) map.set(entry.slice(0, dot), Number(entry.slice(dot + 1)));
  }
  return map;
}

export function formatCursor(map) {
  const entries = [...map].map(([key, value]) => (key[1] === "@" ? `${key}${value}` : `${key}.${value}`));
  const tagged = [...map.keys()].some((key) => key[1] === "@");
  return (tagged ? "2:" : "1:") + entries.join(",");
}

/**
 * Advances `cursor` past `position` ("d.1.119", or "d.1.119.AbCd-_12" with its
 * log's tag) if the cursor covers that topic. A tag other than the cursor's
 * for the topic is a new log (the topic was recreated): its offsets say
 * nothing about the old one's, so the topic's entries are replaced, not
 * compared. Without a tag on either side, offsets alone, as ever.
 */
export function advance(cursor, position) {
  const [topic, partition, offset, log] = position.split(".");
  const covered = [...cursor.keys()].some((key) => key[0] === topic);
  if (!covered) return;
  const key = topic + partition;
  const next = Number(offset) + 1;
  if (log) {
    const known = cursor.get(topic + "@");
    if (known !== undefined && known !== log) {
      for (const other of [...cursor.keys()]) if (other[0] === topic) cursor.delete(other);
      cursor.set(topic + "@", log);
      return void cursor.set(key, next);
    }
    cursor.set(topic + "@", log);
  }
  if (!(cursor.get(key) >= next)) cursor.set(key, next);
}
