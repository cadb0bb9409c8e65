/**
 * Shared helpers of the benchmark toolkit (load.ts, load_worker.ts, run.ts).
 *
 * Only Deno built-ins and `node:` modules: the benchmark must run offline.
 */
import process from "node:process";

export {
  readFull as readExactly,
  sameBytes,
  sleep,
  writeAll,
} from "../lib/io.ts";

/** Linux reports CPU times in /proc in USER_HZ ticks, fixed at 100 on every
 * architecture Deno runs on (the kernel's CONFIG_HZ does not change it). */
const CLOCK_TICKS_PER_SECOND = 100;

/** Period of the byte patterns sent to servers. A prime, so that it never
 * lines up with message or read sizes: a byte echoed at the wrong place, a
 * duplicated or a lost chunk all show up as a mismatch. */
export const PATTERN_PERIOD = 251;

/** The scenarios load.ts can run; run.ts selects them by these names. */
export const SCENARIOS = [
  "tcp-pingpong",
  "tcp-bulk",
  "tcp-connect",
  "tcp-idle",
  "udp-pingpong",
] as const;
export type Scenario = typeof SCENARIOS[number];

/** What load.ts prints, as one JSON object on stdout. Fields that do not
 * apply to a scenario are absent. `ops` counts the scenario's unit of work:
 * messages, datagrams, connections or bytes. */
export interface LoadResult {
  scenario: Scenario;
  target: string;
  conns: number;
  size: number;
  elapsed_s: number;
  ops: number;
  ops_per_s: number;
  unit: "msg" | "datagram" | "conn" | "byte";
  errors: number;
  error_samples: string[];
  load_cpu_s: number;
  load_cpu_pct: number;
  /** Which generator measured it: load.ts (Deno) or load_node.mjs. */
  generator?: string;
  /** load_node.mjs: child processes, and the CPU of the busiest one over
   * the window in % of one core (load.ts: its CPU per worker thread). */
  load_procs?: number;
  load_busiest_proc_pct?: number;
  /** The generator was near a full core: it may have set the pace. */
  generator_bound?: boolean;
  p50_ms?: number;
  p99_ms?: number;
  per_conn_min?: number;
  per_conn_max?: number;
  fairness?: number;
  losses?: number;
  late?: number;
  gbytes_per_s?: number;
  open_s?: number;
  server_cpu_s?: number;
  server_cpu_us_per_op?: number;
  rss_before_kb?: number;
  rss_after_kb?: number;
  kb_per_conn?: number;
}

/** CPU time (user + system, all threads, dead ones included) of a process,
 * in seconds, from /proc/PID/stat. Deno only lets a script read /proc/PID
 * with --allow-all (-A). */
export function readCpuSeconds(pid: number): number {
  const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
  // The command name (field 2) may contain spaces: split after its ")".
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  // fields[0] is field 3 (state); utime and stime are fields 14 and 15.
  const ticks = Number(fields[11]) + Number(fields[12]);
  return ticks / CLOCK_TICKS_PER_SECOND;
}

/** CPU time of this process in seconds, Web Workers included: getrusage()
 * through node:process, which needs no permission and counts microseconds. */
export function ownCpuSeconds(): number {
  const { user, system } = process.cpuUsage();
  return (user + system) / 1e6;
}

/** Resident memory of a process in KiB (VmRSS of /proc/PID/status). */
export function readRssKb(pid: number): number {
  const status = Deno.readTextFileSync(`/proc/${pid}/status`);
  const match = status.match(/^VmRSS:\s+(\d+)\s+kB/m);
  if (!match) throw new Error(`no VmRSS for process ${pid}`);
  return Number(match[1]);
}

/** A reference buffer whose byte i is a function of i % PATTERN_PERIOD, long
 * enough to take any `length`-byte view at any offset of the pattern. */
export function makeReference(length: number): Uint8Array {
  const ref = new Uint8Array(length + PATTERN_PERIOD);
  for (let i = 0; i < ref.length; i++) ref[i] = (i % PATTERN_PERIOD) ^ 0x5a;
  return ref;
}

/** The `length` bytes of the pattern that start at stream position
 * `position` for a stream shifted by `seed` (one seed per connection). */
export function patternAt(
  ref: Uint8Array,
  seed: number,
  position: number,
  length: number,
): Uint8Array {
  const start = (seed + position) % PATTERN_PERIOD;
  return ref.subarray(start, start + length);
}

/** Value at quantile q (0..1) of an ascending array; NaN when empty. */
export function quantile(sorted: ArrayLike<number>, q: number): number {
  if (sorted.length === 0) return NaN;
  const index = Math.min(sorted.length - 1, Math.floor(q * sorted.length));
  return sorted[index];
}

/** Median of the finite values; undefined when there is none. */
export function median(values: (number | undefined)[]): number | undefined {
  const finite = values.filter((v): v is number =>
    v !== undefined && Number.isFinite(v)
  ).sort((a, b) => a - b);
  if (finite.length === 0) return undefined;
  const mid = Math.floor(finite.length / 2);
  return finite.length % 2 ? finite[mid] : (finite[mid - 1] + finite[mid]) / 2;
}

/** Parse a numeric CLI option, or throw a one-line error naming it. */
export function numberOption(
  name: string,
  value: string,
  min: number,
  integer = true,
): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n < min || (integer && !Number.isInteger(n))) {
    throw new Error(
      `--${name} must be ${integer ? "an integer" : "a number"} >= ${min}`,
    );
  }
  return n;
}

/** Short text of any thrown value, for error samples. */
export function errorText(err: unknown): string {
  return err instanceof Error ? `${err.name}: ${err.message}` : String(err);
}
