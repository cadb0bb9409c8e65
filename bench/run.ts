/**
 * Benchmark runner: starts each echo server (ours and the peers in peers/),
 * runs every scenario that fits it through load.ts, R times, and prints one
 * markdown table per scenario with medians and ratios to a reference peer.
 *
 *   deno run -A --unstable-net bench/run.ts [--smoke] [--only A,B] [--runs R]
 *                                           [--idle N] [--out bench/RESULTS.md]
 *
 * --only takes server names (with or without extension) and/or scenario ids.
 * A server whose file or runtime is missing is skipped with a printed note.
 * --smoke: tiny durations, 1 run; exits 1 if a scenario gave no numbers or
 * any byte error (it asserts nothing about speed).
 *
 * Server CPU: load.ts reads utime+stime of the server's /proc/PID/stat
 * (all threads) just before and after the timed phase, so connection set-up
 * and the generator's start-up are not counted.
 */
import { parseArgs } from "node:util";
import { fileURLToPath } from "node:url";
import {
  errorText,
  type LoadResult,
  median,
  numberOption,
  type Scenario,
  sleep,
} from "./common.ts";

const ROOT = fileURLToPath(new URL("../", import.meta.url));
const BENCH = fileURLToPath(new URL("./", import.meta.url));
const CACHE = `${BENCH}.cache/`;
const LOAD = `${BENCH}load.ts`;
/** The fair generator (C, one epoll loop, see its header) for the
 * ping-pong and bulk scenarios, compiled with gcc at run time; load.ts
 * (Deno) keeps connect and idle, where a few connections per worker never
 * meet tokio's 128-read budget, and is the fallback when gcc is missing.
 * Bulk left load.ts because load.ts used a full core there before the
 * fastest servers did. */
const LOAD_EPOLL = "bench/load_epoll.c";
const FAIR_SCENARIOS: Scenario[] = [
  "tcp-pingpong",
  "udp-pingpong",
  "tcp-bulk",
];
/** load_epoll's TIMEOUT_MS: ping-pong resends a UDP datagram not echoed
 * within it; bulk waits that long after the window for the server to echo
 * what it still holds and close (tens of MB in flight at most). */
const PINGPONG_TIMEOUT_MS = 200;
const BULK_DRAIN_TIMEOUT_MS = 10_000;
/** load.ts: a worker thread at or above this share of a core was busy all
 * the time, so the generator may have set the pace. */
const GENERATOR_BOUND_PCT = 90;

/** Seconds of each timed phase; 3 runs × ~2 s × ~40 (server, scenario)
 * pairs keeps a full run near 7 minutes on 2 cores. */
const FULL_DURATION_S = 2;
const SMOKE_DURATION_S = 0.1;
/** Ping-pong before each timed window (fair generator), so that connection
 * set-up and JIT warm-up stay out of the figures. */
const FULL_WARMUP_S = 0.3;
/** From this many connections on, the timed window is twice as long. */
const MANY_CONNS = 500;
/** From this many connections on, the ping-pong before the window lasts
 * SETTLE_WARMUP_S: the generator's set-up has every client echo once and
 * then wait for the others, so a server that parks silent readers (echod.ts,
 * select_echo.ts) starts the window with thousands of them waking at once,
 * which Deno completes at only ~5,000-13,000 a second (measured: about 1.2 s
 * for 10,000). The window measures the steady state after it; the note of
 * the scenario gives the transient. */
const SETTLE_CONNS = 10_000;
const SETTLE_WARMUP_S = 2;
const SMOKE_WARMUP_S = 0.05;
/** A smoke window that saw zero operations is run once more this long (a
 * loaded machine may not run the server at all in 0.1 s; issue 18). */
const SMOKE_RETRY_DURATION_S = 2;
const DEFAULT_RUNS = 3;
const DEFAULT_IDLE_CONNS = 1000;
const SMOKE_IDLE_CONNS = 50;
/** Wanted open-files limit for servers and load.ts: 10 000 idle
 * connections need 10 000 descriptors on each side, and Go's io.Copy
 * (splice through a pipe) 3 per connection. Raising the hard limit needs
 * root; otherwise the hard limit is used. */
const WANTED_NOFILE = 65_536;
const READY_TIMEOUT_MS = 10_000;
const STOP_TIMEOUT_MS = 3_000;
/** Beyond the timed phase, time allowed to one load.ts run, which has its
 * own, shorter time-outs: this only catches a load.ts that hangs. */
const LOAD_SLACK_MS = 120_000;
const STDERR_TAIL = 2000;
/** Plain error text from Deno children: no colours, no Rust backtrace. */
const CHILD_ENV = { NO_COLOR: "1", RUST_BACKTRACE: "0" };

type Kind = "sequential" | "concurrent" | "udp";
type Runtime = "deno" | "python" | "uvloop" | "node" | "go" | "c";

interface ServerDef {
  name: string;
  kind: Kind;
  runtime: Runtime;
  /** Path from the repository root. */
  file: string;
  /** Arguments after the file; "0" asks the system for a free port. */
  args: string[];
  /** Deno flags of a bench-only peer (our scripts take their task's). */
  flags?: string[];
  /** Only these scenario ids (default: every scenario of its kind). */
  scenarios?: string[];
}

const OURS = ["--port", "0", "--quiet"];
const PEERS = "bench/peers/";
/** The connection counts of the knee scenarios (issue 11: the fairness of
 * an event loop on tokio's 128-read budget, with and without the fix). */
const KNEE_CONNS = [100, 128, 160, 256, 2000, 10_000];
const KNEE_SERVERS = [
  "select_echo.ts",
  "echod.ts",
  "echod.ts --no-fair",
  "worker_echo.ts",
  "node_net.mjs",
  "deno_plain_echo.ts",
  "c_epoll_echo.c",
];
const PLAIN_SCENARIOS = [50, 500, ...KNEE_CONNS].map((n) => `pingpong-${n}x64`);

