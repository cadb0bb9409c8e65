/**
 * Load generator for echo servers. Prints ONE JSON object (LoadResult in
 * common.ts) on stdout; errors and notes go to stderr.
 *
 *   deno run -N -R --unstable-net bench/load.ts --scenario tcp-pingpong \
 *     --port 7777 --conns 64 --size 64 --duration 2
 *
 * The work runs in Web Workers (load_worker.ts), by default one per core, so
 * that on a 2-core machine the generator is not the bottleneck: the report
 * includes its own CPU time to check that. With --server-pid, the server's
 * CPU time over the timed phase (and, for tcp-idle, its RSS) is read from
 * /proc/PID, which Deno allows only with -A.
 *
 * Every echoed byte is checked against the per-connection pattern sent;
 * any mismatch, short echo or failed connection counts in `errors`.
 */
import { parseArgs } from "node:util";
import {
  errorText,
  type LoadResult,
  numberOption,
  ownCpuSeconds,
  quantile,
  readCpuSeconds,
  readRssKb,
  type Scenario,
  SCENARIOS,
  sleep,
} from "./common.ts";
import type {
  FromWorker,
  ToWorker,
  WorkerJob,
  WorkerResult,
} from "./load_worker.ts";

/** A worker that has not answered this long after its phase should have
 * ended is dead or stuck: the run fails instead of hanging. */
const WORKER_TIMEOUT_MS = 30_000;
/** Opening connections one at a time per worker (see makeJobs) may take
 * this long each on a slow server: 10 000 take up to 50 s more. */
const OPEN_BUDGET_MS_PER_CONN = 5;
/** tcp-idle: wait before sampling the server's RSS so that what a server
 * does after the connections open is counted: lazily allocated buffers
 * (first read, log lines), and in our event-loop servers the fair turns'
 * queue, which each client passes through once before its read waits in
 * Deno. The sample is of the settled, idle state. */
const IDLE_SETTLE_MS = 3000;

const USAGE = `Usage: deno run -N -R --unstable-net bench/load.ts [options]
  --scenario S     ${SCENARIOS.join(" | ")} (default tcp-pingpong)
  --host H         server address (default 127.0.0.1)
  --port N         server port (required)
  --conns N        connections, sockets or connect loops (default 1)
  --size N         message / datagram size in bytes (default 64)
  --duration S     seconds of the timed phase (default 2)
  --messages M     stop each connection after M messages (default: no limit)
  --timeout MS     UDP: a datagram not echoed within MS is lost (default 200)
  --workers W      worker threads (default: number of cores, at most conns)
  --server-pid P   measure the server's CPU (and RSS for tcp-idle); needs -A`;

interface Options {
  scenario: Scenario;
  host: string;
  port: number;
  conns: number;
  size: number;
  durationMs: number;
  messages: number;
  timeoutMs: number;
  workers: number;
  serverPid?: number;
}

