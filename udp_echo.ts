#!/usr/bin/env -S deno run -N --unstable-net
/**
 * # udp_echo.ts — UDP echo server: every datagram back to its sender
 *
 * Sends every datagram it receives back, whole, to the address and port it
 * came from. UDP has no connections: there is no accept(), no client that
 * arrives or leaves, only datagrams, each carrying its sender's address. So
 * one socket serves every peer.
 *
 * Concurrency model: an event loop, like select_echo.ts. The lesson is the
 * sheet's loop, one receive then one send, and each receive loop below is
 * exactly that: it answers one datagram at a time. Several such loops
 * (RECEIVE_LOOPS) wait on the one socket at once, so while one loop's echo
 * is being sent another is already receiving; no peer ever waits for
 * another to leave, because UDP peers never "stay".
 *
 * Sheet: TP5b "Socket Serveur" (seeds/000), §1.4 "Pour aller plus loin :
 * version UDP" (AF_INET6 + SOCK_DGRAM, bind, a recvfrom/sendto loop).
 *
 * Sheet (Python)                                ↔ this file
 * `socket(AF_INET6, SOCK_DGRAM)` + `bind(("", 7777))`
 *                                               ↔ `Deno.listenDatagram({ hostname: "::", port, transport: "udp" })`
 * `data, addr = s.recvfrom(65535)`              ↔ `[datagram, peer] = await socket.receive(buffer)`
 * `s.sendto(data, addr)`                        ↔ `await socket.send(datagram, peer)`
 * `while True:`                                 ↔ `for (;;)` in echoLoop, RECEIVE_LOOPS times
 * `print(addr)` (watch the client port change)  ↔ the line per datagram (logDatagram)
 *
 * @run deno run -N --unstable-net udp_echo.ts
 * Try it: `nc -u localhost 7777` in a second terminal, `ss -uanp` in a
 * third; start nc several times and watch the client port change in the
 * server's log. Or run it as a program: `chmod +x udp_echo.ts && ./udp_echo.ts`.
 * Siblings: tcp_echo.ts, select_echo.ts, worker_echo.ts, client.ts (with
 * `--udp`), ok_server.ts.
 *
 * Permissions: `-N` (network) only: it listens and talks to clients.
 * `--unstable-net` is not a permission: Deno's UDP API (Deno.listenDatagram)
 * is still marked unstable and exists only with that flag (the deno.json of
 * this project turns it on for every script next to it).
 */

import { parseArgs } from "node:util";

// ---------------------------------------------------------------------------
// The lesson: the constants it needs, and the receive/echo loop.

const PROGRAM = "udp_echo";
/** The sheet's port. The real echo service is port 7, but ports below 1024
 * are reserved to root. */
const DEFAULT_PORT = 7777;
/** All interfaces, IPv6 and IPv4 on one port, like the sheet's `AF_INET6`
 * socket bound to `("", 7777)`. */
const DEFAULT_HOST = "::";
/** One receive buffer per loop, bigger than any datagram. The largest UDP
 * payload is 65527 bytes over IPv6 (65535 minus the 8-byte UDP header;
 * 65507 over IPv4, whose 20-byte header counts too). A datagram larger than
 * the buffer is cut without a word, and Deno's receive() without a buffer of
 * ours reads at most 65507 bytes: it would cut the largest IPv6 datagrams.
 * So we bring a buffer no datagram can fill; one that does fill it may have
 * been cut, and is dropped rather than echoed short. */
const BUFFER_SIZE = 65536;

/** Receives datagrams until the socket is closed, echoing each in turn: the
 * sheet's `while True: recvfrom; sendto`. `for await (const [data, peer] of
 * socket)` is not enough for a server: it ends for good on the first error,
 * and it reads into a 65507-byte buffer of its own, which cuts the largest
 * IPv6 datagrams. */
