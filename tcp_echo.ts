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
 * Sheet: TP5b "Socket Serveur" (seeds/000), §1.2 "Version TCP".
 *
 * @run deno run -N tcp_echo.ts
 * Try it: `nc localhost 7777` in a second terminal, `ss -tnp` in a third;
 * start nc several times and watch the client port change.
 * Siblings: select_echo.ts, worker_echo.ts, udp_echo.ts, client.ts,
 * ok_server.ts.
 *
 * Permissions: `-N` (network) only: it listens and talks to clients.
 */

import { parseArgs } from "node:util";

// ---------------------------------------------------------------------------
// Tunables, each with its reason.

const PROGRAM = "tcp_echo";
/** The sheet's port. The real echo service is port 7, but ports below 1024
 * are reserved to root. */
const DEFAULT_PORT = 7777;
/** All interfaces, IPv6 and IPv4 on one port, like the sheet's `AF_INET6`
 * socket bound to `("", 7777)`. */
const DEFAULT_HOST = "::";
/** The sheet's `listen(1)`: clients that arrive while one is served wait in
 * a queue this short (Linux lets one more than this complete its handshake;
 * later ones wait in SYN retries). Nothing is lost: they are served in turn. */
const BACKLOG = 1;
/** One read buffer for the whole server, since it serves one client at a
 * time. Bigger reads mean fewer trips through the event loop. Measured bulk
 * echo on loopback (one client streaming, median of 3 runs): the sheet's
 * 1500 bytes 0.15 GB/s, 16 KiB 1.1 GB/s, 64 KiB 2.5 GB/s, 256 KiB 2.9 GB/s.
 * A concurrent server would pay this memory per client; this one pays it
 * once. */
const BUFFER_SIZE = 256 * 1024;
/** When accept() fails for a reason other than a vanished client (typically
 * EMFILE: out of file descriptors), wait before trying again, doubling the
 * wait up to the maximum, so a full descriptor table does not spin the CPU. */
const ACCEPT_RETRY_MIN_MS = 10;
const ACCEPT_RETRY_MAX_MS = 1000;
/** On Ctrl-C or SIGTERM, clients are closed at once; if anything still holds
 * the process after this long, it exits anyway. */
const SHUTDOWN_GRACE_MS = 2000;

const USAGE = `Usage: deno run -N ${PROGRAM}.ts [options]

Sequential TCP echo server: sends back every byte it receives, serving one
client at a time (the next waits in the backlog until the first leaves).

Options:
  --port N     port to listen on, 0 lets the system choose (default ${DEFAULT_PORT})
  --host H     address to listen on (default ${DEFAULT_HOST}: all interfaces,
               IPv4 and IPv6)
  --quiet      no line per client (the ready line and summary remain)
  -h, --help   show this help and exit

Try it: nc localhost ${DEFAULT_PORT}`;

// ---------------------------------------------------------------------------
// Options

interface Options {
  host: string;
  port: number;
  quiet: boolean;
}

/** A mistake on the command line: reported with the usage, exit code 2. */
class UsageError extends Error {}

/** Parses the command line; returns null when help was asked for. */
function parseOptions(args: string[]): Options | null {
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
      },
    });
  } catch (err) {
    // parseArgs names the unknown option or missing value well; its first
    // line is enough.
    throw new UsageError(errorMessage(err).split("\n")[0]);
  }
  const { values } = parsed;
  if (values.help) return null;
  return {
    host: values.host,
    port: parsePort(values.port),
    quiet: values.quiet,
  };
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

// ---------------------------------------------------------------------------
// Output: one line per event, prefixed by the program's name.

let quiet = false;

/** Per-client lines, silenced by --quiet. */
function log(line: string): void {
  if (!quiet) console.log(`${PROGRAM}: ${line}`);
}

/** Lines that always appear: the ready line and the summary. */
function announce(line: string): void {
  console.log(`${PROGRAM}: ${line}`);
}

/** Problems, on stderr. */
function warn(line: string): void {
  console.error(`${PROGRAM}: ${line}`);
}

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
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

/** Opens the listening socket(s). With the default host, one socket on "::"
 * receives IPv4 and IPv6 (Linux and macOS are dual-stack by default). Where
 * "::" is IPv6-only (Windows, or Linux with net.ipv6.bindv6only=1), a second
 * socket on 0.0.0.0 serves IPv4 on the same port; where IPv6 is missing
 * altogether, 0.0.0.0 alone serves. */
