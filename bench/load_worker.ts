/**
 * One thread of the load generator (started by load.ts as a Web Worker).
 *
 * Protocol with load.ts:
 *   main → {type: "prepare", job}   open connections/sockets (not timed)
 *   this → {type: "prepared"}
 *   main → {type: "start", durationMs}   run the timed phase
 *   this → {type: "done", result}
 * For tcp-idle the timed phase is "close everything": the connections are
 * held open between "prepared" and "start" while load.ts samples the server.
 */
/// <reference lib="deno.worker" />
import {
  errorText,
  makeReference,
  patternAt,
  readExactly,
  sameBytes,
  type Scenario,
  writeAll,
} from "./common.ts";

/** Stop recording latencies past this many per worker (16 MB of samples). */
const MAX_LATENCY_SAMPLES = 2_000_000;
/** Error messages kept for the report; the rest are only counted. */
const MAX_ERROR_SAMPLES = 5;
/** Bulk: size of each write and of the read buffer. */
const BULK_CHUNK = 64 * 1024;
/** A TCP exchange still waiting this long after the end is declared stalled
 * and its connection closed, so a stuck server can never hang the bench. */
const STALL_GRACE_MS = 3000;
/** A new connection whose first echo takes longer was not accepted (the
 * server is out of file descriptors, or its backlog overflowed). */
const OPEN_TIMEOUT_MS = 3000;
/** After this many failed opens in a row the server has stopped accepting
 * (e.g. out of file descriptors): the rest are counted as errors, not tried,
 * so that a saturated server costs seconds, not OPEN_TIMEOUT_MS each. */
const MAX_OPEN_FAILURES_IN_A_ROW = 3;
/** Size of the echo that proves a new connection was accepted. */
const WARMUP_BYTES = 8;

export interface WorkerJob {
  scenario: Scenario;
  hostname: string;
  port: number;
  /** Connections (or sockets, or connect loops) run by this worker. */
  conns: number;
  /** Index of this worker's first connection, so every connection of the
   * whole run gets its own byte pattern. */
  firstConn: number;
  size: number;
  /** Stop each loop after this many messages (0: only the duration). */
  maxMessages: number;
  /** UDP: a datagram not echoed within this time is a loss. */
  timeoutMs: number;
  /** tcp-idle: connections being opened at once by this worker. */
  openConcurrency: number;
}

export interface WorkerResult {
  perConn: number[];
  latencies: Float64Array<ArrayBuffer>;
  bytes: number;
  errors: number;
  errorSamples: string[];
  losses: number;
  late: number;
  elapsedMs: number;
  openMs: number;
}

export type ToWorker =
  | { type: "prepare"; job: WorkerJob }
  | { type: "start"; durationMs: number };
export type FromWorker =
  | { type: "prepared" }
  | { type: "done"; result: WorkerResult }
  | { type: "failed"; error: string };

/** Counters of one worker, filled by the scenario loops. */
class Stats {
  perConn: number[];
  latencies: Float64Array<ArrayBuffer> = new Float64Array(1024);
  latencyCount = 0;
  bytes = 0;
  errors = 0;
  errorSamples: string[] = [];
  losses = 0;
  late = 0;

  constructor(conns: number) {
    this.perConn = new Array(conns).fill(0);
  }

  addLatency(ms: number) {
    if (this.latencyCount >= MAX_LATENCY_SAMPLES) return;
    if (this.latencyCount === this.latencies.length) {
      const bigger = new Float64Array(this.latencies.length * 2);
      bigger.set(this.latencies);
      this.latencies = bigger;
    }
    this.latencies[this.latencyCount++] = ms;
  }

  addError(err: unknown) {
    this.errors++;
    if (this.errorSamples.length < MAX_ERROR_SAMPLES) {
      this.errorSamples.push(errorText(err));
    }
  }
}

/** Timed phase of the current scenario; set up by prepare(). */
let runTimed: (deadline: number) => Promise<void> = () => Promise.resolve();
let stats = new Stats(0);
let openMs = 0;
/** Everything to close if the timed phase stalls or ends. */
const openConns = new Set<Deno.Conn>();
const openSockets = new Set<Deno.DatagramConn>();

