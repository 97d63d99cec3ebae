// What identifies and compares the page's requests, and how the module
// sends its own: paced under the bridge's event rate, and again when
// refused as RATE_LIMITED.

/**
 * After a reconnect, rejoins and resubscribes go out this many at once, then
 * one per RESUME_SPACING_MS: under the bridge's event rate (100/s, bursts of
 * 100), however many there are.
 */
const RESUME_BURST = 50;
const RESUME_SPACING_MS = 12;
/** A request refused as RATE_LIMITED is sent again after `retryAfter`, this often. */
const RATE_LIMIT_RETRIES = 5;

/** Identifies a subscription as the bridge describes it (its `events` aside). */
export function canonicalKey(subscription) {
  if (!subscription) return null;
  const { events, ...rest } = subscription;
  return keyOf(rest);
}

/** Identifies a subscription request: resource + id or filter. */
export function keyOf(request) {
  const filter = request.filter ? Object.entries(request.filter).sort() : null;
  return JSON.stringify([request.resource, request.id ?? null, filter]);
}

/** `events` as a set, comparable as text; absent (all of them) is null. */
export function eventSet(events) {
  if (events === undefined || events === null) return null;
  return Array.isArray(events) ? JSON.stringify([...new Set(events)].sort()) : JSON.stringify(events);
}

/**
 * The page asks again for what `entry` holds: the same events as it asked
 * for before, or as the bridge understood them (`allEvents`: resource →
 * the events an acknowledgement listed for a subscription that named none).
 * A `since` of the page's own is a resume it runs itself: never the same.
 */
export function sameSubscription(entry, request, allEvents) {
  if (request.since !== undefined && request.since !== null) return false;
  const asked = eventSet(request.events);
  if (asked === eventSet(entry.request.events)) return true;
  if (entry.subscription === null) return false;
  return (asked ?? allEvents.get(request.resource)) === eventSet(entry.subscription.events);
}

/** Identifies a room: type + id. */
export function roomKeyOf(request) {
  return JSON.stringify([request.type, request.id]);
}

/** Runs `jobs` in a burst, then spaced out. */
export function paced(jobs) {
  jobs.forEach((job, i) => (i < RESUME_BURST ? job() : setTimeout(job, (i - RESUME_BURST + 1) * RESUME_SPACING_MS)));
}

export function isRateLimited(reply) {
  return reply?.ok === false && reply.error?.code === "RATE_LIMITED";
}

/**
 * `send` with an acknowledgement, sent again after `retryAfter` when rate
 * limited, while `current()` (the connection it was meant for is still up).
 */
export function sendRetrying(send, current, event, payload, callback, retries = RATE_LIMIT_RETRIES) {
  send(event, payload, (reply) => {
    if (isRateLimited(reply) && retries > 0) {
      const again = () => current() && sendRetrying(send, current, event, payload, callback, retries - 1);
      return void setTimeout(again, reply.error.retryAfter ?? RESUME_SPACING_MS);
    }
    callback(reply);
  });
}
