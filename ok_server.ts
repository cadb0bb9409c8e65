#!/usr/bin/env -S deno run -N
/**
 * # ok_server.ts — the "OK / fin" server: many clients, one thread
 *
 * Prints every message each client sends, with its sender, and answers `OK`
 * to each; the message `fin` stops the whole server. Like select_echo.ts it
 * serves many clients at once from ONE thread: Deno's event loop waits on
 * every socket at once, as the sheet's `select()` does, and runs a client's
 * code only when that client has something to read. In the design space this
 * is the event-loop server, between the sequential tcp_echo.ts and the
 * multi-threaded worker_echo.ts; `--one-client` makes it the sheet's first,
 * sequential server instead.
 *
 * ANY client can stop this server by sending `fin`: that is the exercise
 * (a message that changes the server's state, and a clean shutdown of every
 * client at once), not something to leave open on a real network.
 *
 * What a message is: a line, ended by "\n" ("\r\n" too), however TCP splits
 * or joins it; each line is answered `OK\n`. The sheet's own client sends
 * its messages with no newline and waits for the answer: from a client that
 * has not yet ended any message with a newline, what it sent and then
 * paused on for UNFRAMED_PAUSE_MS (200 ms) is a message, answered `OK` with
 * no newline, as the sheet's server does. A client that has sent a newline
 * is a line client for good: its unfinished line waits for its newline.
 * `fin` stops the server with or without its newline.
 *
 * Sheet: "Python – les sockets" (seeds/001). The default is its "Deuxième
 * programme serveur" (select, many clients); `--one-client` is its "Premier
 * programme serveur". The sheet's Python, line for line:
 *   hote = ''; port = 12800                ↔  DEFAULT_HOST = "::" (IPv4 and
 *                                              IPv6), DEFAULT_PORT = 12800
 *   connexion_principale.listen(5)         ↔  BACKLOG = 128
 *   select.select([connexion_principale]   ↔  Deno's event loop: every
 *     + clients_connectes, [], [], 0.05)       pending accept() and read()
 *   connexion.accept();                    ↔  conn = await listener.accept(),
 *     clients_connectes.append(…)              then serveClient(conn) NOT
 *                                              awaited: the deciding line
 *                                              of acceptLoop()
 *   msg_recu = client.recv(1024)           ↔  n = await conn.read(buffer),
 *                                              then cut into messages
 *   msg_recu.decode() (raises on accents)  ↔  decoder.decode(line): never
 *                                              raises, "�" for bad bytes
 *   print("Reçu {}".format(msg_recu))      ↔  log(`${peer}: ${message}`)
 *   client.send(b"OK")                     ↔  await writeAll(conn, OK…)
 *   if msg_recu == "fin":                  ↔  message === STOP_MESSAGE, then
 *     serveur_lance = False                    stopServer(…)
 *   for client in …: client.close()        ↔  closeAll(), at shutdown
 *   first server: accept() once, then      ↔  --one-client: the first client
 *     while msg_recu != b"fin": …              alone, then stop
 * With the bugs the sheet admits fixed: accents and Latin-1 bytes never
 * crash it, an abrupt disconnection removes that client only, and two
 * messages never run together in the log.
 *
 * @run deno run -N ok_server.ts
 * Try it: `deno run -N client.ts --port 12800` (or `nc localhost 12800`) in
 * two more terminals; type in both, then `fin` in one. The sheet's own
 * client.py works too.
 * Siblings: tcp_echo.ts, select_echo.ts, worker_echo.ts, udp_echo.ts,
 * client.ts, check.ts.
 *
 * Permissions: `-N` (network) only: it listens and talks to clients.
 *
 * Reading order: the lesson (acceptLoop and serveClient), then main(), then
 * "beyond the sheet" (messages and unframed clients, the line limit,
 * printing safely, one client only, fair turns under load), the command
 * line, and the skeleton that every server of the kit shares.
 */

import { parseArgs } from "node:util";

const PROGRAM = "ok_server";
/** How users run it; messages that say how to run it repeat it. */
const RUN_LINE = `deno run -N ${PROGRAM}.ts`;
/** The sheet's port. Ports below 1024 are reserved to root. */
const DEFAULT_PORT = 12800;
/** All interfaces, IPv6 and IPv4 on one port. The sheet's `hote = ''` with
 * AF_INET is all IPv4 interfaces; "::" takes IPv6 clients as well. */