self.onmessage = async (event: MessageEvent<ToWorker>) => {
  const message = event.data;
  try {
    if (message.type === "prepare") {
      const started = performance.now();
      runTimed = await prepare(message.job);
      openMs = performance.now() - started;
      post({ type: "prepared" });
    } else {
      const started = performance.now();
      await runWithStallGuard(started + message.durationMs);
      post({ type: "done", result: finish(performance.now() - started) });
    }
  } catch (err) {
    post({ type: "failed", error: errorText(err) });
  }
};

function post(message: FromWorker) {
  if (message.type === "done") {
    self.postMessage(message, [message.result.latencies.buffer]);
  } else {
    self.postMessage(message);
  }
}

/** Open what the scenario needs and return its timed phase. */
async function prepare(
  job: WorkerJob,
): Promise<(deadline: number) => Promise<void>> {
  stats = new Stats(job.conns);
  const indexes = Array.from({ length: job.conns }, (_, i) => i);
  switch (job.scenario) {
    case "tcp-pingpong": {
      const conns = await openVerified(job);
      return (deadline) =>
        eachOpen(conns, (conn, i) => pingPongLoop(job, conn, i, deadline));
    }
    case "tcp-bulk": {
      const conns = await openVerified(job);
      return (deadline) =>
        eachOpen(conns, (conn, i) => bulkLoop(job, conn, i, deadline));
    }
    case "tcp-connect":
      return (deadline) => all(indexes, (i) => connectLoop(job, i, deadline));
    case "tcp-idle": {
      const conns = await openVerified(job);
      conns.forEach((conn, i) => stats.perConn[i] = conn ? 1 : 0);
      return () => Promise.resolve(closeAll());
    }
    case "udp-pingpong": {
      const sockets = indexes.map(() => openUdp(job));
      return (deadline) =>
        all(indexes, (i) => udpLoop(job, sockets[i], i, deadline));
    }
  }
}

/** Run one async loop per connection index; each loop reports its own
 * errors, so one failing connection never stops the others. */
async function all(indexes: number[], loop: (i: number) => Promise<void>) {
  await Promise.all(
    indexes.map((i) => loop(i).catch((e) => stats.addError(e))),
  );
}

/** all() over the connections that opened. */
function eachOpen(
  conns: (Deno.Conn | undefined)[],
  loop: (conn: Deno.Conn, i: number) => Promise<void>,
) {
  const opened = conns.flatMap((conn, i) => conn ? [i] : []);
  return all(opened, (i) => loop(conns[i]!, i));
}

/** Run the timed phase; past deadline + STALL_GRACE_MS close everything,
 * which makes every pending read fail and every loop end. */
async function runWithStallGuard(deadline: number) {
  const guard = setTimeout(() => {
    stats.addError(
      new Error(`stalled: no answer ${STALL_GRACE_MS} ms after the end`),
    );
    closeAll();
  }, deadline - performance.now() + STALL_GRACE_MS);
  try {
    await runTimed(deadline);
  } finally {
    clearTimeout(guard);
    closeAll();
  }
}

function finish(elapsedMs: number): WorkerResult {
  return {
    perConn: stats.perConn,
    latencies: stats.latencies.slice(0, stats.latencyCount),
    bytes: stats.bytes,
    errors: stats.errors,
    errorSamples: stats.errorSamples,
    losses: stats.losses,
    late: stats.late,
    elapsedMs,
    openMs,
  };
}

async function connect(job: WorkerJob): Promise<Deno.Conn> {
  const conn = await Deno.connect({ hostname: job.hostname, port: job.port });
  conn.setNoDelay(true); // measure the server, not our own Nagle delays
  openConns.add(conn);
  return conn;
}

function close(conn: Deno.Conn) {
  if (!openConns.delete(conn)) return;
  try {
    conn.close();
  } catch { /* already closed by the peer or the stall guard */ }
}