async function echoLoop(socket: Deno.DatagramConn): Promise<void> {
  const buffer = new Uint8Array(BUFFER_SIZE);
  const ownPort = (socket.addr as Deno.NetAddr).port;
  const retry = { ms: 0 };
  for (;;) {
    let datagram: Uint8Array;
    let peer: Deno.Addr;
    try {
      // datagram is a view into buffer: it must be echoed before the next
      // receive() overwrites it, which the await below guarantees.
      [datagram, peer] = await socket.receive(buffer);
    } catch (err) {
      if (isClosed(err)) return; // closed: shutdown
      await receiveFailed(err, retry); // Beyond the sheet: retry, bounded
      continue;
    }
    if (retry.ms > 0) warn("receiving datagrams again");
    retry.ms = 0;
    // THE line that makes each loop answer one datagram at a time: it waits
    // for this echo to be sent before calling receive() again, so its
    // buffer is never overwritten early. RECEIVE_LOOPS such loops share the
    // socket (see "Several receive loops"). Meanwhile the kernel queues the
    // next datagrams in the socket's receive buffer; when that is full, it
    // drops them, which UDP allows.
    await echoDatagram(socket, datagram, peer as Deno.NetAddr, ownPort);
  }
}

/** `dropped` counts the datagrams received but not echoed, whatever the
 * reason: the loop guard, a datagram too big to be sure it is whole, or a
 * send that failed. */
const stats = { datagrams: 0, bytes: 0, dropped: 0 };

/** Sends one datagram back to its sender, unless the loop guard refuses it.
 * A failed send loses this datagram only: UDP promises nothing, the sender
 * will try again if it cares, and the next peer is served as usual. */
async function echoDatagram(
  socket: Deno.DatagramConn,
  datagram: Uint8Array,
  peer: Deno.NetAddr,
  ownPort: number,
): Promise<void> {
  const refusal = datagram.length === BUFFER_SIZE
    ? `it filled the ${BUFFER_SIZE}-byte buffer and may have been cut`
    : loopGuard(peer.port, ownPort, allowAnyPort); // Beyond the sheet
  if (refusal) {
    dropped(peer, refusal); // Beyond the sheet: rate-limited drop log
    return;
  }
  try {
    // The reply goes to the exact address and port the datagram came from:
    // the sheet's sendto(data, addr). An IPv4 peer of the dual-stack socket
    // is "::ffff:a.b.c.d", and replying to that address reaches it.
    await socket.send(datagram, peer);
  } catch (err) {
    // One peer's failure is that peer's only: count it, and go on.
    if (isClosed(err)) stats.dropped++; // shutdown, mid-send: no line
    else dropped(peer, `cannot send the echo: ${errorMessage(err)}`);
    return;
  }
  stats.datagrams++;
  stats.bytes += datagram.length;
  logDatagram(datagram.length, peer); // Beyond the sheet: rate-limited
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
  verbose = options.verbose;
  allowAnyPort = options.allowAnyPort;

  // Without --unstable-net, Deno.listenDatagram simply does not exist (and
  // `deno check` does not notice): say what to do instead of a TypeError.
  if (typeof Deno.listenDatagram !== "function") {
    warn(MISSING_UNSTABLE_NET);
    return 1;
  }

  if (!netPermission()) {
    warn(describeListenError(new Deno.errors.NotCapable(), options));
    return 1;
  }
  let listeners: Deno.DatagramConn[];
  try {
    listeners = listen(options);
  } catch (err) {
    warn(describeListenError(err, options));
    return 1;
  }
  const shutdown = installShutdown(listeners);
  announce(`listening on ${describeListeners(listeners)}`);

  await Promise.all(listeners.flatMap(startReceiveLoops));

  flushDatagramLog();
  announce(
    `stopped by ${shutdown.signal || "closing"}: ${
      plural(stats.datagrams, "datagram")
    }, ${plural(stats.bytes, "byte")} echoed, ${stats.dropped} dropped`,
  );
  return 0;
}

// ===========================================================================
// Beyond the sheet
// ===========================================================================

// ---------------------------------------------------------------------------
// Several receive loops

/** How many receive() calls wait on the socket at once, each with its own
 * buffer (so 8 × 64 KiB). Deno allows concurrent receives on one socket, and
 * each trip through the event loop then completes several of them; it costs
 * less server CPU per datagram than one loop, and more loops than this gain
 * nothing measurable (bench/UDP.md has the figures). */
const RECEIVE_LOOPS = 8;

function startReceiveLoops(socket: Deno.DatagramConn): Promise<void>[] {
  return Array.from({ length: RECEIVE_LOOPS }, () => echoLoop(socket));
}