const DEFAULT_HOST = "::";

// ===========================================================================
// The lesson: answer every client at once, from one thread
// ===========================================================================

/** The sheet's `listen(5)` is, as it says, no limit on clients: only on
 * those that completed their handshake and wait for accept(). We accept as
 * soon as they arrive, but a burst (50 clients at once) would overflow 5 and
 * the extra ones would retry their handshake a second later. 128 is the
 * classic SOMAXCONN. */
const BACKLOG = 128;
/** The sheet's `recv(1024)`, larger. One buffer PER CLIENT, since many are
 * served at once and every idle client holds its own. Measured against 4
 * and 64 KiB when this script was written: smaller cost a fast sender
 * throughput, larger cost every idle client memory and was no faster. */
const BUFFER_SIZE = 16 * 1024;
/** The message that stops the server, compared after its line ending is
 * removed: "fin" and "fin\r\n" stop it, "final" and "fine" do not. */
const STOP_MESSAGE = "fin";
/** The reply to a line: a line, so that a client reading lines can tell one
 * reply from the next. */
const LINE_REPLY = "OK\n";
/** The reply to an unframed message: the sheet's `b"OK"`, which its client
 * reads with one recv(). */
const UNFRAMED_REPLY = "OK";

/** Clients served and messages received, for the summary line. */
const stats = { clients: 0, messages: 0 };

/** The sheet's select() loop, as far as the listening socket goes: each
 * time it is readable, accept the client and add it to the list. */
async function acceptLoop(
  listener: Deno.TcpListener,
  oneClient: boolean,
): Promise<void> {
  for (;;) {
    let conn: Deno.TcpConn;
    try {
      conn = await listener.accept(); // the sheet's accept(): wait for a client
    } catch (err) {
      if (err instanceof Deno.errors.BadResource) return; // closed: shutdown
      await acceptFailed(err); // a vanished client, or no descriptor left
      continue;
    }
    if (oneClient) return serveOnlyClient(conn); // beyond: --one-client
    // THE line that lets one thread answer everybody: serveClient() starts
    // on this client and returns at its first `await`, and we are back in
    // accept() while that client's loop waits on its own socket. The event
    // loop then wakes whichever socket has bytes: the sheet's select() with
    // no list to keep by hand. tcp_echo.ts (and --one-client) await here,
    // and serve one client at a time. serveClient() never rejects, so
    // leaving it unawaited cannot crash the process.
    serveClient(conn);
  }
}

/** The sheet's work for one readable client: recv(), print each message,
 * send OK; until the client leaves, sends "fin" or sends a line longer than
 * --max-line. Never rejects: nobody awaits it, and in Deno an unhandled
 * rejection ends the whole process. */
