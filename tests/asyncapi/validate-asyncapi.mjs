// Validates an AsyncAPI document with @asyncapi/parser: its own rules, and
// each Avro payload with @asyncapi/avro-schema-parser's validation (the
// parser registers it for parsing, but its rules do not run it on AsyncAPI
// 3's multi-format payloads). Exits 1 on any error; prints warnings, which
// do not fail. Usage: node tests/asyncapi/validate-asyncapi.mjs [FILE]
// (docs/asyncapi.json by default). tests/contract.rs runs it.
import { readFile } from "node:fs/promises";
import { Parser, DiagnosticSeverity } from "@asyncapi/parser";
import { AvroSchemaParser } from "@asyncapi/avro-schema-parser";

const file = process.argv[2] ?? new URL("../../docs/asyncapi.json", import.meta.url).pathname;
const text = await readFile(file, "utf8");
const avro = AvroSchemaParser();
const parser = new Parser();
parser.registerSchemaParser(avro);
const { document, diagnostics } = await parser.parse(text);

const asyncapi = JSON.parse(text);
for (const [name, message] of Object.entries(asyncapi.components?.messages ?? {})) {
  const { schemaFormat, schema } = message.payload ?? {};
  if (!avro.getMimeTypes().includes(schemaFormat)) continue;
  const path = ["components", "messages", name, "payload", "schema"];
  const found = await avro.validate({ asyncapi: { semver: {} }, data: schema, path, schemaFormat });
  diagnostics.push(...(found ?? []).map((d) => ({ ...d, severity: DiagnosticSeverity.Error, path: d.path ?? path })));
}

const severities = { [DiagnosticSeverity.Error]: "error", [DiagnosticSeverity.Warning]: "warning" };
for (const d of diagnostics) {
  const severity = severities[d.severity];
  if (severity) console.log(`${severity}: ${d.message} at ${d.path.join(".") || "(root)"}`);
}
const errors = diagnostics.filter((d) => d.severity === DiagnosticSeverity.Error);
const warnings = diagnostics.filter((d) => d.severity === DiagnosticSeverity.Warning);
if (errors.length || !document) {
  console.log(`${file}: ${errors.length} errors`);
  process.exit(1);
}
console.log(
  `${file}: valid AsyncAPI ${document.version()}, ${document.operations().length} operations, ` +
    `${document.allMessages().length} messages, ${warnings.length} warnings`,
);
