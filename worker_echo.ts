#!/usr/bin/env -S deno run -N --allow-read=worker_echo.ts --unstable-net
/**
 * # worker_echo.ts — TCP echo server on several threads (Web Workers)
 *
 * Sends back every byte each client sends, until that client closes. It
 * serves many clients at once on SEVERAL threads: each thread is a whole
 * select_echo.ts (one event loop, many clients), and the kernel shares the
 * arriving clients among them. In the design space this is the threaded
 * server, after tcp_echo.ts (one client at a time) and select_echo.ts (one
 * thread, many clients); it uses every CPU, where select_echo.ts uses one.
 *
 * The sheet starts one thread per client and hands it the client's socket.
 * Deno cannot hand a socket to another thread (a Web Worker shares no
 * memory and no sockets with its parent), so this server turns the idea
 * around: N threads, started once, each ACCEPTS on its own listening socket,
 * all on the same port. The `reusePort` option (SO_REUSEPORT) lets several
 * sockets listen on one port, and Linux spreads the arriving clients over
 * them. The threads share nothing else, so there is nothing to lock: the
 * sheet's "problèmes de synchronisation" cannot arise. The main thread only
 * starts the threads, replaces one that dies, and stops them on Ctrl-C.
 * Elsewhere (macOS, Windows) a port cannot be shared this way: the server
 * says so and serves with one thread, as select_echo.ts does.
 *
 * Sheet: TP5b "Socket Serveur" (seeds/000), §2.2 "Pour aller plus loin :
 * version thread".
 *
 * @run deno run -N --allow-read=worker_echo.ts --unstable-net worker_echo.ts
 * Try it: `nc localhost 7777` in several terminals at once; each line
 * "[2] 127.0.0.1:53422 connected" names the thread serving that client.
 * `top -H` in another terminal shows the threads.
 * Siblings: tcp_echo.ts, select_echo.ts, udp_echo.ts, client.ts,
 * ok_server.ts.
 *
 * Permissions: `-N` (network): it listens and talks to clients.
 * `--allow-read=worker_echo.ts`: each thread runs this same file, which
 * Deno reads again for it (the path is relative to the current folder, as
 * the script's is: run it from its folder). `--unstable-net` is not a
 * permission: `reusePort` is still marked unstable in Deno and needs it
 * (the deno.json of this project turns it on for every script next to it).
 */

import { parseArgs } from "node:util";

// ---------------------------------------------------------------------------
// Tunables, each with its reason.

const PROGRAM = "worker_echo";
/** How users must run it; repeated in the messages that ask for a flag. */
const RUN_LINE =
  `deno run -N --allow-read=${PROGRAM}.ts --unstable-net ${PROGRAM}.ts`;
/** The sheet's port. The real echo service is port 7, but ports below 1024
 * are reserved to root. */
const DEFAULT_PORT = 7777;
/** All interfaces, IPv6 and IPv4 on one port, like the sheet's `AF_INET6`
 * socket bound to `("", 7777)`. */
const DEFAULT_HOST = "::";
/** Clients arriving together wait in this kernel queue until accept() takes
 * them; accept() is quick here, so a long queue only absorbs bursts (511 is
 * Deno's and Node's default). */
const BACKLOG = 511;
/** --max-clients default, for each thread: enough for the "C10K" problem.
 * 10 000 idle clients cost about 80 MB of RSS here, mostly Deno's own cost
 * per connection (see SMALL_BUFFER_SIZE). A bound turns a flood into clear
 * "refused" lines. Deno raises its soft descriptor limit to the hard one at
 * start (1024 became 20 000 here); where descriptors run out first, accept()
 * fails with EMFILE and the accept loop backs off until some free up. */
