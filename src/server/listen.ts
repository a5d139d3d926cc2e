// Where the server listens, and the rule that protects its tokens: a Unix socket (mode 0600, root only) by
// default; TCP only with TLS, or on a loopback address. Plain TCP on any other address is refused unless the
// admin insists (--insecure), and then it is said loudly on every start.
import { NexcageError } from "../core/errors.ts";

export type Listen = { kind: "unix"; path: string } | { kind: "tcp"; host: string; port: number };

export const DEFAULT_SOCKET = "/run/nexcage/api.sock";

export function parseListen(s: string): Listen {
  if (s.startsWith("unix:")) {
    const path = s.slice(5);
    if (!path.startsWith("/")) throw new NexcageError("usage", `--listen ${s}: the socket path must be absolute`);
    return { kind: "unix", path };
  }
  if (s.startsWith("/")) return { kind: "unix", path: s };
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(s);
  if (!m) throw new NexcageError("usage", `--listen ${JSON.stringify(s)}: want unix:PATH or HOST:PORT (IPv6 as [::1]:PORT)`);
  const port = Number(m[3]);
  if (port < 1 || port > 65535) throw new NexcageError("usage", `--listen ${s}: port out of range`);
  return { kind: "tcp", host: (m[1] ?? m[2]) as string, port };
}

export function isLoopback(host: string): boolean {
  return host === "localhost" || host === "::1" || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}

/** the listen address is acceptable as given; returns the warning to print, if any */
export function checkListen(l: Listen, tls: boolean, insecure: boolean): string | undefined {
  if (l.kind === "unix" || tls) return undefined;
  if (isLoopback(l.host)) return `WARNING: serving plain HTTP on loopback ${l.host}:${l.port}: any local user can reach it (tokens still required); prefer the Unix socket`;
  if (!insecure) {
    throw new NexcageError("usage", `refusing plain HTTP on ${l.host}:${l.port}: bearer tokens would cross the network in clear text; give --tls-cert and --tls-key, listen on a loopback address or a Unix socket (or --insecure to do it anyway)`);
  }
  return `WARNING: --insecure: serving PLAIN HTTP on ${l.host}:${l.port}; every bearer token sent to this server can be read on the network`;
}