function parseOptions(args: string[]): Options {
  const { values } = parseArgs({
    args,
    strict: true,
    options: {
      scenario: { type: "string", default: "tcp-pingpong" },
      host: { type: "string", default: "127.0.0.1" },
      port: { type: "string" },
      conns: { type: "string", default: "1" },
      size: { type: "string", default: "64" },
      duration: { type: "string", default: "2" },
      messages: { type: "string", default: "0" },
      timeout: { type: "string", default: "200" },
      workers: { type: "string" },
      "server-pid": { type: "string" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help) {
    console.log(USAGE);
    Deno.exit(0);
  }
  if (!SCENARIOS.includes(values.scenario as Scenario)) {
    throw new Error(`--scenario must be one of ${SCENARIOS.join(", ")}`);
  }
  if (values.port === undefined) throw new Error("--port is required");
  const conns = numberOption("conns", values.conns, 1);
  const cores = navigator.hardwareConcurrency;
  const workers = values.workers === undefined
    ? cores
    : numberOption("workers", values.workers, 1);
  return {
    scenario: values.scenario as Scenario,
    host: values.host,
    port: numberOption("port", values.port, 1),
    conns,
    size: numberOption("size", values.size, 1),
    durationMs: numberOption("duration", values.duration, 0, false) * 1000,
    messages: numberOption("messages", values.messages, 0),
    timeoutMs: numberOption("timeout", values.timeout, 1),
    workers: Math.min(workers, conns),
    serverPid: values["server-pid"] === undefined
      ? undefined
      : numberOption("server-pid", values["server-pid"], 1),
  };
}

/** Split the connections as evenly as possible over the workers. */
function makeJobs(options: Options): WorkerJob[] {
  const jobs: WorkerJob[] = [];
  let firstConn = 0;
  for (let w = 0; w < options.workers; w++) {
    const conns = Math.floor(options.conns / options.workers) +
      (w < options.conns % options.workers ? 1 : 0);
    jobs.push({
      scenario: options.scenario,
      hostname: options.host,
      port: options.port,
      conns,
      firstConn,
      size: options.size,
      maxMessages: options.messages,
      timeoutMs: options.timeoutMs,
      // One at a time per worker: the sheet's listen(1) backlog overflows
      // with more, and each overflow costs a 1 s SYN-ACK retransmission.
      openConcurrency: 1,
    });
    firstConn += conns;
  }
  return jobs;
}

/** A worker seen as a pair of "send a message, await its answer". */
class WorkerHandle {
  #worker = new Worker(new URL("./load_worker.ts", import.meta.url), {
    type: "module",
  });
  #waiting?: { resolve: (m: FromWorker) => void; reject: (e: Error) => void };

  constructor() {
    this.#worker.onmessage = (event: MessageEvent<FromWorker>) => {
      this.#waiting?.resolve(event.data);
    };
    this.#worker.onerror = (event) => {
      event.preventDefault(); // report it instead of dying with the worker
      this.#waiting?.reject(new Error(`worker crashed: ${event.message}`));
    };
  }

  /** Send `message`, resolve with the worker's answer. */
  ask(message: ToWorker, timeoutMs: number): Promise<FromWorker> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`worker silent for ${timeoutMs} ms`)),
        timeoutMs,
      );
      this.#waiting = {
        resolve: (m) => {
          clearTimeout(timer);
          if (m.type === "failed") reject(new Error(m.error));
          else resolve(m);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      };
      this.#worker.postMessage(message);
    });
  }

  terminate() {
    this.#worker.terminate();
  }
}

/** Everything measured around the workers, merged into one report. */
interface Measured {
  results: WorkerResult[];
  elapsedMs: number;
  serverCpuS?: number;
  rssBeforeKb?: number;
  /** Failed reads of the server's /proc entries (it died mid-run). */
  serverErrors: string[];
  rssAfterKb?: number;
}

async function runWorkers(options: Options): Promise<Measured> {
  const jobs = makeJobs(options);
  const workers = jobs.map(() => new WorkerHandle());
  const idle = options.scenario === "tcp-idle";
  const serverErrors: string[] = [];
  const rss = () =>
    idle ? probe(options.serverPid, readRssKb, serverErrors) : undefined;
  const cpu = () => probe(options.serverPid, readCpuSeconds, serverErrors);
  const prepareMs = WORKER_TIMEOUT_MS + OPEN_BUDGET_MS_PER_CONN * options.conns;
  try {
    const rssBeforeKb = rss();
    await Promise.all(
      workers.map((w, i) =>
        w.ask({ type: "prepare", job: jobs[i] }, prepareMs)
      ),
    );
    if (idle) await sleep(IDLE_SETTLE_MS);
    const rssAfterKb = rss();
    const cpuBefore = cpu();
    const started = performance.now();
    const answers = await Promise.all(workers.map((w) =>
      w.ask(
        { type: "start", durationMs: options.durationMs },
        options.durationMs + WORKER_TIMEOUT_MS,
      )
    ));
    const elapsedMs = performance.now() - started;
    const cpuAfter = cpu();
    const serverCpuS = cpuBefore !== undefined && cpuAfter !== undefined
      ? cpuAfter - cpuBefore
      : undefined;
    const results = answers.map((a) => (a as { result: WorkerResult }).result);
    return {
      results,
      elapsedMs,
      serverCpuS,
      rssBeforeKb,
      rssAfterKb,
      serverErrors,
    };
  } finally {
    for (const w of workers) w.terminate();
  }
}

/** Read a /proc value of the server, if a PID was given. A server that died
 * mid-run makes the read fail: that is an error of the run, not of load.ts. */
function probe(
  pid: number | undefined,
  read: (pid: number) => number,
  errors: string[],
): number | undefined {
  if (pid === undefined) return undefined;
  try {
    return read(pid);
  } catch (err) {
    errors.push(`server process ${pid}: ${errorText(err)}`);
    return undefined;
  }
}

