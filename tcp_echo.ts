#!/usr/bin/env -S deno run -N
/**
 * # tcp_echo.ts — sequential TCP echo server: one client at a time
 *
 * Sends back every byte each client sends, until that client closes. It
 * serves ONE client at a time, on purpose: while one client is served, the
 * next one waits in the kernel's backlog queue (the sheet's `listen(1)`) and
 * is served as soon as the first one leaves. In the design space this is the
 * synchronous server; select_echo.ts serves many clients from one thread (an
 * event loop) and worker_echo.ts from several threads.
 *
 * Sheet: TP5b "Socket Serveur" (seeds/000), §1.2 "Version TCP". The sheet's
 * Python, line for line:
 *   s = socket.socket(AF_INET6, SOCK_STREAM)  ↔  Deno.listen({ hostname: "::",
 *   s.bind(("", 7777)); s.listen(1)                port, tcpBacklog: BACKLOG })
 *                                                  (one call; see listen())
 *   listen(1)                                 ↔  BACKLOG = 1
 *   sc, addr = s.accept()                     ↔  conn = await listener.accept()
 *   data = sc.recv(1500)                      ↔  n = await conn.read(buffer)
 *   if len(data) == 0: break                  ↔  if (n === null) break
 *   sc.send(data)                             ↔  await writeAll(conn, bytes)
 *   sc.close()                                ↔  closeQuietly(conn)
 *   the inner loop finishes before accept()   ↔  `await serveClient(…)`, THE
 *                                                  line of acceptLoop()
 * The echo service's own port is 7 (TCP and UDP); ports below 1024 need
 * root, so the sheet, and this script, use 7777.
 *
 * @run deno run -N tcp_echo.ts
 * Try it: `nc localhost 7777` in a second terminal, `ss -tnp` in a third;
 * start nc several times and watch the client port change. Or `chmod +x
 * tcp_echo.ts` once, then `./tcp_echo.ts`.
 * Siblings: select_echo.ts, worker_echo.ts, udp_echo.ts, client.ts,
 * ok_server.ts, check.ts.
 *
 * Permissions: `-N` (network) only: it listens and talks to clients.
 *
 * Reading order: the lesson (serveClient and acceptLoop), then main(), then
 * the command line, then the skeleton that every server of the kit shares
 * (output, listening, accepting without dying, shutdown).
 */

import { parseArgs } from "node:util";

const PROGRAM = "tcp_echo";
/** How users run it; messages that say how to run it repeat it. */
const RUN_LINE = `deno run -N ${PROGRAM}.ts`;
/** The sheet's port (the real echo service is port 7, reserved to root). */
const DEFAULT_PORT = 7777;
/** All interfaces, IPv6 and IPv4 on one port, like the sheet's `AF_INET6`
 * socket bound to `("", 7777)`. */
const DEFAULT_HOST = "::";

// ===========================================================================
// The lesson: serve one client, then the next
// ===========================================================================

/** The sheet's `listen(1)`: clients that arrive while one is served wait in
 * a queue this short (Linux lets one more than this complete its handshake;
 * later ones wait in SYN retries). Nothing is lost: they are served in turn. */
const BACKLOG = 1;
/** The sheet reads 1500 bytes at a time. One client at a time means one
 * buffer for the whole server, so it can be large: bigger reads mean fewer
 * trips through the event loop (bench/RESULTS.md, "read size"). */
const BUFFER_SIZE = 256 * 1024;

/** Clients served and bytes echoed, for the summary line. */
const stats = { clients: 0, bytes: 0 };

/** The sheet's accept loop. */
async function acceptLoop(listener: Deno.TcpListener): Promise<void> {
  const buffer = new Uint8Array(BUFFER_SIZE);
  for (;;) {
    let conn: Deno.TcpConn;
    try {
      conn = await listener.accept(); // the sheet's accept(): wait for a client
    } catch (err) {
      if (err instanceof Deno.errors.BadResource) return; // closed: shutdown
      await acceptFailed(err); // a vanished client, or no descriptor left
      continue;
    }
    // THE line that makes this server sequential: we wait for this client
    // to leave before calling accept() again, so the next client waits in
    // the backlog. select_echo.ts drops this `await`, and serves everyone.
    await serveClient(conn, buffer);
  }
}

/** The sheet's inner loop: echo one client until it closes, then close our
 * side. */
