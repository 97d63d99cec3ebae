// The published package, as `npm pack` would make it: nothing but what a
// user needs, everything its entries need, each entry loadable from ESM
// and CommonJS, its types checked with `tsc --strict`, and the README's
// fixes of the seed's snippets the very ones the Chromium run applies.
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { createRequire } from "node:module";
import { readFileSync } from "node:fs";
import { SEED_FIXES } from "./browser/seed-fixes.mjs";
import { NOTIFICATIONS_KEPT } from "../react-bridge.js";

const client = new URL("..", import.meta.url).pathname;
const manifest = JSON.parse(readFileSync(`${client}package.json`, "utf8"));
/** Documents npm packs whatever `files` says. */
const DOCUMENTS = ["package.json", "README.md", "CHANGELOG.md"];

function packed() {
  const [pack] = JSON.parse(execFileSync("npm", ["pack", "--dry-run", "--json", "--ignore-scripts"], { cwd: client, encoding: "utf8" }));
  return pack.files.map((file) => file.path).sort();
}

/** Every file `exports` (and `main`, `types`) points at. */
function entries() {
  const targets = [];
  const walk = (value) => (typeof value === "string" ? targets.push(value) : Object.values(value).forEach(walk));
  walk(manifest.exports);
  targets.push(manifest.main, manifest.types);
  return [...new Set(targets.map((target) => target.replace(/^\.\//, "")))];
}

/** `files` plus the relative imports they make, transitively. */
function reachable(files) {
  const seen = new Set();
  const visit = (file) => {
    if (seen.has(file)) return;
    seen.add(file);
    for (const [, target] of readFileSync(`${client}${file}`, "utf8").matchAll(/from\s+["']\.\/([^"']+)["']/g)) {
      // A declaration file imports "./index.js" for the types of index.d.ts.
      visit(file.endsWith(".d.ts") ? target.replace(/\.js$/, ".d.ts") : target);
    }
  };
  files.forEach(visit);
  return seen;
}

test("the package holds its entries, what they import, and its documents; nothing else", () => {
  const files = packed();
  for (const entry of entries()) assert.ok(files.includes(entry), `${entry} (in exports) is not packed`);
  const needed = [...reachable(entries().filter((entry) => entry !== "package.json")), ...DOCUMENTS].sort();
  assert.deepEqual(files, needed);
});

test("each entry loads as ESM and through require()", async () => {
  const require = createRequire(import.meta.url);
  for (const entry of ["crm-bridge-client", "crm-bridge-client/react", "crm-bridge-client/recovery"]) {
    const imported = await import(entry);
    assert.deepEqual(Object.keys(require(entry)).filter((name) => name !== "__esModule").sort(), Object.keys(imported).sort(), entry);
  }
  assert.equal(typeof require("crm-bridge-client").default, "function");
});

test("the types: what a page writes with the hooks type-checks under --strict, what it must not write does not", () => {
  const tsc = `${client}node_modules/typescript/bin/tsc`;
  execFileSync(process.execPath, [tsc, "-p", `${client}test/types`], { encoding: "utf8" });
});

test("the README tells each fix the Chromium run applies to the seed's snippets", () => {
  const readme = readFileSync(`${client}README.md`, "utf8");
  const section = readme.slice(readme.indexOf("## The seed's snippets"));
  for (const { snippet, write, instead } of SEED_FIXES) {
    assert.ok(section.includes(`### ${snippet}`), `no "### ${snippet}" in the README's "The seed's snippets"`);
    // What the fix writes that the seed does not: a line changed, or one added.
    const written = instead.split("\n").filter((line) => line.trim() && !write.includes(line)).map((line) => line.trim());
    for (const line of written) assert.ok(section.includes(line), `the README does not say to write ${JSON.stringify(line)}`);
  }
});

test("the README's number of notifications kept is the hook's", () => {
  assert.ok(readFileSync(`${client}README.md`, "utf8").includes(`(the last ${NOTIFICATIONS_KEPT})`));
});
