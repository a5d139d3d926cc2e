// pvesh for the PVE double: the API paths nexcage reads (`get /cluster/nextid`, `get /storage/<id>`).
import { die, nextId, storages } from "./lib.ts";

const [verb, path, ...rest] = process.argv.slice(2);
const json = rest.includes("--output-format") && rest[rest.indexOf("--output-format") + 1]?.startsWith("json");
if (verb !== "get" || !path) die(`unknown command 'pvesh ${[verb, path].filter(Boolean).join(" ")}'`);
if (path === "/cluster/nextid") {
  // pvesh prints the bare value; JSON output quotes it (the API returns a string)
  process.stdout.write(json ? `"${nextId()}"\n` : `${nextId()}\n`);
  process.exit(0);
}
const st = /^\/storage\/([^/]+)$/.exec(path);
if (st) {
  const s = storages().find((x) => x.id === st[1]);
  if (!s) die(`storage '${st[1]}' does not exist`);
  process.stdout.write(`${JSON.stringify({ storage: s.id, type: s.type, ...s.props, digest: "0".repeat(40) })}\n`);
  process.exit(0);
}
if (path === "/storage") {
  process.stdout.write(`${JSON.stringify(storages().map((s) => ({ storage: s.id, type: s.type, ...s.props })))}\n`);
  process.exit(0);
}
die(`No '${verb}' handler defined for '${path}'`);
