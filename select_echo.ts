#!/usr/bin/env -S deno run -N
/**
 * # select_echo.ts — event-loop TCP echo server: many clients, one thread
 *
 * Sends back every byte each client sends, until that client closes. It
 * serves MANY clients at once from ONE thread: instead of waiting for one
 * client to leave, it waits for whichever socket has something to do. In the
 * design space this is the event-loop server, between tcp_echo.ts (one
 * client at a time) and worker_echo.ts (several threads).
 *
 * The sheet's loop calls `select()` on the listening socket and every client
 * socket, then handles each socket that became readable. Deno's event loop
 * (epoll on Linux, kqueue on macOS) IS that `select()` here: every pending
 * `accept()` or `read()` below is a socket handed to it, and each resolved
 * promise is one socket coming back readable:
 *   listening socket readable  ↔  `await listener.accept()` resolves
 *   client socket readable     ↔  `await conn.read(buffer)` resolves: write back
 *   zero bytes read            ↔  `read()` gives null: close, forget the client
 * Waiting costs nothing per client, so thousands of idle clients are cheap.
 *
 * Sheet: TP5b "Socket Serveur" (seeds/000), §2.1 "Version select". The
 * sheet's Python, line for line:
 *   s.listen(1)                     ↔  BACKLOG = 511 (accept() is quick now)
 *   l = []                          ↔  clients (a Map, in the skeleton)
 *   select.select(l + [s], [], [])  ↔  Deno's event loop: every pending
 *                                       accept() and read() below
 *   s.accept(); l.append(sc)        ↔  conn = await listener.accept(), then
 *                                       serveClient(conn) NOT awaited
 *   sc.recv(1500); sc.sendall(data) ↔  conn.read(buffer); writeAll(conn, …)
 *   len 0: sc.close(); l.remove(sc) ↔  null: closeQuietly(conn); forget(conn)
 * The one difference from tcp_echo.ts that matters is the deciding line of
 * acceptLoop(): the `await` before serveClient() is gone.
 *
 * @run deno run -N select_echo.ts
 * Try it: `nc localhost 7777` in several terminals at once, `ss -tnp` in
 * another; every client is echoed at the same time.
 * Siblings: tcp_echo.ts, worker_echo.ts, udp_echo.ts, client.ts,
 * ok_server.ts, check.ts.
 *
 * Permissions: `-N` (network) only: it listens and talks to clients.
 *
 * Reading order: the lesson (acceptLoop and serveClient), then main(), then
 * "beyond the sheet" (client limit, buffers, fairness, idle timeout), the
 * command line, and the skeleton that every server of the kit shares.
 */

import { parseArgs } from "node:util";

const PROGRAM = "select_echo";
/** How users run it; messages that say how to run it repeat it. */
const RUN_LINE = `deno run -N ${PROGRAM}.ts`;
/** The sheet's port (the real echo service is port 7, reserved to root). */
const DEFAULT_PORT = 7777;
/** All interfaces, IPv6 and IPv4 on one port, like the sheet's `AF_INET6`
 * socket bound to `("", 7777)`. */
const DEFAULT_HOST = "::";

// ===========================================================================
// The lesson: serve every client at once, from one thread
// ===========================================================================

/** Clients arriving together wait in this kernel queue until accept() takes
 * them; accept() is quick here, so a long queue only absorbs bursts (511 is
 * Deno's and Node's default). */
const BACKLOG = 511;

/** Clients served and bytes echoed, for the summary line. */
const stats = { clients: 0, bytes: 0 };

/** The sheet's select() loop, as far as the listening socket goes: each
 * time it is readable, accept the client and add it to the list. */
async function acceptLoop(
  listener: Deno.TcpListener,
  maxClients: number,
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
    if (clients.size >= maxClients) {
      refuse(conn, maxClients); // beyond the sheet: --max-clients
      continue;
    }
    // THE line that makes this server concurrent: we start serving this
    // client and, without waiting for it to leave, go back to accept() the
    // next one (Go's `go handle(c)`). Each client's loop then waits on its
    // own socket, and Deno's event loop resumes whichever socket is
    // readable: the sheet's select(), done for us. tcp_echo.ts awaits here.
    // serveClient() never rejects, so nobody needs to await it.
    serveClient(conn);
  }
}

/** The sheet's work for one readable client socket, as a loop: read what it
 * sent, write it back, until it closes. Never rejects: nobody awaits it, and
 * in Deno an unhandled rejection ends the whole process. */