/** Every server of the benchmark: adding one is adding one line. */
// deno-fmt-ignore
const SERVERS: ServerDef[] = [
  { name: "tcp_echo.ts", kind: "sequential", runtime: "deno", file: "tcp_echo.ts", args: OURS },
  { name: "select_echo.ts", kind: "concurrent", runtime: "deno", file: "select_echo.ts", args: OURS },
  { name: "worker_echo.ts", kind: "concurrent", runtime: "deno", file: "worker_echo.ts", args: OURS },
  { name: "udp_echo.ts", kind: "udp", runtime: "deno", file: "udp_echo.ts", args: OURS },
  { name: "echod.ts", kind: "concurrent", runtime: "deno", file: "echod.ts", args: OURS },
  { name: "echod.ts --no-fair", kind: "concurrent", runtime: "deno", file: "echod.ts", args: [...OURS, "--no-fair"], scenarios: PLAIN_SCENARIOS },
  { name: "echod.ts --udp-only", kind: "udp", runtime: "deno", file: "echod.ts", args: [...OURS, "--udp-only"] },
  { name: "sheet_tcp_sequential.py", kind: "sequential", runtime: "python", file: `${PEERS}sheet_tcp_sequential.py`, args: ["0"] },
  { name: "sheet_tcp_select.py", kind: "concurrent", runtime: "python", file: `${PEERS}sheet_tcp_select.py`, args: ["0"] },
  { name: "sheet_tcp_thread.py", kind: "concurrent", runtime: "python", file: `${PEERS}sheet_tcp_thread.py`, args: ["0"] },
  { name: "sheet_udp.py", kind: "udp", runtime: "python", file: `${PEERS}sheet_udp.py`, args: ["0"] },
  { name: "asyncio_echo.py", kind: "concurrent", runtime: "python", file: `${PEERS}asyncio_echo.py`, args: ["0"] },
  { name: "uvloop_echo.py", kind: "concurrent", runtime: "uvloop", file: `${PEERS}uvloop_echo.py`, args: ["0"] },
  { name: "node_net.mjs", kind: "concurrent", runtime: "node", file: `${PEERS}node_net.mjs`, args: ["0"] },
  { name: "node_dgram.mjs", kind: "udp", runtime: "node", file: `${PEERS}node_dgram.mjs`, args: ["0"] },
  { name: "go_echo.go", kind: "concurrent", runtime: "go", file: `${PEERS}go_echo.go`, args: ["0"] },
  { name: "go_udp.go", kind: "udp", runtime: "go", file: `${PEERS}go_udp.go`, args: ["0"] },
  { name: "deno_plain_echo.ts", kind: "concurrent", runtime: "deno", file: `${PEERS}deno_plain_echo.ts`, args: ["0"], flags: ["-N"], scenarios: PLAIN_SCENARIOS },
  { name: "c_epoll_echo.c", kind: "concurrent", runtime: "c", file: `${PEERS}c_epoll_echo.c`, args: ["0"] },
  { name: "idle_floor.ts read", kind: "concurrent", runtime: "deno", file: "bench/repro/idle_floor.ts", args: ["read"], flags: ["-N"], scenarios: ["idle"] },
  { name: "idle_floor.ts hold", kind: "concurrent", runtime: "deno", file: "bench/repro/idle_floor.ts", args: ["hold"], flags: ["-N"], scenarios: ["idle"] },
];

/** One column of a scenario's table: a value taken from each run's
 * LoadResult, then the median over runs (or the sum, for error counts). */
interface Column {
  header: string;
  value: (r: LoadResult) => number | undefined;
  digits: number;
  sum?: boolean;
}

const col = {
  rate: (header: string): Column => ({
    header,
    value: (r) => r.ops_per_s,
    digits: 0,
  }),
  p50: { header: "p50 ms", value: (r) => r.p50_ms, digits: 3 } as Column,
  p99: { header: "p99 ms", value: (r) => r.p99_ms, digits: 3 } as Column,
  fairness: {
    header: "max/min per conn",
    value: (r) => r.fairness,
    digits: 2,
  } as Column,
  cpuPerOp: (header: string, scale = 1): Column => ({
    header,
    value: (r) =>
      r.server_cpu_us_per_op === undefined
        ? undefined
        : r.server_cpu_us_per_op * scale,
    digits: 1,
  }),
  busiestLoad: {
    header: "busiest load proc % of a core",
    value: (r) => r.load_busiest_proc_pct,
    digits: 0,
  } as Column,
  errors: {
    header: "errors",
    value: (r) => r.errors,
    digits: 0,
    sum: true,
  } as Column,
};

interface ScenarioDef {
  id: string;
  title: string;
  kinds: Kind[];
  scenario: Scenario;
  conns: number;
  size: number;
  /** Columns; the first one is the headline, compared to the reference. */
  columns: Column[];
  reference: string;
  note?: string;
  /** Start a new server process for each run: memory freed by earlier
   * runs stays in the allocator and would hide the cost being measured. */
  freshServer?: boolean;
  /** Only these servers (default: every server of the kinds). */
  servers?: string[];
  /** Skipped by --smoke. */
  fullOnly?: boolean;
  /** Throughput is not the point (idle memory): no bottleneck verdict. */
  noVerdict?: boolean;
}

const PINGPONG_COLUMNS = [
  col.rate("msg/s"),
  col.p50,
  col.p99,
  col.fairness,
  col.cpuPerOp("server µs CPU/msg"),
  col.busiestLoad,
  col.errors,
];

/** The knee: few servers, many connection counts (see KNEE_CONNS). */
function kneeScenario(conns: number): ScenarioDef {
  return {
    id: `pingpong-${conns}x64`,
    title: `TCP ping-pong, ${conns.toLocaleString("en-US")} connections, ` +
      "64 B messages (the knee)",
    kinds: ["concurrent"],
    scenario: "tcp-pingpong",
    conns,
    size: 64,
    columns: PINGPONG_COLUMNS,
    reference: "node_net.mjs",
    servers: KNEE_SERVERS,
    fullOnly: true,
    note: "select_echo.ts and worker_echo.ts are the lessons: each event " +
      "loop a plain read/write loop, as the sheet's select(); " +
      "deno_plain_echo.ts is the plainest `for (;;) { read; write }` Deno " +
      "echo; echod.ts has the fair turns, echod.ts --no-fair is echod.ts " +
      "with them off; " +
      "c_epoll_echo.c is one C epoll loop (the floor, and the check that " +
      "the generator is fair)." +
      (conns >= SETTLE_CONNS
        ? ` Open files raised (to ${WANTED_NOFILE}, or the hard limit) on both ` +
          "sides. The window " +
          `starts ${SETTLE_WARMUP_S} s after set-up: every client echoed once ` +
          "then waited for the others, and a server that parks silent " +
          "readers needs about 1.2 s for 10,000 of them to wake (echod.ts " +
          "with 0.3 s instead: busiest/slowest 1.4-2.2, p99 5-7x the " +
          "closed-loop mean)."
        : ""),
  };
}