function closeAll() {
  for (const conn of [...openConns]) close(conn);
  for (const socket of openSockets) {
    try {
      socket.close();
    } catch { /* already closed */ }
  }
  openSockets.clear();
}

function keepGoing(job: WorkerJob, deadline: number, done: number): boolean {
  return performance.now() < deadline &&
    (job.maxMessages === 0 || done < job.maxMessages);
}

/** Send one message, wait for all of its echo, check every byte; repeat. */
async function pingPongLoop(
  job: WorkerJob,
  conn: Deno.Conn,
  i: number,
  deadline: number,
) {
  const ref = makeReference(job.size);
  const seed = job.firstConn + i;
  const echo = new Uint8Array(job.size);
  try {
    for (let seq = 0; keepGoing(job, deadline, seq); seq++) {
      const message = patternAt(ref, seed, seq, job.size);
      const sent = performance.now();
      await writeAll(conn, message);
      await readExactly(conn, echo);
      stats.addLatency(performance.now() - sent);
      if (!sameBytes(echo, message)) {
        stats.addError(`conn ${seed}: echo differs`);
      }
      stats.perConn[i]++;
    }
  } finally {
    close(conn);
  }
}

/** Stream writes and read the echo at the same time; bytes echoed before
 * the deadline count for the rate, all bytes are verified. */
async function bulkLoop(
  job: WorkerJob,
  conn: Deno.Conn,
  i: number,
  deadline: number,
) {
  const seed = job.firstConn + i;
  const ref = makeReference(BULK_CHUNK);
  let sent = 0;
  const writer = async () => {
    while (performance.now() < deadline) {
      sent += await conn.write(patternAt(ref, seed, sent, BULK_CHUNK));
    }
    await conn.closeWrite(); // the server echoes the rest, then closes
  };
  const reader = async () => {
    const buf = new Uint8Array(BULK_CHUNK);
    let received = 0;
    for (let n; (n = await conn.read(buf)) !== null;) {
      if (!sameBytes(buf.subarray(0, n), patternAt(ref, seed, received, n))) {
        throw new Error(`conn ${seed}: echo differs at byte ${received}`);
      }
      received += n;
      if (performance.now() <= deadline) stats.bytes += n;
    }
    if (received !== sent) {
      throw new Error(`conn ${seed}: sent ${sent} B, echoed ${received} B`);
    }
  };
  try {
    await Promise.all([writer(), reader()]);
    stats.perConn[i] = sent;
  } finally {
    close(conn);
  }
}

/** Connect, one small echo, close; as fast as possible. */
async function connectLoop(job: WorkerJob, i: number, deadline: number) {
  const ref = makeReference(job.size);
  const seed = job.firstConn + i;
  const echo = new Uint8Array(job.size);
  for (let seq = 0; keepGoing(job, deadline, seq); seq++) {
    const started = performance.now();
    let conn: Deno.Conn | undefined;
    try {
      conn = await connect(job);
      const message = patternAt(ref, seed, seq, job.size);
      await writeAll(conn, message);
      await readExactly(conn, echo);
      if (!sameBytes(echo, message)) {
        throw new Error(`conn ${seed}: echo differs`);
      }
      stats.addLatency(performance.now() - started);
      stats.perConn[i]++;
    } catch (err) {
      stats.addError(err);
      if (performance.now() >= deadline) return;
    } finally {
      if (conn) close(conn);
    }
  }
}

/** Open job.conns connections, openConcurrency at a time; each does one
 * tiny echo so we know the server has accepted it (with the sheet's
 * listen(1), a connection the client sees as open may still wait, unseen,
 * for a SYN-ACK retransmission). Failed ones are counted and left out. */