async function serveClient(conn: Deno.TcpConn): Promise<void> {
  const peer = welcome(conn);
  stats.clients++;
  if (idleTimeoutMs > 0) scheduleIdleCheck();
  let echoed = 0;
  let fullReads = 0;
  let ending = "left";
  const small = takeSmallBuffer();
  let buffer: Bytes = small;
  try {
    // Deno leaves Nagle's algorithm on; with it, an echo split over two
    // reads waits up to 40 ms for the client's delayed ACK before its
    // second part leaves. An echo server wants every byte out at once.
    conn.setNoDelay(true);
    for (;;) {
      // Beyond the sheet: wait for this client's turn, then the sheet's
      // recv(). Without the turns, past ~128 busy clients Deno serves the
      // same ones again and again while the others starve.
      const n = await fairRead(conn, buffer, echoed > 0);
      // null: the client closed, or half-closed, its sending side (the
      // sheet's zero-length recv). Every byte it sent has been echoed by
      // now, so closing is safe.
      if (n === null) break;
      heardFrom(conn); // beyond the sheet: --idle-timeout
      // Awaiting the write is what bounds memory: a client that sends but
      // never reads fills the kernel buffers, then this await waits, and we
      // stop reading from it. Nothing piles up in our process, and the
      // other clients go on: only this one is waiting.
      await writeAll(conn, buffer.subarray(0, n));
      echoed += n;
      // Beyond the sheet: a bulk client borrows a large buffer, and gives
      // the others their turn after a burst of full reads. It borrows after
      // two full small reads in a row, not one: a borrowed buffer waits in
      // the client's next read, and a client that sent exactly 128 bytes
      // and went quiet would keep one of the few for good.
      fullReads = n === buffer.length ? fullReads + 1 : 0;
      if (buffer !== small || fullReads >= 2) {
        buffer = nextBuffer(buffer, n, small);
      }
      if (fullReads === ECHOES_PER_TURN) {
        fullReads = 0;
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
    smallBuffers.push(small); // no read is using it any more
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
  idleTimeoutMs = options.idleTimeoutMs;
  fairTurns.enabled = options.fair;

  let listeners: Deno.TcpListener[];
  try {
    listeners = listen(options);
  } catch (err) {
    warn(describeListenError(err, options));
    return 1;
  }
  const shutdown = installShutdown(() => closeAll(listeners));
  announce(`listening on ${describeListeners(listeners)}`);

  await Promise.all(
    listeners.map((listener) => acceptLoop(listener, options.maxClients)),
  );
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
// Beyond the sheet: a bound on clients
// ===========================================================================

/** --max-clients default: enough for the "C10K" problem this design solves
 * (memory per idle client: bench/RESULTS.md, "idle"). A bound turns a flood
 * into clear "refused" lines. Where descriptors run out first, accept()
 * fails with EMFILE and the accept loop backs off until some free up. */
const DEFAULT_MAX_CLIENTS = 10_000;

/** One client too many: accepted only to be closed. Left in the backlog, it
 * would wait without a word; closed, it knows at once. */
function refuse(conn: Deno.TcpConn, maxClients: number): void {
  log(
    `${
      formatAddress(conn.remoteAddr)
    } refused: ${clients.size} clients already (--max-clients ${maxClients})`,
  );
  closeQuietly(conn);
}

// ===========================================================================
// Beyond the sheet: buffers that cost little per idle client
// ===========================================================================

type Bytes = Uint8Array<ArrayBuffer>;

/** A waiting read() holds its buffer, so an idle client costs its buffer.
 * Idle clients wait with this small one (a typed line, or a 64-byte
 * message, fits in one read); a client whose read fills it is sending in
 * bulk, and borrows a large buffer until a read comes back short. A smaller
 * buffer cannot wait instead: a zero-length read returns 0 at once, it does
 * not wait for data. (Sizes measured: bench/RESULTS.md, "idle".) */
const SMALL_BUFFER_SIZE = 128;
/** Every ArrayBuffer carries bookkeeping of its own, in V8 and in the
 * memory allocator, bigger than a small buffer's bytes. So small buffers
 * are cut from shared slabs, this many at a time, and a client that leaves
 * gives its small buffer back for the next one. The price: once a crowd of
 * clients has left, their small buffers stay, ready for the next crowd. */
const SMALL_BUFFERS_PER_SLAB = 256;
/** Small buffers free for new clients. */
const smallBuffers: Bytes[] = [];

/** A small buffer for a new client: a free one, or one of a new slab. */
function takeSmallBuffer(): Bytes {
  if (smallBuffers.length === 0) {
    const slab = new ArrayBuffer(SMALL_BUFFER_SIZE * SMALL_BUFFERS_PER_SLAB);
    for (let at = slab.byteLength; at > 0; at -= SMALL_BUFFER_SIZE) {
      smallBuffers.push(
        new Uint8Array(slab, at - SMALL_BUFFER_SIZE, SMALL_BUFFER_SIZE),
      );
    }
  }
  return smallBuffers.pop()!;
}

/** Bigger reads mean fewer trips through the event loop (bench/RESULTS.md,
 * "bulk"). */
const LARGE_BUFFER_SIZE = 256 * 1024;
/** At most this many large buffers exist (4 MiB); a bulk client that finds
 * none free keeps its small one, so memory stays bounded however many
 * clients stream at once. */
const LARGE_BUFFER_COUNT = 16;

/** Free large buffers, shared by all clients; allocated on first need. */
const largeBuffers: Bytes[] = [];
let largeBuffersMade = 0;

/** The buffer for a client's next read, after a read of `n` bytes into
 * `buffer`. A read that fills the small buffer means more is waiting: take
 * a large one if any is free. A read that leaves the large one part empty
 * means the burst is over: give it back, so that it waits in no idle
 * client's read. (A message between 128 bytes and 256 KiB thus takes two
 * reads: the price of cheap idle clients.) */
export function nextBuffer(buffer: Bytes, n: number, small: Bytes): Bytes {
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

// ===========================================================================
// Beyond the sheet: a bulk client does not hold the loop
// ===========================================================================

/** A read whose bytes have already arrived completes without a trip through
 * the event loop, so one client streaming in bulk could be echoed many times
 * in a row while nothing else runs. After this many full reads in a row a
 * client waits for the next turn of the loop, so that the others (and
 * accept(), timers, signals) get theirs. Waiting after every echo would cost
 * bulk throughput; a short read ends the burst. */
const ECHOES_PER_TURN = 16;

/** The wait for the next turn of the event loop. setImmediate runs its
 * callback once the loop has polled the sockets again (a 0 ms setTimeout
 * waits longer). One shared promise per turn releases every waiting client,
 * so the cost does not grow with their number. */
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
// Beyond the sheet: closing silent clients (--idle-timeout)
// ===========================================================================

/** Milliseconds; 0 means never. Set by main(). */
let idleTimeoutMs = 0;
/** Clients closed for silence, so that their failed read is told apart from
 * a shutdown. */
const timedOut = new WeakSet<Deno.TcpConn>();
/** A timer holds at most 2^31−1 ms (about 24.8 days); asked for more, it
 * fires after 1 ms. Longer timeouts are reached in steps of this. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/** The map of clients keeps insertion order; moving a client to the end
 * whenever it sends keeps it sorted from the longest silent to the latest
 * heard, so the idle check looks only at the clients it closes. */
function heardFrom(conn: Deno.TcpConn): void {
  if (idleTimeoutMs === 0) return;
  clients.delete(conn);
  clients.set(conn, Date.now());
}

/** The one timer of the idle check, set for when the longest-silent client
 * would expire. */
let idleTimer: ReturnType<typeof setTimeout> | undefined;

function scheduleIdleCheck(): void {
  if (idleTimer !== undefined) return;
  for (const [conn, lastHeard] of clients) {
    if (timedOut.has(conn)) continue; // closed already, leaving
    const due = Math.max(0, lastHeard + idleTimeoutMs - Date.now());
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

// ===========================================================================
// The command line
// ===========================================================================

interface Options extends CommonOptions {
  maxClients: number;
  /** Milliseconds; 0 means never. */
  idleTimeoutMs: number;
  /** false after --no-fair. */
  fair: boolean;
}

/** This server's own options, besides --port, --host, --quiet, --help. */
const OPTIONS = {
  "max-clients": { type: "string", default: String(DEFAULT_MAX_CLIENTS) },
  "idle-timeout": { type: "string", default: "0" },
  "no-fair": { type: "boolean", default: false },
} as const;

const USAGE = `Usage: ${howToRun()} [options]

Event-loop TCP echo server: sends back every byte it receives, serving many
clients at once from one thread.

Options:
  --port N     port to listen on, 0 lets the system choose (default ${DEFAULT_PORT})
  --host H     address to listen on (default ${DEFAULT_HOST}: all interfaces,
               IPv4 and IPv6)
  --max-clients N
               clients served at once; one more is closed at once and logged
               (default ${DEFAULT_MAX_CLIENTS})
  --idle-timeout SECONDS
               close a client silent that long, such as 30 or 0.5
               (default: never)
  --no-fair    no fair turns: past ~128 busy clients some starve (to see
               what the turns prevent; see "fair turns" in the source)
  --quiet      no line per client (the ready line and summary remain)
  -h, --help   show this help and exit

Try it: nc localhost ${DEFAULT_PORT}`;

/** Returns the options, or the exit code when there is nothing to serve. */
export function parseOptions(args: string[]): Options | number {
  return readCommandLine(args, (common, values) => ({
    ...common,
    maxClients: parseMaxClients(String(values["max-clients"])),
    idleTimeoutMs: parseSeconds(String(values["idle-timeout"])) * 1000,
    fair: values["no-fair"] !== true,
  }));
}

/** At least one client, or the server would refuse everybody. */
export function parseMaxClients(text: string): number {
  const max = /^\d{1,9}$/.test(text) ? Number(text) : NaN;
  if (!(max >= 1)) {
    throw new UsageError(
      `Invalid --max-clients "${text}": expected a whole number of at least 1`,
    );
  }
  return max;
}

/** Seconds, decimals allowed ("0.5"); 0 turns the timeout off. */
export function parseSeconds(text: string): number {
  const seconds = /^\d{1,9}(\.\d{1,3})?$/.test(text) ? Number(text) : NaN;
  if (!(seconds >= 0)) {
    throw new UsageError(
      `Invalid --idle-timeout "${text}": expected seconds, such as 30 or 0.5 (0: never)`,
    );
  }
  return seconds;
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
