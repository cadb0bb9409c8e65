// pingpong_driver.mjs — fair ping-pong load for an echo server, under Node.js
// (libuv reads every ready socket in each turn, so the driver itself is fair).
//
//   node bench/repro/pingpong_driver.mjs [--seconds 3] [--counts 100,128,160,256,500]
//   taskset -c 1 node bench/repro/pingpong_driver.mjs --pin   (server alone on CPU 0)
//
// For each connection count it starts budget_starvation.ts (Deno) and
// node_echo.mjs (Node) in turn, opens N connections to 127.0.0.1, each keeping
// one 64-byte message in flight (send, wait for the 64 bytes back, send again)
// for --seconds, and prints per-connection message counts: busiest/slowest.
// Expected: about 1.0 for both servers. Bounded in time; loopback only.
import net from "node:net";
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";

const arg = (name, fallback) => {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : fallback;
};
const seconds = Math.min(Number(arg("--seconds", "3")), 30);
const counts = arg("--counts", "100,128,160,256,500").split(",").map(Number)
  .filter((n) => n > 0 && n <= 2000);
const here = (f) => fileURLToPath(new URL(f, import.meta.url));
const servers = {
  deno: ["deno", ["run", "-N", here("budget_starvation.ts")]],
  node: [process.execPath, [here("node_echo.mjs")]],
};

// --pin: server on CPU 0 (taskset); run the driver itself with taskset -c 1.
const pin = process.argv.includes("--pin");
// --depth D: messages in flight per connection (default 1: ping-pong).
const depth = Math.min(Math.max(Number(arg("--depth", "1")), 1), 16);

function start([command, commandArgs]) {
  const [cmd, args] = pin
    ? ["taskset", ["-c", "0", command, ...commandArgs]]
    : [command, commandArgs];
  const child = spawn(cmd, args, { stdio: ["ignore", "pipe", "inherit"] });
  return new Promise((resolve, reject) => {
    child.on("error", reject);
    child.stdout.once(
      "data",
      (d) => resolve({ child, port: Number(String(d).trim()) }),
    );
  });
}

async function run(port, n) {
  const message = Buffer.alloc(64, 120);
  const sockets = await Promise.all(
    Array.from({ length: n }, () =>
      new Promise((ok, fail) => {
        const s = net.connect(port, "127.0.0.1", () => ok(s));
        s.setNoDelay(true);
        s.on("error", fail);
      })),
  );
  const counts = new Array(n).fill(0);
  let running = true;
  sockets.forEach((s, i) => {
    let received = 0;
    s.on("data", (d) => {
      received += d.length;
      while (received >= 64) {
        received -= 64;
        counts[i]++;
        if (running) s.write(message);
      }
    });
    for (let k = 0; k < depth; k++) s.write(message);
  });
  // Warm-up: every connection echoes once (an accept-queue overflow costs a
  // SYN retry of 1 s), bounded at 5 s; then the counts start from zero.
  for (let t = 0; t < 50 && counts.some((c) => c === 0); t++) {
    await new Promise((r) => setTimeout(r, 100));
  }
  counts.fill(0);
  const cpuBefore = process.cpuUsage();
  await new Promise((r) => setTimeout(r, seconds * 1000));
  const cpu = process.cpuUsage(cpuBefore);
  const driverBusy = (cpu.user + cpu.system) / 1e6 / seconds;
  running = false;
  for (const s of sockets) s.destroy();
  const sorted = [...counts].sort((a, b) => a - b);
  const total = counts.reduce((a, b) => a + b, 0);
  return {
    busiest: sorted.at(-1),
    slowest: sorted[0],
    ratio: sorted.at(-1) / Math.max(sorted[0], 1),
    rate: Math.round(total / seconds),
    driverBusy,
  };
}

console.log(
  "connections  server  busiest  slowest  busiest/slowest  messages/s  driver CPU",
);
for (const n of counts) {
  for (const name of ["deno", "node"]) {
    const { child, port } = await start(servers[name]);
    try {
      const r = await run(port, n);
      console.log(
        `${String(n).padStart(11)}  ${name.padEnd(6)}  ${
          String(r.busiest).padStart(7)
        }  ${String(r.slowest).padStart(7)}  ${
          r.ratio.toFixed(1).padStart(15)
        }  ${String(r.rate).padStart(10)}  ${
          (100 * r.driverBusy).toFixed(0).padStart(9)
        }%${r.driverBusy > 0.9 ? " (driver-bound)" : ""}`,
      );
    } finally {
      child.kill("SIGKILL");
    }
  }
}
