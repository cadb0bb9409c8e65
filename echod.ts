#!/usr/bin/env -S deno run -N --allow-read=echod.ts --unstable-net
/**
 * # echod.ts — the echo service (RFC 862) over TCP and UDP, for engineers
 *
 * Sends back every byte each TCP client sends and every UDP datagram, whole,
 * to its sender, on the same port (7777 by default; `--port 7`, the real
 * echo port, where the user may bind it). The lessons (tcp_echo.ts,
 * select_echo.ts, worker_echo.ts, udp_echo.ts) show one step of the sheet
 * each; this file is what an engineer runs, and carries, once, everything
 * the sheets leave out. Each section extends one lesson:
 *   main()                        ↔  select_echo.ts's main() + UDP + threads
 *   "TCP": acceptLoop,            ↔  select_echo.ts + what 10,000 clients
 *     serveClient, buffers, the       need: --max-clients, slab buffers, the
 *     bulk yield, fair turns,         bulk yield, FairTurns (fair past ~128
 *     --idle-timeout                  busy clients), clamped idle timers
 *   "Threads": startThread,       ↔  worker_echo.ts + supervision: N Web
 *     runThread, restartDelay         Workers on a reusePort listener each,
 *                                     a dead one restarted with back-off
 *   "UDP": echoLoop, loopGuard,   ↔  udp_echo.ts + hardening: 8 receive
 *     LogLimiter                      loops, whole datagrams, the privileged
 *                                     and own-port drop, rate-limited logs
 *   "Skeleton": listening,        ↔  the lessons' skeleton, TCP and UDP on
 *     accepting, shutdown             one port; SIGINT/SIGTERM drain, summary
 * The sheet's lines themselves are mapped in the lessons' headers:
 *   `conn.read(buffer)`           ↔  `fairRead(conn, buffer, echoed > 0)`
 *   `socket.receive(buffer)`      ↔  `[datagram, peer] = await socket.receive(buffer)`
 *
 * @run deno run -N --allow-read=echod.ts --unstable-net echod.ts
 * Try it: `nc localhost 7777` and `nc -u localhost 7777`; `--help` lists
 * the options. Log lines keep the lessons' shapes ("127.0.0.1:53422
 * connected", "… left after 6 bytes echoed", the summary on Ctrl-C).
 *
 * Permissions: `-N` (network): it listens and talks to clients.
 * `--allow-read=echod.ts`: with `--threads N`, each thread runs this same
 * file, which Deno reads again (run it from its folder). `--unstable-net`
 * is not a permission: UDP (Deno.listenDatagram) and `reusePort` need it.
 * Without -N on a terminal, Deno asks once, for the network as a whole.
 */

import { parseArgs } from "node:util";

const PROGRAM = "echod";
/** How users run it; messages that say how to run it repeat it. */
const RUN_LINE =
  `deno run -N --allow-read=${PROGRAM}.ts --unstable-net ${PROGRAM}.ts`;
/** The sheet's port. The echo service's own is 7, which only root (or a
 * process with CAP_NET_BIND_SERVICE) may bind. */
const DEFAULT_PORT = 7777;
/** All interfaces, IPv6 and IPv4 on one port. */
const DEFAULT_HOST = "::";

// ===========================================================================
// main: listen on TCP and UDP, serve (one event loop, or threads), drain on
// SIGINT/SIGTERM, print the summary. Extends select_echo.ts's main().
// ===========================================================================

async function main(args: string[]): Promise<number> {
  const options = parseOptions(args);
  if (typeof options === "number") return options; // --help, or a mistake
  const missing = missingFlag(options);
  if (missing) {
    warn(missing);
    return 1;
  }
  if (!netPermission()) {
    warn(describeListenError(new Deno.errors.NotCapable(), options, "tcp"));
    return 1;
  }
  let sockets: Sockets;
  try {
    sockets = listen(options);
  } catch (err) {
    const failed = err instanceof ListenError ? err : null;
    warn(
      describeListenError(failed?.failure ?? err, options, failed?.transport),
    );
    return 1;
  }
  idleTimeoutMs = options.idleTimeoutMs;
  fairTurns.enabled = options.fair;
  allowAnyPort = options.allowAnyPort;
  const where = describeListeners(sockets);
  const threaded = options.threads > 1 && sockets.tcp.length > 0;

  const shutdown = installShutdown(() => {
    if (threaded) stopThreads();
    closeAll(sockets);
  });
  const serving: Promise<void>[] = [];
  if (threaded) {
    // The main thread listened to choose the address(es) and learn the real
    // port (for --port 0); the threads take the TCP port over (reusePort).
    pool.order = {
      options,
      addresses: sockets.tcp.map((l) => l.addr),
      lang,
    };
    for (const listener of sockets.tcp) listener.close();
    sockets.tcp = [];
    const failure = await startThreads(options.threads);
    if (failure) {
      warn(failure);
      for (const socket of sockets.udp) closeQuietly(socket);
      return 1;
    }
    serving.push(threadsStopped());
  } else {
    for (const listener of sockets.tcp) {
      serving.push(acceptLoop(listener, options.maxClients));
    }
  }
  for (const socket of sockets.udp) serving.push(...startReceiveLoops(socket));
  announce(
    MESSAGES.listening(
      where,
      options.tcp,
      options.udp,
      threaded ? pool.threads.size : 0,
    ),
  );

  await Promise.all(serving);
  // The accept loops are over; wait for the clients' last lines.
  await clientsGone();
  flushDatagramLog();
  announce(MESSAGES.stopped(shutdown.reason || "closing", options));
  return 0;
}

// ===========================================================================
// TCP: select_echo.ts + what 10,000 clients need. The accept loop and the
// client loop are select_echo.ts's, with a bound on clients, cheap buffers,
// a yield for bulk clients, fair turns and an idle timeout around them.
// ===========================================================================

/** Clients arriving together wait in this kernel queue (one per thread)
 * until accept() takes them (511 is Deno's and Node's default). */
const BACKLOG = 511;

/** Clients served and bytes echoed over TCP (in the main thread: summed
 * from every thread), for the summary line. */
const stats: Counts = { clients: 0, bytes: 0 };

/** select_echo.ts's accept loop, with --max-clients. */
async function acceptLoop(
  listener: Deno.TcpListener,
  maxClients: number,
): Promise<void> {
  for (;;) {
    let conn: Deno.TcpConn;
    try {
      conn = await listener.accept();
    } catch (err) {
      if (err instanceof Deno.errors.BadResource) return; // closed: shutdown
      await acceptFailed(err); // a vanished client, or no descriptor left
      continue;
    }
    if (clients.size >= maxClients) {
      refuse(conn, maxClients);
      continue;
    }
    // Not awaited: the event loop serves every client at once (see
    // select_echo.ts). serveClient() never rejects.
    serveClient(conn);
  }
}

/** select_echo.ts's client loop: read, write back, until the client
 * closes; reads wait for the client's fair turn, buffers are borrowed, and
 * a bulk client yields. Never rejects: nobody awaits it. */