async function serveClient(conn: Deno.TcpConn, buffer: Uint8Array) {
  const peer = welcome(conn);
  stats.clients++;
  let echoed = 0;
  let ending = "left";
  try {
    // Deno leaves Nagle's algorithm on; with it, an echo split over two
    // reads waits up to 40 ms for the client's delayed ACK before its
    // second part leaves. An echo server wants every byte out at once.
    conn.setNoDelay(true);
    for (;;) {
      const n = await conn.read(buffer);
      // null: the client closed, or half-closed, its sending side (the
      // sheet's zero-length recv). Every byte it sent has been echoed by
      // now, so closing is safe.
      if (n === null) break;
      // Awaiting the write is what bounds memory: a client that sends but
      // never reads fills the kernel buffers, then this await waits, and we
      // stop reading from it. Nothing piles up in our process.
      await writeAll(conn, buffer.subarray(0, n));
      echoed += n;
    }
  } catch (err) {
    ending = describeDisconnect(err, peer);
  } finally {
    forget(conn);
    closeQuietly(conn);
  }
  stats.bytes += echoed;
  log(`${peer} ${ending} after ${plural(echoed, "byte")} echoed`);
}

// ===========================================================================
// main: listen, serve until Ctrl-C, print a summary
// ===========================================================================

async function main(args: string[]): Promise<number> {
  const options = parseOptions(args);
  if (typeof options === "number") return options; // --help, or a mistake

  let listeners: Deno.TcpListener[];
  try {
    listeners = listen(options);
  } catch (err) {
    warn(describeListenError(err, options));
    return 1;
  }
  const shutdown = installShutdown(() => closeAll(listeners));
  announce(`listening on ${describeListeners(listeners)}`);

  await Promise.all(listeners.map(acceptLoop));
  // The accept loops are over; wait for the clients' last lines.
  await clientsGone();

  announce(
    `stopped by ${shutdown.reason || "closing"}: ${
      plural(stats.clients, "client")
    }, ${plural(stats.bytes, "byte")} echoed`,
  );
  return 0;
}

// ===========================================================================
// The command line
// ===========================================================================

type Options = CommonOptions;

/** This server's own options, besides --port, --host, --quiet, --help. */
const OPTIONS = {};

const USAGE = `Usage: ${howToRun()} [options]

Sequential TCP echo server: sends back every byte it receives, serving one
client at a time (the next waits in the backlog until the first leaves).

Options:
  --port N     port to listen on, 0 lets the system choose (default ${DEFAULT_PORT})
  --host H     address to listen on (default ${DEFAULT_HOST}: all interfaces,
               IPv4 and IPv6)
  --quiet      no line per client (the ready line and summary remain)
  -h, --help   show this help and exit

Try it: nc localhost ${DEFAULT_PORT}`;

/** Returns the options, or the exit code when there is nothing to serve. */
export function parseOptions(args: string[]): Options | number {
  return readCommandLine(args, (common) => common);
}

// The skeleton's pure pieces, for tests in-process (exporting adds no import).
export { describeDisconnect, formatAddress, parsePort, plural, UsageError };

// ==== SKELETON BEGIN =======================================================
// What every TCP server of this kit needs around its lesson: the command
// line, the output, listening, accepting without dying, the list of
// clients, and shutdown. These lines are the same, word for word, at the end
// of tcp_echo.ts, select_echo.ts, worker_echo.ts and ok_server.ts (a test
// fails when they drift), so that `diff tcp_echo.ts select_echo.ts` shows
// only what changes the concurrency model. What differs between the servers
// comes from each script's constants above: PROGRAM, RUN_LINE, DEFAULT_PORT,
// BACKLOG, OPTIONS and USAGE.

// ---------------------------------------------------------------------------
// Command line

/** The options every server takes; each script adds its own (OPTIONS). */
interface CommonOptions {
  host: string;
  port: number;
  quiet: boolean;
}

/** A mistake on the command line: reported with the usage, exit code 2. */
class UsageError extends Error {}

/** Reads the command line: the common options, and the script's own ones
 * that `build` turns into its Options (it may throw UsageError). Returns an
 * exit code instead when there is nothing to serve: 0 after --help (the
 * usage on stdout), 2 after a mistake (one line, then the usage, on
 * stderr). */
