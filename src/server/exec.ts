// exec over the API. Each exec is a child process (`nexcage exec`, see engine.ts) with its own pipes:
// - streamed: stdout/stderr go out as NDJSON events while the process runs, then its exit code;
// - background: the output goes to files under <dataDir>/execs/<sandbox>/<exec>/, the exit code to a file
//   the wrapping shell writes, so both outlive this server (restart, crash) and can be read later.
// Engine errors (not running, no such sandbox) come from the child's JSON log, so they are never mistaken
// for the process's own exit code. The process's host pid (its pid file) is what a timeout or a client that
// went away kills: killing the `nexcage exec` child alone would orphan the process inside the container.
import { randomBytes } from "node:crypto";
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, readSync, rmSync, statSync } from "node:fs";
import { NexcageError } from "../core/errors.ts";
import type { ExecRow } from "../db/db.ts";
import { codeOfExit } from "./errors.ts";
import type { ExecBody } from "./schemas.ts";
import type { Principal, SandboxService } from "./sandboxes.ts";

export type ExecEvent =
  | { type: "started"; pid: number | null }
  | { type: "stdout" | "stderr"; data: string }
  | { type: "exit"; code: number; signal?: string; durationMs: number; timedOut?: boolean }
  | { type: "error"; code: string; message: string };

function engineError(logFile: string): { code: string; message: string } | undefined {
  let text = "";
  try {
    text = readFileSync(logFile, "utf8");
  } catch {
    return undefined;
  }
  for (const line of text.trim().split("\n").reverse()) {
    try {
      const j = JSON.parse(line) as { level?: string; msg?: string };
      if (j.level === "error" && j.msg) return { code: "", message: j.msg };
    } catch {}
  }
  return undefined;
}

function readPid(file: string): number | null {
  try {
    const n = Number(readFileSync(file, "utf8").trim());
    return n > 0 ? n : null;
  } catch {
    return null;
  }
}

function kill(pid: number | null, sig: NodeJS.Signals = "SIGKILL"): void {
  if (!pid) return;
  try {
    process.kill(pid, sig);
  } catch {}
}

export class ExecService {
  constructor(
    private readonly sandboxes: SandboxService,
    private readonly dataDir: string,
    private readonly onExec?: (backend: string, seconds: number) => void,
  ) {}

  private dirFor(sandbox: string, exec: string): string {
    return `${this.dataDir}/execs/${sandbox}/${exec}`;
  }

  private async prepare(p: Principal, id: string, b: ExecBody) {
    const row = await this.sandboxes.refresh(this.sandboxes.own(p, id));
    if (row.state !== "running") throw new NexcageError("badState", `cannot exec in sandbox ${id}: it is ${row.state}`);
    this.sandboxes.db.touchSandbox(id);
    const execId = `ex-${randomBytes(8).toString("hex")}`;
    const dir = this.dirFor(id, execId);
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const argv = this.sandboxes.engine.execArgv(id, {
      args: b.command,
      ...(b.env ? { env: Object.entries(b.env).map(([k, v]) => `${k}=${v}`) } : {}),
      ...(b.cwd ? { cwd: b.cwd } : {}),
      ...(b.user ? { user: b.user } : {}),
      pidFile: `${dir}/pid`,
      logFile: `${dir}/engine.log`,
    });
    const stdin = b.stdin !== undefined ? Buffer.from(b.stdin, b.stdinEncoding === "base64" ? "base64" : "utf8") : undefined;
    return { row, execId, dir, argv, stdin };
  }

