// The seed's client snippets (docs/websocket-api.md, the contract as the
// project was seeded with it), read out of the document itself so the tests
// that run them run exactly what a frontend developer copies.
import { readFileSync } from "node:fs";

const CONTRACT = new URL("../../docs/websocket-api.md", import.meta.url);

/**
 * The code of the `index`th fenced block (0: the first) under the heading
 * whose text is `heading` (any level), up to the next heading of any level.
 * Throws when there is no such heading or block: a renamed heading must fail
 * the test that runs it, not skip it.
 */
export function seedSnippet(heading, index = 0) {
  const lines = readFileSync(CONTRACT, "utf8").split("\n");
  const start = lines.findIndex((line) => /^#+ /.test(line) && line.replace(/^#+ /, "").trim() === heading);
  if (start < 0) throw new Error(`no heading "${heading}" in ${CONTRACT.pathname}`);
  const blocks = [];
  let block = null;
  for (const line of lines.slice(start + 1)) {
    if (block === null && /^#+ /.test(line)) break;
    if (line.startsWith("```")) {
      if (block === null) block = [];
      else blocks.push(block.join("\n")), (block = null);
    } else if (block !== null) {
      block.push(line);
    }
  }
  if (index >= blocks.length) throw new Error(`"${heading}" has ${blocks.length} code blocks, not ${index + 1}`);
  return blocks[index];
}