function readCommandLine<T>(
  args: string[],
  build: (common: CommonOptions, values: Record<string, unknown>) => T,
): T | number {
  try {
    let parsed;
    try {
      parsed = parseArgs({
        args,
        strict: true,
        allowPositionals: false,
        options: {
          port: { type: "string", default: String(DEFAULT_PORT) },
          host: { type: "string", default: DEFAULT_HOST },
          quiet: { type: "boolean", default: false },
          help: { type: "boolean", short: "h", default: false },
          ...OPTIONS,
        },
      });
    } catch (err) {
      // parseArgs names the option and explains, sometimes over several
      // lines ("--port -5": did you mean --port=-5?): keep them, on one.
      throw new UsageError(errorMessage(err).replaceAll("\n", " "));
    }
    const values: Record<string, unknown> = parsed.values;
    if (values.help === true) {
      console.log(USAGE);
      return 0;
    }
    output.quiet = values.quiet === true;
    const common = {
      host: String(values.host),
      port: parsePort(String(values.port)),
      quiet: output.quiet,
    };
    return build(common, values);
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    warn(err.message);
    console.error(USAGE);
    return 2;
  }
}

/** A port is a whole number from 0 to 65535; "7777abc" or "1e3" is not. */
function parsePort(text: string): number {
  const port = /^\d{1,5}$/.test(text) ? Number(text) : NaN;
  if (!(port >= 0 && port <= 65535)) {
    throw new UsageError(
      `Invalid port "${text}": expected a number from 0 to 65535`,
    );
  }
  return port;
}

/** How to start this program, for messages that say how: the `deno run`
 * line, or inside a binary made by `deno compile`, the binary's own name. */
function howToRun(): string {
  if (!Deno.build.standalone) return RUN_LINE;
  const path = Deno.execPath();
  return path.slice(
    Math.max(path.lastIndexOf("/"), path.lastIndexOf("\\")) + 1,
  );
}

// ---------------------------------------------------------------------------
// Output: one line per event, prefixed by the program's name.

/** `quiet`: --quiet was given. `threadTag`: "[2] " in thread 2 of
 * worker_echo.ts, "" elsewhere: which thread wrote the line (console.log
 * writes a whole line at once, so threads' lines never mix). */
const output = { quiet: false, threadTag: "" };

/** Per-client lines, silenced by --quiet. */
function log(line: string): void {
  if (!output.quiet) console.log(`${PROGRAM}: ${output.threadTag}${line}`);
}

/** Lines that always appear: the ready line and the summary. */
function announce(line: string): void {
  console.log(`${PROGRAM}: ${line}`);
}

/** Problems, on stderr. */
function warn(line: string): void {
  console.error(`${PROGRAM}: ${output.threadTag}${line}`);
}

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** "1 client", "2 clients". */
function plural(count: number, noun: string): string {
  return `${count} ${noun}${count === 1 ? "" : "s"}`;
}

/** "127.0.0.1:53422" or "[::1]:53422". An IPv4 client of a dual-stack
 * socket appears as "::ffff:127.0.0.1"; we show it as the IPv4 address it
 * is. */
function formatAddress(addr: Deno.Addr): string {
  if (addr.transport !== "tcp" && addr.transport !== "udp") {
    return addr.transport;
  }
  let host = addr.hostname;
  if (host.startsWith("::ffff:") && host.includes(".")) host = host.slice(7);
  return host.includes(":") ? `[${host}]:${addr.port}` : `${host}:${addr.port}`;
}

// ---------------------------------------------------------------------------
// Listening

/** Opens the listening socket(s): the sheet's socket(), bind() and
 * listen(). With the default host, one socket on "::" receives IPv4 and
 * IPv6 (Linux and macOS are dual-stack by default). Where "::" is IPv6-only
 * (Windows, or Linux with net.ipv6.bindv6only=1), a second socket on
 * 0.0.0.0 serves IPv4 on the same port; where IPv6 is missing altogether,
 * 0.0.0.0 alone serves. */
