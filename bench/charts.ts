/**
 * Charts of the benchmark: reads the results JSON that run.ts writes next
 * to its report (bench/RESULTS.json) and renders SVG files into
 * bench/charts/, with Vega-Lite (npm), headless. Nothing is run again.
 *
 *   deno run -R=bench -W=bench/charts bench/charts.ts [RESULTS.json] [OUTDIR]
 *   (deno task bench:charts)
 *
 * bench/ may import npm packages; the root scripts never do.
 */
// Pinned inline on purpose: bench-only dependencies stay out of deno.json,
// whose scripts import nothing.
// deno-lint-ignore no-import-prefix
import * as vega from "npm:vega@5.30.0";
// deno-lint-ignore no-import-prefix
import * as vl from "npm:vega-lite@5.21.0";

interface Row {
  server: string;
  bound: string | null;
  ops_per_s: number | null;
  p99_ms: number | null;
  fairness: number | null;
  kb_per_conn: number | null;
  server_cpu_us_per_op: number | null;
}
interface ScenarioResult {
  id: string;
  scenario: string;
  conns: number;
  size: number;
  rows: Row[];
}
interface Results {
  date: string;
  command: string;
  smoke: boolean;
  scenarios: ScenarioResult[];
}

const [input = "bench/RESULTS.json", outDir = "bench/charts"] = Deno.args;

/** Colours fixed per server, so that one server looks the same on every
 * chart: ours in blues, the sheets' in oranges, the other runtimes grey-green. */
const COLOURS: Record<string, string> = {
  "select_echo.ts": "#1f77b4",
  "worker_echo.ts": "#6baed6",
  "tcp_echo.ts": "#08306b",
  "udp_echo.ts": "#1f77b4",
  "deno_plain_echo.ts": "#d62728",
  "node_net.mjs": "#2ca02c",
  "node_dgram.mjs": "#2ca02c",
  "sheet_tcp_select.py": "#ff7f0e",
  "sheet_tcp_thread.py": "#fdae6b",
  "sheet_tcp_sequential.py": "#e6550d",
  "sheet_udp.py": "#ff7f0e",
  "asyncio_echo.py": "#9467bd",
  "uvloop_echo.py": "#c5b0d5",
  "echod.ts": "#17375e",
  "echod.ts --udp-only": "#17375e",
  "echod.ts --no-fair": "#9ecae1",
  "c_epoll_echo.c": "#000000",
  "idle_floor.ts read": "#e377c2",
  "idle_floor.ts hold": "#f7b6d2",
  "go_echo.go": "#17becf",
  "go_udp.go": "#17becf",
};

function colour(servers: string[]) {
  return {
    domain: servers,
    range: servers.map((s) => COLOURS[s] ?? "#7f7f7f"),
  };
}

async function render(name: string, spec: vl.TopLevelSpec) {
  const compiled = vl.compile(spec).spec;
  const view = new vega.View(vega.parse(compiled), { renderer: "none" });
  const svg = await view.toSVG();
  view.finalize();
  const path = `${outDir}/${name}.svg`;
  await Deno.writeTextFile(path, svg + "\n");
  console.error(`wrote ${path}`);
}

async function main() {
  const results: Results = JSON.parse(await Deno.readTextFile(input));
  await Deno.mkdir(outDir, { recursive: true });
  const subtitle = `${results.smoke ? "SMOKE RUN, not meaningful. " : ""}${
    results.date.slice(0, 16).replace("T", " ")
  } UTC · ${results.command}`;
  // TCP ping-pong, 64 B, one point per (server, connection count).
  const pingpong = results.scenarios
    .filter((s) => s.scenario === "tcp-pingpong" && s.size === 64)
    .flatMap((s) =>
      s.rows.filter((r) => r.ops_per_s !== null).map((r) => ({
        clients: s.conns,
        server: r.server,
        "messages/s": r.ops_per_s,
        "p99 ms": r.p99_ms,
        "busiest/slowest": r.fairness,
        bound: r.bound,
      }))
    );
  const servers = [...new Set(pingpong.map((p) => p.server))];
  const clients = [...new Set(pingpong.map((p) => p.clients))].sort((a, b) =>
    a - b
  );
  const panel = (field: string, log: boolean) => ({
    width: 330,
    height: 240,
    mark: { type: "line" as const, point: true },
    encoding: {
      x: {
        field: "clients",
        type: "ordinal" as const,
        sort: clients,
        title: "connections (each one 64 B ping-pong)",
      },
      y: {
        field,
        type: "quantitative" as const,
        scale: log ? { type: "log" as const } : {},
      },
      color: {
        field: "server",
        type: "nominal" as const,
        scale: colour(servers),
        legend: { labelLimit: 200 },
      },
      strokeDash: {
        field: "bound",
        type: "nominal" as const,
        title: "pace set by",
      },
      tooltip: [{ field: "server" }, { field }],
    },
  });
  await render("pingpong", {
    $schema: "https://vega.github.io/schema/vega-lite/v5.json",
    title: {
      text: "TCP echo under load: throughput, tail latency and fairness",
      subtitle,
    },
    data: { values: pingpong },
    hconcat: [
      panel("messages/s", false),
      panel("p99 ms", true),
      panel("busiest/slowest", true),
    ],
  } as vl.TopLevelSpec);
  for (
    const [name, field, log] of [
      ["messages", "messages/s", false],
      ["p99", "p99 ms", true],
      ["fairness", "busiest/slowest", true],
    ] as const
  ) {
    await render(`pingpong_${name}`, {
      $schema: "https://vega.github.io/schema/vega-lite/v5.json",
      title: { text: `TCP ping-pong, 64 B: ${field} vs connections`, subtitle },
      data: { values: pingpong },
      ...panel(field, log),
    } as vl.TopLevelSpec);
  }
  const bars = (
    name: string,
    scenario: string,
    field: keyof Row,
    title: string,
  ) => {
    const sc = results.scenarios.find((s) => s.scenario === scenario);
    if (!sc) return;
    const values = sc.rows.filter((r) => r[field] !== null).map((r) => ({
      server: r.server,
      [title]: r[field],
    }));
    const names = values.map((v) => v.server);
    return render(name, {
      $schema: "https://vega.github.io/schema/vega-lite/v5.json",
      title: {
        text: `${title} (${sc.conns.toLocaleString("en-US")} ${
          scenario === "udp-pingpong" ? "sockets" : "connections"
        })`,
        subtitle,
      },
      data: { values },
      width: 420,
      mark: "bar",
      encoding: {
        y: { field: "server", type: "nominal", sort: "-x", title: null },
        x: { field: title, type: "quantitative" },
        color: {
          field: "server",
          type: "nominal",
          scale: colour(names),
          legend: null,
        },
      },
    } as vl.TopLevelSpec);
  };
  await bars(
    "idle_memory",
    "tcp-idle",
    "kb_per_conn",
    "KB RSS per idle connection",
  );
  await bars("udp", "udp-pingpong", "ops_per_s", "UDP datagrams/s, 64 B");
}

if (import.meta.main) await main();