// ---------------------------------------------------------------------------
// Loop guard
//
// Datagrams from a source port below 1024, or from this server's own port,
// are dropped, not echoed. An echo server answers anyone, even a forged
// sender: a datagram "from" another UDP service (DNS on 53, another echo on
// 7 or on our port) would make two services answer each other for ever, and
// a forged sender turns us into a reflector aimed at a system service.
// OpenBSD's inetd and xinetd drop source ports below 1024 for the same
// reason; FreeBSD's inetd drops datagrams whose source port is one of its
// own UDP services' ports, on any address, and so do we. Clients' own ports
// are above 1024 (the system picks them from 32768 up on Linux), so no
// genuine client is turned away. `--allow-any-port` lifts the guard.

/** Source ports below this one belong to system services. */
const FIRST_UNPRIVILEGED_PORT = 1024;
let allowAnyPort = false;

/** Why the loop guard refuses a datagram from this source port, or "" when
 * it may be echoed. */
export function loopGuard(
  port: number,
  ownPort: number,
  allowAny = false,
): string {
  if (allowAny) return "";
  if (port < FIRST_UNPRIVILEGED_PORT) {
    return `source port below ${FIRST_UNPRIVILEGED_PORT} (loop guard; --allow-any-port lifts it)`;
  }
  if (port === ownPort) {
    return `source port is this server's own (loop guard; --allow-any-port lifts it)`;
  }
  return "";
}

// ---------------------------------------------------------------------------
// Logging without flooding
//
// One line per datagram lets a student watch the client port change, as the
// sheet asks; but a flood of datagrams must not become a flood of lines (a
// terminal prints far fewer lines a second than loopback carries
// datagrams). So at most DATAGRAM_LINES lines per second; a line then says
// how many datagrams got none. The summary counts them all.

/** Lines per second for echoed datagrams (--verbose: no limit). */
const DATAGRAM_LINES = 10;
/** Dropped datagrams: at most one line per this interval; the next line
 * counts the ones that got none. */
const DROP_LOG_INTERVAL_MS = 1000;

/** At most `lines` lines per `intervalMs`. allow() returns -1 when this line
 * must be left out, else how many were left out since the last one let
 * through. Pure: the caller passes the time. */
export class LogLimiter {
  #windowStart = -Infinity;
  #used = 0;
  #suppressed = 0;
  constructor(readonly lines: number, readonly intervalMs: number) {}

  allow(nowMs: number): number {
    if (nowMs - this.#windowStart >= this.intervalMs) {
      this.#windowStart = nowMs;
      this.#used = 0;
    }
    if (this.#used >= this.lines) {
      this.#suppressed++;
      return -1;
    }
    this.#used++;
    return this.takeSuppressed();
  }

  /** How many lines were left out and not yet reported; resets the count. */
  takeSuppressed(): number {
    const suppressed = this.#suppressed;
    this.#suppressed = 0;
    return suppressed;
  }
}

const datagramLog = new LogLimiter(DATAGRAM_LINES, 1000);
const dropLog = new LogLimiter(1, DROP_LOG_INTERVAL_MS);

function logDatagram(length: number, peer: Deno.NetAddr): void {
  if (quiet) return;
  const suppressed = verbose ? 0 : datagramLog.allow(performance.now());
  if (suppressed < 0) return;
  if (suppressed > 0) log(notLogged(suppressed));
  log(`echoed ${plural(length, "byte")} to ${formatAddress(peer)}`);
}

/** At shutdown: the datagrams left out since the last line. */
function flushDatagramLog(): void {
  const suppressed = datagramLog.takeSuppressed();
  if (suppressed > 0 && !quiet) log(notLogged(suppressed));
}

function notLogged(count: number): string {
  return `${count} more datagrams echoed without a line (at most ${DATAGRAM_LINES} lines a second; --quiet for none)`;
}

function dropped(peer: Deno.NetAddr, reason: string): void {
  stats.dropped++;
  if (quiet) return;
  const unlogged = dropLog.allow(performance.now());
  if (unlogged < 0) return;
  const more = unlogged > 0
    ? `; ${unlogged} more dropped since the last such line`
    : "";
  warn(`dropped a datagram from ${formatAddress(peer)}: ${reason}${more}`);
}

