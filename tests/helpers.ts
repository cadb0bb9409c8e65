/**
 * Test helpers: spawn a root script exactly as a user is told to run it,
 * wait for its ready line, and talk to it over real sockets.
 *
 * The permissions come from the script's task in deno.json (one place for
 * each script's grants); no test grants a script more than its users do.
 */

import net from "node:net";
import { fileURLToPath as fromFileUrl } from "node:url";
import { closeQuietly, readFull, sleep, writeAll } from "../lib/io.ts";

// Shared with bench/ (one copy in lib/io.ts), re-exported under their names.
export { closeQuietly, sameBytes, sleep, writeAll } from "../lib/io.ts";

export const ROOT = new URL("../", import.meta.url);
export const ROOT_DIR = fromFileUrl(ROOT);

/** Every wait in the suite is bounded by this unless said otherwise. A
 * bound only catches a hang, never paces a test: the longest single wait
 * under it measured 3 s with a CPU hog on one core of two (a UDP client's
 * three 1 s tries), so 30 s is ten times that (issue 18). */
export const WAIT_MS = 30_000;

/** Ready line shape shared by every server: `NAME: listening on ADDR:PORT…`. */
const READY_LINE = /^(\w+): listening on \S*:(\d+)\b/;

const decoder = new TextDecoder();
const encoder = new TextEncoder();
export const utf8 = (text: string): Uint8Array => encoder.encode(text);
export const text = (bytes: Uint8Array): string => decoder.decode(bytes);

// ---------------------------------------------------------------------------
// Permissions: read from the script's deno.json task.

interface DenoJson {
  tasks: Record<string, string>;
}

const denoJson: DenoJson = JSON.parse(
  Deno.readTextFileSync(new URL("deno.json", ROOT)),
);

/** The flags between `deno run` and the script name in the script's task,
 * e.g. ["-N"] for `deno run -N tcp_echo.ts`. */
export function taskFlags(script: string): string[] {
  const task = denoJson.tasks[script.replace(/\.ts$/, "")];
  const words = task?.split(/\s+/) ?? [];
  const at = words.indexOf(script);
  if (words[0] !== "deno" || words[1] !== "run" || at < 0) {
    throw new Error(`deno.json has no task "deno run … ${script}"`);
  }
  return words.slice(2, at);
}

/** The run line in the script's header card: `@run deno run -N tcp_echo.ts`. */
export function headerRunLine(script: string): string[] {
  const source = Deno.readTextFileSync(new URL(script, ROOT));
  const match = source.match(/^ \* @run (.+)$/m);
  if (!match) throw new Error(`${script} has no @run line in its header`);
  return match[1].trim().split(/\s+/);
}

// ---------------------------------------------------------------------------
// Bounded waiting

/** Runs `promise` but gives up after `ms` with an error naming `what`. */
export async function within<T>(
  promise: Promise<T>,
  what: string,
  ms = WAIT_MS,
): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`Timed out after ${ms} ms: ${what}`)),
      ms,
    );
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** Polls `check` until it is true; for states with no event to wait on
 * (another process's memory, a log line already read). Bounded. */
export async function eventually(
  check: () => boolean | Promise<boolean>,
  what: string,
  ms = WAIT_MS,
): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) {
      throw new Error(`Timed out after ${ms} ms: ${what}`);
    }
    await sleep(20);
  }
}

// ---------------------------------------------------------------------------
// Child processes

/** Collects a child's output as lines, and lets a test wait for one. */
class LineCollector {
  readonly lines: string[] = [];
  readonly done: Promise<void>;
  #waiters = new Set<() => void>();

  constructor(stream: ReadableStream<Uint8Array>) {
    this.done = this.#collect(stream);
  }

  async #collect(stream: ReadableStream<Uint8Array>): Promise<void> {
    let partial = "";
    for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
      const parts = (partial + chunk).split("\n");
      partial = parts.pop()!;
      this.lines.push(...parts);
      this.#wake();
    }
    if (partial) this.lines.push(partial);
    this.#wake();
  }

  #wake(): void {
    for (const wake of this.#waiters) wake();
  }

  get text(): string {
    return this.lines.join("\n");
  }

  /** Waits until a line (from index `from` on) matches, and returns it. */
  async waitFor(pattern: RegExp, ms = WAIT_MS, from = 0): Promise<string> {
    let ended = false;
    this.done.then(() => ended = true);
    const find = () => this.lines.slice(from).find((l) => pattern.test(l));
    return await within(
      new Promise<string>((resolve, reject) => {
        const check = () => {
          const line = find();
          if (line !== undefined || ended) {
            this.#waiters.delete(check);
            if (line !== undefined) resolve(line);
            else reject(new Error(`Output ended without a line ${pattern}`));
          }
        };
        this.#waiters.add(check);
        check();
        this.done.then(check);
      }),
      `a line matching ${pattern}; output so far:\n${this.text}`,
      ms,
    );
  }
}