function scenarioDefs(idleConns: number): ScenarioDef[] {
  return [
    {
      id: "pingpong-1x64",
      title: "TCP ping-pong, 1 connection, 64 B messages",
      kinds: ["sequential", "concurrent"],
      scenario: "tcp-pingpong",
      conns: 1,
      size: 64,
      columns: PINGPONG_COLUMNS,
      reference: "node_net.mjs",
    },
    {
      id: "pingpong-1x4k",
      title: "TCP ping-pong, 1 connection, 4 KiB messages",
      kinds: ["sequential", "concurrent"],
      scenario: "tcp-pingpong",
      conns: 1,
      size: 4096,
      columns: PINGPONG_COLUMNS,
      reference: "sheet_tcp_sequential.py",
      note: "A server that echoes with recv(1500) + send() answers 4 KiB in " +
        "3 segments; Nagle holds the last ones until the client's delayed ACK " +
        "(~40 ms): about 23 msg/s instead of thousands.",
    },
    {
      id: "pingpong-50x64",
      title: "TCP ping-pong, 50 connections, 64 B messages",
      kinds: ["concurrent"],
      scenario: "tcp-pingpong",
      conns: 50,
      size: 64,
      columns: PINGPONG_COLUMNS,
      reference: "node_net.mjs",
    },
    ...KNEE_CONNS.filter((n) => n < 500).map(kneeScenario),
    {
      id: "pingpong-500x64",
      title: "TCP ping-pong, 500 connections, 64 B messages",
      kinds: ["concurrent"],
      scenario: "tcp-pingpong",
      conns: 500,
      size: 64,
      columns: PINGPONG_COLUMNS,
      reference: "node_net.mjs",
      note: "max/min per conn: messages completed by the busiest connection " +
        "over the slowest, during the timed window.",
    },
    ...KNEE_CONNS.filter((n) => n > 500).map(kneeScenario),
    {
      id: "bulk",
      title: "TCP bulk, 1 connection, 64 KiB writes while reading",
      kinds: ["sequential", "concurrent"],
      scenario: "tcp-bulk",
      conns: 1,
      size: 65536,
      columns: [
        { header: "GB/s", value: (r) => r.gbytes_per_s, digits: 3 },
        col.cpuPerOp("server CPU s/GB", 1000),
        col.busiestLoad,
        col.errors,
      ],
      reference: "node_net.mjs",
      note: "The generator's CPU here is almost all kernel work (copying " +
        "each byte in and out, loopback delivery), the work an echo server " +
        "pays at the very least: next to a server that adds little to it, " +
        "both sides near a core each means the machine's cores are the limit.",
    },
    {
      id: "connect",
      title: "Connections per second (connect, 16 B echo, close), 4 loops",
      kinds: ["sequential", "concurrent"],
      scenario: "tcp-connect",
      conns: 4,
      size: 16,
      columns: [
        col.rate("conn/s"),
        col.p50,
        col.p99,
        col.cpuPerOp("server µs CPU/conn"),
        col.errors,
      ],
      reference: "node_net.mjs",
      note:
        "Sequential servers get 1 loop (the others would wait in the backlog).",
    },
    {
      id: "udp-50x64",
      title: "UDP ping-pong, 50 sockets, 64 B datagrams, 200 ms timeout",
      kinds: ["udp"],
      scenario: "udp-pingpong",
      conns: 50,
      size: 64,
      columns: [
        col.rate("datagram/s"),
        col.p50,
        col.p99,
        { header: "losses", value: (r) => r.losses, digits: 0, sum: true },
        col.cpuPerOp("server µs CPU/datagram"),
        col.busiestLoad,
        col.errors,
      ],
      reference: "sheet_udp.py",
    },
    {
      // Last: the connections it leaves behind cannot disturb another scenario.
      id: "idle",
      title: `Idle connections: ${idleConns} held open, server memory`,
      kinds: ["concurrent"],
      scenario: "tcp-idle",
      conns: idleConns,
      size: 8,
      columns: [
        { header: "KB RSS/conn", value: (r) => r.kb_per_conn, digits: 2 },
        {
          header: "RSS before MB",
          value: (r) => mb(r.rss_before_kb),
          digits: 1,
        },
        { header: "RSS after MB", value: (r) => mb(r.rss_after_kb), digits: 1 },
        { header: "open s", value: (r) => r.open_s, digits: 2 },
        { header: "accepted", value: (r) => r.ops, digits: 0 },
        col.errors,
      ],
      reference: "node_net.mjs",
      freshServer: true,
      noVerdict: true,
      note: "RSS (VmRSS) delta after each connection did one 8 B echo; " +
        "kernel socket buffers are not in RSS. Deno's own floor: " +
        "idle_floor.ts read is the plainest Deno echo loop (one read " +
        "pending per idle connection, 128 B buffers from a slab), " +
        "idle_floor.ts hold keeps the connection with no read pending " +
        "(Deno's TcpConn and resource alone).",
    },
  ];
}

function mb(kb: number | undefined): number | undefined {
  return kb === undefined ? undefined : kb / 1024;
}

// ---------------------------------------------------------------- options

interface Options {
  smoke: boolean;
  runs: number;
  durationS: number;
  warmupS: number;
  idleConns: number;
  only: string[];
  out?: string;
}

const USAGE = `Usage: deno run -A --unstable-net bench/run.ts [options]
  --smoke        a few seconds: tiny durations, 1 run, checks bytes and numbers
  --only LIST    comma-separated server names and/or scenario ids
  --runs R       runs per scenario and server, median shown (default ${DEFAULT_RUNS})
  --idle N       connections of the idle scenario (default ${DEFAULT_IDLE_CONNS})
  --out FILE     also write the markdown report to FILE, and the results as
                 JSON next to it (FILE with .json), which charts.ts renders`;

