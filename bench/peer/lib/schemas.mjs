// Avro decoding of Confluent-framed records: byte 0x00, big-endian u32 schema
// id, then the Avro body. Schemas come from SCHEMAS_DIR (registry.toml maps
// ids to .avsc files); the writer schema is used as the reader schema.

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import avro from 'avsc';

export class UndecodableRecord extends Error {
  constructor(reason, message) {
    super(message);
    this.reason = reason;
  }
}

/** Reads `registry.toml` (only its `[[schema]]` `id` and `file` keys). */
function readRegistry(dir) {
  const text = readFileSync(join(dir, 'registry.toml'), 'utf8');
  const entries = [];
  for (const block of text.split('[[schema]]').slice(1)) {
    const id = /^\s*id\s*=\s*(\d+)/m.exec(block);
    const file = /^\s*file\s*=\s*"([^"]+)"/m.exec(block);
    if (id && file) entries.push({ id: Number(id[1]), file: file[1] });
  }
  return entries;
}

export function loadSchemas(dir) {
  const types = new Map();
  for (const { id, file } of readRegistry(dir)) {
    const schema = JSON.parse(readFileSync(join(dir, file), 'utf8'));
    types.set(id, avro.Type.forSchema(schema));
  }
  if (types.size === 0) throw new Error(`no schemas in ${dir}/registry.toml`);

  return function decode(buf) {
    if (!buf || buf.length < 5 || buf[0] !== 0) {
      throw new UndecodableRecord('not_confluent', 'not Confluent-framed');
    }
    const id = buf.readUInt32BE(1);
    const type = types.get(id);
    if (!type) throw new UndecodableRecord('unknown_schema', `unknown schema id ${id}`);
    try {
      return type.fromBuffer(buf.subarray(5));
    } catch (err) {
      throw new UndecodableRecord('invalid_avro', err.message);
    }
  };
}

/** `changes` map values come back as wrapped unions ({ long: 5 }); unwrap them. */
export function unwrapChanges(changes) {
  const out = {};
  for (const key in changes) {
    const value = changes[key];
    if (value === null) {
      out[key] = null;
    } else {
      for (const branch in value) {
        out[key] = value[branch];
        break;
      }
    }
  }
  return out;
}