async function serveClient(conn: Deno.TcpConn): Promise<void> {
  const peer = welcome(conn);
  stats.clients++;
  const buffer = new Uint8Array(BUFFER_SIZE);
  const read = pausingReader(conn, buffer);
  const splitter = new MessageSplitter(maxLine);
  let received = 0;
  let ending = "left";
  let sentFin = false;
  try {
    // Deno leaves Nagle's algorithm on; with it, an OK written while the
    // previous one is not yet acknowledged waits up to 40 ms for the
    // client's delayed ACK. Replies should leave at once.
    conn.setNoDelay(true);
    for (;;) {
      // The sheet's recv(): some bytes, or null when the client closed its
      // sending side, or (beyond the sheet) a pause that ends an unframed
      // message.
      const n = await read(splitter.waitingForPause ? UNFRAMED_PAUSE_MS : 0);
      const { messages, tooLong } = n === PAUSED
        ? splitter.pause()
        : n === null
        ? splitter.end()
        : splitter.push(buffer.subarray(0, n));
      let replies = 0;
      for (const message of messages) {
        log(`${peer}: ${printable(message)}`);
        stats.messages++;
        received++;
        replies++;
        // Stop at "fin": messages after it in the same read get no OK.
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
        const reply = splitter.lineClient ? LINE_REPLY : UNFRAMED_REPLY;
        await writeAll(conn, encoder.encode(reply.repeat(replies)));
      }
      if (sentFin) {
        ending = `sent "${STOP_MESSAGE}"`;
        break;
      }
      if (tooLong) {
        ending = await refuseLongLine(conn, () => read(0)); // beyond: limit
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
  log(`${peer} ${ending} after ${plural(received, "message")}`);
  // Once its OK was handed to the kernel (or the client vanished first):
  // the whole server stops, as on the sheet.
  if (sentFin) stopServer(`"${STOP_MESSAGE}" from ${peer}`);
}

const encoder = new TextEncoder();

// ===========================================================================
// main: listen, serve until "fin" or Ctrl-C, print a summary
// ===========================================================================

async function main(args: string[]): Promise<number> {
  const options = parseOptions(args);
  if (typeof options === "number") return options; // --help, or a mistake
  maxLine = options.maxLine;
  fairTurns.enabled = options.fair;

  let listeners: Deno.TcpListener[];
  try {
    listeners = listen(options);
  } catch (err) {
    warn(describeListenError(err, options));
    return 1;
  }
  const shutdown = installShutdown(() => {
    closeAll(listeners);
    for (const conn of unserved) closeQuietly(conn);
  });
  announce(`listening on ${describeListeners(listeners)}`);

  await Promise.all(
    listeners.map((listener) => acceptLoop(listener, options.oneClient)),
  );
  // The accept loops are over; wait for the clients' last lines.
  await clientsGone();

  announce(
    `stopped by ${shutdown.reason || "closing"}: ${
      plural(stats.clients, "client")
    }, ${plural(stats.messages, "message")}`,
  );
  return 0;
}

// ===========================================================================
// Beyond the sheet: messages are lines, and the sheet's unframed client
// ===========================================================================

/** How long a client that never sent a newline must stay silent for what
 * it sent to be a message. The sheet's client sends a whole message at once
 * and then waits for the answer, so its pause is endless; bytes of one
 * message that TCP splits arrive microseconds apart on a LAN. 200 ms is
 * long against the second, short against a person waiting for `OK`. */
const UNFRAMED_PAUSE_MS = 200;

/** What a read brings when the unframed pause came first. */
const PAUSED = "paused";

/** Reads for serveClient(): `read(pauseMs)` resolves with the byte count,
 * null at end of input, or PAUSED when pauseMs > 0 went by with no bytes.
 * A read that loses to the pause stays pending and is awaited by the next
 * call, so no byte is lost and the buffer is not reused meanwhile. */
function pausingReader(
  conn: Deno.TcpConn,
  buffer: Uint8Array,
): (pauseMs: number) => Promise<number | null | typeof PAUSED> {
  let pending: Promise<number | null> | null = null;
  let talking = false; // has this client sent anything yet?
  return async (pauseMs) => {
    if (pending === null) {
      pending = fairRead(conn, buffer, talking); // beyond: fair turns
      // If the client is done ("fin") while this read waits, closing the
      // connection fails it with nobody left to await it; unhandled, that
      // rejection would end the process.
      pending.catch(() => {});
    }
    const result = pauseMs > 0
      ? await orPause(pending, pauseMs)
      : await pending;
    if (result !== PAUSED) pending = null;
    if (typeof result === "number") talking = true;
    return result;
  };
}

/** `promise`, or PAUSED if it is still pending after `ms`. */
async function orPause<T>(
  promise: Promise<T>,
  ms: number,
): Promise<T | typeof PAUSED> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const pause = new Promise<typeof PAUSED>((resolve) => {
    timer = setTimeout(() => resolve(PAUSED), ms);
  });
  try {
    return await Promise.race([promise, pause]);
  } finally {
    clearTimeout(timer);
  }
}

/** Messages completed by some input, and whether a line went over the
 * limit (the messages before it are still returned). */
export interface Split {
  messages: string[];
  tooLong: boolean;
}

/** Cuts one client's byte stream into messages, however TCP splits it: a
 * line may come in several reads, several lines in one read. Until the
 * client sends its first newline, a pause (see UNFRAMED_PAUSE_MS) also ends
 * a message. It holds at most maxLine + 1 bytes of an unfinished line (one
 * more for a "\r"), so memory stays bounded whatever the client sends. It
 * splits bytes, not text, and decodes each whole message: "\n" never occurs
 * inside a UTF-8 multi-byte character, so a character split across reads is
 * whole again by the end of its line. */
export class MessageSplitter {
  #pieces: Uint8Array[] = [];
  #length = 0;
  #maxLine: number;
  #lineClient = false;

  constructor(maxLine: number) {
    this.#maxLine = maxLine;
  }

  /** True once the client has ended a message with a newline: from then on
   * only newlines end its messages, and its replies are lines. */
  get lineClient(): boolean {
    return this.#lineClient;
  }

  /** True when a pause would end a message: the client never sent a
   * newline and bytes of an unfinished message are held. */
  get waitingForPause(): boolean {
    return !this.#lineClient && this.#length > 0;
  }

  /** The lines completed by `bytes`. */
  push(bytes: Uint8Array): Split {
    const messages: string[] = [];
    let start = 0;
    for (;;) {
      const newline = bytes.indexOf(LF, start);
      if (newline < 0) break;
      this.#lineClient = true;
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

  /** The client paused: an unframed client's held bytes are a message. */
  pause(): Split {
    return this.waitingForPause ? this.end() : { messages: [], tooLong: false };
  }

  /** At end of input: the unfinished last line, if any, is a message. */
  end(): Split {
    if (this.#length === 0) return { messages: [], tooLong: false };
    const message = this.#finish(new Uint8Array(0));
    return message === null
      ? { messages: [], tooLong: true }
      : { messages: [message], tooLong: false };
  }

  /** Joins the held pieces and `tail` into one message, drops a final
   * "\r", decodes it; null when it is longer than the limit. */
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

// ===========================================================================
// Beyond the sheet: a bound on the length of a line (--max-line)
// ===========================================================================

/** Default longest message, in bytes, line ending not counted. A client must
 * not make us hold an endless line in memory; 64 KiB is far beyond a typed
 * line and still small enough to hold for thousands of clients. A longer
 * line gets an error line and that client is closed. */
const DEFAULT_MAX_LINE = 64 * 1024;
/** --max-line can go this high; a bound that can be lifted without limit
 * bounds nothing. */
const MAX_MAX_LINE = 16 * 1024 * 1024;
/** Set from --max-line by main(). */
let maxLine = DEFAULT_MAX_LINE;

/** A line too long: say so, then close without losing the error line.
 * `read` gives the client's next bytes. Returns how the client ended, for
 * its log line. */
async function refuseLongLine(
  conn: Deno.TcpConn,
  read: () => Promise<unknown>,
): Promise<string> {
  await writeAll(
    conn,
    encoder.encode(`ERROR line too long (max ${maxLine} bytes)\n`),
  );
  await linger(conn, read);
  return `sent a line longer than ${maxLine} bytes and was closed`;
}

/** After the error line, we keep reading (and throwing away) what the
 * client still sends for this long before closing: closing a socket with
 * unread input sends a reset, which can destroy our error line before the
 * client reads it (Apache's "lingering close"). */
const LINGER_MS = 2000;

/** Sends our FIN, then reads and throws away what the client still sends,
 * until it closes or LINGER_MS have passed. */
async function linger(
  conn: Deno.TcpConn,
  read: () => Promise<unknown>,
): Promise<void> {
  await conn.closeWrite();
  const timer = setTimeout(() => closeQuietly(conn), LINGER_MS);
  try {
    while ((await read()) !== null) {
      // discarded
    }
  } catch {
    // Closed by the timer or at shutdown, or reset by the client: done.
  } finally {
    clearTimeout(timer);
  }
}

// ===========================================================================
// Beyond the sheet: printing what clients send, safely
// ===========================================================================

/** fatal: false turns invalid bytes (Latin-1 "é" is the byte E9, invalid
 * in UTF-8) into U+FFFD, shown as "�", instead of throwing, which is what
 * crashes the sheet's `decode()` on accents. */
const decoder = new TextDecoder("utf-8", { fatal: false });

/** A message as one safe line for a terminal: control characters (except
 * tab) are shown as \xNN, since an ESC sequence or a lone "\r" from a client
 * could recolour the terminal, move its cursor or hide earlier lines.
 * Everything else, accents included, is printed as sent. */
export function printable(message: string): string {
  return message.replace(
    /\p{Cc}/gu,
    (c) =>
      c === "\t" ? c : `\\x${c.charCodeAt(0).toString(16).padStart(2, "0")}`,
  );
}

// ===========================================================================
// Beyond the sheet: one client only (--one-client), the sheet's first server
// ===========================================================================

/** The sheet's first server accepts once, talks with that client until
 * `fin`, and ends. Here: the accept loop stops after its first client and
 * serves it alone, awaited as tcp_echo.ts does; other clients connect (the
 * kernel completes their handshake) and wait in the backlog, unserved. The
 * server stops when that client sends "fin" or leaves. */
async function serveOnlyClient(conn: Deno.TcpConn): Promise<void> {
  if (onlyClientTaken) {
    // Only where two listeners serve (IPv4 beside an IPv6-only "::"): the
    // other one accepted a second client. It waits as if in the backlog,
    // unserved, until shutdown closes it.
    unserved.push(conn);
    return;
  }
  onlyClientTaken = true;
  const peer = formatAddress(conn.remoteAddr);
  await serveClient(conn);
  stopServer(`${peer} leaving`); // after "fin", already stopping: no effect
}

let onlyClientTaken = false;
/** Clients accepted but never served (see serveOnlyClient). */
const unserved: Deno.TcpConn[] = [];

// ---- FAIR TURNS BEGIN ------------------------------------------------------
// ===========================================================================
// Beyond the sheet: fair turns
// ===========================================================================
//
// The sheet's select() returns the whole list of ready sockets, and its loop
// serves every one of them before it calls select() again: however many
// clients talk at once, each waits at most one pass. Deno's event loop looks
// the same from here, but it is not. All our pending reads are polled by one
// task of tokio (the Rust runtime under Deno), and tokio gives a task a
// budget of 128 completed operations each time it runs, so that no task
// keeps the thread. Once the budget is spent, the other ready reads are put
// off until the kernel has been asked again, behind every socket that new
// question finds ready. The clients served in one turn answer quickly and
// are ready again for the next: past about 128 busy clients the same ones
// are served turn after turn, and the others starve (bench/RESULTS.md, "the
// knee").
//
// So we never give Deno more reads than it finishes in one turn: at most
// READ_SLOTS reads wait inside Deno at once. A client that wants to read
// takes a free slot, or waits in a first-come, first-served queue here (its
// bytes wait in the kernel meanwhile, at no cost). When its read completes
// it hands its slot to the first client in the queue, echoes, and queues
// again at the back: every client that wants a turn gets one before anyone
// gets two, which is the sheet's pass again.
//
// A silent client would keep its slot for ever, and READ_SLOTS silent
// clients would block everybody. So while anyone waits, a sweep runs every
// SWEEP_MS: a read already waiting at the previous sweep belongs to a silent
// client and gives its slot up (it is "parked"). A parked read stays pending
// in Deno and costs nothing until its client speaks; it then hands no slot
// over, and its client queues like everybody. A client that has sent
// nothing yet starts parked, so a flood of idle connections holds no slot.
// When no read at all ended in a whole sweep, every slot is held by a
// silent client (slots change hands only at a sweep or when a read ends):
// all of them are parked at once, and the next sweep comes sooner,
// QUIET_SWEEP_MS, so that a crowd of clients that each spoke once and went
// silent is through the queue in moments, not seconds.
// When nobody waits, taking and giving back a slot is two counters, and no
// timer runs.

/** Reads allowed to wait inside Deno at once: each client served costs a
 * read and a write out of tokio's budget of 128, so 64 of each fit in one
 * turn; with many more, clients starve again. */
const READ_SLOTS = 64;
/** How often, while clients wait for a slot, reads that have waited a whole
 * sweep give their slot up. Short: a silent client keeps its slot one to two
 * sweeps. Long enough that a busy client's read, whose bytes have arrived,
 * completes well before. */
const SWEEP_MS = 10;
/** The next sweep's delay after a sweep that saw no read end: nobody is
 * being served then, so there is no busy read to mistake for a silent one. */
const QUIET_SWEEP_MS = 1;

/** What a read needs of a connection (a Deno.Conn, or a test's stand-in). */
interface FairConn {
  read(buffer: Uint8Array): Promise<number | null>;
}

/** The slots, their queue and the sweep. One instance serves a thread. */
export class FairTurns {
  /** false after --no-fair: every read goes straight to Deno. */
  enabled = true;
  #free: number;
  readonly #sweepMs: number;
  /** Clients waiting for a slot, first come first served: how to wake each.
   * Served from #head; the array is compacted as it is used up. */
  #queue: (() => void)[] = [];
  #head = 0;
  /** Sweeps and starts of sweeping so far; a read remembers the one it
   * started in. Reads started before #parkedBelow have been parked. */
  #epoch = 0;
  #parkedBelow = 0;
  /** Slots held by reads started in the current epoch, and by those started
   * earlier but not parked yet. */
  #heldNow = 0;
  #heldBefore = 0;
  #timer: ReturnType<typeof setTimeout> | undefined;

  /** Reads that ended in their slot since the last sweep. */
  #ended = 0;
  readonly #quietSweepMs: number;

  constructor(slots: number, sweepMs: number, quietSweepMs = sweepMs) {
    this.#free = slots;
    this.#sweepMs = sweepMs;
    this.#quietSweepMs = quietSweepMs;
  }

  /** Clients waiting for a slot now. */
  get waiting(): number {
    return this.#queue.length - this.#head;
  }

  /** Reads holding a slot now (parked ones do not). */
  get holding(): number {
    return this.#heldNow + this.#heldBefore;
  }

  /** conn.read(buffer), in turn. `talking`: the client has sent something
   * before; a new one reads without a slot, since it may never speak. */
  read(
    conn: FairConn,
    buffer: Uint8Array,
    talking: boolean,
  ): Promise<number | null> {
    if (!this.enabled || !talking) return conn.read(buffer);
    if (this.#free > 0 && this.waiting === 0) {
      this.#free--;
      return this.#readWithSlot(conn, buffer);
    }
    return this.#waitForSlot().then(() => this.#readWithSlot(conn, buffer));
  }

  /** conn.read(buffer) in the slot just taken, given back when the read
   * ends. A callback on the read gives it back, rather than an async
   * function around the read: a silent client's read may wait for hours,
   * and a callback costs less memory to keep waiting than a suspended
   * function. (So a read must fail through its promise, as Deno's do, never
   * by throwing: its slot would never come back.) */
  #readWithSlot(
    conn: FairConn,
    buffer: Uint8Array,
  ): Promise<number | null> {
    const epoch = this.#epoch;
    this.#heldNow++;
    const read = conn.read(buffer);
    const release = () => this.#release(epoch);
    read.then(release, release); // the caller handles the read's failure
    return read;
  }

  /** A read that took its slot in `epoch` has ended. */
  #release(epoch: number): void {
    // A parked read has no slot left to hand over.
    if (epoch < this.#parkedBelow) return;
    this.#ended++;
    if (epoch === this.#epoch) this.#heldNow--;
    else this.#heldBefore--;
    this.#handOver(1);
  }

  /** Queues the caller; resolves once a slot has been handed to it. */
  #waitForSlot(): Promise<void> {
    if (this.#timer === undefined) {
      // Sweeping starts: reads from now on are a new epoch, so that the
      // first sweep parks only reads that have waited all of SWEEP_MS.
      this.#heldBefore += this.#heldNow;
      this.#heldNow = 0;
      this.#epoch++;
      this.#ended = 0;
      this.#schedule(this.#sweepMs);
    }
    return new Promise((resolve) => this.#queue.push(resolve));
  }

  /** Gives `slots` slots to the first clients in the queue; any left over
   * are free. */
  #handOver(slots: number): void {
    const queue = this.#queue;
    while (slots > 0 && this.#head < queue.length) {
      const wake = queue[this.#head++];
      wake();
      slots--;
    }
    if (this.#head === queue.length) {
      queue.length = 0;
      this.#head = 0;
    } else if (this.#head >= 1024 && this.#head * 2 >= queue.length) {
      queue.splice(0, this.#head); // memory stays bounded by the clients
      this.#head = 0;
    }
    this.#free += slots;
  }

  #schedule(ms: number): void {
    const timer = setTimeout(() => this.sweep(), ms);
    Deno.unrefTimer(timer); // never what keeps the process alive
    this.#timer = timer;
  }

  /** Parks every read that started before the last sweep (or before the
   * queue formed), and hands its slot to a waiting client; when no read
   * ended since the last sweep, parks every read holding a slot. Runs from
   * its timer while the queue is not empty; a test may call it. */
  sweep(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    const quiet = this.#ended === 0;
    this.#ended = 0;
    let parked = this.#heldBefore;
    this.#parkedBelow = this.#epoch;
    if (quiet) {
      // Every holder got its slot at the last sweep or earlier: it has
      // waited a whole interval too.
      parked += this.#heldNow;
      this.#heldNow = 0;
      this.#parkedBelow = this.#epoch + 1;
    }
    this.#heldBefore = this.#heldNow;
    this.#heldNow = 0;
    this.#epoch++;
    this.#handOver(parked);
    if (this.waiting > 0) {
      this.#schedule(quiet ? this.#quietSweepMs : this.#sweepMs);
    }
  }
}

/** This thread's slots. */
const fairTurns = new FairTurns(READ_SLOTS, SWEEP_MS, QUIET_SWEEP_MS);

/** conn.read(buffer), waiting for this client's turn (see above). */
function fairRead(
  conn: FairConn,
  buffer: Uint8Array,
  talking: boolean,
): Promise<number | null> {
  return fairTurns.read(conn, buffer, talking);
}
// ---- FAIR TURNS END --------------------------------------------------------

// ===========================================================================
// The command line
// ===========================================================================

interface Options extends CommonOptions {
  maxLine: number;
  oneClient: boolean;
  /** false after --no-fair. */
  fair: boolean;
}

/** This server's own options, besides --port, --host, --quiet, --help. */
const OPTIONS = {
  "max-line": { type: "string", default: String(DEFAULT_MAX_LINE) },
  "one-client": { type: "boolean", default: false },
  "no-fair": { type: "boolean", default: false },
} as const;

const USAGE = `Usage: ${howToRun()} [options]

The "OK / fin" server of sheet 001: serves many clients at once from one
thread, prints each message with its sender and answers OK to it. The
message "fin" from ANY client stops the server (that is the exercise).

A message is a line ("\\n" or "\\r\\n"), answered "OK\\n". From a client that
has not yet sent a newline (the sheet's client.py), what it sends before a
${UNFRAMED_PAUSE_MS} ms pause is a message, answered "OK" with no newline.

Options:
  --port N       port to listen on, 0 lets the system choose (default ${DEFAULT_PORT})
  --host H       address to listen on (default ${DEFAULT_HOST}: all interfaces,
                 IPv4 and IPv6)
  --max-line N   longest message in bytes; a client sending a longer line
                 gets an error line and is closed (default ${DEFAULT_MAX_LINE})
  --one-client   the sheet's first server: serve the first client only (the
                 others wait, unserved) and stop when it sends "fin" or leaves
  --no-fair      no fair turns: past ~128 busy clients some starve (to see
                 what the turns prevent; see "fair turns" in the source)
  --quiet        no line per client or message (the ready line and summary
                 remain)
  -h, --help     show this help and exit

Try it: deno run -N client.ts --port ${DEFAULT_PORT}  (or: nc localhost ${DEFAULT_PORT})`;

/** Returns the options, or the exit code when there is nothing to serve. */
export function parseOptions(args: string[]): Options | number {
  return readCommandLine(args, (common, values) => ({
    ...common,
    maxLine: parseMaxLine(String(values["max-line"])),
    oneClient: values["one-client"] === true,
    fair: values["no-fair"] !== true,
  }));
}

/** A line limit is a whole number of bytes from 1 to MAX_MAX_LINE. */
export function parseMaxLine(text: string): number {
  const bytes = /^\d{1,9}$/.test(text) ? Number(text) : NaN;
  if (!(bytes >= 1 && bytes <= MAX_MAX_LINE)) {
    throw new UsageError(
      `Invalid --max-line "${text}": expected a number of bytes from 1 to ${MAX_MAX_LINE}`,
    );
  }
  return bytes;
}

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