export interface Finished {
  code: number;
  signal: Deno.Signal | null;
  stdout: string;
  stderr: string;
}

export interface Options {
  /** Override the task's permission flags (to test a missing one). */
  flags?: string[];
  /** Working directory; the script path stays absolute unless `script`
   * is given relative to it. */
  cwd?: string;
  /** Feed this to stdin, then close it. */
  stdin?: Uint8Array | string;
  env?: Record<string, string>;
  /** Extra arguments put in front of the command, e.g. ["prlimit", …]. */
  wrap?: string[];
  /** Run this instead of `deno run FLAGS SCRIPT`, e.g. ["./tcp_echo.ts"]
   * for a script started through its shebang line. */
  command?: string[];
}

/** The locale a test asks for (LC_ALL, else LANG), else C: English. */
function locale(env: Record<string, string> = {}): string {
  return env.LC_ALL || env.LANG || "C";
}

/** A running script. Dispose it (await using) to be sure it is gone. */
export class Child implements AsyncDisposable {
  readonly process: Deno.ChildProcess;
  readonly stdout: LineCollector;
  readonly stderr: LineCollector;
  #status: Promise<Deno.CommandStatus>;

  constructor(command: string, args: string[], options: Options = {}) {
    const wrap = options.wrap ?? [];
    const cmd = wrap.length ? wrap[0] : command;
    const cmdArgs = wrap.length ? [...wrap.slice(1), command, ...args] : args;
    this.process = new Deno.Command(cmd, {
      args: cmdArgs,
      cwd: options.cwd ?? ROOT_DIR,
      stdin: options.stdin === undefined ? "null" : "piped",
      stdout: "piped",
      stderr: "piped",
      // No colours in output the tests compare; no update check, whose
      // background file reads race with tests that limit descriptors. The
      // scripts speak the locale's language: English unless a test asks
      // for another (LC_ALL too, or a French developer's LC_ALL would win).
      env: {
        NO_COLOR: "1",
        DENO_NO_UPDATE_CHECK: "1",
        LANG: locale(options.env),
        LC_ALL: locale(options.env),
        ...options.env,
      },
    }).spawn();
    this.stdout = new LineCollector(this.process.stdout);
    this.stderr = new LineCollector(this.process.stderr);
    this.#status = this.process.status;
    if (options.stdin !== undefined) {
      const input = typeof options.stdin === "string"
        ? utf8(options.stdin)
        : options.stdin;
      this.#feed(input);
    }
  }

  async #feed(input: Uint8Array): Promise<void> {
    const writer = this.process.stdin.getWriter();
    try {
      await writer.write(input);
      await writer.close();
    } catch {
      // The child exited before reading all its input: its exit code and
      // output tell the test what happened.
    }
  }

  get pid(): number {
    return this.process.pid;
  }

  kill(signal: Deno.Signal = "SIGINT"): void {
    try {
      this.process.kill(signal);
    } catch {
      // Already exited.
    }
  }

  /** Waits for the child to exit by itself and for all its output. */
  async finished(ms = WAIT_MS): Promise<Finished> {
    const status = await within(this.#status, "the process to exit", ms);
    await within(
      Promise.all([this.stdout.done, this.stderr.done]),
      "the process's output to end",
      ms,
    );
    return {
      code: status.code,
      signal: status.signal,
      stdout: this.stdout.text,
      stderr: this.stderr.text,
    };
  }

  /** Sends a signal and waits for the exit. */
  stop(signal: Deno.Signal = "SIGINT", ms = WAIT_MS): Promise<Finished> {
    this.kill(signal);
    return this.finished(ms);
  }

  async [Symbol.asyncDispose](): Promise<void> {
    this.kill("SIGKILL");
    await this.#status;
    await Promise.all([this.stdout.done, this.stderr.done]);
  }
}

/** Runs a root script with its task's permissions. */
export function runScript(
  script: string,
  args: string[] = [],
  options: Options = {},
): Child {
  const flags = options.flags ?? taskFlags(script);
  const path = options.cwd ? script : fromFileUrl(new URL(script, ROOT));
  return new Child(Deno.execPath(), ["run", ...flags, path, ...args], options);
}

/** A server started on port 0 and ready: its ready line has been read. */
export class Server extends Child {
  port = 0;
  readyLine = "";
}