  /**
   * Start a foreground exec: `emit` gets its events as they happen, ending with `exit` or `error`. Returns
   * the process's stdin (interactive: the caller streams it; otherwise the request's stdin is written and
   * closed here), a kill for a client that went away, and a promise of the end.
   */
  async run(p: Principal, id: string, b: ExecBody, emit: (e: ExecEvent) => void, interactive = false) {
    const { row, dir, argv, stdin } = await this.prepare(p, id, b);
    const t0 = performance.now();
    const child = Bun.spawn(argv, { stdin: stdin || interactive ? "pipe" : "ignore", stdout: "pipe", stderr: "pipe" });
    const input = child.stdin as import("bun").FileSink | undefined;
    if (stdin && input && !interactive) {
      // the process may exit without reading: a broken pipe then is its business, not an error here
      Promise.resolve()
        .then(async () => {
          input.write(stdin);
          await input.end();
        })
        .catch(() => {});
    }
    let timedOut = false;
    let gone = false;
    const killAll = () => {
      kill(readPid(`${dir}/pid`));
      kill(child.pid);
    };
    const timer = b.timeout
      ? setTimeout(() => {
          timedOut = true;
          killAll();
        }, b.timeout * 1000)
      : undefined;
    const send = (e: ExecEvent) => {
      if (!gone) emit(e);
    };
    const pump = async (s: ReadableStream<Uint8Array>, type: "stdout" | "stderr") => {
      const dec = new TextDecoder("utf-8", { fatal: false });
      for await (const chunk of s) {
        const data = b.encoding === "base64" ? Buffer.from(chunk).toString("base64") : dec.decode(chunk, { stream: true });
        if (data) send({ type, data });
      }
      const rest = b.encoding === "base64" ? "" : dec.decode();
      if (rest) send({ type, data: rest });
    };
    const done = (async () => {
      try {
        await Promise.all([pump(child.stdout, "stdout"), pump(child.stderr, "stderr")]);
        const code = await child.exited;
        if (timer) clearTimeout(timer);
        const err = code !== 0 && !existsSync(`${dir}/pid`) ? engineError(`${dir}/engine.log`) : undefined;
        if (err && !timedOut) send({ type: "error", code: codeOfExit(code), message: err.message });
        else {
          this.onExec?.(row.backend ?? "unknown", (performance.now() - t0) / 1000);
          send({ type: "exit", code, durationMs: Math.round(performance.now() - t0), ...(timedOut ? { timedOut: true } : {}) });
        }
      } catch (e) {
        send({ type: "error", code: "failure", message: (e as Error).message });
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    })();
    return {
      stdin: interactive ? input : undefined,
      /** the client went away: the process goes too */
      cancel() {
        gone = true;
        if (timer) clearTimeout(timer);
        killAll();
      },
      done,
    };
  }

  /** the events as NDJSON; cancelling the stream kills the process */
  async stream(p: Principal, id: string, b: ExecBody): Promise<ReadableStream<Uint8Array>> {
    const enc = new TextEncoder();
    let ctl!: ReadableStreamDefaultController<Uint8Array>;
    let closed = false;
    const stream = new ReadableStream<Uint8Array>({
      start(c) {
        ctl = c;
      },
      cancel() {
        closed = true;
        handle.cancel();
      },
    });
    const handle = await this.run(p, id, b, (e) => {
      if (!closed) ctl.enqueue(enc.encode(`${JSON.stringify(e)}\n`));
    });
    void handle.done.then(() => {
      if (!closed) ctl.close();
      closed = true;
    });
    return stream;
  }

  /** start in the background; the output and exit code are kept under the exec's directory */
  async background(p: Principal, id: string, b: ExecBody): Promise<{ id: string }> {
    const { row, execId, dir, argv, stdin } = await this.prepare(p, id, b);
    if (stdin) await Bun.write(`${dir}/stdin`, stdin);
    // sh waits for the exec and records its status atomically; setsid: a signal to the server's process group
    // (a Ctrl-C on its terminal) does not reach it
    const input = stdin ? '"$D/stdin"' : "/dev/null";
    const script = `exec <${input} >"$D/stdout" 2>"$D/stderr"; "$@"; echo $? >"$D/exit.tmp" && mv "$D/exit.tmp" "$D/exit"`;
    const child = Bun.spawn(["/bin/sh", "-c", script, "nexcage-exec", ...argv], {
      env: { ...process.env, D: dir },
      stdin: "ignore",
      stdout: "ignore",
      stderr: "ignore",
      detached: true,
    });
    child.unref();
    this.sandboxes.db.addExec({ id: execId, sandboxId: id, tenantId: row.tenantId, command: JSON.stringify(b.command), started: new Date().toISOString(), pid: child.pid, dir });
    const timeout = b.timeout;
    if (timeout) setTimeout(() => this.killExec(execId), timeout * 1000).unref();
    void child.exited.then(() => this.settle(this.sandboxes.db.exec(execId)));
    return { id: execId };
  }

  /** the exit file, once the wrapper wrote it, into the database (also at reconcile for a crashed server) */
  settle(e: ExecRow | undefined): ExecRow | undefined {
    if (!e || e.finished) return e;
    const exitFile = `${e.dir}/exit`;
    if (existsSync(exitFile)) {
      const code = Number(readFileSync(exitFile, "utf8").trim());
      const err = code !== 0 && !existsSync(`${e.dir}/pid`) ? engineError(`${e.dir}/engine.log`) : undefined;
      this.sandboxes.db.finishExec(e.id, err ? null : code);
    } else if (e.pid && !pidAlive(e.pid)) {
      // the wrapper died without a word (SIGKILL, reboot): the status is unknown
      this.sandboxes.db.finishExec(e.id, null);
    }
    return this.sandboxes.db.exec(e.id);
  }

  info(p: Principal, id: string, execId: string) {
    this.sandboxes.own(p, id);
    const e = this.settle(this.sandboxes.db.exec(execId));
    if (!e || e.sandboxId !== id) throw new NexcageError("notFound", `exec ${execId} of sandbox ${id} does not exist`);
    const err = e.finished && e.exitCode === null ? engineError(`${e.dir}/engine.log`) : undefined;
    return {
      id: e.id,
      command: JSON.parse(e.command) as string[],
      started: e.started,
      finished: e.finished,
      running: !e.finished,
      exitCode: e.exitCode,
      ...(err ? { error: err.message } : {}),
      stdoutBytes: size(`${e.dir}/stdout`),
      stderrBytes: size(`${e.dir}/stderr`),
    };
  }

  list(p: Principal, id: string) {
    this.sandboxes.own(p, id);
    return this.sandboxes.db.execs(id).map((e) => this.info(p, id, e.id));
  }

  /** up to `limit` bytes of a background exec's stdout or stderr from `offset` */
  output(p: Principal, id: string, execId: string, stream: "stdout" | "stderr", offset: number, limit: number): { data: Buffer; next: number; size: number } {
    const e = this.info(p, id, execId);
    const file = `${this.sandboxes.db.exec(e.id)?.dir}/${stream}`;
    const total = size(file);
    const n = Math.max(0, Math.min(limit, total - offset));
    const buf = Buffer.alloc(n);
    if (n > 0) {
      const fd = openSync(file, "r");
      try {
        readSync(fd, buf, 0, n, offset);
      } finally {
        closeSync(fd);
      }
    }
    return { data: buf, next: offset + n, size: total };
  }

  killExec(execId: string): void {
    const e = this.sandboxes.db.exec(execId);
    if (!e || e.finished) return;
    kill(readPid(`${e.dir}/pid`));
  }

  kill(p: Principal, id: string, execId: string) {
    this.info(p, id, execId);
    this.killExec(execId);
  }
}

function size(f: string): number {
  try {
    return statSync(f).size;
  } catch {
    return 0;
  }
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return !/\) [ZX] /.test(readFileSync(`/proc/${pid}/stat`, "utf8"));
  } catch {
    return false;
  }
}