async function serveClient(conn: Deno.TcpConn): Promise<void> {
  const peer = welcome(conn);
  stats.clients++;
  if (idleTimeoutMs > 0) scheduleIdleCheck();
  let echoed = 0;
  let fullReads = 0;
  let ending: Ending = "left";
  const small = takeSmallBuffer();
  let buffer: Bytes = small;
  try {
    // Deno leaves Nagle's algorithm on; an echo split over two reads would
    // wait up to 40 ms for the client's delayed ACK.
    conn.setNoDelay(true);
    for (;;) {
      const n = await fairRead(conn, buffer, echoed > 0);
      if (n === null) break; // the client closed (or half-closed): done
      heardFrom(conn);
      // Awaiting the write bounds memory: a client that never reads stops
      // being read from, and only it waits. (writeAll() only for the rest of
      // a partial write: one async call less per message.)
      const written = await conn.write(buffer.subarray(0, n));
      if (written < n) await writeAll(conn, buffer.subarray(written, n));
      echoed += n;
      // A bulk client borrows a large buffer after two full small reads in
      // a row (a client that sent exactly 128 bytes and went quiet would
      // otherwise keep one of the few), and yields after a burst.
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
    ending = timedOut.has(conn) ? "timed out" : describeDisconnect(err, peer);
  } finally {
    forget(conn);
    closeQuietly(conn);
    if (buffer !== small) largeBuffers.push(buffer);
    smallBuffers.push(small); // no read is using it any more
  }
  stats.bytes += echoed;
  log(MESSAGES.left(peer, ending, echoed));
}

/** --max-clients default (per thread): enough for "C10K". A bound turns a
 * flood into clear "refused" lines; where descriptors run out first,
 * accept() fails with EMFILE and the accept loop backs off. */
const DEFAULT_MAX_CLIENTS = 10_000;

/** One client too many: accepted only to be closed, so it knows at once. */
function refuse(conn: Deno.TcpConn, maxClients: number): void {
  log(
    MESSAGES.refused(formatAddress(conn.remoteAddr), clients.size, maxClients),
  );
  closeQuietly(conn);
}

// ===========================================================================
// TCP, select_echo.ts + what 10,000 clients need: buffers that cost little
// per idle client
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
// TCP, select_echo.ts + what 10,000 clients need: a bulk client does not
// hold the loop
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

// ===========================================================================
// TCP, select_echo.ts + what 10,000 clients need: fair turns
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
//
// A parked read that ends has spent tokio's budget like any other: when a
// crowd of parked clients speaks at once (10,000 clients that each said
// hello, then all start talking), thousands of reads complete outside the
// slots, and our READ_SLOTS reads (and their writes) fill the budget before
// them. They were served a few thousand a second, for seconds, while the
// queue went round many times (busiest/slowest 5 to 35), and slot reads put
// off behind them were parked as silent, which made more of them. So a
// parked read that ends takes a slot (a free one, or the next one given
// back), and the slots taken stay out while parked reads keep ending: they
// come back at the first sweep that saw none end. While parked clients wake
// up, fewer of ours wait in Deno (down to READ_SLOTS / 8, so that the queue
// always moves), and theirs drain first.
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
  /** Clients waiting for a slot, first come first served: how to start
   * each one's read. Served from #head; the array is compacted as it is used
   * up. */
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
  /** What gives back a slot taken in #releaseEpoch. */
  #releaseEpoch = 0;
  #releaseIt = () => this.#release(0);

  /** Reads that ended in their slot since the last sweep. */
  #ended = 0;
  readonly #quietSweepMs: number;
  /** Slots taken by parked reads that ended, and slots still owed to them
   * (taken from the next reads to end); at most #lendable in all. */
  #lent = 0;
  #owed = 0;
  readonly #lendable: number;
  /** Parked reads that ended since the last sweep. */
  #woke = 0;

  constructor(slots: number, sweepMs: number, quietSweepMs = sweepMs) {
    this.#free = slots;
    this.#lendable = slots - Math.ceil(slots / 8);
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

  /** Slots taken or owed by parked reads that ended. */
  get lent(): number {
    return this.#lent + this.#owed;
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
    return this.#waitForSlot(conn, buffer);
  }

  /** conn.read(buffer) in the slot just taken, given back when the read
   * ends. A callback on the read gives it back, rather than an async
   * function around the read: a silent client's read may wait for hours,
   * and a callback costs less memory to keep waiting than a suspended
   * function. (So a read must fail through its promise, as Deno's do, never
   * by throwing: its slot would never come back.) The callback only needs
   * the epoch, so reads of one epoch share one. */
  #readWithSlot(
    conn: FairConn,
    buffer: Uint8Array,
  ): Promise<number | null> {
    if (this.#releaseEpoch !== this.#epoch) {
      const epoch = this.#releaseEpoch = this.#epoch;
      this.#releaseIt = () => this.#release(epoch);
    }
    this.#heldNow++;
    const read = conn.read(buffer);
    // The caller handles the read's failure.
    read.then(this.#releaseIt, this.#releaseIt);
    return read;
  }

  /** A read that took its slot in `epoch` has ended. */
  #release(epoch: number): void {
    // A parked read has no slot left to hand over: it takes one instead.
    if (epoch < this.#parkedBelow) {
      this.#lend();
      return;
    }
    this.#ended++;
    if (epoch === this.#epoch) this.#heldNow--;
    else this.#heldBefore--;
    this.#handOver(1);
  }

  /** A parked read has ended (see above): it takes a slot. Only while
   * sweeping, so that a sweep always comes to give it back. */
  #lend(): void {
    if (this.#timer === undefined) return;
    this.#woke++;
    if (this.#lent + this.#owed >= this.#lendable) return;
    if (this.#free > 0) {
      this.#free--;
      this.#lent++;
    } else {
      this.#owed++;
    }
  }

  /** Queues the caller; its read starts as soon as a slot is handed to it
   * (there, not a promise reaction later: one promise less per message). */
  #waitForSlot(
    conn: FairConn,
    buffer: Uint8Array,
  ): Promise<number | null> {
    if (this.#timer === undefined) {
      // Sweeping starts: reads from now on are a new epoch, so that the
      // first sweep parks only reads that have waited all of SWEEP_MS.
      this.#heldBefore += this.#heldNow;
      this.#heldNow = 0;
      this.#epoch++;
      this.#ended = 0;
      this.#schedule(this.#sweepMs);
    }
    return new Promise((resolve, reject) =>
      this.#queue.push(() =>
        this.#readWithSlot(conn, buffer).then(resolve, reject)
      )
    );
  }

  /** Gives `slots` slots to the first clients in the queue, once the slots
   * owed to parked reads are paid; any left over are free. */
  #handOver(slots: number): void {
    const repaid = Math.min(slots, this.#owed);
    this.#owed -= repaid;
    this.#lent += repaid;
    slots -= repaid;
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
   * ended since the last sweep, parks every read holding a slot. Gives back
   * the slots lent to parked reads once none ended since the last sweep, or
   * when the queue is empty. Runs from its timer while the queue is not
   * empty; a test may call it. */
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
    if (this.#woke === 0) {
      parked += this.#lent;
      this.#lent = 0;
      this.#owed = 0;
    }
    this.#woke = 0;
    this.#handOver(parked);
    if (this.waiting > 0) {
      this.#schedule(quiet ? this.#quietSweepMs : this.#sweepMs);
    } else {
      // No sweep will come: every slot lent is free again.
      this.#free += this.#lent;
      this.#lent = 0;
      this.#owed = 0;
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

// ===========================================================================
// TCP, select_echo.ts + what 10,000 clients need: closing silent clients
// (--idle-timeout)
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
// Threads: worker_echo.ts + supervision. With --threads N (N > 1), the main
// thread serves UDP and starts N Web Workers, each running this same file
// with its own TCP listener on the port (reusePort: Linux spreads the
// clients over them) and its own event loop, as above. A thread that dies
// is replaced, after a wait that doubles while replacements die young.
// ===========================================================================

/** Everything the main thread keeps about its threads. */
const pool = {
  /** The live threads, by number (1 to --threads). */
  threads: new Map<number, Worker>(),
  /** What every thread is told to serve; set by main(). */
  order: null as ServeOrder | null,
  /** Per thread number, the last wait before replacing it. */
  restartWaits: new Map<number, number>(),
  /** Set on shutdown: threads that end from now on are not replaced. */
  stopping: false,
  /** Wakes main() when the last thread has ended, once stopping. */
  lastThreadGone: undefined as (() => void) | undefined,
};

/** Starts thread number n; resolves once it listens, or cannot. */
function startThread(n: number): Promise<Start> {
  const worker = new Worker(import.meta.url, {
    type: "module",
    name: `${PROGRAM} thread ${n}`,
  });
  pool.threads.set(n, worker);
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
          addCounts(report.stats);
          return gone(report.message);
        case "stopped":
          addCounts(report.stats);
          return forgetThread(n, worker);
      }
    };
    // An error the thread could not report itself (it failed to load, say).
    // Without preventDefault(), it would end the whole process.
    worker.onerror = (event) => {
      event.preventDefault();
      gone(event.message);
    };
    worker.postMessage({ type: "serve", thread: n, ...pool.order! });
  });
}

/** Starts every thread. Returns a line saying why the server cannot
 * listen, or "" once it does. */