/** Starts a root server script on port 0 and waits for its ready line. */
export async function startServer(
  script: string,
  args: string[] = [],
  options: Options = {},
): Promise<Server> {
  const flags = options.flags ?? taskFlags(script);
  const path = options.cwd ? script : fromFileUrl(new URL(script, ROOT));
  const [command, ...start] = options.command ??
    [Deno.execPath(), "run", ...flags, path];
  const server = new Server(
    command,
    [...start, "--port", "0", ...args],
    options,
  );
  try {
    server.readyLine = await server.stdout.waitFor(READY_LINE);
    server.port = Number(server.readyLine.match(READY_LINE)![2]);
  } catch (err) {
    await server[Symbol.asyncDispose]();
    throw new Error(
      `${script} did not become ready: ${
        (err as Error).message
      }\nstderr:\n${server.stderr.text}`,
    );
  }
  return server;
}

/** Resident memory of a process in bytes (Linux /proc). */
export function rssBytes(pid: number): number {
  const status = Deno.readTextFileSync(`/proc/${pid}/status`);
  return Number(status.match(/^VmRSS:\s+(\d+) kB/m)![1]) * 1024;
}

/** The Deno process behind a wrapper such as prlimit is the same pid (it
 * execs), so this is the pid to measure. */
export const isLinux = Deno.build.os === "linux";

// ---------------------------------------------------------------------------
// Sockets

export interface Family {
  name: "IPv4" | "IPv6";
  host: string;
  /** Why tests over this family cannot run here, or "" when they can. */
  missing: string;
}

function ipv6Missing(): string {
  try {
    Deno.listen({ hostname: "::1", port: 0 }).close();
    return "";
  } catch (err) {
    return `no IPv6 loopback on this machine (${(err as Error).message})`;
  }
}

export const IPV4: Family = { name: "IPv4", host: "127.0.0.1", missing: "" };
export const IPV6: Family = {
  name: "IPv6",
  host: "::1",
  missing: ipv6Missing(),
};
export const FAMILIES = [IPV4, IPV6];

/** Registers one test per address family; a family this machine lacks is
 * registered as ignored, with the reason in its name so that it shows. */
export function testBothFamilies(
  name: string,
  fn: (family: Family) => Promise<void>,
): void {
  for (const family of FAMILIES) {
    Deno.test({
      name: family.missing
        ? `${name} [${family.name}] (ignored: ${family.missing})`
        : `${name} [${family.name}]`,
      ignore: family.missing !== "",
      fn: () => fn(family),
    });
  }
}

export function connect(
  family: Family,
  port: number,
): Promise<Deno.TcpConn> {
  return within(
    Deno.connect({ hostname: family.host, port }),
    `connecting to ${family.host}:${port}`,
  );
}

/** Reads exactly `length` bytes, however they are split; fails on an early
 * end of stream or after `ms`. */
export async function readExactly(
  conn: Deno.Conn,
  length: number,
  ms = WAIT_MS,
): Promise<Uint8Array> {
  const result = new Uint8Array(length);
  await within(readFull(conn, result), `reading ${length} bytes`, ms).catch(
    (err) => {
      closeQuietly(conn); // ends the pending read, for the op sanitizer
      throw err;
    },
  );
  return result;
}

/** Reads until the peer closes; returns everything. */
export async function readToEnd(
  conn: Deno.Conn,
  ms = WAIT_MS,
): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  const buffer = new Uint8Array(64 * 1024);
  await within(
    (async () => {
      for (;;) {
        const n = await conn.read(buffer);
        if (n === null) return;
        chunks.push(buffer.slice(0, n));
      }
    })(),
    "reading until the peer closes",
    ms,
  ).catch((err) => {
    closeQuietly(conn);
    throw err;
  });
  return concat(chunks);
}

/** True if `promise` is still unsettled after `ms`: how a test shows that
 * something does NOT happen (a client that must wait). Only the absence is
 * timed; a slow machine cannot turn it into a false failure. */
export async function stillPending(
  promise: Promise<unknown>,
  ms: number,
): Promise<boolean> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const pending = Symbol("pending");
  const result = await Promise.race([
    promise.then(() => null, () => null),
    new Promise((resolve) => timer = setTimeout(() => resolve(pending), ms)),
  ]);
  clearTimeout(timer);
  return result === pending;
}

export function concat(chunks: Uint8Array[]): Uint8Array {
  const total = chunks.reduce((sum, c) => sum + c.length, 0);
  const out = new Uint8Array(total);
  let at = 0;
  for (const chunk of chunks) {
    out.set(chunk, at);
    at += chunk.length;
  }
  return out;
}