async function openVerified(
  job: WorkerJob,
): Promise<(Deno.Conn | undefined)[]> {
  const conns: (Deno.Conn | undefined)[] = new Array(job.conns);
  let next = 0;
  let failuresInARow = 0;
  const opener = async () => {
    for (let i = next++; i < job.conns; i = next++) {
      if (failuresInARow >= MAX_OPEN_FAILURES_IN_A_ROW) {
        stats.addError(`gave up after ${failuresInARow} failed opens in a row`);
        continue;
      }
      conns[i] = await openOne(job, job.firstConn + i);
      failuresInARow = conns[i] ? 0 : failuresInARow + 1;
    }
  };
  const openers = Math.min(job.openConcurrency, job.conns);
  await Promise.all(Array.from({ length: openers }, opener));
  return conns;
}

/** Connect and do one WARMUP_BYTES echo; undefined (error counted) if the
 * server does not answer within OPEN_TIMEOUT_MS. */
async function openOne(
  job: WorkerJob,
  seed: number,
): Promise<Deno.Conn | undefined> {
  const message = patternAt(makeReference(WARMUP_BYTES), seed, 0, WARMUP_BYTES);
  const echo = new Uint8Array(WARMUP_BYTES);
  let conn: Deno.Conn | undefined;
  const timer = setTimeout(() => conn && close(conn), OPEN_TIMEOUT_MS);
  try {
    conn = await connect(job);
    await writeAll(conn, message);
    await readExactly(conn, echo);
    if (!sameBytes(echo, message)) {
      throw new Error(`conn ${seed}: echo differs`);
    }
    return conn;
  } catch (err) {
    const timedOut = conn && !openConns.has(conn);
    stats.addError(
      timedOut ? `conn ${seed}: no echo within ${OPEN_TIMEOUT_MS} ms` : err,
    );
    if (conn) close(conn);
    return undefined;
  } finally {
    clearTimeout(timer);
  }
}

function openUdp(job: WorkerJob): Deno.DatagramConn {
  const socket = Deno.listenDatagram({
    transport: "udp",
    hostname: job.hostname.includes(":") ? "::" : "0.0.0.0",
    port: 0,
  });
  openSockets.add(socket);
  return socket;
}

type Received = [Uint8Array, Deno.Addr];

/** The received datagram, or null when `ms` passes first. */
async function receiveWithin(pending: Promise<Received>, ms: number) {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<null>((resolve) => {
    timer = setTimeout(() => resolve(null), Math.max(0, ms));
  });
  try {
    return await Promise.race([pending, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** Send a datagram, wait up to timeoutMs for its echo, check it; repeat.
 * The first 4 bytes carry a sequence number so that a late echo of a
 * datagram already counted as lost is recognised and skipped. */
async function udpLoop(
  job: WorkerJob,
  socket: Deno.DatagramConn,
  i: number,
  deadline: number,
) {
  const seed = job.firstConn + i;
  const ref = makeReference(job.size);
  const buf = new Uint8Array(65536);
  const target: Deno.NetAddr = {
    transport: "udp",
    hostname: job.hostname,
    port: job.port,
  };
  // One receive() at a time: a timed-out one stays pending for the next turn.
  let pending: Promise<Received> | null = null;
  for (let seq = 1; keepGoing(job, deadline, seq - 1); seq++) {
    const message = patternAt(ref, seed, seq, job.size).slice();
    if (job.size >= 4) new DataView(message.buffer).setUint32(0, seq);
    const sent = performance.now();
    await socket.send(message, target);
    for (;;) {
      pending ??= socket.receive(buf);
      const received = await receiveWithin(
        pending,
        sent + job.timeoutMs - performance.now(),
      );
      if (received === null) {
        stats.losses++;
        break;
      }
      pending = null;
      const [data] = received;
      if (
        job.size >= 4 && data.byteLength >= 4 &&
        new DataView(data.buffer, data.byteOffset).getUint32(0) !== seq
      ) {
        stats.late++;
        continue;
      }
      stats.addLatency(performance.now() - sent);
      if (!sameBytes(data, message)) {
        stats.addError(`socket ${seed}: echo differs`);
      }
      stats.perConn[i]++;
      break;
    }
  }
  // The socket is closed by closeAll(); its pending receive() then rejects.
  pending?.catch(() => {});
}