async function startThreads(count: number): Promise<string> {
  // Thread 1 alone first: if it cannot listen, none can, and it says why.
  const first = await startThread(1);
  if (first.type === "cannot-listen") return first.line;
  if (first.type === "died") return MESSAGES.threadDied(1, first.message, -1);
  const others: Promise<Start>[] = [];
  for (let n = 2; n <= count && !pool.stopping; n++) {
    others.push(startThread(n));
  }
  let portShared = true;
  for (const [i, start] of (await Promise.all(others)).entries()) {
    if (start.type === "listening") continue;
    if (start.type === "cannot-listen" && start.addrInUse) {
      portShared = false; // not Linux: reusePort does not share the port
    } else {
      replaceThread(i + 2, whyNotListening(start), Date.now());
    }
  }
  if (!portShared) warn(MESSAGES.portNotShared(pool.threads.size));
  return "";
}

/** Starts another thread number n in place of the dead one, which started
 * at `startedAt`, after the wait restartDelay() gives. */
function replaceThread(n: number, why: string, startedAt: number): void {
  if (pool.stopping) return;
  const wait = restartDelay(Date.now() - startedAt, pool.restartWaits.get(n));
  pool.restartWaits.set(n, wait);
  warn(MESSAGES.threadDied(n, why, wait));
  setTimeout(async () => {
    if (pool.stopping) return;
    const restartedAt = Date.now();
    const start = await startThread(n);
    if (start.type === "listening") warn(MESSAGES.threadBack(n));
    else replaceThread(n, whyNotListening(start), restartedAt);
  }, wait);
}

/** A thread that dies is replaced after this wait, doubled each time its
 * replacement dies young (before RESTART_STABLE_MS) up to the maximum, so a
 * fault that kills every new thread at once cannot spin the CPU. */
export const RESTART_DELAY_MIN_MS = 100;
export const RESTART_DELAY_MAX_MS = 30_000;
export const RESTART_STABLE_MS = 10_000;

/** The wait before replacing a thread that lived `livedMs`, when the last
 * wait for its number was `lastWaitMs` (undefined: none yet). */
export function restartDelay(livedMs: number, lastWaitMs?: number): number {
  if (livedMs >= RESTART_STABLE_MS || lastWaitMs === undefined) {
    return RESTART_DELAY_MIN_MS;
  }
  return Math.min(lastWaitMs * 2, RESTART_DELAY_MAX_MS);
}

/** On shutdown: tells every thread to stop; threadsStopped() resolves once
 * all have reported their counts. */
function stopThreads(): void {
  pool.stopping = true;
  for (const worker of pool.threads.values()) {
    worker.postMessage({ type: "stop" });
  }
  if (pool.threads.size === 0) pool.lastThreadGone?.();
}

function threadsStopped(): Promise<void> {
  if (pool.stopping && pool.threads.size === 0) return Promise.resolve();
  return new Promise((resolve) => pool.lastThreadGone = resolve);
}

function forgetThread(n: number, worker: Worker): void {
  worker.terminate(); // already ended, or about to: make sure
  if (pool.threads.get(n) === worker) pool.threads.delete(n);
  if (pool.stopping && pool.threads.size === 0) pool.lastThreadGone?.();
}

function addCounts(counts: Counts): void {
  stats.clients += counts.clients;
  stats.bytes += counts.bytes;
}

/** Why a thread did not start listening, in words. */
function whyNotListening(start: Exclude<Start, { type: "listening" }>): string {
  return start.type === "died" ? start.message : start.line;
}

/** Clients served and bytes echoed; each thread keeps its own. */
type Counts = { clients: number; bytes: number };

/** What every thread is told to serve: the options, the address(es) the
 * main thread's listen() chose, and the language. */
type ServeOrder = {
  options: Options;
  addresses: Deno.NetAddr[];
  lang: "en" | "fr";
};

/** The main thread's orders to a thread. */
type Order = { type: "serve"; thread: number } & ServeOrder | { type: "stop" };

/** A thread's reports to the main thread. */
type Report =
  | { type: "listening" }
  | { type: "cannot-listen"; line: string; addrInUse: boolean }
  | { type: "died"; message: string; stats: Counts }
  | { type: "stopped"; stats: Counts };

/** How a thread's start ended. */
type Start =
  | { type: "listening" }
  | { type: "cannot-listen"; line: string; addrInUse: boolean }
  | { type: "died"; message: string };

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

/** A thread's life: on "serve", listen on the shared port and serve TCP
 * clients as the one-loop server does; on "stop", close everything, report
 * the counts and end. */
function runThread(): void {
  const scope = globalThis as unknown as ThreadScope;
  // An error nothing caught is reported in one line, with the counts so
  // far, and ends this thread only: the main thread starts another.
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

  const sockets: Sockets = { tcp: [], udp: [] };
  scope.onmessage = async ({ data: order }) => {
    if (order.type === "stop") return closeAll(sockets);
    const { options } = order;
    lang = order.lang;
    output.threadTag = `[${order.thread}] `;
    output.quiet = options.quiet;
    idleTimeoutMs = options.idleTimeoutMs;
    fairTurns.enabled = options.fair;
    try {
      sockets.tcp = listenShared(order.addresses);
    } catch (err) {
      const where = { ...options, port: order.addresses[0].port };
      scope.postMessage({
        type: "cannot-listen",
        line: describeListenError(err, where, "tcp"),
        addrInUse: err instanceof Deno.errors.AddrInUse,
      });
      scope.close();
      return;
    }
    scope.postMessage({ type: "listening" });
    await Promise.all(
      sockets.tcp.map((listener) => acceptLoop(listener, options.maxClients)),
    );
    await clientsGone();
    scope.postMessage({ type: "stopped", stats });
    scope.close();
  };
}

/** A thread's own listening sockets, on the addresses the main thread
 * chose. `reusePort` (SO_REUSEPORT) lets every thread listen on the same
 * port; elsewhere than Linux the second thread's fails with AddrInUse, and
 * startThreads() goes on with one thread. */
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

/** What the command line lacks for UDP or the threads, as one line saying
 * how to run it, or "" when nothing is missing. */
function missingFlag(options: Options): string {
  // Without --unstable-net, Deno.listenDatagram does not exist, and Deno
  // answers `reusePort` by ending the whole process (exit code 70).
  if (
    (options.udp || options.threads > 1) &&
    typeof Deno.listenDatagram !== "function"
  ) {
    return MESSAGES.needsUnstableNet(options.udp);
  }
  if (options.threads > 1 && !canReadSelf()) return MESSAGES.needsRead();
  return "";
}

/** Each thread runs this file, which Deno reads again for it: without read
 * permission on it, every thread would die at birth. */
function canReadSelf(): boolean {
  // A `deno compile` binary embeds the file (`--include echod.ts`).
  if (Deno.build.standalone) return true;
  const path = import.meta.filename; // undefined when loaded from a URL
  if (path === undefined) return true;
  return Deno.permissions.querySync({ name: "read", path }).state ===
    "granted";
}

/** Started without -N, Deno would ask at each new address (the TCP port,
 * the UDP one, each thread's, each UDP peer's at its first echo). Ask once,
 * for the network as a whole: one prompt, and whatever the answer, a
 * working server or the one-line message. With -N this asks nothing. */
function netPermission(): boolean {
  const net = { name: "net" } as const;
  if (Deno.permissions.querySync(net).state === "granted") return true;
  return Deno.permissions.requestSync(net).state === "granted";
}

// ===========================================================================
// UDP: udp_echo.ts + hardening. Its receive/send loop, eight times over on
// the one socket, with whole datagrams, the loop guard and logs that a
// flood cannot turn into a flood of lines. Served by the main thread.
// ===========================================================================

/** One receive buffer per loop, bigger than any datagram: the largest UDP
 * payload is 65527 bytes over IPv6 (65507 over IPv4), and Deno's receive()
 * without a buffer of ours cuts at 65507. A datagram that fills the buffer
 * may have been cut, and is dropped rather than echoed short. */
const DATAGRAM_BUFFER_SIZE = 65536;