function parseOptions(args: string[]): Options {
  const { values } = parseArgs({
    args,
    strict: true,
    options: {
      smoke: { type: "boolean", default: false },
      only: { type: "string", default: "" },
      runs: { type: "string" },
      idle: { type: "string" },
      out: { type: "string" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help) {
    console.log(USAGE);
    Deno.exit(0);
  }
  const smoke = values.smoke;
  return {
    smoke,
    runs: values.runs
      ? numberOption("runs", values.runs, 1)
      : smoke
      ? 1
      : DEFAULT_RUNS,
    durationS: smoke ? SMOKE_DURATION_S : FULL_DURATION_S,
    warmupS: smoke ? SMOKE_WARMUP_S : FULL_WARMUP_S,
    idleConns: values.idle
      ? numberOption("idle", values.idle, 1)
      : smoke
      ? SMOKE_IDLE_CONNS
      : DEFAULT_IDLE_CONNS,
    only: values.only.split(",").map((s) => s.trim()).filter(Boolean),
    out: values.out,
  };
}

/** Does an --only item name this server or scenario? */
function matches(item: string, name: string): boolean {
  return item === name || item === name.replace(/\.[a-z]+$/, "");
}

// ---------------------------------------------------------------- runtimes

/** Run a command, return its trimmed stdout+stderr, or null if it fails. */
async function capture(
  cmd: string,
  args: string[],
  env?: Record<string, string>,
) {
  try {
    const out = await new Deno.Command(cmd, {
      args,
      env,
      stdout: "piped",
      stderr: "piped",
    })
      .output();
    const text = new TextDecoder().decode(out.stdout) +
      new TextDecoder().decode(out.stderr);
    return out.success ? text.trim() : null;
  } catch {
    return null; // not installed
  }
}

/** Pythons tried in order: pyenv's on PATH, then Debian's, which is the one
 * python3-uvloop installs for. */
const PYTHONS = ["python3", "/usr/bin/python3"];

async function firstPython(code: string): Promise<string | null> {
  for (const python of PYTHONS) {
    if (await capture(python, ["-c", code]) !== null) return python;
  }
  return null;
}

/** How to start each runtime, or why it cannot be; plus version strings. */
interface Runtimes {
  command: Partial<Record<Runtime, string>>;
  /** The compiled fair generator, when gcc is present. */
  loadEpoll?: string;
  missing: Partial<Record<Runtime, string>>;
  versions: string[];
}

async function findRuntimes(): Promise<Runtimes> {
  const rt: Runtimes = {
    command: { deno: Deno.execPath() },
    missing: {},
    versions: [],
  };
  rt.versions.push(`deno ${Deno.version.deno}`);
  const node = await capture("node", ["--version"]);
  if (node) {
    rt.command.node = "node";
    rt.versions.push(`node ${node}`);
  } else rt.missing.node = "node not found";
  const python = await firstPython("pass");
  if (python) {
    rt.command.python = python;
    rt.versions.push(`${python}: ${await capture(python, ["--version"])}`);
  } else rt.missing.python = "python3 not found";
  const uvloop = await firstPython("import uvloop");
  if (uvloop) {
    rt.command.uvloop = uvloop;
    const v = await capture(uvloop, [
      "-c",
      "import sys, uvloop; print(sys.version.split()[0], uvloop.__version__)",
    ]);
    rt.versions.push(`uvloop (${uvloop} ${v?.replace(" ", ", uvloop ")})`);
  } else {rt.missing.uvloop = `no python with uvloop (tried ${
      PYTHONS.join(", ")
    }; apt-get install python3-uvloop)`;}
  const go = await capture("go", ["version"]);
  if (go) {
    rt.command.go = "go";
    rt.versions.push(go.replace(/^go version /, "").replace(/ .*/, ""));
  } else rt.missing.go = "go not found (apt-get install golang-go)";
  rt.loadEpoll = await buildC(LOAD_EPOLL).catch(() => undefined);
  if (rt.loadEpoll) {
    rt.command.c = "gcc";
    const gcc = await capture("gcc", ["-dumpfullversion"]);
    rt.versions.push(`gcc ${gcc}`);
  } else rt.missing.c = "gcc not found or failed (apt-get install gcc)";
  return rt;
}

/** Compile a C file (the fair generator, the C peer) into bench/.cache/
 * (gitignored), reusing a fresh binary; throws if gcc is missing or fails. */
async function buildC(file: string): Promise<string> {
  const source = `${ROOT}${file}`;
  const binary = `${CACHE}${file.replace(/^.*\//, "").replace(/\.c$/, "")}`;
  const built = await Deno.stat(binary).catch(() => null);
  const src = await Deno.stat(source);
  if (built?.mtime && src.mtime && built.mtime > src.mtime) return binary;
  await Deno.mkdir(CACHE, { recursive: true });
  const out = await new Deno.Command("gcc", {
    args: ["-O2", "-o", binary, source],
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (!out.success) {
    throw new Error(new TextDecoder().decode(out.stderr).trim());
  }
  return binary;
}

/** Build a Go peer into bench/.cache/ (gitignored), reusing a fresh binary. */
async function buildGo(file: string): Promise<string> {
  const source = `${ROOT}${file}`;
  const binary = `${CACHE}${file.replace(/^.*\//, "").replace(/\.go$/, "")}`;
  const built = await Deno.stat(binary).catch(() => null);
  const src = await Deno.stat(source);
  if (built?.mtime && src.mtime && built.mtime > src.mtime) return binary;
  await Deno.mkdir(CACHE, { recursive: true });
  const out = await new Deno.Command("go", {
    args: ["build", "-o", binary, source],
    env: { GOCACHE: `${CACHE}go-build`, GO111MODULE: "off" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (!out.success) {
    throw new Error(
      `go build failed: ${new TextDecoder().decode(out.stderr).trim()}`,
    );
  }
  return binary;
}

/** Our scripts run with exactly the flags of their task in deno.json
 * (`deno run -N tcp_echo.ts`): the one place where their grants live. */
async function taskFlags(file: string): Promise<string[]> {
  const { tasks } = JSON.parse(await Deno.readTextFile(`${ROOT}deno.json`));
  const words: string[] = tasks[file.replace(/\.ts$/, "")]?.split(/\s+/) ?? [];
  const at = words.indexOf(file);
  if (words[0] !== "deno" || words[1] !== "run" || at < 0) {
    throw new Error(`deno.json has no task "deno run … ${file}"`);
  }
  return words.slice(2, at);
}

/** The command line of a server, or throws why it cannot run. */
async function serverArgv(def: ServerDef, rt: Runtimes): Promise<string[]> {
  const path = `${ROOT}${def.file}`;
  if (!(await Deno.stat(path).catch(() => null))) {
    throw new Error(`${def.file} not found`);
  }
  const command = rt.command[def.runtime];
  if (!command) {
    throw new Error(rt.missing[def.runtime] ?? `${def.runtime} missing`);
  }
  switch (def.runtime) {
    case "deno":
      return [
        command,
        "run",
        ...(def.flags ?? await taskFlags(def.file)),
        path,
        ...def.args,
      ];
    case "go":
      return [await buildGo(def.file), ...def.args];
    case "c":
      return [await buildC(def.file), ...def.args];
    default:
      return [command, path, ...def.args];
  }
}

// ---------------------------------------------------------------- processes

/** Run argv under a raised open-files limit (WANTED_NOFILE, or the hard
 * limit when we may not raise it). `exec` keeps the PID, so /proc/PID is the
 * program itself. */
function withFileLimit(argv: string[]): [string, string[]] {
  const script = `ulimit -n ${WANTED_NOFILE} 2>/dev/null || ` +
    `ulimit -n "$(ulimit -Hn)"; exec "$@"`;
  return ["sh", ["-c", script, "sh", ...argv]];
}

/** A running server, its port, and the tail of its stderr. */
class Server {
  stderrTail = "";
  port = 0;
  #child: Deno.ChildProcess;
  #exited = false;
  readonly status: Promise<Deno.CommandStatus>;

  constructor(argv: string[]) {
    const [cmd, args] = withFileLimit(argv);
    this.#child = new Deno.Command(cmd, {
      args,
      cwd: ROOT,
      env: CHILD_ENV,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    this.status = this.#child.status.then((s) => {
      this.#exited = true;
      return s;
    });
    this.#collectStderr().catch(() => {});
  }

  get pid() {
    return this.#child.pid;
  }

  get alive() {
    return !this.#exited;
  }

  async #collectStderr() {
    for await (
      const text of this.#child.stderr.pipeThrough(new TextDecoderStream())
    ) {
      this.stderrTail = (this.stderrTail + text).slice(-STDERR_TAIL);
    }
  }

  /** Read stdout until the ready line, then keep draining it so that a
   * chatty server never blocks on a full pipe. */
  async waitReady(): Promise<number> {
    const reader = this.#child.stdout.pipeThrough(new TextDecoderStream())
      .getReader();
    let seen = "";
    const timeout = sleep(READY_TIMEOUT_MS).then(() => null);
    for (;;) {
      const chunk = await Promise.race([reader.read(), timeout]);
      if (chunk === null) {
        throw new Error(`no ready line within ${READY_TIMEOUT_MS / 1000} s`);
      }
      if (chunk.done) throw new Error(`exited before its ready line`);
      seen += chunk.value;
      const port = readyPort(seen);
      if (port) {
        this.port = port;
        (async () => {
          while (!(await reader.read()).done) { /* discard */ }
        })().catch(() => {});
        return port;
      }
    }
  }

  /** SIGTERM, then SIGKILL if it does not exit in time; its exit code. */
  async stop(): Promise<number> {
    if (this.#exited) return (await this.status).code;
    this.#child.kill("SIGTERM");
    const stopped = await Promise.race([
      this.status,
      sleep(STOP_TIMEOUT_MS).then(() => null),
    ]);
    if (stopped) return stopped.code;
    this.#child.kill("SIGKILL");
    return (await this.status).code;
  }
}

/** The end of a stderr text on one line, for the notes of the report. */
function oneLine(text: string): string {
  const cut = text.split("Stack backtrace:")[0];
  return cut.replace(/\s+/g, " ").trim().slice(-300);
}

/** The port of a complete "listening on ..." line: our scripts print
 * "... listening on [::]:PORT (...)", the peers "listening on PORT". */
function readyPort(text: string): number | undefined {
  for (const line of text.split("\n").slice(0, -1)) {
    if (!line.includes("listening on")) continue;
    const colon = [...line.matchAll(/:(\d+)/g)].pop();
    const plain = line.match(/listening on (\d+)/);
    const port = Number((colon ?? plain)?.[1]);
    if (port > 0) return port;
  }
  return undefined;
}

async function startServer(argv: string[]): Promise<Server> {
  const server = new Server(argv);
  try {
    await server.waitReady();
    return server;
  } catch (err) {
    await server.stop();
    throw new Error(
      `${errorText(err)}; stderr: ${oneLine(server.stderrTail) || "(empty)"}`,
    );
  }
}

/** One load.ts run; its parsed JSON, or throws with its stderr. */
async function runLoad(
  sc: ScenarioDef,
  conns: number,
  server: Server,
  options: Options,
  rt: Runtimes,
) {
  // Many connections each get few messages per second: a longer window
  // keeps their counts, hence busiest/slowest, out of the noise.
  const durationS = options.durationS *
    (!options.smoke && sc.conns >= MANY_CONNS ? 2 : 1);
  const fair = FAIR_SCENARIOS.includes(sc.scenario) && rt.loadEpoll;
  const args = fair
    ? [
      sc.scenario,
      "127.0.0.1",
      String(server.port),
      String(conns),
      String(sc.size),
      String(durationS),
      String(
        !options.smoke && sc.conns >= SETTLE_CONNS
          ? Math.max(options.warmupS, SETTLE_WARMUP_S)
          : options.warmupS,
      ),
      String(
        sc.scenario === "tcp-bulk"
          ? BULK_DRAIN_TIMEOUT_MS
          : PINGPONG_TIMEOUT_MS,
      ),
      String(server.pid),
    ]
    : [
      // -A: Deno lets a script read another process's /proc/PID only then.
      "run",
      "-A",
      "--unstable-net",
      LOAD,
      "--scenario",
      sc.scenario,
      "--port",
      String(server.port),
      "--conns",
      String(conns),
      "--size",
      String(sc.size),
      "--duration",
      String(durationS),
      "--server-pid",
      String(server.pid),
    ];
  const [cmd, argv] = withFileLimit([
    fair ? rt.loadEpoll! : Deno.execPath(),
    ...args,
  ]);
  const child = new Deno.Command(cmd, {
    args: argv,
    env: CHILD_ENV,
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const timer = setTimeout(
    () => child.kill("SIGKILL"),
    durationS * 1000 + LOAD_SLACK_MS,
  );
  const out = await child.output();
  clearTimeout(timer);
  const stdout = new TextDecoder().decode(out.stdout).trim();
  if (!out.success || !stdout) {
    const stderr = oneLine(new TextDecoder().decode(out.stderr));
    throw new Error(
      `${fair ? "load_epoll" : "load.ts"} exit ${out.code}: ${stderr}`,
    );
  }
  const result = JSON.parse(stdout) as LoadResult;
  result.generator = fair ? "load_epoll.c" : "load.ts";
  if (result.generator_bound === undefined) {
    // load.ts: its CPU shared by its worker threads, one per core at most.
    const workers = Math.min(navigator.hardwareConcurrency, conns);
    result.load_busiest_proc_pct = Number(
      (result.load_cpu_pct / workers).toFixed(1),
    );
    result.generator_bound = result.load_busiest_proc_pct >=
      GENERATOR_BOUND_PCT;
  }
  return result;
}

// ---------------------------------------------------------------- results

interface Row {
  server: string;
  runs: LoadResult[];
}

/** Median (or sum) of a column over the runs of a row. */
function aggregate(column: Column, runs: LoadResult[]): number | undefined {
  const values = runs.map(column.value);
  if (!column.sum) return median(values);
  return values.reduce((a: number, v) => a + (v ?? 0), 0);
}

function formatNumber(value: number | undefined, digits: number): string {
  if (value === undefined || !Number.isFinite(value)) return "—";
  return value.toLocaleString("en-US", {
    minimumFractionDigits: digits,
    maximumFractionDigits: digits,
  });
}

/** 2 decimals, or 2 significant digits for tiny ratios (Nagle stalls). */
function formatRatio(ratio: number | undefined): string {
  if (ratio === undefined || !Number.isFinite(ratio)) return "—";
  return `${ratio >= 0.1 ? ratio.toFixed(2) : ratio.toPrecision(2)}×`;
}

/** Was the generator the bottleneck in most runs of a row? */
function generatorBound(row: Row): boolean {
  const bound = row.runs.filter((r) => r.generator_bound).length;
  return bound * 2 > row.runs.length;
}

/** "server" or "generator", or undefined where pace is not the point. */
function verdict(sc: ScenarioDef, row: Row): string | undefined {
  if (sc.noVerdict || row.runs.length === 0) return undefined;
  return generatorBound(row) ? "generator" : "server";
}

/** A ratio is published only when both rows are server-bound. */
function ratioCell(
  sc: ScenarioDef,
  row: Row,
  ref: Row | undefined,
  ratio: number | undefined,
): string {
  if (ratio === undefined) return "—";
  // Memory held by the server: no generator can set it.
  if (sc.noVerdict) return `${formatRatio(ratio)} memory`;
  if (!ref) return formatRatio(ratio);
  if (verdict(sc, row) === "generator" || verdict(sc, ref) === "generator") {
    return "generator-bound: no ratio";
  }
  return `${formatRatio(ratio)} server-bound`;
}

function table(sc: ScenarioDef, rows: Row[], runs: number): string {
  const [headline] = sc.columns;
  const ref = rows.find((r) => r.server === sc.reference) ?? rows[0];
  const refValue = ref ? aggregate(headline, ref.runs) : undefined;
  const headers = [
    "server",
    headline.header,
    `× ${ref?.server ?? "ref"}`,
    ...sc.columns.slice(1).map((c) => c.header),
    ...(sc.noVerdict ? [] : ["bound"]),
  ];
  const generators = [
    ...new Set(rows.flatMap((r) => r.runs.map((x) => x.generator))),
  ].filter(Boolean);
  const lines = [
    `## ${sc.title}`,
    "",
    ...(sc.note ? [sc.note, ""] : []),
    `Median of ${runs} run(s). Scenario id: \`${sc.id}\`. Generator: ${
      generators.join(", ") || "—"
    }.`,
    "",
    `| ${headers.join(" | ")} |`,
    `|${headers.map((_, i) => (i ? " ---: " : " --- ")).join("|")}|`,
  ];
  for (const row of rows) {
    const value = aggregate(headline, row.runs);
    const ratio = value !== undefined && refValue
      ? value / refValue
      : undefined;
    const cells = [
      row.server,
      formatNumber(value, headline.digits),
      ratioCell(sc, row, ref, ratio),
      ...sc.columns.slice(1).map((c) =>
        formatNumber(aggregate(c, row.runs), c.digits)
      ),
      ...(sc.noVerdict ? [] : [verdict(sc, row) ?? "—"]),
    ];
    lines.push(`| ${cells.join(" | ")} |`);
  }
  if (!sc.noVerdict) lines.push("", calibration(sc, rows));
  return lines.join("\n");
}

/** The generator against the fastest server present: if even the fastest
 * left the generator below a full core, the generator had room to spare
 * for every slower server. */
function calibration(sc: ScenarioDef, rows: Row[]): string {
  const [headline] = sc.columns;
  let fastest: Row | undefined;
  let best = -Infinity;
  for (const row of rows) {
    const v = aggregate(headline, row.runs);
    if (v !== undefined && v > best) [fastest, best] = [row, v];
  }
  if (!fastest) return "Calibration: no numbers.";
  const busiest = median(fastest.runs.map((r) => r.load_busiest_proc_pct));
  const spare = !generatorBound(fastest);
  return `Calibration: the fastest server here, ${fastest.server}, ran at ${
    formatNumber(best, headline.digits)
  } ${headline.header} with the generator's busiest process at ${
    formatNumber(busiest, 0)
  }% of a core: ${
    spare
      ? "the generator had room to spare, so every row is the server's pace."
      : "the generator was near a full core there; rows marked generator " +
        "are its pace, not the server's."
  }`;
}

/** Everything the charts need, medians per server and scenario plus every
 * run, so that charts.ts can redraw without running anything. */
function resultsJson(
  rt: Runtimes,
  options: Options,
  scenarios: ScenarioDef[],
  results: Map<string, Row[]>,
  notes: string[],
) {
  const pick = (runs: LoadResult[], f: (r: LoadResult) => number | undefined) =>
    median(runs.map(f));
  return {
    date: new Date().toISOString(),
    command: `deno run -A --unstable-net bench/run.ts ${Deno.args.join(" ")}`,
    cores: navigator.hardwareConcurrency,
    versions: rt.versions,
    runs: options.runs,
    duration_s: options.durationS,
    smoke: options.smoke,
    notes,
    scenarios: scenarios.map((sc) => ({
      id: sc.id,
      title: sc.title,
      scenario: sc.scenario,
      conns: sc.conns,
      size: sc.size,
      reference: sc.reference,
      rows: results.get(sc.id)!.map((row) => ({
        server: row.server,
        bound: verdict(sc, row) ?? null,
        ops_per_s: pick(row.runs, (r) => r.ops_per_s) ?? null,
        p50_ms: pick(row.runs, (r) => r.p50_ms) ?? null,
        p99_ms: pick(row.runs, (r) => r.p99_ms) ?? null,
        fairness: pick(row.runs, (r) => r.fairness) ?? null,
        server_cpu_us_per_op: pick(row.runs, (r) => r.server_cpu_us_per_op) ??
          null,
        gbytes_per_s: pick(row.runs, (r) => r.gbytes_per_s) ?? null,
        kb_per_conn: pick(row.runs, (r) => r.kb_per_conn) ?? null,
        load_busiest_proc_pct: pick(row.runs, (r) => r.load_busiest_proc_pct) ??
          null,
        runs: row.runs,
      })),
    })),
  };
}

async function machineHeader(rt: Runtimes, options: Options): Promise<string> {
  const cpuinfo = await Deno.readTextFile("/proc/cpuinfo").catch(() => "");
  const model = cpuinfo.match(/^model name\s*:\s*(.*)$/m)?.[1] ?? "unknown CPU";
  return [
    "# deno-sockets benchmark",
    "",
    `- Date: ${new Date().toISOString().slice(0, 16).replace("T", " ")} UTC`,
    `- Command: \`deno run -A --unstable-net bench/run.ts ${
      Deno.args.join(" ")
    }\` (\`deno task bench\`)`,
    `- Machine: ${navigator.hardwareConcurrency} cores, ${model}, Linux ${Deno.osRelease()}`,
    `- Versions: ${rt.versions.join("; ")}`,
    `- ${options.runs} run(s) per scenario and server, ${options.durationS} s each (${
      2 * options.durationS
    } s from ${MANY_CONNS} connections on), interleaved: run 1 of every server, then run 2, …; ` +
    `${
      options.smoke
        ? "SMOKE run: numbers are not meaningful."
        : "medians shown."
    }`,
    "- Load generators, on the same cores as the server: ping-pong (TCP and UDP) " +
    "and bulk bench/load_epoll.c (one C epoll loop, compiled with gcc; it serves every " +
    "ready socket of each turn, so it is fair at any connection count, and costs a few " +
    "µs per message; in bulk, 64 KiB non-blocking writes and 256 KiB reads, every " +
    "byte checked); connect and idle bench/load.ts (Deno Web Workers, at most " +
    "4 connections each there).",
    "- `bound`: `generator` when the generator's busiest process (or load.ts " +
    `worker) used ≥ ${GENERATOR_BOUND_PCT}% of a core over the window in most runs: then the ` +
    "figure is the generator's pace and no ratio is published for it; `server` " +
    "otherwise. Each table ends with a calibration against its fastest server.",
    "- Server CPU: utime+stime of /proc/PID/stat over the timed phase, per operation " +
    "(10 ms resolution: meaningless when a run has few operations).",
    "- Every echoed byte is verified; `errors` counts mismatches and failures.",
  ].join("\n");
}

// ---------------------------------------------------------------- main

/** One scenario and the servers that run it. */
interface Plan {
  sc: ScenarioDef;
  servers: ServerDef[];
}

function makePlan(options: Options, notes: string[]): Plan[] {
  const scenarios = scenarioDefs(options.idleConns)
    .filter((sc) => !(options.smoke && sc.fullOnly));
  const scenarioIds = new Set(scenarios.map((s) => s.id));
  const onlyServers = options.only.filter((o) => !scenarioIds.has(o));
  const onlyScenarios = options.only.filter((o) => scenarioIds.has(o));
  for (const item of onlyServers) {
    if (!SERVERS.some((s) => matches(item, s.name))) {
      notes.push(`--only: unknown name "${item}"`);
    }
  }
  const servers = SERVERS.filter((s) =>
    onlyServers.length === 0 || onlyServers.some((o) => matches(o, s.name))
  );
  return scenarios
    .filter((sc) => onlyScenarios.length === 0 || onlyScenarios.includes(sc.id))
    .map((sc) => ({
      sc,
      servers: servers.filter((s) =>
        sc.kinds.includes(s.kind) &&
        (sc.servers ?? [s.name]).includes(s.name) &&
        (s.scenarios ?? [sc.id]).includes(sc.id)
      ),
    }))
    .filter((p) => p.servers.length > 0);
}

/** "step n of N", with the time left estimated from the steps done. */
class Progress {
  #done = 0;
  #started = performance.now();
  constructor(readonly total: number) {}

  step(label: string) {
    this.#done++;
    const perStep = (performance.now() - this.#started) / (this.#done - 1 || 1);
    const leftS = this.#done > 1
      ? Math.round((perStep * (this.total - this.#done + 1)) / 1000)
      : undefined;
    const left = leftS === undefined
      ? ""
      : `, about ${Math.floor(leftS / 60)} min ${leftS % 60} s left`;
    console.error(`step ${this.#done} of ${this.total}${left}: ${label}`);
  }
}

/** A server of a scenario: its command line and its row of results. */
interface Slot {
  def: ServerDef;
  argv: string[];
  row: Row;
}

/** The running servers, kept from one scenario to the next (starting
 * them again for each scenario would double a smoke run), and those that
 * failed to start. */
interface Pool {
  running: Map<string, Server>;
  broken: Set<string>;
}

/** Run one scenario: its servers interleaved (run 1 of each server, then
 * run 2 of each, ...), so that a noisy moment of the shared machine hits
 * every server alike. Servers stay up between runs unless the scenario
 * asks for a fresh one. */
async function benchScenario(
  plan: Plan,
  slots: Slot[],
  pool: Pool,
  rt: Runtimes,
  options: Options,
  notes: string[],
  progress: Progress,
) {
  const { sc } = plan;
  for (let run = 0; run < options.runs; run++) {
    for (const slot of slots) {
      const { def } = slot;
      progress.step(`${sc.id} ${def.name} run ${run + 1}`);
      if (pool.broken.has(def.name)) continue;
      let server = pool.running.get(def.name);
      if (server && (sc.freshServer || !server.alive)) {
        await retire(server, def.name, notes);
        server = undefined;
      }
      try {
        server ??= await startServer(slot.argv);
        pool.running.set(def.name, server);
      } catch (err) {
        pool.running.delete(def.name);
        pool.broken.add(def.name);
        notes.push(`${def.name} did not start: ${errorText(err)}`);
        console.error(`  ${notes.at(-1)}`);
        continue;
      }
      const conns = def.kind === "sequential" ? 1 : sc.conns;
      try {
        let result = await runLoad(sc, conns, server, options, rt);
        if (options.smoke && result.ops === 0 && result.errors === 0) {
          // A smoke window is 0.1 s: on a loaded machine the server may
          // get no CPU in it. Once more, longer, before calling it broken.
          console.error(`  ${summary(result)}; once more, for 2 s`);
          const longer = { ...options, durationS: SMOKE_RETRY_DURATION_S };
          result = await runLoad(sc, conns, server, longer, rt);
        }
        slot.row.runs.push(result);
        console.error(`  ${summary(result)}`);
      } catch (err) {
        notes.push(
          `${def.name} ${sc.id} run ${run + 1} failed: ${errorText(err)}`,
        );
        console.error(`  ${notes.at(-1)}`);
      }
    }
  }
}

/** Stop a server and note how it ended if not cleanly: a crash during the
 * runs (with its stderr), or a non-zero exit on SIGTERM. */
async function retire(server: Server, name: string, notes: string[]) {
  if (!server.alive) {
    const { code } = await server.status;
    notes.push(`${name} died (exit ${code}): ${oneLine(server.stderrTail)}`);
    return;
  }
  const code = await server.stop();
  if (code) notes.push(`${name} exited with code ${code} on SIGTERM`);
}

function summary(r: LoadResult): string {
  const load = r.load_busiest_proc_pct === undefined
    ? ""
    : `, load ${r.load_busiest_proc_pct}%${r.generator_bound ? " BOUND" : ""}`;
  const fair = r.fairness === undefined ? "" : `, max/min ${r.fairness}`;
  const rate = r.unit === "byte"
    ? `${r.gbytes_per_s} GB/s`
    : `${r.ops_per_s} ${r.unit}/s`;
  const idle = r.kb_per_conn === undefined ? "" : `, ${r.kb_per_conn} KB/conn`;
  return `${
    r.scenario === "tcp-idle" ? `${r.ops} accepted` : rate
  }${idle}${fair}${load}, errors ${r.errors}`;
}

/** Smoke check: every (server, scenario) gave numbers and no byte errors. */
function smokeFailures(results: Map<string, Row[]>): string[] {
  const failures: string[] = [];
  for (const [id, rows] of results) {
    for (const row of rows) {
      const r = row.runs[0];
      if (!r) failures.push(`${row.server} ${id}: no numbers`);
      else if (r.ops === 0) {
        failures.push(`${row.server} ${id}: zero operations`);
      } else if (r.errors > 0) {
        failures.push(
          `${row.server} ${id}: ${r.errors} errors: ${
            r.error_samples.join("; ")
          }`,
        );
      }
    }
  }
  return failures;
}

async function main(): Promise<number> {
  let options: Options;
  try {
    options = parseOptions(Deno.args);
  } catch (err) {
    console.error(`run.ts: ${errorText(err)}\n${USAGE}`);
    return 2;
  }
  const notes: string[] = [];
  const rt = await findRuntimes();
  if (!rt.loadEpoll) {
    notes.push(
      "gcc missing or failed: the ping-pong and bulk scenarios fall back to " +
        "load.ts (Deno), which is unfair itself past ~128 busy connections " +
        "per worker and near a full core in bulk",
    );
  }
  const plans = makePlan(options, notes);
  // Every server's command line once: a missing file or runtime is one note.
  const argvs = new Map<string, string[] | null>();
  for (const def of new Set(plans.flatMap((p) => p.servers))) {
    try {
      argvs.set(def.name, await serverArgv(def, rt));
    } catch (err) {
      argvs.set(def.name, null);
      notes.push(`skipped: ${def.name}: ${errorText(err)}`);
      console.error(notes.at(-1));
    }
  }
  const results = new Map<string, Row[]>();
  const slotsOf = plans.map((plan) =>
    plan.servers.filter((def) => argvs.get(def.name)).map((def): Slot => ({
      def,
      argv: argvs.get(def.name)!,
      row: { server: def.name, runs: [] },
    }))
  );
  const progress = new Progress(
    slotsOf.reduce((n, slots) => n + slots.length * options.runs, 0),
  );
  const pool: Pool = { running: new Map(), broken: new Set() };
  for (const [i, plan] of plans.entries()) {
    results.set(plan.sc.id, slotsOf[i].map((s) => s.row));
    await benchScenario(plan, slotsOf[i], pool, rt, options, notes, progress);
  }
  for (const [name, server] of pool.running) {
    await retire(server, name, notes);
  }
  const ran = plans.map((p) => p.sc).filter((sc) =>
    results.get(sc.id)!.length > 0
  );
  const sections = ran.map((sc) =>
    table(sc, results.get(sc.id)!, options.runs)
  );
  const report = [
    await machineHeader(rt, options),
    ...sections,
    notes.length ? `## Notes\n\n${notes.map((n) => `- ${n}`).join("\n")}` : "",
  ].join("\n\n").trim() + "\n";
  console.log(report);
  if (options.out) {
    await Deno.writeTextFile(options.out, report);
    const json = options.out.replace(/\.md$/, "") + ".json";
    await Deno.writeTextFile(
      json,
      JSON.stringify(resultsJson(rt, options, ran, results, notes), null, 1) +
        "\n",
    );
    console.error(`wrote ${options.out} and ${json}`);
  }
  if (!options.smoke) return 0;
  const failures = smokeFailures(results);
  for (const f of failures) console.error(`SMOKE FAIL: ${f}`);
  console.error(
    failures.length ? `smoke: ${failures.length} failure(s)` : "smoke: ok",
  );
  return failures.length ? 1 : 0;
}

if (import.meta.main) Deno.exit(await main());
