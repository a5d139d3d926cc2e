// pvesm for the PVE double: `path <volid>` and `status`.
import { die, storagePath, storages, volumePath } from "./lib.ts";

const [verb, arg] = process.argv.slice(2);
if (verb === "path") {
  if (!arg) die("400 not enough arguments\npvesm path <volume>");
  process.stdout.write(`${volumePath(arg)}\n`);
} else if (verb === "status") {
  const row = (a: string, b: string, c: string, d: string, e: string, f: string, g: string) =>
    `${a.padEnd(16)} ${b.padEnd(8)} ${c.padEnd(8)} ${d.padStart(14)} ${e.padStart(14)} ${f.padStart(14)} ${g.padStart(8)}\n`;
  let out = row("Name", "Type", "Status", "Total", "Used", "Available", "%");
  for (const s of storages()) {
    const df = Bun.spawnSync(["df", "-kP", storagePath(s)]).stdout.toString().split("\n")[1]?.split(/\s+/) ?? [];
    const [total, used, avail] = [df[1] ?? "0", df[2] ?? "0", df[3] ?? "0"];
    const pct = Number(total) ? `${((Number(used) / Number(total)) * 100).toFixed(2)}%` : "0.00%";
    out += row(s.id, s.type, "active", total, used, avail, pct);
  }
  process.stdout.write(out);
} else {
  die(`unknown command 'pvesm ${verb ?? ""}'`);
}