const DEFAULT_MAX_CLIENTS = 10_000;
/** A waiting read() holds its buffer, so an idle client costs its buffer.
 * Idle clients wait with this small one (a typed line, or a 64-byte
 * message, fits in one read); a client whose read fills it is sending in
 * bulk, and borrows a large buffer until a read comes back short. Measured
 * at 10 000 idle connections, RSS growth per connection: 62 KB with 64 KiB
 * per client, 9.0 KB with 1 KiB, 8.1 KB with 64 bytes. Most of it is
 * Deno's: after a forced GC, per connection, 0.85 KB of JS heap for the
 * TcpConn, 1.2 KB for its pending read, 0.4 KB for serveClient waiting,
 * and V8 reserving heap ahead of need (heapTotal grew 6.4 KB per
 * connection for 2.8 KB used). A smaller buffer cannot wait instead: a
 * zero-length read returns 0 at once, it does not wait for data. */
const SMALL_BUFFER_SIZE = 128;
/** Bigger reads mean fewer trips through the event loop. tcp_echo.ts
 * measured 64 KiB at 2.5 GB/s and 256 KiB at 2.9 GB/s; here, on a busier
 * machine, one client streaming: 64 KiB 1.1 GB/s, 256 KiB 1.4 GB/s
 * (medians of 3, same run, tcp_echo.ts 1.3 GB/s beside them). */
const LARGE_BUFFER_SIZE = 256 * 1024;
/** At most this many large buffers exist (4 MiB); a bulk client that finds
 * none free keeps its small one, so memory stays bounded however many
 * clients stream at once. */
const LARGE_BUFFER_COUNT = 16;
/** A read whose bytes have already arrived completes without a trip through
 * the event loop: one client streaming in bulk was echoed up to 65 times in
 * a row while nothing else ran (measured). After this many full reads in a
 * row a client waits for the next turn of the loop, so that the others (and
 * accept(), timers, signals) get theirs. Waiting after every echo halved
 * bulk throughput in one measurement (1.1 instead of 2.0 GB/s). A short
 * read ends the burst: in ping-pong no read at all found its bytes already
 * there (0 of 300 000, measured), so each echo already waits for the loop,
 * and an extra wait every 16th echo only lengthened the latency tail. */
const ECHOES_PER_TURN = 16;
/** When accept() fails for a reason other than a vanished client (typically
 * EMFILE: out of file descriptors), wait before trying again, doubling the
 * wait up to the maximum, so a full descriptor table does not spin the CPU. */
const ACCEPT_RETRY_MIN_MS = 10;
const ACCEPT_RETRY_MAX_MS = 1000;
/** On Ctrl-C or SIGTERM, clients are closed at once; if anything still holds
 * the process after this long, it exits anyway. */
const SHUTDOWN_GRACE_MS = 2000;
/** --threads default: one thread per CPU, the most that can run at once.
 * More threads than CPUs only take turns; fewer leave CPUs idle under load. */
const DEFAULT_THREADS = navigator.hardwareConcurrency;
/** Each thread is a whole JavaScript engine (about 12 MB of RSS measured
 * here); a typo such as --threads 80000 must not try to start that many. */
const MAX_THREADS = 256;
/** A thread that dies is replaced after this wait, doubled each time its
 * replacement dies young (before RESTART_STABLE_MS) up to the maximum, so a
 * fault that kills every new thread at once cannot spin the CPU. */
export const RESTART_DELAY_MIN_MS = 100;
export const RESTART_DELAY_MAX_MS = 30_000;
export const RESTART_STABLE_MS = 10_000;

const USAGE = `Usage: ${RUN_LINE} [options]

Threaded TCP echo server: sends back every byte it receives, serving many
clients at once on several threads that share the port.

Options:
  --port N     port to listen on, 0 lets the system choose (default ${DEFAULT_PORT})
  --host H     address to listen on (default ${DEFAULT_HOST}: all interfaces,
               IPv4 and IPv6)
  --threads N  threads accepting and serving clients (default ${DEFAULT_THREADS}:
               one per CPU; ${MAX_THREADS} at most)
  --max-clients N
               clients served at once by each thread; one more is closed at
               once and logged (default ${DEFAULT_MAX_CLIENTS})
  --idle-timeout SECONDS
               close a client silent that long, such as 30 or 0.5
               (default: never)
  --quiet      no line per client (the ready line and summary remain)
  -h, --help   show this help and exit

Try it: nc localhost ${DEFAULT_PORT}`;

// ---------------------------------------------------------------------------
// Options