/** How many receive() calls wait on the socket at once, each with its own
 * buffer (8 × 64 KiB): each trip through the event loop then completes
 * several, which costs less CPU per datagram than one loop; more gain
 * nothing measurable (bench/UDP.md). */
const RECEIVE_LOOPS = 8;

/** Datagrams echoed and their bytes; `dropped` counts those received but
 * not echoed (loop guard, too big to be whole, failed send). */
const udpStats = { datagrams: 0, bytes: 0, dropped: 0 };

function startReceiveLoops(socket: Deno.DatagramConn): Promise<void>[] {
  return Array.from({ length: RECEIVE_LOOPS }, () => echoLoop(socket));
}

/** udp_echo.ts's loop: receive a datagram, send it back to its sender,
 * until the socket is closed; a failed receive is retried, backing off. */
async function echoLoop(socket: Deno.DatagramConn): Promise<void> {
  const buffer = new Uint8Array(DATAGRAM_BUFFER_SIZE);
  const ownPort = (socket.addr as Deno.NetAddr).port;
  const retry = { ms: 0 };
  for (;;) {
    let datagram: Uint8Array;
    let peer: Deno.Addr;
    try {
      // A view into buffer: echoed before the next receive() overwrites it.
      [datagram, peer] = await socket.receive(buffer);
    } catch (err) {
      if (isClosed(err)) return; // closed: shutdown
      await receiveFailed(err, retry);
      continue;
    }
    if (retry.ms > 0) warn(MESSAGES.receivingAgain());
    retry.ms = 0;
    await echoDatagram(socket, datagram, peer as Deno.NetAddr, ownPort);
  }
}

/** Sends one datagram back to its sender, unless it must be dropped. A
 * failed send loses this datagram only. */
async function echoDatagram(
  socket: Deno.DatagramConn,
  datagram: Uint8Array,
  peer: Deno.NetAddr,
  ownPort: number,
): Promise<void> {
  const refusal = datagram.length === DATAGRAM_BUFFER_SIZE
    ? MESSAGES.mayBeCut(DATAGRAM_BUFFER_SIZE)
    : loopGuard(peer.port, ownPort, allowAnyPort);
  if (refusal) return dropped(peer, refusal);
  try {
    // To the exact address and port it came from; an IPv4 peer of the
    // dual-stack socket is "::ffff:a.b.c.d", which reaches it.
    await socket.send(datagram, peer);
  } catch (err) {
    if (isClosed(err)) udpStats.dropped++; // shutdown, mid-send: no line
    else dropped(peer, MESSAGES.cannotSend(errorMessage(err)));
    return;
  }
  udpStats.datagrams++;
  udpStats.bytes += datagram.length;
  logDatagram(datagram.length, peer);
}

// Loop guard. An echo server answers anyone, even a forged sender: a
// datagram "from" another UDP service (DNS on 53, another echo on 7 or on
// our port) would make two services answer each other for ever, and a
// forged sender turns us into a reflector aimed at a system service. So
// datagrams from a source port below 1024, or from this server's own port
// (on any address), are dropped, as OpenBSD's inetd, xinetd and FreeBSD's
// inetd do. Clients' own ports are above 1024. `--allow-any-port` lifts it.

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
  if (port < FIRST_UNPRIVILEGED_PORT) return MESSAGES.guardLow();
  if (port === ownPort) return MESSAGES.guardOwn();
  return "";
}

// Logging without flooding: a line per datagram lets one watch the client
// port change, but a terminal prints far fewer lines a second than loopback
// carries datagrams. So at most DATAGRAM_LINES lines a second, and one line
// a second for drops; the next line says how many got none, and the
// summary counts them all.

/** Lines per second for echoed datagrams. */
const DATAGRAM_LINES = 10;
/** Dropped datagrams: at most one line per this interval. */
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
  if (output.quiet) return;
  const suppressed = datagramLog.allow(performance.now());
  if (suppressed < 0) return;
  if (suppressed > 0) log(MESSAGES.notLogged(suppressed, DATAGRAM_LINES));
  log(MESSAGES.echoedDatagram(length, formatAddress(peer)));
}

/** At shutdown: the datagrams left out since the last line. */
function flushDatagramLog(): void {
  const suppressed = datagramLog.takeSuppressed();
  if (suppressed > 0) log(MESSAGES.notLogged(suppressed, DATAGRAM_LINES));
}

function dropped(peer: Deno.NetAddr, reason: string): void {
  udpStats.dropped++;
  if (output.quiet) return;
  const unlogged = dropLog.allow(performance.now());
  if (unlogged < 0) return;
  warn(MESSAGES.droppedDatagram(formatAddress(peer), reason, unlogged));
}

/** When receive() fails for a reason other than a vanished peer, wait before
 * trying again, doubling the wait up to the maximum. */
const RECEIVE_RETRY_MIN_MS = 10;
const RECEIVE_RETRY_MAX_MS = 1000;

async function receiveFailed(
  err: unknown,
  retry: { ms: number },
): Promise<void> {
  // On Windows an echo to a closed port makes the next receive() fail
  // with ConnectionReset; Linux says nothing to an unconnected socket.
  if (isClientGone(err)) return;
  retry.ms = Math.min(
    Math.max(retry.ms * 2, RECEIVE_RETRY_MIN_MS),
    RECEIVE_RETRY_MAX_MS,
  );
  if (retry.ms === RECEIVE_RETRY_MIN_MS) {
    warn(MESSAGES.cannotReceive(errorMessage(err)));
  }
  await sleep(retry.ms);
}

/** The socket was closed under us: that is how shutdown ends the loops. */
function isClosed(err: unknown): boolean {
  return err instanceof Deno.errors.BadResource ||
    err instanceof Deno.errors.Interrupted;
}

// ===========================================================================
// The command line
// ===========================================================================

interface Options {
  host: string;
  port: number;
  quiet: boolean;
  /** Which services run: both by default, one after --tcp-only or
   * --udp-only. */
  tcp: boolean;
  udp: boolean;
  /** 1: one event loop serves everything; more: TCP threads. */
  threads: number;
  /** Per thread. */
  maxClients: number;
  /** Milliseconds; 0 means never. */
  idleTimeoutMs: number;
  /** false after --no-fair. */
  fair: boolean;
  allowAnyPort: boolean;
}

/** The most threads --threads accepts. */
const MAX_THREADS = 256;

/** Returns the options, or the exit code when there is nothing to serve:
 * 0 after --help (the usage on stdout), 2 after a mistake (one line, then
 * the usage, on stderr). */
export function parseOptions(args: string[]): Options | number {
  try {
    let parsed;
    const rest = takeCommonArgs(args);
    try {
      parsed = parseArgs({
        args: rest,
        strict: true,
        allowPositionals: false,
        options: {
          port: { type: "string", default: String(DEFAULT_PORT) },
          host: { type: "string", default: DEFAULT_HOST },
          "tcp-only": { type: "boolean", default: false },
          "udp-only": { type: "boolean", default: false },
          threads: { type: "string", default: "1" },
          "max-clients": {
            type: "string",
            default: String(DEFAULT_MAX_CLIENTS),
          },
          "idle-timeout": { type: "string", default: "0" },
          "no-fair": { type: "boolean", default: false },
          "allow-any-port": { type: "boolean", default: false },
          quiet: { type: "boolean", default: false },
          help: { type: "boolean", short: "h", default: false },
        },
      });
    } catch (err) {
      // parseArgs names the option and explains, sometimes over several
      // lines ("--port -5": did you mean --port=-5?): keep them, on one.
      throw new UsageError(describeArgsError(err));
    }
    const { values } = parsed;
    if (values.help) {
      console.log(usage());
      return 0;
    }
    output.quiet = values.quiet;
    if (values["tcp-only"] && values["udp-only"]) {
      throw new UsageError(MESSAGES.bothOnly());
    }
    const options: Options = {
      host: values.host,
      port: parsePort(values.port),
      quiet: values.quiet,
      tcp: !values["udp-only"],
      udp: !values["tcp-only"],
      threads: parseThreads(values.threads),
      maxClients: parseMaxClients(values["max-clients"]),
      idleTimeoutMs: parseSeconds(values["idle-timeout"]) * 1000,
      fair: !values["no-fair"],
      allowAnyPort: values["allow-any-port"],
    };
    if (options.threads > 1 && !options.tcp) {
      throw new UsageError(MESSAGES.threadsNeedTcp());
    }
    return options;
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    warn(err.message);
    console.error(usage());
    return 2;
  }
}