// ---------------------------------------------------------------------------
// When receive() fails

/** When receive() fails for a reason other than a vanished peer, wait before
 * trying again, doubling the wait up to the maximum, so a lasting error does
 * not spin the CPU. */
const RECEIVE_RETRY_MIN_MS = 10;
const RECEIVE_RETRY_MAX_MS = 1000;

async function receiveFailed(
  err: unknown,
  retry: { ms: number },
): Promise<void> {
  if (isClientGone(err)) return; // a peer's port was closed, see below
  retry.ms = Math.min(
    Math.max(retry.ms * 2, RECEIVE_RETRY_MIN_MS),
    RECEIVE_RETRY_MAX_MS,
  );
  if (retry.ms === RECEIVE_RETRY_MIN_MS) {
    warn(`cannot receive datagrams: ${errorMessage(err)}; retrying`);
  }
  await sleep(retry.ms);
}

/** Errors of receive() that only mean a peer vanished: on Windows, an echo
 * sent to a port that was closed comes back as ICMP "port unreachable", and
 * the next receive() fails with ConnectionReset. Linux says nothing to an
 * unconnected socket. */
function isClientGone(err: unknown): boolean {
  return err instanceof Deno.errors.NotConnected ||
    err instanceof Deno.errors.ConnectionReset ||
    err instanceof Deno.errors.ConnectionAborted;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

// ===========================================================================
// The skeleton every server shares: options, output, listening, shutdown.
// Only constants and UDP's own pieces (listenDatagram, --unstable-net,
// --verbose, --allow-any-port) differ from the TCP servers.
// ===========================================================================

/** On Ctrl-C or SIGTERM, the socket is closed at once; if anything still
 * holds the process after this long, it exits anyway. */
const SHUTDOWN_GRACE_MS = 2000;

/** The `deno run` line, with the flags this server needs. */
const RUN_LINE = `deno run -N --unstable-net ${PROGRAM}.ts`;

/** How to start this program, for messages that say how: the `deno run`
 * line, or inside a binary made by `deno compile`, the binary's own name. */
function howToRun(): string {
  if (!Deno.build.standalone) return RUN_LINE;
  const path = Deno.execPath();
  return path.slice(
    Math.max(path.lastIndexOf("/"), path.lastIndexOf("\\")) + 1,
  );
}

const USAGE = `Usage: ${howToRun()} [options]

UDP echo server: sends every datagram back, whole, to the address and port
it came from, each receive loop one datagram at a time.

Options:
  --port N     port to listen on, 0 lets the system choose (default ${DEFAULT_PORT})
  --host H     address to listen on (default ${DEFAULT_HOST}: all interfaces,
               IPv4 and IPv6)
  --quiet      no line per datagram, not even for dropped ones (the ready
               line and summary remain)
  --verbose    a line for every datagram echoed (by default at most
               ${DATAGRAM_LINES} a second, so a flood cannot flood the terminal)
  --allow-any-port
               echo datagrams from every source port: no loop guard (below)
  -h, --help   show this help and exit

Loop guard: datagrams from a source port below ${FIRST_UNPRIVILEGED_PORT} (a system service,
or a forged sender aiming us at one) or from this server's own port (another
echo server: the two would bounce one datagram for ever) are dropped and
counted, with at most one line per second, as inetd does.

Try it: nc -u localhost ${DEFAULT_PORT}`;

/** What to tell a user who started us without the flag that makes
 * Deno.listenDatagram exist. */
const MISSING_UNSTABLE_NET =
  `UDP needs the --unstable-net flag: run it as: deno run -N --unstable-net ${PROGRAM}.ts`;

// ---------------------------------------------------------------------------
// Options

export interface Options {
  host: string;
  port: number;
  quiet: boolean;
  verbose: boolean;
  allowAnyPort: boolean;
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
        quiet: { type: "boolean", default: false },
        verbose: { type: "boolean", default: false },
        "allow-any-port": { type: "boolean", default: false },
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
    quiet: values.quiet,
    verbose: values.verbose,
    allowAnyPort: values["allow-any-port"],
  };
}