function listen(options: CommonOptions): Deno.TcpListener[] {
  const { host, port } = options;
  let first: Deno.TcpListener;
  try {
    first = Deno.listen({ hostname: host, port, tcpBacklog: BACKLOG });
  } catch (err) {
    if (host !== DEFAULT_HOST || !isNoIPv6(err)) throw err;
    return [Deno.listen({ hostname: "0.0.0.0", port, tcpBacklog: BACKLOG })];
  }
  if (host !== DEFAULT_HOST) return [first];
  const probe = { hostname: "0.0.0.0", port: first.addr.port };
  // Run without -N, Deno asks the user before each new address: never ask
  // about this probe, which the user did not choose. Without the permission
  // we trust the dual-stack default of Linux and macOS.
  const allowed = Deno.permissions.querySync({
    name: "net",
    host: `${probe.hostname}:${probe.port}`,
  });
  if (allowed.state !== "granted") return [first];
  try {
    // On a dual-stack system "::" already holds the IPv4 port too, so this
    // fails with AddrInUse, which is the answer we hope for.
    return [first, Deno.listen({ ...probe, tcpBacklog: BACKLOG })];
  } catch (err) {
    if (err instanceof Deno.errors.AddrInUse) return [first];
    first.close();
    throw err;
  }
}

/** True when listening on "::" failed because this machine has no IPv6. */
function isNoIPv6(err: unknown): boolean {
  return err instanceof Deno.errors.AddrNotAvailable ||
    /address family not supported/i.test(errorMessage(err));
}

/** Turns a failure to listen into one line telling the user what to do. */
function describeListenError(err: unknown, options: CommonOptions): string {
  const where = `${
    options.host.includes(":") ? `[${options.host}]` : options.host
  }:${options.port}`;
  if (err instanceof Deno.errors.NotCapable) {
    return `Network permission missing: run it as: ${howToRun()}`;
  }
  if (err instanceof Deno.errors.AddrInUse) {
    return `Cannot listen on ${where}: address already in use; stop the other server (see: ss -tlnp) or choose another --port`;
  }
  if (err instanceof Deno.errors.PermissionDenied) {
    return `Cannot listen on ${where}: permission denied; ports below 1024 need root, choose --port ${DEFAULT_PORT}`;
  }
  if (err instanceof Deno.errors.AddrNotAvailable) {
    return `Cannot listen on ${where}: this machine has no such address; check --host`;
  }
  return `Cannot listen on ${where}: ${errorMessage(err)}`;
}

/** The ready line's address part: "[::]:7777 (IPv4 and IPv6)" when one
 * dual-stack socket serves both families. */
function describeListeners(listeners: Deno.TcpListener[]): string {
  const addresses = listeners.map((l) => formatAddress(l.addr)).join(" and ");
  const dualStack = listeners.length === 1 &&
    listeners[0].addr.hostname === "::";
  return dualStack ? `${addresses} (IPv4 and IPv6)` : addresses;
}

// ---------------------------------------------------------------------------
// Accepting without dying

/** accept() fails while the server is healthy: when a client resets before
 * we accept it, or when the process is out of file descriptors (EMFILE).
 * That is why `for await (const conn of listener)`, which ends for good on
 * the first error, is not a server loop. The accept loop calls this on each
 * failure but a closed listener: a vanished client is skipped; otherwise it
 * waits before the next try, doubling the wait up to the maximum, so that a
 * full descriptor table does not spin the CPU. */
async function acceptFailed(err: unknown): Promise<void> {
  if (isClientGone(err)) return; // it left before we met it
  if (isListenerBroken(err)) {
    throw new Error(`cannot accept clients: ${errorMessage(err)}`);
  }
  acceptRetryMs = Math.min(
    Math.max(acceptRetryMs * 2, ACCEPT_RETRY_MIN_MS),
    ACCEPT_RETRY_MAX_MS,
  );
  if (acceptRetryMs === ACCEPT_RETRY_MIN_MS) {
    warn(`cannot accept clients: ${errorMessage(err)}; retrying`);
  }
  await sleep(acceptRetryMs);
}

/** The current wait between failed accepts; 0 while accept() works. */
let acceptRetryMs = 0;
const ACCEPT_RETRY_MIN_MS = 10;
const ACCEPT_RETRY_MAX_MS = 1000;

/** Errors of accept() that only mean the client vanished in the backlog. */
function isClientGone(err: unknown): boolean {
  return err instanceof Deno.errors.NotConnected ||
    err instanceof Deno.errors.ConnectionReset ||
    err instanceof Deno.errors.ConnectionAborted;
}

/** accept() on a socket that no longer listens fails with EINVAL, and will
 * for ever: what happens when the listening socket is destroyed from outside
 * (`ss -K` does it). No retry can help. */
function isListenerBroken(err: unknown): boolean {
  return (err as { code?: string }).code === "EINVAL";
}

// ---------------------------------------------------------------------------
// The clients