/** From one event loop to MAX_THREADS. */
export function parseThreads(text: string): number {
  const threads = /^\d{1,9}$/.test(text) ? Number(text) : NaN;
  if (!(threads >= 1 && threads <= MAX_THREADS)) {
    throw new UsageError(say(
      `Invalid --threads "${text}": expected a whole number from 1 to ${MAX_THREADS}`,
      `--threads « ${text} » invalide\u00a0: un nombre entier de 1 à ${MAX_THREADS} attendu`,
    ));
  }
  return threads;
}

/** At least one client, or the server would refuse everybody. */
export function parseMaxClients(text: string): number {
  const max = /^\d{1,9}$/.test(text) ? Number(text) : NaN;
  if (!(max >= 1)) {
    throw new UsageError(say(
      `Invalid --max-clients "${text}": expected a whole number of at least 1`,
      `--max-clients « ${text} » invalide\u00a0: un nombre entier d'au moins 1 attendu`,
    ));
  }
  return max;
}

/** Seconds, decimals allowed ("0.5"); 0 turns the timeout off. */
export function parseSeconds(text: string): number {
  const seconds = /^\d{1,9}(\.\d{1,3})?$/.test(text) ? Number(text) : NaN;
  if (!(seconds >= 0)) {
    throw new UsageError(say(
      `Invalid --idle-timeout "${text}": expected seconds, such as 30 or 0.5 (0: never)`,
      `--idle-timeout « ${text} » invalide\u00a0: des secondes attendues, comme 30 ou 0.5 (0\u00a0: jamais)`,
    ));
  }
  return seconds;
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

function usage(): string {
  return say(
    `Usage: ${howToRun()} [options]

Echo service (RFC 862): sends back every byte each TCP client sends, and
every UDP datagram, whole, to its sender, on one port.

Options:
  --port N     port to listen on, 0 lets the system choose (default ${DEFAULT_PORT});
               --port 7, the echo service's own, works where you may bind
               it (as root, or with CAP_NET_BIND_SERVICE)
  --host H     address to listen on (default ${DEFAULT_HOST}: all interfaces,
               IPv4 and IPv6)
  --tcp-only   serve TCP only (default: TCP and UDP)
  --udp-only   serve UDP only
  --threads N  TCP threads sharing the port (Linux), each an event loop;
               1 (default) serves TCP and UDP on one; ${MAX_THREADS} at most
  --max-clients N
               TCP clients served at once (by each thread); one more is
               closed at once and logged (default ${DEFAULT_MAX_CLIENTS})
  --idle-timeout SECONDS
               close a TCP client silent that long, such as 30 or 0.5
               (default: never)
  --no-fair    no fair turns: past ~128 busy clients some starve (to see
               what the turns prevent)
  --allow-any-port
               echo datagrams from every source port: no loop guard
  --quiet      no line per client or datagram (the ready line and the
               summary remain)
  --lang fr|en the messages' language (default: from LANG)
  -h, --help   show this help and exit

Loop guard: datagrams from a source port below ${FIRST_UNPRIVILEGED_PORT} (a system service,
or a forged sender aiming us at one) or from this server's own port (another
echo server) are dropped and counted, with at most one line per second.

Try it: nc localhost ${DEFAULT_PORT}; nc -u localhost ${DEFAULT_PORT}`,
    `Utilisation\u00a0: ${howToRun()} [options]

Service d'écho (RFC 862)\u00a0: renvoie chaque octet que chaque client TCP
envoie, et chaque datagramme UDP, entier, à son expéditeur, sur un seul port.

Options\u00a0:
  --port N     port d'écoute, 0 laisse le système choisir (${DEFAULT_PORT} par défaut)\u00a0;
               --port 7, celui du service d'écho, marche là où vous pouvez
               l'ouvrir (en root, ou avec CAP_NET_BIND_SERVICE)
  --host H     adresse d'écoute (${DEFAULT_HOST} par défaut\u00a0: toutes les
               interfaces, IPv4 et IPv6)
  --tcp-only   TCP seulement (par défaut\u00a0: TCP et UDP)
  --udp-only   UDP seulement
  --threads N  fils TCP partageant le port (Linux), chacun une boucle
               d'événements\u00a0; 1 (par défaut) sert TCP et UDP sur une
               seule\u00a0; ${MAX_THREADS} au plus
  --max-clients N
               clients TCP servis à la fois (par fil)\u00a0; un de plus est
               fermé aussitôt, avec une ligne (${
      formatCount(DEFAULT_MAX_CLIENTS)
    } par défaut)
  --idle-timeout SECONDES
               ferme un client TCP muet depuis ce temps, comme 30 ou 0.5
               (par défaut\u00a0: jamais)
  --no-fair    sans tours équitables\u00a0: au-delà de ~128 clients actifs,
               certains attendent sans fin (pour voir ce que les tours
               évitent)
  --allow-any-port
               renvoie les datagrammes de tout port source\u00a0: pas de garde
  --quiet      aucune ligne par client ni par datagramme (la ligne
               d'écoute et le bilan restent)
  --lang fr|en langue des messages (par défaut\u00a0: selon LANG)
  -h, --help   affiche cette aide et quitte

Garde anti-boucle\u00a0: les datagrammes d'un port source inférieur à ${FIRST_UNPRIVILEGED_PORT} (un
service système, ou un expéditeur falsifié qui nous vise vers lui) ou du
port de ce serveur (un autre serveur d'écho) sont rejetés et comptés, avec
au plus une ligne par seconde.

Essayez\u00a0: nc localhost ${DEFAULT_PORT}\u00a0; nc -u localhost ${DEFAULT_PORT}`,
  );
}

// ===========================================================================
// Messages: every line the service prints, in English and in French
// ===========================================================================

/** How a TCP client's stay ended. */
type Ending =
  | "left"
  | "timed out"
  | "reset"
  | "stopped reading"
  | "closed at shutdown"
  | "failed";

/** The French text after "octet(s)": "renvoyé", agreeing with the count. */
function renvoyes(count: number): string {
  return Math.abs(count) >= 2 ? "renvoyés" : "renvoyé";
}

const MESSAGES = {
  listening: (where: string, tcp: boolean, udp: boolean, threads: number) => {
    const what = tcp && udp
      ? say("TCP and UDP", "TCP et UDP")
      : tcp
      ? "TCP"
      : "UDP";
    const on = threads > 0
      ? `, ${plural(threads, "thread", say("thread", "fil"))}`
      : "";
    return say(
      `listening on ${where}, ${what}${on}`,
      `à l'écoute sur ${where}, ${what}${on}`,
    );
  },
  dualStack: () => say("(IPv4 and IPv6)", "(IPv4 et IPv6)"),
  and: () => say(" and ", " et "),
  stopped: (reason: string, options: Options) => {
    const why = reason === "closing" ? say("closing", "fermeture") : reason;
    const tcp = say(
      `${plural(stats.clients, "client")}, ${
        plural(stats.bytes, "byte")
      } echoed`,
      `${plural(stats.clients, "client")}, ${plural(stats.bytes, "octet")} ${
        renvoyes(stats.bytes)
      }`,
    );
    const { datagrams, bytes, dropped } = udpStats;
    const udp = say(
      `${plural(datagrams, "datagram")}, ${
        plural(bytes, "byte")
      } echoed, ${dropped} dropped`,
      `${plural(datagrams, "datagramme")}, ${plural(bytes, "octet")} ${
        renvoyes(bytes)
      }, ${formatCount(dropped)} ${dropped >= 2 ? "rejetés" : "rejeté"}`,
    );
    // The TCP counts as the lessons print them; the datagram counts once
    // any datagram came (always with --udp-only).
    const parts = !options.tcp
      ? [udp]
      : options.udp && datagrams + dropped > 0
      ? [tcp, udp]
      : [tcp];
    return say(
      `stopped by ${why}: ${parts.join(", ")}`,
      `arrêté par ${why}\u00a0: ${parts.join(", ")}`,
    );
  },
  connected: (peer: string) => say(`${peer} connected`, `${peer} connecté`),
  left: (peer: string, ending: Ending, echoed: number) => {
    const en: Record<Ending, string> = {
      left: "left",
      "timed out": `timed out (silent for ${idleTimeoutMs / 1000} s)`,
      reset: "reset the connection",
      "stopped reading": "stopped reading and left",
      "closed at shutdown": "was closed at shutdown",
      failed: "failed",
    };
    const fr: Record<Ending, string> = {
      left: "est parti",
      "timed out": `a été fermé pour silence (muet depuis ${
        (idleTimeoutMs / 1000).toLocaleString("fr-FR")
      }\u00a0s)`,
      reset: "a réinitialisé la connexion",
      "stopped reading": "a cessé de lire et est parti",
      "closed at shutdown": "a été fermé à l'arrêt",
      failed: "a échoué",
    };
    return say(
      `${peer} ${en[ending]} after ${plural(echoed, "byte")} echoed`,
      `${peer} ${fr[ending]} après ${plural(echoed, "octet")} ${
        renvoyes(echoed)
      }`,
    );
  },
  refused: (peer: string, count: number, max: number) =>
    say(
      `${peer} refused: ${count} clients already (--max-clients ${max})`,
      `${peer} refusé\u00a0: déjà ${
        plural(count, "client")
      } (--max-clients ${max})`,
    ),
  cannotAccept: (why: string) =>
    say(
      `cannot accept clients: ${why}`,
      `impossible d'accepter des clients\u00a0: ${MESSAGES.osText(why)}`,
    ),
  retrying: () => say("; retrying", "\u00a0; nouvel essai"),
  acceptingAgain: () =>
    say("accepting clients again", "les clients sont de nouveau acceptés"),
  stillBusy: (ms: number, reason: string) =>
    say(
      `still busy ${ms} ms after ${reason}; exiting`,
      `encore occupé ${formatCount(ms)} ms après ${reason}\u00a0; sortie`,
    ),
  // Listening
  permissionMissing: () =>
    say(
      `Network permission missing: run it as: ${howToRun()}`,
      `Permission réseau manquante\u00a0: lancez-le ainsi\u00a0: ${howToRun()}`,
    ),
  cannotListen: (where: string, why: string) =>
    say(
      `Cannot listen on ${where}: ${why}`,
      `Impossible d'écouter sur ${where}\u00a0: ${why}`,
    ),
  addrInUse: (ss: string) =>
    say(
      `address already in use; stop the other server (see: ${ss}) or choose another --port`,
      `adresse déjà utilisée\u00a0; arrêtez l'autre serveur (voir\u00a0: ${ss}) ou choisissez un autre --port`,
    ),
  privileged: () =>
    say(
      `permission denied; ports below 1024 need root (or CAP_NET_BIND_SERVICE), choose --port ${DEFAULT_PORT}`,
      `permission refusée\u00a0; les ports sous 1024 demandent root (ou CAP_NET_BIND_SERVICE), choisissez --port ${DEFAULT_PORT}`,
    ),
  noSuchAddress: () =>
    say(
      "this machine has no such address; check --host",
      "cette machine n'a pas cette adresse\u00a0; vérifiez --host",
    ),
  /** Deno's English that errorMessage() leaves (a failed name lookup,
   * EMFILE, EINVAL), in French for a French reader. */
  osText: (why: string) =>
    say(
      why,
      why.replace(
        /^failed to lookup address information: .*/,
        "hôte inconnu\u00a0; vérifiez --host",
      ).replace(
        /^Too many open files \(os error (\d+)\)$/,
        "trop de fichiers ouverts (erreur système $1)",
      ).replace(
        /^Invalid argument \(os error (\d+)\)$/,
        "argument invalide (erreur système $1)",
      ),
    ),
  needsUnstableNet: (udp: boolean) =>
    say(
      `${udp ? "UDP" : "Threads sharing a port"} need${
        udp ? "s" : ""
      } the --unstable-net flag: run it as: ${howToRun()}`,
      `${
        udp ? "UDP demande" : "Des fils partageant un port demandent"
      } l'option --unstable-net\u00a0: lancez-le ainsi\u00a0: ${howToRun()}`,
    ),
  needsRead: () =>
    say(
      `Read permission missing (each thread reads ${PROGRAM}.ts again): run it from its folder as: ${howToRun()}`,
      `Permission de lecture manquante (chaque fil relit ${PROGRAM}.ts)\u00a0: lancez-le depuis son dossier ainsi\u00a0: ${howToRun()}`,
    ),
  bothOnly: () =>
    say(
      "--tcp-only and --udp-only exclude each other (both services run by default)",
      "--tcp-only et --udp-only s'excluent (les deux services tournent par défaut)",
    ),
  threadsNeedTcp: () =>
    say(
      "--threads serves TCP: with --udp-only, leave it at 1",
      "--threads sert TCP\u00a0: avec --udp-only, laissez-le à 1",
    ),
  // Threads
  threadDied: (n: number, why: string, wait: number) =>
    wait < 0
      ? say(`[${n}] thread died: ${why}`, `[${n}] fil mort\u00a0: ${why}`)
      : say(
        `[${n}] thread died: ${why}; starting another in ${wait} ms`,
        `[${n}] fil mort\u00a0: ${why}\u00a0; un autre démarre dans ${
          formatCount(wait)
        } ms`,
      ),
  threadBack: (n: number) =>
    say(`[${n}] new thread listening`, `[${n}] nouveau fil à l'écoute`),
  portNotShared: (threads: number) =>
    say(
      `this system lets only one socket listen on a port (reusePort shares it on Linux only): serving with ${
        plural(threads, "thread")
      }`,
      `ce système ne laisse qu'une socket écouter sur un port (reusePort ne le partage que sous Linux)\u00a0: service avec ${
        plural(threads, "fil")
      }`,
    ),
  // UDP
  echoedDatagram: (length: number, peer: string) =>
    say(
      `echoed ${plural(length, "byte")} to ${peer}`,
      `${plural(length, "octet")} ${renvoyes(length)} à ${peer}`,
    ),
  notLogged: (count: number, lines: number) =>
    say(
      `${count} more datagrams echoed without a line (at most ${lines} lines a second; --quiet for none)`,
      `${formatCount(count)} datagramme${count >= 2 ? "s" : ""} de plus ${
        renvoyes(count)
      } sans ligne (au plus ${lines} lignes par seconde\u00a0; --quiet pour aucune)`,
    ),
  droppedDatagram: (peer: string, reason: string, unlogged: number) =>
    say(
      `dropped a datagram from ${peer}: ${reason}${
        unlogged > 0
          ? `; ${unlogged} more dropped since the last such line`
          : ""
      }`,
      `datagramme de ${peer} rejeté\u00a0: ${reason}${
        unlogged > 0
          ? `\u00a0; ${formatCount(unlogged)} de plus depuis la dernière ligne`
          : ""
      }`,
    ),
  mayBeCut: (size: number) =>
    say(
      `it filled the ${size}-byte buffer and may have been cut`,
      `il a rempli le tampon de ${
        formatCount(size)
      } octets et a pu être tronqué`,
    ),
  cannotSend: (why: string) =>
    say(
      `cannot send the echo: ${why}`,
      `impossible d'envoyer l'écho\u00a0: ${why}`,
    ),
  guardLow: () =>
    say(
      `source port below ${FIRST_UNPRIVILEGED_PORT} (loop guard; --allow-any-port lifts it)`,
      `port source inférieur à ${FIRST_UNPRIVILEGED_PORT} (garde anti-boucle\u00a0; --allow-any-port la lève)`,
    ),
  guardOwn: () =>
    say(
      "source port is this server's own (loop guard; --allow-any-port lifts it)",
      "le port source est celui de ce serveur (garde anti-boucle\u00a0; --allow-any-port la lève)",
    ),
  cannotReceive: (why: string) =>
    say(
      `cannot receive datagrams: ${why}; retrying`,
      `impossible de recevoir des datagrammes\u00a0: ${why}\u00a0; nouvel essai`,
    ),
  receivingAgain: () =>
    say("receiving datagrams again", "les datagrammes sont de nouveau reçus"),
};

// ===========================================================================
// The skeleton, the lessons' own: output, listening (here TCP and UDP on
// one port), accepting without dying, the clients, shutdown.
// ===========================================================================

/** `quiet`: --quiet was given. `threadTag`: "[2] " in thread 2 with
 * --threads, "" elsewhere (console.log writes whole lines: threads' lines
 * never mix). */
const output = { quiet: false, threadTag: "" };

/** Per-client and per-datagram lines, silenced by --quiet. */
function log(line: string): void {
  if (!output.quiet) console.log(`${prefix()}${output.threadTag}${line}`);
}

/** Lines that always appear: the ready line and the summary. */
function announce(line: string): void {
  console.log(`${prefix()}${line}`);
}

/** Problems, on stderr. */
function warn(line: string): void {
  console.error(`${prefix()}${output.threadTag}${line}`);
}

// ---------------------------------------------------------------------------
// Listening

/** Every socket the service listens on. */
interface Sockets {
  tcp: Deno.TcpListener[];
  udp: Deno.DatagramConn[];
}

/** A failure to listen, and on which transport. */
class ListenError extends Error {
  constructor(readonly transport: "tcp" | "udp", readonly failure: unknown) {
    super(errorMessage(failure));
  }
}

/** With --port 0, the port the system chose for TCP may be taken for UDP:
 * so many tries with another. */
const PORT_TRIES = 20;

/** Opens the TCP listener(s), then the UDP socket(s) on the same port. */
function listen(options: Options): Sockets {
  for (let attempt = 1;; attempt++) {
    let tcp: Deno.TcpListener[] = [];
    if (options.tcp) {
      try {
        tcp = listenDual(
          options.host,
          options.port,
          (hostname, port) =>
            Deno.listen({ hostname, port, tcpBacklog: BACKLOG }),
        );
      } catch (err) {
        throw new ListenError("tcp", err);
      }
    }
    if (!options.udp) return { tcp, udp: [] };
    const port = tcp.length > 0 ? tcp[0].addr.port : options.port;
    try {
      const udp = listenDual(
        options.host,
        port,
        (hostname, port) =>
          Deno.listenDatagram({ hostname, port, transport: "udp" }),
      );
      return { tcp, udp };
    } catch (err) {
      for (const listener of tcp) listener.close();
      const retry = options.port === 0 && tcp.length > 0 &&
        err instanceof Deno.errors.AddrInUse && attempt < PORT_TRIES;
      if (!retry) throw new ListenError("udp", err);
    }
  }
}

/** The lessons' listen(), for either transport. With the default host, one
 * socket on "::" receives IPv4 and IPv6 (Linux and macOS are dual-stack by
 * default). Where "::" is IPv6-only, a second socket on 0.0.0.0 serves
 * IPv4 on the same port; where IPv6 is missing, 0.0.0.0 alone serves. */
function listenDual<T extends { addr: Deno.Addr; close(): void }>(
  host: string,
  port: number,
  open: (hostname: string, port: number) => T,
): T[] {
  let first: T;
  try {
    first = open(host, port);
  } catch (err) {
    if (host !== DEFAULT_HOST || !isNoIPv6(err)) throw err;
    return [open("0.0.0.0", port)];
  }
  if (host !== DEFAULT_HOST) return [first];
  const bound = (first.addr as Deno.NetAddr).port;
  // Never make Deno prompt about this probe, which the user did not choose.
  const allowed = Deno.permissions.querySync({
    name: "net",
    host: `0.0.0.0:${bound}`,
  });
  if (allowed.state !== "granted") return [first];
  try {
    // On a dual-stack system "::" already holds the IPv4 port too, so this
    // fails with AddrInUse, which is the answer we hope for.
    return [first, open("0.0.0.0", bound)];
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
function describeListenError(
  err: unknown,
  options: { host: string; port: number },
  transport: "tcp" | "udp" = "tcp",
): string {
  const where = `${
    options.host.includes(":") ? `[${options.host}]` : options.host
  }:${options.port}`;
  if (err instanceof Deno.errors.NotCapable) {
    return MESSAGES.permissionMissing();
  }
  if (err instanceof Deno.errors.AddrInUse) {
    const ss = transport === "udp" ? "ss -ulnp" : "ss -tlnp";
    return MESSAGES.cannotListen(where, MESSAGES.addrInUse(ss));
  }
  if (err instanceof Deno.errors.PermissionDenied) {
    return MESSAGES.cannotListen(where, MESSAGES.privileged());
  }
  if (err instanceof Deno.errors.AddrNotAvailable) {
    return MESSAGES.cannotListen(where, MESSAGES.noSuchAddress());
  }
  return MESSAGES.cannotListen(
    where,
    MESSAGES.osText(errorMessage(err)),
  );
}

/** The ready line's address part: "[::]:7777 (IPv4 and IPv6)" when one
 * dual-stack socket serves both families. */
function describeListeners(sockets: Sockets): string {
  const addrs = (sockets.tcp.length > 0 ? sockets.tcp : sockets.udp).map(
    (socket) => socket.addr as Deno.NetAddr,
  );
  const addresses = addrs.map(formatAddress).join(MESSAGES.and());
  const dualStack = addrs.length === 1 && addrs[0].hostname === "::";
  return dualStack ? `${addresses} ${MESSAGES.dualStack()}` : addresses;
}

// ---------------------------------------------------------------------------
// Accepting without dying

/** accept() fails while the server is healthy: a client resets before we
 * accept it, or the process is out of descriptors (EMFILE). A vanished
 * client is skipped; otherwise wait before the next try, doubling the wait
 * up to the maximum, so a full descriptor table does not spin the CPU. */
async function acceptFailed(err: unknown): Promise<void> {
  if (isClientGone(err)) return; // it left before we met it
  if (isListenerBroken(err)) {
    throw new Error(MESSAGES.cannotAccept(errorMessage(err)));
  }
  acceptRetryMs = Math.min(
    Math.max(acceptRetryMs * 2, ACCEPT_RETRY_MIN_MS),
    ACCEPT_RETRY_MAX_MS,
  );
  if (acceptRetryMs === ACCEPT_RETRY_MIN_MS) {
    warn(MESSAGES.cannotAccept(errorMessage(err)) + MESSAGES.retrying());
  }
  await sleep(acceptRetryMs);
}

/** The current wait between failed accepts; 0 while accept() works. */
let acceptRetryMs = 0;
const ACCEPT_RETRY_MIN_MS = 10;
const ACCEPT_RETRY_MAX_MS = 1000;

/** Errors of accept() (and of UDP's receive()) that only mean a peer
 * vanished. */
function isClientGone(err: unknown): boolean {
  return err instanceof Deno.errors.NotConnected ||
    err instanceof Deno.errors.ConnectionReset ||
    err instanceof Deno.errors.ConnectionAborted;
}

/** accept() on a socket that no longer listens fails with EINVAL for ever:
 * the listening socket was destroyed from outside (`ss -K`). */
function isListenerBroken(err: unknown): boolean {
  return (err as { code?: string }).code === "EINVAL";
}

// ---------------------------------------------------------------------------
// The clients

/** Every TCP client being served, with the time we last heard from it;
 * shutdown closes them all. */
const clients = new Map<Deno.TcpConn, number>();

/** A client arrives: list it and say so. Returns how to name it in logs. */
function welcome(conn: Deno.TcpConn): string {
  if (acceptRetryMs > 0) {
    acceptRetryMs = 0;
    warn(MESSAGES.acceptingAgain());
  }
  const peer = formatAddress(conn.remoteAddr);
  clients.set(conn, Date.now());
  log(MESSAGES.connected(peer));
  return peer;
}

/** Removes a client from the list; the last one gone wakes main() if it is
 * waiting to print the summary. */
function forget(conn: Deno.TcpConn): void {
  clients.delete(conn);
  if (clients.size === 0) lastClientGone?.();
}

let lastClientGone: (() => void) | undefined;

/** Resolves once every client has been forgotten and has logged its line. */
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
function describeDisconnect(err: unknown, peer: string): Ending {
  if (err instanceof Deno.errors.ConnectionReset) return "reset";
  if (err instanceof Deno.errors.BrokenPipe) return "stopped reading";
  if (err instanceof Deno.errors.BadResource) return "closed at shutdown";
  if (err instanceof Deno.errors.Interrupted) return "closed at shutdown";
  warn(`${peer}${say(": ", "\u00a0: ")}${errorMessage(err)}`);
  return "failed";
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

// ---------------------------------------------------------------------------
// Shutdown

/** Makes Ctrl-C and SIGTERM call `stop`, which closes what keeps the server
 * running; main() then prints the summary with the reason it stopped. Must
 * be installed before the ready line: a parent that signals as soon as it
 * reads that line must find the handler in place. */
function installShutdown(stop: () => void): { reason: string } {
  const state = { reason: "" };
  const stopServer = (reason: string) => {
    if (state.reason) return; // a second Ctrl-C changes nothing
    state.reason = reason;
    stop();
    // Whatever still holds the process (a retry timer) must not keep it.
    const timer = setTimeout(() => {
      warn(MESSAGES.stillBusy(SHUTDOWN_GRACE_MS, reason));
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

/** Closes the listeners and UDP sockets, so the loops end, and every
 * client, so their reads end. */
function closeAll(sockets: Sockets): void {
  for (const listener of sockets.tcp) closeQuietly(listener);
  for (const socket of sockets.udp) closeQuietly(socket);
  for (const conn of clients.keys()) closeQuietly(conn);
}

// ==== COMMON BEGIN =========================================================
// What every script of the kit needs, byte for byte the same in each (a
// test fails if one copy drifts): the reader's language, the options every
// script takes, ports, addresses, plurals, error text, the run() guard.
// Each script defines PROGRAM (its name, the prefix of its lines).

/** The reader's language: French when the system's locale is French
 * (`navigator.language` follows LANG and needs no permission), English
 * otherwise. `--lang fr|en` overrides it (takeCommonArgs). */
let lang: "en" | "fr" = /^fr\b/i.test(navigator.language ?? "") ? "fr" : "en";

/** The text for the reader's language. French text carries its own
 * typography: a no-break space before `:` `;` `?` `!`. */
function say(en: string, fr: string): string {
  return lang === "fr" ? fr : en;
}

/** "tcp_echo: " or, in French, "tcp_echo : " (no-break space). */
function prefix(): string {
  return lang === "fr" ? `${PROGRAM}\u00a0: ` : `${PROGRAM}: `;
}

/** A mistake on the command line: one line, the usage, exit code 2. */
class UsageError extends Error {}

/** What every script accepts before its own options: a leading "--" (as
 * `deno task X -- args` passes it) is dropped, and `--lang fr|en` (or
 * `--lang=fr`) sets the language. Returns the other arguments. */
function takeCommonArgs(args: string[]): string[] {
  const rest = args[0] === "--" ? args.slice(1) : [...args];
  for (let i = 0; i < rest.length; i++) {
    const match = /^--lang(?:=(.*))?$/.exec(rest[i]);
    if (!match) continue;
    const value = match[1] ?? rest[i + 1];
    rest.splice(i, match[1] === undefined ? 2 : 1);
    if (value !== "fr" && value !== "en") {
      throw new UsageError(say(
        `Invalid language "${value ?? ""}": expected fr or en`,
        `Langue « ${value ?? ""} » invalide\u00a0: fr ou en attendu`,
      ));
    }
    lang = value;
    i--;
  }
  return rest;
}

/** A port is a whole number from 0 to 65535; "7777abc" or "1e3" is not. */
function parsePort(text: string): number {
  const port = /^\d{1,5}$/.test(text) ? Number(text) : NaN;
  if (!(port >= 0 && port <= 65535)) {
    throw new UsageError(say(
      `Invalid port "${text}": expected a number from 0 to 65535`,
      `Port « ${text} » invalide\u00a0: un nombre de 0 à 65535 attendu`,
    ));
  }
  return port;
}

/** A count as the reader writes it: 1048576, or in French 1 048 576. */
function formatCount(count: number): string {
  return lang === "fr" ? count.toLocaleString("fr-FR") : String(count);
}

/** "1 client", "2 clients"; in French 0 and 1 take the singular ("0 octet",
 * "1 octet", "2 octets"). The nouns are given in the singular. */
function plural(count: number, noun: string, nounFr = noun): string {
  return lang === "fr"
    ? `${formatCount(count)} ${nounFr}${Math.abs(count) >= 2 ? "s" : ""}`
    : `${count} ${noun}${count === 1 ? "" : "s"}`;
}

/** Operating-system errors a reader meets, in French (Deno's own text is
 * English: "Connection refused (os error 111)"). */
const OS_ERRORS_FR: Record<string, string> = {
  AddrInUse: "adresse déjà utilisée",
  AddrNotAvailable: "adresse indisponible sur cette machine",
  BrokenPipe: "tube rompu (le pair a fermé)",
  ConnectionAborted: "connexion abandonnée",
  ConnectionRefused: "connexion refusée",
  ConnectionReset: "connexion réinitialisée par le pair",
  NotConnected: "socket non connectée",
  NotFound: "introuvable",
  PermissionDenied: "permission refusée",
  TimedOut: "délai dépassé",
};

/** The error's message, in the reader's language where it is the OS's. */
function errorMessage(err: unknown): string {
  const text = err instanceof Error ? err.message : String(err);
  const french = err instanceof Error ? OS_ERRORS_FR[err.name] : undefined;
  if (lang !== "fr" || french === undefined) return text;
  const code = /\(os error (\d+)\)/.exec(text)?.[1];
  return code ? `${french} (erreur système ${code})` : french;
}

/** node:util's parseArgs explains a mistake in English, sometimes over
 * several lines: one line, in French for a French reader. */
// deno-fmt-ignore
const ARGS_ERRORS_FR: [RegExp, string][] = [
  [/^Unknown option '(.*)'$/, "Option « $1 » inconnue"],
  [/^Unexpected argument '(.*)'\. .*$/, "Argument « $1 » inattendu\u00a0: des options seulement"],
  [/^Option '(\S+) .*argument missing$/, "L'option « $1 » attend une valeur"],
  [/^Option '(\S+)' argument is ambiguous.*$/, "Valeur de « $1 » ambiguë\u00a0: écrivez $1=-XYZ pour une valeur qui commence par un tiret"],
  [/^Option '(\S+)' does not take an argument$/, "L'option « $1 » ne prend pas de valeur"],
];

/** parseArgs's error as one line in the reader's language. */
function describeArgsError(err: unknown): string {
  const text = errorMessage(err).replaceAll("\n", " ");
  const fr = ARGS_ERRORS_FR.find(([pattern]) => pattern.test(text));
  return fr ? say(text, text.replace(...fr)) : text;
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

function closeQuietly(resource: { close(): void }): void {
  try {
    resource.close();
  } catch {
    // Already closed (by shutdown, or by the peer's reset): nothing to do.
  }
}

/** Runs main() and exits with its code. Every error a user can cause is
 * handled where it happens; anything else, even an error no one awaited,
 * still ends as one line on stderr and exit code 1, never a stack trace. */
async function run(main: (args: string[]) => Promise<number>): Promise<void> {
  const unexpected = (err: unknown) => {
    console.error(
      `${prefix()}${say("unexpected error", "erreur inattendue")}${
        say(": ", "\u00a0: ")
      }${errorMessage(err)}`,
    );
    Deno.exit(1);
  };
  globalThis.addEventListener("unhandledrejection", (event) => {
    event.preventDefault();
    unexpected(event.reason);
  });
  globalThis.addEventListener("error", (event) => {
    event.preventDefault();
    unexpected(event.error);
  });
  let code: number;
  try {
    code = await main(Deno.args);
  } catch (err) {
    return unexpected(err);
  }
  Deno.exit(code);
}

// ==== COMMON END ===========================================================

// Which half runs: a thread (this file, loaded by the main thread's
// `new Worker(…)` with --threads), or the main thread.
if ("WorkerGlobalScope" in globalThis) runThread();
else if (import.meta.main) await run(main);
