import { defineCommand } from "citty";
import { NexcageError } from "../../core/errors.ts";
import { idArg } from "../args.ts";
import { getRuntime, out } from "../context.ts";

/** Go duration strings as runc's --interval takes them: 5s, 500ms, 1m30s. */
export function parseDuration(s: string): number {
  const units: Record<string, number> = { ns: 1e-6, us: 1e-3, µs: 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
  const re = /(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)/y;
  let ms = 0;
  let m: RegExpExecArray | null;
  re.lastIndex = 0;
  while (re.lastIndex < s.length && (m = re.exec(s))) ms += Number(m[1]) * (units[m[2] as string] as number);
  if (!s || re.lastIndex !== s.length || ms <= 0) throw new NexcageError("usage", `invalid --interval ${JSON.stringify(s)}: want a duration such as 5s or 500ms`);
  return ms;
}

export default defineCommand({
  meta: { name: "events", description: "resource usage as JSON lines (runc's events): once with --stats, else every --interval until the container stops" },
  args: {
    ...idArg,
    stats: { type: "boolean", description: "print the statistics once and exit" },
    interval: { type: "string", description: "time between statistics", default: "5s" },
  },
  async run({ args }) {
    const id = args._[0] as string;
    const rt = getRuntime();
    const every = parseDuration(String(args.interval));
    const line = async () => out(`${JSON.stringify({ type: "stats", id, data: await rt.stats(id) })}\n`);
    if (args.stats === true) return line();
    for (;;) {
      try {
        await line();
      } catch (e) {
        if (e instanceof NexcageError && e.code === "badState") return; // the container stopped: the stream ends
        if ((e as NodeJS.ErrnoException).code === "EPIPE") return; // the reader went away
        throw e;
      }
      await Bun.sleep(every);
    }
  },
});