/** All latencies of all workers, ascending. */
function sortedLatencies(results: WorkerResult[]): Float64Array {
  const total = results.reduce((n, r) => n + r.latencies.length, 0);
  const all = new Float64Array(total);
  let offset = 0;
  for (const r of results) {
    all.set(r.latencies, offset);
    offset += r.latencies.length;
  }
  return all.sort();
}

function round(value: number, digits = 3): number {
  const scale = 10 ** digits;
  return Math.round(value * scale) / scale;
}

/** Unit of work counted in `ops` for each scenario. */
const UNITS: Record<Scenario, LoadResult["unit"]> = {
  "tcp-pingpong": "msg",
  "tcp-bulk": "byte",
  "tcp-connect": "conn",
  "tcp-idle": "conn",
  "udp-pingpong": "datagram",
};

function report(
  options: Options,
  measured: Measured,
  loadCpuS: number,
  wallS: number,
): LoadResult {
  const { results } = measured;
  const perConn = results.flatMap((r) => r.perConn);
  const bulk = options.scenario === "tcp-bulk";
  const idle = options.scenario === "tcp-idle";
  const ops = bulk
    ? results.reduce((n, r) => n + r.bytes, 0)
    : perConn.reduce((n, c) => n + c, 0);
  // Workers start within a millisecond of each other: the slowest one's
  // timed phase is the run's.
  const elapsedS = Math.max(...results.map((r) => r.elapsedMs)) / 1000;
  const timedS = bulk ? options.durationMs / 1000 : elapsedS;
  const result: LoadResult = {
    scenario: options.scenario,
    target: `${options.host}:${options.port}`,
    conns: options.conns,
    size: options.size,
    elapsed_s: round(elapsedS),
    ops,
    ops_per_s: idle ? 0 : round(ops / timedS, 1),
    unit: UNITS[options.scenario],
    errors: results.reduce((n, r) => n + r.errors, 0) +
      measured.serverErrors.length,
    error_samples: [
      ...measured.serverErrors,
      ...results.flatMap((r) => r.errorSamples),
    ].slice(0, 5),
    load_cpu_s: round(loadCpuS, 2),
    load_cpu_pct: round((100 * loadCpuS) / wallS, 1),
  };
  if (bulk) result.gbytes_per_s = round(ops / timedS / 1e9, 3);
  if (!bulk && !idle) {
    const latencies = sortedLatencies(results);
    result.p50_ms = round(quantile(latencies, 0.5));
    result.p99_ms = round(quantile(latencies, 0.99));
    result.per_conn_min = Math.min(...perConn);
    result.per_conn_max = Math.max(...perConn);
    result.fairness = round(
      result.per_conn_max / Math.max(1, result.per_conn_min),
      2,
    );
  }
  if (options.scenario === "udp-pingpong") {
    result.losses = results.reduce((n, r) => n + r.losses, 0);
    result.late = results.reduce((n, r) => n + r.late, 0);
  }
  if (idle) {
    result.open_s = round(Math.max(...results.map((r) => r.openMs)) / 1000);
    result.rss_before_kb = measured.rssBeforeKb;
    result.rss_after_kb = measured.rssAfterKb;
    if (
      measured.rssBeforeKb !== undefined && measured.rssAfterKb !== undefined
    ) {
      result.kb_per_conn = round(
        (measured.rssAfterKb - measured.rssBeforeKb) / Math.max(1, ops),
        2,
      );
    }
  }
  if (measured.serverCpuS !== undefined && !idle) {
    result.server_cpu_s = round(measured.serverCpuS, 2);
    if (ops > 0) {
      result.server_cpu_us_per_op = Number(
        ((measured.serverCpuS * 1e6) / ops).toPrecision(3),
      );
    }
  }
  return result;
}

async function main(): Promise<number> {
  let options: Options;
  try {
    options = parseOptions(Deno.args);
  } catch (err) {
    console.error(`load.ts: ${errorText(err)}\n${USAGE}`);
    return 2;
  }
  const cpuBefore = ownCpuSeconds();
  const wallStart = performance.now();
  try {
    const measured = await runWorkers(options);
    const loadCpuS = ownCpuSeconds() - cpuBefore;
    const wallS = (performance.now() - wallStart) / 1000;
    console.log(JSON.stringify(report(options, measured, loadCpuS, wallS)));
    return 0;
  } catch (err) {
    console.error(`load.ts: ${errorText(err)}`);
    return 1;
  }
}

if (import.meta.main) Deno.exit(await main());