/** Every client being served (the sheet's list of client sockets), with the
 * time we last heard from it; shutdown closes them all. */
const clients = new Map<Deno.TcpConn, number>();

/** A client arrives: list it and say so. Returns how to name it in logs. */
function welcome(conn: Deno.TcpConn): string {
  if (acceptRetryMs > 0) {
    acceptRetryMs = 0;
    warn("accepting clients again");
  }
  const peer = formatAddress(conn.remoteAddr);
  clients.set(conn, Date.now());
  log(`${peer} connected`);
  return peer;
}

/** Removes a client from the list; the last one gone wakes main() if it is
 * waiting to print the summary. */
function forget(conn: Deno.TcpConn): void {
  clients.delete(conn);
  if (clients.size === 0) lastClientGone?.();
}

let lastClientGone: (() => void) | undefined;

/** Resolves once every client has been forgotten and has logged its line
 * (which serveClient does right after forget(), in the same step). */
function clientsGone(): Promise<void> {
  if (clients.size === 0) return Promise.resolve();
  return new Promise((resolve) => lastClientGone = resolve);
}

/** write() may take only part of the bytes; loop until all are sent. */
async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  while (bytes.length > 0) {
    const n = await conn.write(bytes);
    bytes = bytes.subarray(n);
  }
}

/** Expected ways for a client to go get a short word; anything else is
 * worth a line on stderr, with the peer. */
function describeDisconnect(err: unknown, peer: string): string {
  if (err instanceof Deno.errors.ConnectionReset) return "reset the connection";
  if (err instanceof Deno.errors.BrokenPipe) return "stopped reading and left";
  if (err instanceof Deno.errors.BadResource) return "was closed at shutdown";
  if (err instanceof Deno.errors.Interrupted) return "was closed at shutdown";
  warn(`${peer}: ${errorMessage(err)}`);
  return "failed";
}

function closeQuietly(resource: { close(): void }): void {
  try {
    resource.close();
  } catch {
    // Already closed (by shutdown, or by the peer's reset): nothing to do.
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

// ---------------------------------------------------------------------------
// Shutdown

/** Stops the server, once: on Ctrl-C (SIGINT), on SIGTERM, or when the
 * script itself decides to (ok_server.ts on "fin"). Set by
 * installShutdown(). */
let stopServer: (reason: string) => void = () => {};

/** Makes Ctrl-C and SIGTERM call `stop`, which closes what keeps the server
 * running; main() then prints the summary with the reason it stopped. Must
 * be installed before the ready line: a parent that signals as soon as it
 * reads that line must find the handler in place. */
function installShutdown(stop: () => void): { reason: string } {
  const state = { reason: "" };
  stopServer = (reason: string) => {
    if (state.reason) return; // a second Ctrl-C changes nothing
    state.reason = reason;
    stop();
    // Whatever still holds the process (a retry timer) must not keep it.
    const timer = setTimeout(() => {
      warn(`still busy ${SHUTDOWN_GRACE_MS} ms after ${reason}; exiting`);
      Deno.exit(0);
    }, SHUTDOWN_GRACE_MS);
    Deno.unrefTimer(timer);
  };
  Deno.addSignalListener("SIGINT", () => stopServer("SIGINT"));
  // Windows has no SIGTERM; Ctrl-C is its only signal there.
  if (Deno.build.os !== "windows") {
    Deno.addSignalListener("SIGTERM", () => stopServer("SIGTERM"));
  }
  return state;
}

/** On shutdown clients are closed at once; if anything still holds the
 * process after this long, it exits anyway. */
const SHUTDOWN_GRACE_MS = 2000;

/** Closes the listeners, so the accept loops end, and every client, so
 * their reads end. */
function closeAll(listeners: Deno.TcpListener[]): void {
  for (const listener of listeners) closeQuietly(listener);
  for (const conn of clients.keys()) closeQuietly(conn);
}

/** Runs main() and exits with its code. Every error a user can cause is
 * handled where it happens; anything else still ends as one line on stderr
 * and exit code 1, never a stack trace. */
async function run(main: (args: string[]) => Promise<number>): Promise<void> {
  let code: number;
  try {
    code = await main(Deno.args);
  } catch (err) {
    warn(errorMessage(err));
    code = 1;
  }
  Deno.exit(code);
}

// ==== SKELETON END =========================================================

if (import.meta.main) await run(main);