/** A port is a whole number from 0 to 65535; "7777abc" or "1e3" is not. */
export function parsePort(text: string): number {
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
/** --verbose: every echoed datagram gets its line, with no rate limit. */
let verbose = false;

/** Per-datagram lines, silenced by --quiet. */
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

export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** "1 datagram", "2 datagrams". */
export function plural(count: number, noun: string): string {
  return `${count} ${noun}${count === 1 ? "" : "s"}`;
}

/** "127.0.0.1:53422" or "[::1]:53422". An IPv4 client of a dual-stack
 * socket appears as "::ffff:127.0.0.1"; we show it as the IPv4 address it
 * is. */
export function formatAddress(addr: Deno.Addr): string {
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
function listen(options: Options): Deno.DatagramConn[] {
  const { host, port } = options;
  let first: Deno.DatagramConn;
  try {
    first = Deno.listenDatagram({ hostname: host, port, transport: "udp" });
  } catch (err) {
    if (host !== DEFAULT_HOST || !isNoIPv6(err)) throw err;
    return [
      Deno.listenDatagram({ hostname: "0.0.0.0", port, transport: "udp" }),
    ];
  }
  if (host !== DEFAULT_HOST) return [first];
  const { port: boundPort } = first.addr as Deno.NetAddr;
  // Run without -N, Deno asks the user before each new address: never ask
  // about this probe, which the user did not choose. Without the permission
  // we trust the dual-stack default of Linux and macOS.
  if (!probeAllowed(boundPort)) return [first];
  try {
    // On a dual-stack system "::" already holds the IPv4 port too, so this
    // fails with AddrInUse, which is the answer we hope for.
    const second = Deno.listenDatagram({
      hostname: "0.0.0.0",
      port: boundPort,
      transport: "udp",
    });
    return [first, second];
  } catch (err) {
    if (err instanceof Deno.errors.AddrInUse) return [first];
    first.close();
    throw err;
  }
}

/** Started without -N, Deno asks at each new address: the socket's own,
 * then every peer's, at the first echo to it (each send() is checked). So a
 * "yes" to the first prompt would give a server that stops to ask again for
 * each new client. Ask once, for the network as a whole: one prompt, and
 * whatever the answer, a working server or the one-line message. With -N
 * this asks nothing. */
function netPermission(): boolean {
  const net = { name: "net" } as const;
  if (Deno.permissions.querySync(net).state === "granted") return true;
  return Deno.permissions.requestSync(net).state === "granted";
}

/** True when listening on 0.0.0.0:port needs no prompt. */
function probeAllowed(port: number): boolean {
  return Deno.permissions.querySync({ name: "net", host: `0.0.0.0:${port}` })
    .state === "granted";
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
    return `Network permission missing: run it as: ${howToRun()}`;
  }
  if (err instanceof Deno.errors.AddrInUse) {
    return `Cannot listen on ${where}: address already in use; stop the other server (see: ss -ulnp) or choose another --port`;
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
function describeListeners(listeners: Deno.DatagramConn[]): string {
  const addresses = listeners.map((l) => formatAddress(l.addr)).join(" and ");
  const dualStack = listeners.length === 1 &&
    (listeners[0].addr as Deno.NetAddr).hostname === "::";
  return dualStack ? `${addresses} (IPv4 and IPv6)` : addresses;
}

// ---------------------------------------------------------------------------
// Shutdown

/** The socket was closed under us: that is how shutdown ends the loop. */
function isClosed(err: unknown): boolean {
  return err instanceof Deno.errors.BadResource ||
    err instanceof Deno.errors.Interrupted;
}

function closeQuietly(resource: { close(): void }): void {
  try {
    resource.close();
  } catch {
    // Already closed (by shutdown): nothing to do.
  }
}

/** On Ctrl-C (SIGINT) or SIGTERM: close the sockets, so the receive loops
 * end. main() then prints the summary.
 * Must be installed before the ready line: a parent that signals as soon as
 * it reads that line must find the handler in place. */
function installShutdown(listeners: Deno.DatagramConn[]): { signal: string } {
  const state = { signal: "" };
  const stop = (signal: string) => {
    if (state.signal) return; // a second Ctrl-C changes nothing
    state.signal = signal;
    for (const listener of listeners) closeQuietly(listener);
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

// Last, so that every constant above is initialised before main() runs.
if (import.meta.main) {
  Deno.exit(await main(Deno.args));
}
