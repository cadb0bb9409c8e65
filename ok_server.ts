/**
 * # ok_server.ts — the "OK / fin" server: many clients, one thread
 *
 * Prints every message (a line) each client sends, with its sender, and
 * answers `OK` to each; the message `fin` stops the whole server. Like
 * select_echo.ts it serves many clients at once from ONE thread: Deno's
 * event loop waits on every socket at once, as the sheet's `select()` does,
 * and runs a client's code only when that client has something to read. In
 * the design space this is the event-loop server, between the sequential
 * tcp_echo.ts and the multi-threaded worker_echo.ts.
 *
 * ANY client can stop this server by sending `fin`: that is the exercise
 * (a message that changes the server's state, and a clean shutdown of every
 * client at once), not something to leave open on a real network.
 *
 * Sheet: "Python – les sockets" (seeds/001), "Deuxième programme serveur",
 * with the bugs the sheet admits fixed: accents no longer crash it (UTF-8 is
 * decoded safely, even split across reads), abrupt disconnections remove
 * that client only, and messages are lines, however TCP splits them.
 *
 * @run deno run -N ok_server.ts
 * Try it: `deno run -N client.ts --port 12800` (or `nc localhost 12800`) in
 * two more terminals; type in both, then `fin` in one.
 * Siblings: tcp_echo.ts, select_echo.ts, worker_echo.ts, udp_echo.ts,
 * client.ts.
 *
 * Permissions: `-N` (network) only: it listens and talks to clients.
 */

import { parseArgs } from "node:util";

// ---------------------------------------------------------------------------
// Tunables, each with its reason.

const PROGRAM = "ok_server";
/** The sheet's port. Ports below 1024 are reserved to root. */
const DEFAULT_PORT = 12800;
/** All interfaces, IPv6 and IPv4 on one port, like the sheet's `AF_INET6`
 * socket bound to `("", 7777)`. */
const DEFAULT_HOST = "::";
/** The sheet's `listen(5)` is, as it says, no limit on clients: only on
 * those that completed their handshake and wait for accept(). We accept as
 * soon as they arrive, but a burst (50 clients at once) would overflow 5
 * and the extra ones would retry their handshake a second later. 128 is the
 * classic SOMAXCONN. */
const BACKLOG = 128;
/** One read buffer PER CLIENT, since many are served at once: every idle
 * client pays for it. Measured with 1000 idle clients, and one client
 * sending 100-byte lines as fast as it can (--quiet, median of 3): 4 KiB
 * costs 18 KiB of memory per client and answers 0.8 M messages/s, 16 KiB
 * 30 KiB and 1.5 M/s, 64 KiB 66 KiB and no faster. */
const BUFFER_SIZE = 16 * 1024;
/** Default longest message, in bytes, line ending not counted. A client must
 * not make us hold an endless line in memory; 64 KiB is far beyond a typed
 * line and still small enough to hold for thousands of clients. A longer
 * line gets an error line and that client is closed. */
const DEFAULT_MAX_LINE = 64 * 1024;
/** --max-line can go this high; a bound that can be lifted without limit
 * bounds nothing. */
const MAX_MAX_LINE = 16 * 1024 * 1024;
/** The reply to every message, as a line (the sheet sends "OK" with no line
 * ending, which a client cannot tell apart from the next reply). */
const OK_REPLY = "OK\n";
/** The message that stops the server, compared after its line ending is
 * removed: "fin" and "fin\r\n" stop it, "final" and "fine" do not. */
const STOP_MESSAGE = "fin";
/** After the error line for a too-long line, we keep reading (and throwing
 * away) what the client still sends for this long before closing: closing a
 * socket with unread input sends a reset, which can destroy our error line
 * before the client reads it (Apache's "lingering close"). */
const LINGER_MS = 2000;
/** When accept() fails for a reason other than a vanished client (typically
 * EMFILE: out of file descriptors), wait before trying again, doubling the
 * wait up to the maximum, so a full descriptor table does not spin the CPU. */
const ACCEPT_RETRY_MIN_MS = 10;
const ACCEPT_RETRY_MAX_MS = 1000;
/** On Ctrl-C or SIGTERM, clients are closed at once; if anything still holds
 * the process after this long, it exits anyway. */
const SHUTDOWN_GRACE_MS = 2000;

