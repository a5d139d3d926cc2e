// The client half of bench/network.ts, run inside the client network namespace: against one TCP echo
// server it measures connect+round-trip (a new connection per request), round-trip on one connection, and
// echo throughput (bytes sent and received back). Prints one JSON line.
//   bun bench/net-echo-client.ts HOST PORT [--requests N] [--mib M]
import { connect } from "node:net";
import { parseArgs } from "node:util";

const { positionals, values } = parseArgs({ allowPositionals: true, options: { requests: { type: "string", default: "200" }, mib: { type: "string", default: "16" } } });
const [host, port] = [positionals[0] as string, Number(positionals[1])];
const R = Number(values.requests);
const MIB = Number(values.mib);
const deadline = Date.now() + 120_000; // every loop is bounded in time as well as in count

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] ?? NaN;
}

function open(): Promise<import("node:net").Socket> {
  return new Promise((res, rej) => {
    const s = connect({ host, port, noDelay: true }, () => res(s));
    s.once("error", rej);
    s.setTimeout(10_000, () => s.destroy(new Error("timeout")));
  });
}

/** send `n` bytes, resolve once n bytes came back */
function echo(s: import("node:net").Socket, n: number, chunk = Buffer.alloc(Math.min(n, 65536), 120)): Promise<void> {
  return new Promise((res, rej) => {
    let got = 0;
    const onData = (d: Buffer) => {
      got += d.length;
      if (got >= n) {
        s.off("data", onData);
        res();
      }
    };
    s.on("data", onData);
    s.once("error", rej);
    let sent = 0;
    const pump = () => {
      while (sent < n) {
        const part = chunk.subarray(0, Math.min(chunk.length, n - sent));
        sent += part.length;
        if (!s.write(part)) return void s.once("drain", pump);
      }
    };
    pump();
  });
}

async function main() {
  const connectRtt: number[] = [];
  // the echo server is `nc -ll -e cat`: one cat per connection, which takes a moment to start
  for (let i = 0; i < R && Date.now() < deadline; i++) {
    const t0 = performance.now();
    const s = await open();
    await echo(s, 1);
    connectRtt.push(performance.now() - t0);
    s.destroy();
  }
  const s = await open();
  await echo(s, 1);
  const rtt: number[] = [];
  for (let i = 0; i < R * 5 && Date.now() < deadline; i++) {
    const t0 = performance.now();
    await echo(s, 1);
    rtt.push(performance.now() - t0);
  }
  const bytes = MIB * 1024 * 1024;
  const t0 = performance.now();
  await echo(s, bytes);
  const secs = (performance.now() - t0) / 1000;
  s.destroy();
  console.log(JSON.stringify({ connectRttMs: median(connectRtt), rttMs: median(rtt), mibPerSec: MIB / secs, samples: connectRtt.length }));
}
await main();
process.exit(0);