/** Bytes that are not text: all 256 values, invalid UTF-8, NULs. */
export function awkwardBytes(): Uint8Array {
  const all = Uint8Array.from({ length: 256 }, (_, i) => i);
  const invalid = Uint8Array.of(0xff, 0xfe, 0xc3, 0x28, 0xe2, 0x82, 0, 0, 0x80);
  return concat([all, invalid, all.reverse()]);
}

/** Deterministic pseudo-random bytes, so a failure can be reproduced. */
export function patternBytes(length: number, seed = 1): Uint8Array {
  const out = new Uint8Array(length);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

/** Sends `payload` while reading the echo at the same time (a large payload
 * would otherwise deadlock: both sides' buffers full), and returns the echo. */
export async function echoRoundTrip(
  conn: Deno.Conn,
  payload: Uint8Array,
  ms = WAIT_MS,
): Promise<Uint8Array> {
  const [, echo] = await Promise.all([
    writeAll(conn, payload),
    readExactly(conn, payload.length, ms),
  ]);
  return echo;
}

/** Describes where two byte arrays first differ, for assertion messages. */
export function firstDifference(a: Uint8Array, b: Uint8Array): string {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    if (a[i] !== b[i]) return `byte ${i}: ${a[i]} vs ${b[i]}`;
  }
  return `lengths ${a.length} vs ${b.length}`;
}

/** Copies one root script alone into a fresh empty folder. */
export async function copyAlone(script: string): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "deno-sockets-copy-" });
  await Deno.copyFile(new URL(script, ROOT), `${dir}/${script}`);
  return dir;
}

/** Connects, sends `payload` and waits for its echo (none when null), then
 * resets the connection: a real RST (SO_LINGER 0), the way a crashed or
 * killed client ends. Deno's own close() sends a polite FIN. */
export async function resetAfterEcho(
  family: Family,
  port: number,
  payload: Uint8Array | null,
): Promise<void> {
  const socket = net.connect({ host: family.host, port });
  socket.on("error", () => {}); // the reset itself is not a test failure
  await within(
    new Promise<void>((resolve, reject) => {
      socket.once("error", reject);
      socket.once("connect", () => {
        if (payload === null) return resolve();
        let got = 0;
        socket.on("data", (chunk: Uint8Array) => {
          got += chunk.length;
          if (got >= payload.length) resolve();
        });
        socket.write(payload);
      });
    }),
    "a node:net client to connect (and get its echo)",
  );
  const closed = new Promise((resolve) => socket.once("close", resolve));
  socket.resetAndDestroy();
  await within(closed, "the reset client to close");
}

/** `text` with regular-expression characters escaped, to match it exactly. */
export function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

/** An address as the servers print it: "127.0.0.1:53422", "[::1]:53422". */
export function shownAddress(addr: Deno.NetAddr): string {
  const { hostname, port } = addr;
  return hostname.includes(":")
    ? `[${hostname}]:${port}`
    : `${hostname}:${port}`;
}

/** Why `prlimit` cannot be used here, or "" when it can. */
export const prlimitMissing = Deno.build.os !== "linux"
  ? "prlimit needs Linux"
  : await new Deno.Command("prlimit", { args: ["--version"] }).output().then(
    (o) => o.success ? "" : "prlimit fails",
    () => "no prlimit (util-linux)",
  );

/** Sets a running process's soft limit on open files (RLIMIT_NOFILE), the
 * way to run a server out of descriptors at a chosen moment. */
export async function setSoftFileLimit(pid: number, limit: number) {
  const out = await new Deno.Command("prlimit", {
    args: ["--pid", String(pid), `--nofile=${limit}:`],
  }).output();
  if (!out.success) {
    throw new Error(`prlimit failed: ${text(out.stderr)}`);
  }
}

/** The soft descriptor limit that leaves process `pid` exactly `room`
 * free descriptors: its accept() after `room` more clients fails with
 * EMFILE. */
export function limitLeaving(pid: number, room: number): number {
  const open = new Set(
    [...Deno.readDirSync(`/proc/${pid}/fd`)].map((e) => Number(e.name)),
  );
  let limit = 0;
  for (let free = 0; free < room; limit++) if (!open.has(limit)) free++;
  return limit;
}

/** Why script(1) cannot run a command on a pseudo-terminal here, or "". */
export const ptyMissing = Deno.build.os !== "linux"
  ? "script(1) options are util-linux's"
  : await new Deno.Command("script", { args: ["--version"] }).output().then(
    (o) => o.success ? "" : "script fails",
    () => "no script(1) (util-linux)",
  );

/** True if the root script exists (tests of scripts that land later). */
export function scriptExists(script: string): boolean {
  try {
    return Deno.statSync(new URL(script, ROOT)).isFile;
  } catch {
    return false;
  }
}