const USAGE = `Usage: deno run -N ${PROGRAM}.ts [options]

The "OK / fin" server: serves many clients at once from one thread, prints
each message (a line) with its sender and answers OK to it. The message
"fin" from ANY client stops the server (that is the exercise).

Options:
  --port N       port to listen on, 0 lets the system choose (default ${DEFAULT_PORT})
  --host H       address to listen on (default ${DEFAULT_HOST}: all interfaces,
                 IPv4 and IPv6)
  --max-line N   longest message in bytes; a client sending a longer line
                 gets an error line and is closed (default ${DEFAULT_MAX_LINE})
  --quiet        no line per client or message (the ready line and summary
                 remain)
  -h, --help     show this help and exit

Try it: deno run -N client.ts --port ${DEFAULT_PORT}  (or: nc localhost ${DEFAULT_PORT})`;

// ---------------------------------------------------------------------------
// Options

interface Options {
  host: string;
  port: number;
  maxLine: number;
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
        "max-line": { type: "string", default: String(DEFAULT_MAX_LINE) },
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
    maxLine: parseMaxLine(values["max-line"]),
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

/** A line limit is a whole number of bytes from 1 to MAX_MAX_LINE. */
function parseMaxLine(text: string): number {
  const bytes = /^\d{1,9}$/.test(text) ? Number(text) : NaN;
  if (!(bytes >= 1 && bytes <= MAX_MAX_LINE)) {
    throw new UsageError(
      `Invalid --max-line "${text}": expected a number of bytes from 1 to ${MAX_MAX_LINE}`,
    );
  }
  return bytes;
}

// ---------------------------------------------------------------------------
// Output: one line per event, prefixed by the program's name.

let quiet = false;

/** Per-client lines and messages, silenced by --quiet. */
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

const stats = { clients: 0, messages: 0 };
/** The connections being served, so that shutdown can close them. */
const clients = new Set<Deno.TcpConn>();
/** Set from --max-line by main(). */
let maxLine = DEFAULT_MAX_LINE;
/** Stops the server as Ctrl-C does; installShutdown() sets it, a client's
 * "fin" calls it. */
let stopServer: (reason: string) => void = () => {};

const encoder = new TextEncoder();
/** fatal: false turns invalid bytes into U+FFFD (shown as "�") instead of
 * throwing, which is what crashes the sheet's `decode()` on accents. No
 * stream mode is needed: we decode whole lines, and a character split across
 * two reads is whole again by the end of its line, since the byte "\n" never
 * occurs inside a UTF-8 multi-byte character. */
const decoder = new TextDecoder("utf-8", { fatal: false });

/** Prints each message (line) of one client and answers OK to it, until the
 * client closes, sends "fin" or sends a line longer than --max-line; then
 * closes our side. Never rejects: whatever this client does ends this client
 * only, which is what lets the accept loop leave it unawaited. */
async function serveClient(conn: Deno.TcpConn): Promise<void> {
  const peer = formatAddress(conn.remoteAddr);
  clients.add(conn);
  stats.clients++;
  log(`${peer} connected`);
  // Per client: many clients wait in read() at the same time, each into its
  // own buffer.
  const buffer = new Uint8Array(BUFFER_SIZE);
  const lines = new LineSplitter(maxLine);
  let received = 0;
  let ending = "left";
  let sentFin = false;
  try {
    // Deno leaves Nagle's algorithm on; with it, an OK written while the
    // previous one is not yet acknowledged waits up to 40 ms for the
    // client's delayed ACK. Replies should leave at once.
    conn.setNoDelay(true);
    for (;;) {
      const n = await conn.read(buffer);
      // null: the client closed, or half-closed, its sending side; an
      // unfinished last line still counts as a message.
      const { messages, tooLong } = n === null
        ? lines.end()
        : lines.push(buffer.subarray(0, n));
      let replies = 0;
      for (const message of messages) {
        log(`${peer}: ${printable(message)}`);
        stats.messages++;
        received++;
        replies++;
        // Stop at "fin": lines after it in the same read are not answered.
        if (message === STOP_MESSAGE) {
          sentFin = true;
          break;
        }
      }
      // One write carries the OKs of every message of this read. Awaiting
      // it is what bounds memory: a client that sends but never reads fills
      // the kernel buffers, then this await waits and we stop reading from
      // that client. Only its own loop waits: the others go on.
      if (replies > 0) {
        await writeAll(conn, encoder.encode(OK_REPLY.repeat(replies)));
      }
      if (sentFin) {
        ending = `sent "${STOP_MESSAGE}"`;
        break;
      }
      if (tooLong) {
        await writeAll(
          conn,
          encoder.encode(`ERROR line too long (max ${maxLine} bytes)\n`),
        );
        ending = `sent a line longer than ${maxLine} bytes and was closed`;
        await linger(conn, buffer);
        break;
      }
      if (n === null) break;
    }
  } catch (err) {
    ending = describeDisconnect(err, peer);
  } finally {
    forget(conn);
    closeQuietly(conn);
  }
  log(`${peer} ${ending} after ${received} messages`);
  // After its OK was handed to the kernel (or the client vanished first):
  // the whole server stops, as on the sheet.
  if (sentFin) stopServer(`"${STOP_MESSAGE}" from ${peer}`);
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

/** Cuts one client's byte stream into lines, however TCP splits it: a line
 * may come in several reads, several lines in one read. It holds at most
 * maxLine + 1 bytes of an unfinished line (one more for a "\r"), so memory
 * stays bounded whatever the client sends. It splits bytes, not text, and
 * decodes each whole line. */
class LineSplitter {
  #pieces: Uint8Array[] = [];
  #length = 0;
  #maxLine: number;

  constructor(maxLine: number) {
    this.#maxLine = maxLine;
  }

  /** The messages completed by `bytes`; tooLong when a line is over the
   * limit (the messages before it are still returned). */
  push(bytes: Uint8Array): { messages: string[]; tooLong: boolean } {
    const messages: string[] = [];
    let start = 0;
    for (;;) {
      const newline = bytes.indexOf(LF, start);
      if (newline < 0) break;
      const message = this.#finish(bytes.subarray(start, newline));
      if (message === null) return { messages, tooLong: true };
      messages.push(message);
      start = newline + 1;
    }
    if (start < bytes.length) {
      // A copy: `bytes` is the read buffer, which the next read overwrites.
      this.#pieces.push(bytes.slice(start));
      this.#length += bytes.length - start;
    }
    return { messages, tooLong: this.#length > this.#maxLine + 1 };
  }

  /** At end of input: the unfinished last line, if any, is a message. */
  end(): { messages: string[]; tooLong: boolean } {
    if (this.#length === 0) return { messages: [], tooLong: false };
    const message = this.#finish(new Uint8Array(0));
    return message === null
      ? { messages: [], tooLong: true }
      : { messages: [message], tooLong: false };
  }

  /** Joins the held pieces and `tail` into one line, drops a final "\r",
   * decodes it; null when it is longer than the limit. */
  #finish(tail: Uint8Array): string | null {
    let line = tail;
    if (this.#length > 0) {
      line = new Uint8Array(this.#length + tail.length);
      let at = 0;
      for (const piece of this.#pieces) {
        line.set(piece, at);
        at += piece.length;
      }
      line.set(tail, at);
      this.#pieces = [];
      this.#length = 0;
    }
    if (line.at(-1) === CR) line = line.subarray(0, -1);
    return line.length > this.#maxLine ? null : decoder.decode(line);
  }
}

const LF = 0x0a;
const CR = 0x0d;

/** A message as one safe line for a terminal: control characters (except
 * tab) are shown as \xNN, since an ESC sequence or a lone "\r" from a client
 * could recolour the terminal, move its cursor or hide earlier lines.
 * Everything else, accents included, is printed as sent. */
function printable(message: string): string {
  return message.replace(
    /\p{Cc}/gu,
    (c) =>
      c === "\t" ? c : `\\x${c.charCodeAt(0).toString(16).padStart(2, "0")}`,
  );
}

/** After the error line: send our FIN, then read and throw away what the
 * client still sends, for at most LINGER_MS. Closing at once, with its
 * input unread, would send a reset that can destroy the error line before
 * the client reads it. */
async function linger(conn: Deno.TcpConn, buffer: Uint8Array): Promise<void> {
  await conn.closeWrite();
  const timer = setTimeout(() => closeQuietly(conn), LINGER_MS);
  try {
    while ((await conn.read(buffer)) !== null) {
      // discarded
    }
  } catch {
    // Closed by the timer or at shutdown, or reset by the client: done.
  } finally {
    clearTimeout(timer);
  }
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
    // THE line that makes this server concurrent: we start serving this
    // client and, without waiting for it to leave, go back to accept() the
    // next one (Go's `go handle(c)`). Every client's loop then waits on its
    // own socket, and the event loop runs whichever has something to read:
    // the sheet's select(), done for us. serveClient() never rejects, so an
    // unawaited call cannot crash the process. tcp_echo.ts awaits here.
    serveClient(conn);
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
    if (state.signal) return; // a second Ctrl-C (or "fin") changes nothing
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
  stopServer = stop;
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
  maxLine = options.maxLine;

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
  // The accept loops are over; wait for the clients' last lines.
  await clientsGone();

  announce(
    `stopped by ${
      shutdown.signal || "closing"
    }: ${stats.clients} clients, ${stats.messages} messages`,
  );
  return 0;
}

if (import.meta.main) {
  Deno.exit(await main(Deno.args));
}
