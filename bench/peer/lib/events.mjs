// Subscriptions, rooms and the record -> client event mapping
// (docs/client-api.md, "Events" and "Subscribing").
//
// Every subscription joins one socket.io room per (organisation, resource,
// selector, event name); every record names the (at most five) rooms it
// matches, so a live record is a single `io.to(rooms).emit(...)`: socket.io
// encodes it once and sends it once per socket, however many of that socket's
// rooms match.

import { unwrapChanges } from './schemas.mjs';

export const TOPICS = {
  'crm.contacts': 'c',
  'crm.deals': 'd',
  'crm.email': 'e',
  'crm.notifications': 'n',
};

export const RESOURCES = {
  contact: {
    topic: 'crm.contacts',
    events: ['create', 'update', 'delete', 'activity', 'email', 'note'],
    field: null,
  },
  deal: {
    topic: 'crm.deals',
    events: ['create', 'update', 'delete', 'stage-change', 'assignment', 'comment'],
    field: 'pipelineId',
  },
  'email-thread': {
    topic: 'crm.email',
    events: ['new-email', 'reply', 'forward'],
    field: 'contactId',
  },
};

const MAX_ID_LENGTH = 256;
const SEP = '\u001f'; // cannot occur in a JWT org claim we accept or in the ids below

export const room = (org, resource, selector, event) =>
  org + SEP + resource + SEP + event + SEP + selector;
export const userRoom = (org, userId) => 'user' + SEP + org + SEP + userId;

export class RequestError extends Error {
  constructor(code, message, details) {
    super(message);
    this.code = code;
    this.details = details;
  }
  payload() {
    const out = { code: this.code, message: this.message };
    if (this.details) out.details = this.details;
    out.timestamp = new Date().toISOString();
    return out;
  }
}

const invalid = (message, details) => new RequestError('INVALID_REQUEST', message, details);
const isId = (v) => typeof v === 'string' && v.length > 0 && v.length <= MAX_ID_LENGTH && !v.includes(SEP);

/**
 * Parses `{ resource, id | filter, events? }` for a caller of organisation
 * `org`. Returns `{ key, resource, describe, events, rooms, topics }`: `key`
 * identifies the subscription on its socket (same id/filter = same key).
 */
export function parseSubscription(org, req, { withEvents }) {
  if (req === null || typeof req !== 'object' || Array.isArray(req)) {
    throw invalid('expected an object { resource, id | filter, events? }');
  }
  const spec = RESOURCES[req.resource];
  if (!spec) {
    throw new RequestError('RESOURCE_NOT_FOUND', `unknown resource; one of ${Object.keys(RESOURCES).join(', ')}`);
  }
  const resource = req.resource;
  let selector;
  let describe;
  if (req.id !== undefined && req.filter !== undefined) throw invalid('send either id or filter, not both');
  if (req.id !== undefined) {
    if (!isId(req.id)) throw invalid('id must be a non-empty string');
    selector = 'id:' + req.id;
    describe = { resource, id: req.id };
  } else if (req.filter !== undefined) {
    const filter = req.filter;
    if (filter === null || typeof filter !== 'object' || Array.isArray(filter)) throw invalid('filter must be an object');
    const fields = Object.keys(filter);
    for (const f of fields) {
      if (f !== 'organizationId' && f !== spec.field) {
        throw invalid(`filter.${f} is not a filter of ${resource}`);
      }
      if (!isId(filter[f])) throw invalid(`filter.${f} must be a non-empty string`);
    }
    if (filter.organizationId !== undefined && filter.organizationId !== org) {
      throw new RequestError('FORBIDDEN', 'filter.organizationId is not your organisation');
    }
    if (spec.field && filter[spec.field] !== undefined) {
      selector = spec.field + ':' + filter[spec.field];
      describe = { resource, filter: { [spec.field]: filter[spec.field] } };
    } else if (filter.organizationId !== undefined) {
      selector = 'org';
      describe = { resource, filter: { organizationId: org } };
    } else {
      throw invalid('filter names no field');
    }
  } else {
    throw invalid('send id or filter');
  }

  let events = spec.events;
  if (withEvents && req.events !== undefined) {
    if (!Array.isArray(req.events) || req.events.length > spec.events.length * 4) {
      throw invalid('events must be an array of event names', { events: spec.events });
    }
    const wanted = new Set();
    for (const e of req.events) {
      if (!spec.events.includes(e)) throw invalid(`unknown event for ${resource}`, { events: spec.events });
      wanted.add(e);
    }
    events = spec.events.filter((e) => wanted.has(e)); // canonical order
  }
  const key = resource + SEP + selector;
  if (!withEvents) return { key, describe };

  const topics = [spec.topic];
  // A contact subscription by id with `email` also receives its emails.
  if (resource === 'contact' && selector.startsWith('id:') && events.includes('email')) topics.push('crm.email');
  return {
    key,
    resource,
    describe: { ...describe, events },
    events,
    rooms: events.map((e) => room(org, resource, selector, e)),
    topics,
  };
}