function listen(options: Options): Deno.TcpListener[] {
  const { host, port } = options;
  let first: Deno.TcpListener;
  try {
    first = Deno.listen({ hostname: host, port, tcpBacklog: BACKLOG });
  } catch (err) {
    if (host !== DEFAULT_HOST || !isNoIPv6(err)) throw err;
    return [Deno.listen({ hostname: "0.0.0.0", port, tcpBacklog: BACKLOG })];
  }
  if (host !== DEFAULT_HOST) return [first];
  const { port: boundPort } = first.addr;
  try {
    // On a dual-stack system "::" already holds the IPv4 port too, so this
    // fails with AddrInUse, which is the answer we hope for.
    const second = Deno.listen({
      hostname: "0.0.0.0",
      port: boundPort,
      tcpBacklog: BACKLOG,
    });
    return [first, second];
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
function describeListenError(err: unknown, options: Options): string {
  const where = `${
    options.host.includes(":") ? `[${options.host}]` : options.host
  }:${options.port}`;
  if (err instanceof Deno.errors.NotCapable) {
    return `Network permission missing: run it as: deno run -N ${PROGRAM}.ts`;
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
// Serving one client

const stats = { clients: 0, bytes: 0 };
/** The connections being served, so that shutdown can close them. */
const clients = new Set<Deno.TcpConn>();

/** Echoes one client until it closes, then closes our side. */
async function serveClient(conn: Deno.TcpConn, buffer: Uint8Array) {
  const peer = formatAddress(conn.remoteAddr);
  clients.add(conn);
  stats.clients++;
  log(`${peer} connected`);
  let echoed = 0;
  let ending = "left";
  try {
    // Deno leaves Nagle's algorithm on; with it, an echo split over two
    // reads waits up to 40 ms for the client's delayed ACK before its
    // second part leaves. An echo server wants every byte out at once.
    conn.setNoDelay(true);
    for (;;) {
      const n = await conn.read(buffer);
      // null: the client closed, or half-closed, its sending side. Every
      // byte it sent has been echoed by now, so closing is safe.
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
    clients.delete(conn);
    closeQuietly(conn);
  }
  stats.bytes += echoed;
  log(`${peer} ${ending} after ${echoed} bytes echoed`);
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

// ---------------------------------------------------------------------------
// The accept loop

/** Accepts clients until the listener is closed. `for await (const conn of
 * listener)` is not enough for a server: it ends for good on the first
 * error, and accept() does fail while the server is healthy: when a client
 * resets before we accept it, or when the process is out of file
 * descriptors. */
async function acceptLoop(listener: Deno.TcpListener): Promise<void> {
  const buffer = new Uint8Array(BUFFER_SIZE);
  let retryMs = 0;
  for (;;) {
    let conn: Deno.TcpConn;
    try {
      conn = await listener.accept();
    } catch (err) {
      if (err instanceof Deno.errors.BadResource) return; // closed: shutdown
      if (isClientGone(err)) continue; // it left before we met it
      retryMs = Math.min(
        Math.max(retryMs * 2, ACCEPT_RETRY_MIN_MS),
        ACCEPT_RETRY_MAX_MS,
      );
      if (retryMs === ACCEPT_RETRY_MIN_MS) {
        warn(`cannot accept clients: ${errorMessage(err)}; retrying`);
      }
      await sleep(retryMs);
      continue;
    }
    if (retryMs > 0) warn("accepting clients again");
    retryMs = 0;
    // THE line that makes this server sequential: we wait for this client
    // to leave before calling accept() again, so the next client waits in
    // the backlog. (select_echo.ts does not wait here.)
    await serveClient(conn, buffer);
  }
}

/** Errors of accept() that only mean the client vanished in the backlog. */
function isClientGone(err: unknown): boolean {
  return err instanceof Deno.errors.NotConnected ||
    err instanceof Deno.errors.ConnectionReset ||
    err instanceof Deno.errors.ConnectionAborted;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

// ---------------------------------------------------------------------------
// Shutdown

/** On Ctrl-C (SIGINT) or SIGTERM: close the listeners, so the accept loops
 * end, and the clients, so their reads end. main() then prints the summary.
 * Must be installed before the ready line: a parent that signals as soon as
 * it reads that line must find the handler in place. */
function installShutdown(listeners: Deno.TcpListener[]): { signal: string } {
  const state = { signal: "" };
  const stop = (signal: string) => {
    if (state.signal) return; // a second Ctrl-C changes nothing
    state.signal = signal;
    for (const listener of listeners) closeQuietly(listener);
    for (const conn of clients) closeQuietly(conn);
    // Whatever still holds the process (a retry timer) must not keep it.
    const timer = setTimeout(() => {
      warn(`still busy ${SHUTDOWN_GRACE_MS} ms after ${signal}; exiting`);
      Deno.exit(0);
    }, SHUTDOWN_GRACE_MS);
    Deno.unrefTimer(timer);
  };
  Deno.addSignalListener("SIGINT", () => stop("SIGINT"));
  // Windows has no SIGTERM; Ctrl-C is its only signal here.
  if (Deno.build.os !== "windows") {
    Deno.addSignalListener("SIGTERM", () => stop("SIGTERM"));
  }
  return state;
}

// ---------------------------------------------------------------------------

async function main(args: string[]): Promise<number> {
  let options: Options | null;
  try {
    options = parseOptions(args);
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    warn(err.message);
    console.error(USAGE);
    return 2;
  }
  if (options === null) {
    console.log(USAGE);
    return 0;
  }
  quiet = options.quiet;

  let listeners: Deno.TcpListener[];
  try {
    listeners = listen(options);
  } catch (err) {
    warn(describeListenError(err, options));
    return 1;
  }
  const shutdown = installShutdown(listeners);
  announce(`listening on ${describeListeners(listeners)}`);

  await Promise.all(listeners.map(acceptLoop));

  announce(
    `stopped by ${
      shutdown.signal || "closing"
    }: ${stats.clients} clients, ${stats.bytes} bytes echoed`,
  );
  return 0;
}

if (import.meta.main) {
  Deno.exit(await main(Deno.args));
}
