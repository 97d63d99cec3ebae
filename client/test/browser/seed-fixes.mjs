// The fixes the seed's "React Hook" and "Usage Example" need to run, each
// exactly as client/README.md ("The seed's snippets") tells a developer to
// write it (client/test/package.test.mjs holds the two together), and the
// surroundings the example takes for granted.
import { seedSnippet } from "../../../tests/client/seed.mjs";

export const SEED_FIXES = [
  {
    snippet: "React Hook",
    why: "uses useState without importing it",
    write: "import { useEffect, useCallback } from 'react';",
    instead: "import { useState, useEffect, useCallback } from 'react';",
  },
  {
    snippet: "React Hook",
    why: "connects to the seed's production host",
    write: "io('wss://api.hastecrm.com', {",
    instead: "io(BRIDGE_URL, {",
  },
  {
    snippet: "Usage Example",
    why: "calls socket.on while the hook's socket is still null (it is made in an effect)",
    write: "    // Subscribe to contact updates\n",
    instead: "    if (!socket) return;\n    // Subscribe to contact updates\n",
  },
];

/** A snippet with its fixes applied; throws if the seed no longer reads as a fix expects. */
function fixed(heading) {
  let code = seedSnippet(heading);
  for (const { snippet, write, instead } of SEED_FIXES) {
    if (snippet !== heading) continue;
    if (!code.includes(write)) throw new Error(`the seed's "${heading}" no longer has ${JSON.stringify(write)}`);
    code = code.replace(write, instead);
  }
  return code;
}

/**
 * The seed's hook and its usage example as one module exporting
 * `ContactDetails`, with what the example takes from its surroundings:
 * `BRIDGE_URL`, `authToken` and `setContact`, read from and reported to
 * `window.seed` (`{ url, token }` in, `contact` out).
 */
export function seedModule() {
  const surroundings = [
    "const BRIDGE_URL = window.seed.url;",
    "const authToken = window.seed.token;",
    "function setContact(update) {",
    "  window.seed.contact = typeof update === 'function' ? update(window.seed.contact) : update;",
    "}",
  ].join("\n");
  return [fixed("React Hook"), surroundings, fixed("Usage Example"), "export { ContactDetails };"].join("\n");
}