export interface Options {
  host: string;
  port: number;
  threads: number;
  maxClients: number;
  /** Milliseconds; 0 means never. */
  idleTimeoutMs: number;
  quiet: boolean;
}

/** A mistake on the command line: reported with the usage, exit code 2. */
export class UsageError extends Error {}

/** Parses the command line; returns null when help was asked for. */
export function parseOptions(args: string[]): Options | null {
  let parsed;
  try {
    parsed = parseArgs({
      args,
      strict: true,
      allowPositionals: false,
      options: {
        port: { type: "string", default: String(DEFAULT_PORT) },
        host: { type: "string", default: DEFAULT_HOST },
        threads: { type: "string", default: String(DEFAULT_THREADS) },
        "max-clients": {
          type: "string",
          default: String(DEFAULT_MAX_CLIENTS),
        },
        "idle-timeout": { type: "string", default: "0" },
        quiet: { type: "boolean", default: false },
        help: { type: "boolean", short: "h", default: false },
      },
    });
  } catch (err) {
    // parseArgs names the option and explains, sometimes over several
    // lines ("--port -5": did you mean --port=-5?): keep them, on one.
    throw new UsageError(errorMessage(err).replaceAll("\n", " "));
  }
  const { values } = parsed;
  if (values.help) return null;
  return {
    host: values.host,
    port: parsePort(values.port),
    threads: parseThreads(values.threads),
    maxClients: parseMaxClients(values["max-clients"]),
    idleTimeoutMs: parseSeconds(values["idle-timeout"]) * 1000,
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

/** From one thread (select_echo.ts with extra steps) to MAX_THREADS. */
function parseThreads(text: string): number {
  const threads = /^\d{1,9}$/.test(text) ? Number(text) : NaN;
  if (!(threads >= 1 && threads <= MAX_THREADS)) {
    throw new UsageError(
      `Invalid --threads "${text}": expected a whole number from 1 to ${MAX_THREADS}`,
    );
  }
  return threads;
}

/** At least one client, or the server would refuse everybody. */
function parseMaxClients(text: string): number {
  const max = /^\d{1,9}$/.test(text) ? Number(text) : NaN;
  if (!(max >= 1)) {
    throw new UsageError(
      `Invalid --max-clients "${text}": expected a whole number of at least 1`,
    );
  }
  return max;
}

/** Seconds, decimals allowed ("0.5"); 0 turns the timeout off. */
function parseSeconds(text: string): number {
  const seconds = /^\d{1,9}(\.\d{1,3})?$/.test(text) ? Number(text) : NaN;
  if (!(seconds >= 0)) {
    throw new UsageError(
      `Invalid --idle-timeout "${text}": expected seconds, such as 30 or 0.5 (0: never)`,
    );
  }
  return seconds;
}

// ---------------------------------------------------------------------------
// Output: one line per event, prefixed by the program's name.

let quiet = false;
/** "[2] " in thread 2, "" in the main thread: which thread wrote the line.
 * Each thread prints its own lines; they never mix, since console.log
 * writes a whole line at once, under a lock that all threads share. */
let threadTag = "";

/** Per-client lines, silenced by --quiet. */
function log(line: string): void {
  if (!quiet) console.log(`${PROGRAM}: ${threadTag}${line}`);
}

/** Lines that always appear: the ready line and the summary. */
function announce(line: string): void {
  console.log(`${PROGRAM}: ${line}`);
}

/** Problems, on stderr. */
function warn(line: string): void {
  console.error(`${PROGRAM}: ${threadTag}${line}`);
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
    return `Network permission missing: run it as: ${RUN_LINE}`;
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

/** A thread's own listening sockets, on the addresses the main thread chose
 * with listen(). `reusePort` (SO_REUSEPORT) is what lets every thread
 * listen on the same port; Linux then gives each new client to one of the
 * listeners, by a hash of the client's address and port. */
function listenShared(addresses: Deno.NetAddr[]): Deno.TcpListener[] {
  const listeners: Deno.TcpListener[] = [];
  try {
    for (const { hostname, port } of addresses) {
      listeners.push(
        Deno.listen({ hostname, port, tcpBacklog: BACKLOG, reusePort: true }),
      );
    }
  } catch (err) {
    for (const listener of listeners) listener.close();
    throw err;
  }
  return listeners;
}

// ---------------------------------------------------------------------------
// Serving one client

const stats = { clients: 0, bytes: 0 };
/** The connections being served (the sheet's list of client sockets), so
 * that shutdown can close them, each with the time we last heard from it.
 * A Map keeps insertion order; moving a client to the end whenever it sends
 * keeps the map sorted from the longest silent to the latest heard, so the
 * idle check looks only at the clients it closes (see closeIdleClients). */
const clients = new Map<Deno.TcpConn, number>();
/** Clients closed for silence, so that their failed read is told apart from
 * a shutdown. */
const timedOut = new WeakSet<Deno.TcpConn>();
let idleTimeoutMs = 0;

/** Echoes one client until it closes, then closes our side. Never rejects:
 * nobody awaits it (see acceptLoop), and in Deno an unhandled rejection
 * ends the whole process. */
async function serveClient(conn: Deno.TcpConn): Promise<void> {
  const peer = formatAddress(conn.remoteAddr);
  clients.set(conn, Date.now());
  if (idleTimeoutMs > 0) scheduleIdleCheck();
  stats.clients++;
  let echoed = 0;
  let echoes = 0;
  let ending = "left";
  const small = new Uint8Array(SMALL_BUFFER_SIZE);
  let buffer: Bytes = small;
  log(`${peer} connected`);
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
      if (idleTimeoutMs > 0) {
        clients.delete(conn); // to the end of the map: latest heard
        clients.set(conn, Date.now());
      }
      // Awaiting the write is what bounds memory: a client that sends but
      // never reads fills the kernel buffers, then this await waits, and we
      // stop reading from it. Nothing piles up in our process, and the
      // other clients go on: only this one is waiting.
      await writeAll(conn, buffer.subarray(0, n));
      echoed += n;
      // Fairness: a client never echoes more than ECHOES_PER_TURN full
      // reads in a row before the others get their turn (see nextTurn).
      const full = n === buffer.length;
      buffer = nextBuffer(buffer, n, small);
      if (!full) {
        echoes = 0; // a short read: the burst is over
      } else if (++echoes === ECHOES_PER_TURN) {
        echoes = 0;
        await nextTurn();
      }
    }
  } catch (err) {
    ending = timedOut.has(conn)
      ? `timed out (silent for ${idleTimeoutMs / 1000} s)`
      : describeDisconnect(err, peer);
  } finally {
    forget(conn);
    closeQuietly(conn);
    if (buffer !== small) largeBuffers.push(buffer);
  }
  stats.bytes += echoed;
  log(`${peer} ${ending} after ${echoed} bytes echoed`);
}

/** Removes a client from the list; the last one gone wakes main() if it is
 * waiting to print the summary. */
let lastClientGone: (() => void) | undefined;

function forget(conn: Deno.TcpConn): void {
  clients.delete(conn);
  if (clients.size === 0) lastClientGone?.();
}

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

type Bytes = Uint8Array<ArrayBuffer>;

/** Free large buffers, shared by all clients; allocated on first need. */
const largeBuffers: Bytes[] = [];
let largeBuffersMade = 0;

/** The buffer for a client's next read, after a read of `n` bytes into
 * `buffer`. A read that fills the small buffer means more is waiting: take
 * a large one if any is free. A read that leaves the large one part empty
 * means the burst is over: give it back, so that it waits in no idle
 * client's read. (A message between 128 bytes and 256 KiB thus takes two
 * reads: the price of cheap idle clients.) */
function nextBuffer(buffer: Bytes, n: number, small: Bytes): Bytes {
  if (buffer === small) {
    if (n < small.length) return small;
    if (largeBuffers.length > 0) return largeBuffers.pop()!;
    if (largeBuffersMade === LARGE_BUFFER_COUNT) return small;
    largeBuffersMade++;
    return new Uint8Array(LARGE_BUFFER_SIZE);
  }
  if (n === buffer.length) return buffer;
  largeBuffers.push(buffer);
  return small;
}

/** Fairness: the wait for the next turn of the event loop, after
 * ECHOES_PER_TURN echoes in a row. setImmediate runs its callback once the
 * loop has polled the sockets again (a 0 ms setTimeout waited about 2 ms
 * here, setImmediate about 1.4 µs). One shared promise per turn releases
 * every waiting client, so the cost does not grow with their number. */
let turn: Promise<void> | null = null;

function nextTurn(): Promise<void> {
  turn ??= new Promise((resolve) =>
    setImmediate(() => {
      turn = null;
      resolve();
    })
  );
  return turn;
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
// Idle clients

/** The one timer of the idle check, set for when the longest-silent client
 * would expire. */
let idleTimer: ReturnType<typeof setTimeout> | undefined;

/** The longest delay a timer can hold (2^31-1 ms). */
export const MAX_TIMER_MS = 2 ** 31 - 1;

function scheduleIdleCheck(): void {
  if (idleTimer !== undefined) return;
  for (const [conn, lastHeard] of clients) {
    if (timedOut.has(conn)) continue; // closed already, leaving
    const due = Math.max(0, lastHeard + idleTimeoutMs - Date.now());
    // Timers hold at most 2^31-1 ms (about 24.8 days): a longer delay fires
    // at once with a TimeoutOverflowWarning, every millisecond. Wake up at
    // most that late; closeIdleClients then looks again and re-arms.
    const timer = setTimeout(closeIdleClients, Math.min(due, MAX_TIMER_MS));
    Deno.unrefTimer(timer); // never what keeps the process alive
    idleTimer = timer;
    return;
  }
}

/** Closes every client silent for idleTimeoutMs. The map is sorted from the
 * longest silent, so the walk stops at the first client still in time: its
 * cost is the number of clients closed, not the number connected. */
function closeIdleClients(): void {
  idleTimer = undefined;
  const now = Date.now();
  for (const [conn, lastHeard] of clients) {
    if (now - lastHeard < idleTimeoutMs) break;
    if (timedOut.has(conn)) continue; // closed already, leaving
    timedOut.add(conn);
    closeQuietly(conn); // its pending read fails: serveClient logs it
  }
  scheduleIdleCheck();
}

// ---------------------------------------------------------------------------
// The accept loop

/** Accepts clients until the listener is closed. `for await (const conn of
 * listener)` is not enough for a server: it ends for good on the first
 * error, and accept() does fail while the server is healthy: when a client
 * resets before we accept it, or when the process is out of file
 * descriptors. */
async function acceptLoop(
  listener: Deno.TcpListener,
  maxClients: number,
): Promise<void> {
  let retryMs = 0;
  for (;;) {
    let conn: Deno.TcpConn;
    try {
      conn = await listener.accept();
    } catch (err) {
      if (err instanceof Deno.errors.BadResource) return; // closed: shutdown
      if (isClientGone(err)) continue; // it left before we met it
      if (isListenerBroken(err)) {
        // No retry can help; this thread dies, and the main thread starts
        // another, which listens anew (see runThread).
        throw new Error(`its listener broke: ${errorMessage(err)}`);
      }
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
    if (clients.size >= maxClients) {
      // Accepted only to be closed: left in the backlog, it would wait
      // without a word; closed, it knows at once.
      log(
        `${
          formatAddress(conn.remoteAddr)
        } refused: ${clients.size} clients already (--max-clients ${maxClients})`,
      );
      closeQuietly(conn);
      continue;
    }
    // THE line that makes this server concurrent: we start serving this
    // client and, without waiting for it to leave, go back to accept() the
    // next one (Go's `go handle(c)`). tcp_echo.ts awaits here.
    serveClient(conn);
  }
}

/** Errors of accept() that only mean the client vanished in the backlog. */
function isClientGone(err: unknown): boolean {
  return err instanceof Deno.errors.NotConnected ||
    err instanceof Deno.errors.ConnectionReset ||
    err instanceof Deno.errors.ConnectionAborted;
}

/** accept() on a socket that no longer listens fails with EINVAL, and will
 * for ever: what happens when the listening socket is destroyed from outside
 * (`ss -K` does it). */
function isListenerBroken(err: unknown): boolean {
  return (err as { code?: string }).code === "EINVAL";
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

// ---------------------------------------------------------------------------
// Messages between the main thread and the threads

/** Counts of clients served and bytes echoed; each thread keeps its own. */
type Stats = typeof stats;

/** The main thread's orders to a thread. */
type Order =
  | {
    type: "serve";
    thread: number;
    options: Options;
    /** Where the main thread's listen() listened: the same for all. */
    addresses: Deno.NetAddr[];
  }
  | { type: "stop" };

/** A thread's reports to the main thread. */
type Report =
  | { type: "listening" }
  | { type: "cannot-listen"; line: string; addrInUse: boolean }
  | { type: "died"; message: string; stats: Stats }
  | { type: "stopped"; stats: Stats };

// ---------------------------------------------------------------------------
// One thread: a Web Worker running this same file

/** The parts of a worker's global scope used here (Deno's types describe
 * the main thread's). */
interface ThreadScope {
  postMessage(report: Report): void;
  onmessage: ((event: MessageEvent<Order>) => void) | null;
  addEventListener(type: "error", listener: (event: ErrorEvent) => void): void;
  addEventListener(
    type: "unhandledrejection",
    listener: (event: PromiseRejectionEvent) => void,
  ): void;
  close(): void;
}

/** A thread's life: on "serve", listen on the shared port and serve
 * clients exactly as select_echo.ts does; on "stop", close everything,
 * report the counts and end. */
function runThread(): void {
  const scope = globalThis as unknown as ThreadScope;
  // An error nothing caught would end this thread with a stack trace. Report
  // it in one line instead, with the counts so far, and end: the main thread
  // starts another thread, and the other threads never notice.
  const die = (reason: unknown) => {
    scope.postMessage({ type: "died", message: errorMessage(reason), stats });
    scope.close();
  };
  scope.addEventListener("error", (event) => {
    event.preventDefault();
    die(event.error ?? event.message);
  });
  scope.addEventListener("unhandledrejection", (event) => {
    event.preventDefault();
    die(event.reason);
  });

  let listeners: Deno.TcpListener[] = [];
  scope.onmessage = async ({ data: order }) => {
    if (order.type === "stop") return stopServing(listeners);
    threadTag = `[${order.thread}] `;
    quiet = order.options.quiet;
    idleTimeoutMs = order.options.idleTimeoutMs;
    try {
      listeners = listenShared(order.addresses);
    } catch (err) {
      const where = { ...order.options, port: order.addresses[0].port };
      scope.postMessage({
        type: "cannot-listen",
        line: describeListenError(err, where),
        addrInUse: err instanceof Deno.errors.AddrInUse,
      });
      scope.close();
      return;
    }
    scope.postMessage({ type: "listening" });

    await Promise.all(
      listeners.map((listener) =>
        acceptLoop(listener, order.options.maxClients)
      ),
    );
    // The accept loops are over; wait for the clients' last lines.
    await clientsGone();
    scope.postMessage({ type: "stopped", stats });
    scope.close();
  };
}

/** On the main thread's "stop": close the listeners, so the accept loops
 * end, and the clients, so their reads end. runThread then reports. */
function stopServing(listeners: Deno.TcpListener[]): void {
  for (const listener of listeners) closeQuietly(listener);
  for (const conn of clients.keys()) closeQuietly(conn);
}

// ---------------------------------------------------------------------------
// The main thread: starts the threads, replaces a dead one, stops them all

/** The live threads, by number (1 to --threads). */
const threads = new Map<number, Worker>();
/** What every thread is told to serve; set by main(). */
let serveOrder: { options: Options; addresses: Deno.NetAddr[] };
/** Per thread number, the wait before its next replacement. */
const restartDelays = new Map<number, number>();
const restartTimers = new Set<ReturnType<typeof setTimeout>>();
let stopping = false;
let lastThreadGone: (() => void) | undefined;

/** How a thread's start ended. */
type Start =
  | { type: "listening" }
  | { type: "cannot-listen"; line: string; addrInUse: boolean }
  | { type: "died"; message: string };

/** Starts thread number n; resolves once it listens, or cannot. */
function startThread(n: number): Promise<Start> {
  // THE line that makes this server threaded: a Web Worker is a thread with
  // its own JavaScript engine and event loop, here running this same file.
  // Its serveClient() calls run beside the main thread's and the others',
  // on another CPU; they share no memory, only messages.
  const worker = new Worker(import.meta.url, {
    type: "module",
    name: `${PROGRAM} thread ${n}`,
  });
  threads.set(n, worker);
  const startedAt = Date.now();
  let listening = false;
  return new Promise((resolve) => {
    const gone = (message: string) => {
      forgetThread(n, worker);
      if (listening) replaceThread(n, message, startedAt);
      else resolve({ type: "died", message });
    };
    worker.onmessage = ({ data: report }: MessageEvent<Report>) => {
      switch (report.type) {
        case "listening":
          listening = true;
          return resolve(report);
        case "cannot-listen":
          forgetThread(n, worker);
          return resolve(report);
        case "died":
          addStats(report.stats);
          return gone(report.message);
        case "stopped":
          addStats(report.stats);
          return forgetThread(n, worker);
      }
    };
    // An error the thread could not report itself (it failed to load, say).
    // Without preventDefault(), it would end the whole process.
    worker.onerror = (event) => {
      event.preventDefault();
      gone(event.message);
    };
    worker.postMessage({ type: "serve", thread: n, ...serveOrder });
  });
}

function addStats(counts: Stats): void {
  stats.clients += counts.clients;
  stats.bytes += counts.bytes;
}

function forgetThread(n: number, worker: Worker): void {
  worker.terminate(); // already ended, or about to: make sure
  if (threads.get(n) === worker) threads.delete(n);
  if (stopping && threads.size === 0) lastThreadGone?.();
}

/** Starts every thread. Returns a line saying why the server cannot
 * listen, or "" once it does. */
async function startThreads(count: number): Promise<string> {
  // Thread 1 alone first: if it cannot listen, none can, and it says why.
  const first = await startThread(1);
  if (first.type === "cannot-listen") return first.line;
  if (first.type === "died") return `[1] thread died: ${first.message}`;
  const others: Promise<Start>[] = [];
  for (let n = 2; n <= count && !stopping; n++) others.push(startThread(n));
  let portShared = true;
  for (const [i, start] of (await Promise.all(others)).entries()) {
    if (start.type === "listening") continue;
    if (start.type === "cannot-listen" && start.addrInUse) {
      // reusePort did not let a second socket listen on the port: not
      // Linux. Go on with the thread that listens, not replaced.
      portShared = false;
    } else {
      const why = start.type === "died" ? start.message : start.line;
      replaceThread(i + 2, why, Date.now());
    }
  }
  if (!portShared) {
    warn(
      `this system lets only one socket listen on a port (reusePort shares it on Linux only): serving with ${
        plural(threads.size, "thread")
      }`,
    );
  }
  return "";
}

/** How long to wait before replacing a thread that lived `livedMs`, when
 * the last wait for its number was `lastWaitMs` (undefined: none yet). A
 * thread that dies young doubles the wait, up to the maximum; one that
 * lived long enough starts again from the minimum. */
export function restartDelay(
  livedMs: number,
  lastWaitMs: number | undefined,
): number {
  if (livedMs >= RESTART_STABLE_MS) return RESTART_DELAY_MIN_MS;
  return Math.min(
    (lastWaitMs ?? RESTART_DELAY_MIN_MS / 2) * 2,
    RESTART_DELAY_MAX_MS,
  );
}

/** Starts another thread number n after the dead one, waiting longer each
 * time a replacement dies young. */
function replaceThread(n: number, why: string, startedAt: number): void {
  if (stopping) return;
  const wait = restartDelay(Date.now() - startedAt, restartDelays.get(n));
  restartDelays.set(n, wait);
  warn(`[${n}] thread died: ${why}; starting another in ${wait} ms`);
  const timer = setTimeout(async () => {
    restartTimers.delete(timer);
    const restartedAt = Date.now();
    const start = await startThread(n);
    if (start.type === "listening") {
      warn(`[${n}] new thread listening`);
    } else {
      const why = start.type === "died" ? start.message : start.line;
      replaceThread(n, why, restartedAt);
    }
  }, wait);
  restartTimers.add(timer);
}

/** Tells every thread to stop; threadsStopped() resolves once all have
 * reported. */
function stopThreads(): void {
  stopping = true;
  for (const timer of restartTimers) clearTimeout(timer);
  for (const worker of threads.values()) worker.postMessage({ type: "stop" });
  if (threads.size === 0) lastThreadGone?.();
}

function threadsStopped(): Promise<void> {
  if (stopping && threads.size === 0) return Promise.resolve();
  return new Promise((resolve) => lastThreadGone = resolve);
}

export function plural(count: number, noun: string): string {
  return `${count} ${noun}${count === 1 ? "" : "s"}`;
}

/** Each thread runs this file, which Deno reads again for it: without read
 * permission on it, every thread would die at birth. */
function canReadSelf(): boolean {
  // Inside a `deno compile` binary the threads run the copy embedded at
  // compile time (`--include worker_echo.ts`), read from the binary's own
  // virtual file system, which needs no read permission.
  if (Deno.build.standalone) return true;
  const path = import.meta.filename; // undefined when loaded from a URL
  if (path === undefined) return true;
  return Deno.permissions.querySync({ name: "read", path }).state ===
    "granted";
}

// ---------------------------------------------------------------------------
// Shutdown

/** On Ctrl-C (SIGINT) or SIGTERM: tell the threads to close their
 * listeners and clients. main() then prints the summary once they have
 * reported. Signals are the main thread's business: a signal listener in a
 * worker would catch Ctrl-C for the whole process. Must be installed before
 * the ready line: a parent that signals as soon as it reads that line must
 * find the handler in place. */
function installShutdown(): { signal: string } {
  const state = { signal: "" };
  const stop = (signal: string) => {
    if (state.signal) return; // a second Ctrl-C changes nothing
    state.signal = signal;
    stopThreads();
    // Whatever still holds the process (a stuck thread) must not keep it.
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

  // Without --unstable-net, Deno answers `reusePort` by ending the whole
  // process (exit code 70). Deno.listenDatagram exists only with that same
  // flag: test for it first, and say what to do.
  if (typeof Deno.listenDatagram !== "function") {
    warn(
      `Threads sharing a port need the --unstable-net flag: run it as: ${RUN_LINE}`,
    );
    return 1;
  }
  if (!canReadSelf()) {
    warn(
      `Read permission missing (each thread reads ${PROGRAM}.ts again): run it from its folder as: ${RUN_LINE}`,
    );
    return 1;
  }

  let listeners: Deno.TcpListener[];
  try {
    listeners = listen(options);
  } catch (err) {
    warn(describeListenError(err, options));
    return 1;
  }
  // The main thread listened only to choose the address(es) and learn the
  // real port (for --port 0), with select_echo.ts's checks and messages. It
  // serves no client: it lets the port go, and the threads take it.
  const where = describeListeners(listeners);
  const addresses = listeners.map((listener) => listener.addr);
  for (const listener of listeners) listener.close();
  serveOrder = { options, addresses };

  const shutdown = installShutdown();
  const failure = await startThreads(options.threads);
  if (failure) {
    warn(failure);
    return 1;
  }
  announce(`listening on ${where}, ${plural(threads.size, "thread")}`);

  // The threads serve until a signal stops them; wait for their counts.
  await threadsStopped();

  announce(
    `stopped by ${shutdown.signal || "closing"}: ${
      plural(stats.clients, "client")
    }, ${plural(stats.bytes, "byte")} echoed`,
  );
  return 0;
}

if ("WorkerGlobalScope" in globalThis) {
  // Loaded by `new Worker(import.meta.url)`: this copy of the file is one
  // of the threads. (import.meta.main is true in a worker too, so this test
  // comes first.)
  runThread();
} else if (import.meta.main) {
  Deno.exit(await main(Deno.args));
}