const iso = (ms) => new Date(ms).toISOString();
const eventName = (symbol) => symbol.replace('_', '-');

/**
 * Maps a decoded record to `{ name, payload, rooms }`. `payload` already has
 * `position`; replay adds `replayed: true` to a copy.
 */
export function route(topic, v, position) {
  const org = v.organizationId;
  switch (topic) {
    case 'crm.deals': {
      const event = eventName(v.action);
      const rooms = [
        room(org, 'deal', 'id:' + v.dealId, event),
        room(org, 'deal', 'org', event),
        room(org, 'deal', 'pipelineId:' + v.pipelineId, event),
      ];
      if (event === 'stage-change') {
        return {
          name: 'pipeline-update',
          rooms,
          payload: {
            pipelineId: v.pipelineId,
            dealId: v.dealId,
            previousStage: v.previousStage,
            newStage: v.newStage,
            userId: v.actorUserId,
            timestamp: iso(v.occurredAt),
            position,
          },
        };
      }
      return resourceEvent('deal', v.dealId, event, v, rooms, position);
    }
    case 'crm.contacts': {
      const event = v.action;
      const rooms = [room(org, 'contact', 'id:' + v.contactId, event), room(org, 'contact', 'org', event)];
      return resourceEvent('contact', v.contactId, event, v, rooms, position);
    }
    case 'crm.email': {
      const event = eventName(v.action);
      const rooms = [room(org, 'email-thread', 'id:' + v.threadId, event), room(org, 'email-thread', 'org', event)];
      if (v.contactId !== null) {
        rooms.push(room(org, 'email-thread', 'contactId:' + v.contactId, event));
        rooms.push(room(org, 'contact', 'id:' + v.contactId, 'email'));
      }
      return {
        name: 'email-received',
        rooms,
        payload: {
          emailId: v.emailId,
          contactId: v.contactId,
          subject: v.subject,
          from: v.from,
          timestamp: iso(v.occurredAt),
          threadId: v.threadId,
          action: event,
          position,
        },
      };
    }
    case 'crm.notifications':
      return {
        name: 'notification',
        rooms: [userRoom(org, v.targetUserId)],
        payload: {
          id: v.notificationId,
          type: v.type,
          title: v.title,
          message: v.message,
          link: v.link,
          timestamp: iso(v.occurredAt),
          position,
        },
      };
    default:
      return null;
  }
}

function resourceEvent(resource, id, event, v, rooms, position) {
  if (event === 'delete') {
    return {
      name: 'resource-delete',
      rooms,
      payload: { resource, id, timestamp: iso(v.occurredAt), userId: v.actorUserId, position },
    };
  }
  return {
    name: 'resource-update',
    rooms,
    payload: {
      resource,
      id,
      action: event,
      data: unwrapChanges(v.changes),
      timestamp: iso(v.occurredAt),
      userId: v.actorUserId,
      position,
    },
  };
}

// Cursors: `1:` then comma-separated `<topic code><partition>.<offset>`.

const TOPIC_OF_CODE = Object.fromEntries(Object.entries(TOPICS).map(([t, c]) => [c, t]));

/** Returns Map<topic, Map<partition, offset>>; throws INVALID_REQUEST if malformed. */
export function parseCursor(text) {
  if (typeof text !== 'string' || text.length > 4096 || !text.startsWith('1:')) throw invalid('since is not a cursor');
  const out = new Map();
  for (const entry of text.slice(2).split(',')) {
    if (entry === '') continue;
    const m = /^([cden])(\d{1,6})\.(\d{1,18})$/.exec(entry);
    if (!m) throw invalid('since is not a cursor');
    const topic = TOPIC_OF_CODE[m[1]];
    if (!out.has(topic)) out.set(topic, new Map());
    out.get(topic).set(Number(m[2]), Number(m[3]));
  }
  return out;
}

/** `positions`: Map<topic, Map<partition, offset>>, restricted to `topics`. */
export function formatCursor(positions, topics) {
  const parts = [];
  for (const topic of [...topics].sort((a, b) => TOPICS[a].localeCompare(TOPICS[b]))) {
    const byPartition = positions.get(topic);
    if (!byPartition) continue;
    for (const p of [...byPartition.keys()].sort((a, b) => a - b)) {
      parts.push(`${TOPICS[topic]}${p}.${byPartition.get(p)}`);
    }
  }
  return '1:' + parts.join(',');
}