/** what a WebSocket exec needs from the connection (Bun's ServerWebSocket, narrowed) */
export interface WsLike {
  send(data: string): unknown;
  close(code?: number, reason?: string): void;
}

/**
 * An interactive exec over a WebSocket. The client's first text message is the exec request (the same JSON
 * as POST .../exec, without background); then binary messages are stdin bytes, text messages
 * `{"type":"stdin","data":"..."}` (utf8) or `{"type":"eof"}` (close stdin). The server sends each event as a
 * text message and closes after `exit` or `error`. Closing the socket kills the process.
 */
export function wsExec(execs: ExecService, p: Principal, id: string, parse: (json: unknown) => ExecBody, onEnd: () => void) {
  let handle: Awaited<ReturnType<ExecService["run"]>> | undefined;
  let started = false;
  let ended = false;
  const end = () => {
    if (!ended) onEnd();
    ended = true;
  };
  const fail = (ws: WsLike, code: string, message: string) => {
    ws.send(JSON.stringify({ type: "error", code, message }));
    ws.close(1008, code);
    end();
  };
  return {
    message(ws: WsLike, msg: string | Buffer) {
      if (!started) {
        started = true;
        let body: ExecBody;
        try {
          if (typeof msg !== "string") throw new NexcageError("invalidSpec", "the first message must be the exec request as JSON text");
          body = parse(JSON.parse(msg));
        } catch (e) {
          return fail(ws, (e as NexcageError).code ?? "badRequest", (e as Error).message);
        }
        execs
          .run(p, id, body, (e) => ws.send(JSON.stringify(e)), true)
          .then((h) => {
            handle = h;
            if (body.stdin !== undefined) h.stdin?.write(Buffer.from(body.stdin, body.stdinEncoding === "base64" ? "base64" : "utf8"));
            void h.done.then(() => {
              ws.close(1000, "exited");
              end();
            });
          })
          .catch((e) => fail(ws, (e as NexcageError).code ?? "failure", (e as Error).message));
        return;
      }
      if (!handle?.stdin) return;
      try {
        if (typeof msg !== "string") handle.stdin.write(msg);
        else {
          const m = JSON.parse(msg) as { type?: string; data?: string };
          if (m.type === "stdin" && typeof m.data === "string") handle.stdin.write(m.data);
          else if (m.type === "eof") void handle.stdin.end();
        }
        void handle.stdin.flush();
      } catch {
        // stdin of a process that is gone, or a malformed control message: nothing to do
      }
    },
    close() {
      handle?.cancel();
      end();
    },
  };
}
