/**
 * udp_cost.ts — server CPU per echoed UDP datagram: Deno.listenDatagram
 * against Python's recvfrom/sendto loop, same run, same sender, loopback.
 *
 *   deno run -A --unstable-net bench/repro/udp_cost.ts [--rounds 3] [--seconds 3]
 *
 * Each variant is a server process; a Python sender (8 sockets, 4 datagrams
 * of 64 bytes in flight each) keeps it busy for --seconds; the server's CPU
 * time (utime+stime from /proc) divided by the datagrams echoed is the cost.
 * Variants are interleaved round after round; medians and ratios to Python
 * are printed. Linux only (/proc). Traffic: 127.0.0.1 only, bounded in time.
 *
 * Server mode (what the driver spawns): udp_cost.ts serve VARIANT [SECONDS]
 * Profile: deno run -N --unstable-net --cpu-prof --cpu-prof-dir=/tmp/prof \
 *   bench/repro/udp_cost.ts serve deno-8loops 6   (then load it, see UDP.md)
 */

const VARIANTS: Record<string, { loops: number; awaitSend: boolean }> = {
  "deno-1loop": { loops: 1, awaitSend: true },
  "deno-8loops": { loops: 8, awaitSend: true },
  "deno-8loops-nowait": { loops: 8, awaitSend: false },
  "deno-32loops": { loops: 32, awaitSend: true },
};

const PY_SERVER = `
import socket, sys
s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
s.bind(("", 0)); print(s.getsockname()[1], flush=True)
while True:
    data, addr = s.recvfrom(65535)
    s.sendto(data, addr)
`;

const PY_SENDER = `
import socket, select, sys, time
port, seconds = int(sys.argv[1]), float(sys.argv[2])
socks = []
for _ in range(8):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.setblocking(False)
    s.connect(("127.0.0.1", port)); socks.append(s)
msg = b"x" * 64
for s in socks:
    for _ in range(4): s.send(msg)
n, end = 0, time.monotonic() + seconds
while time.monotonic() < end:
    r, _, _ = select.select(socks, [], [], 0.2)
    if not r:  # a lost datagram: top the window up again
        for s in socks: s.send(msg)
    for s in r:
        try:
            while True: s.recv(2048); n += 1; s.send(msg)
        except BlockingIOError: pass
print(n)
`;

async function serve(variant: string): Promise<void> {
  const { loops, awaitSend } = VARIANTS[variant];
  const socket = Deno.listenDatagram({
    hostname: "::",
    port: 0,
    transport: "udp",
  });
  console.log((socket.addr as Deno.NetAddr).port);
  const loop = async () => {
    const buffer = new Uint8Array(65536);
    for (;;) {
      const [data, peer] = await socket.receive(buffer);
      if (awaitSend) await socket.send(data, peer);
      else socket.send(data.slice(), peer).catch(() => {});
    }
  };
  // Profiling (see bench/UDP.md): a bounded life, then a clean exit so
  // --cpu-prof writes its file.
  const lifeSeconds = Number(Deno.args[2] ?? 0);
  if (lifeSeconds > 0) setTimeout(() => Deno.exit(0), lifeSeconds * 1000);
  await Promise.all(Array.from({ length: loops }, loop));
}

function cpuSeconds(pid: number): number {
  const fields = Deno.readTextFileSync(`/proc/${pid}/stat`).split(") ")[1]
    .split(" ");
  return (Number(fields[11]) + Number(fields[12])) / 100; // utime, stime
}

async function firstLine(stream: ReadableStream<Uint8Array>): Promise<string> {
  const reader = stream.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  while (!text.includes("\n")) {
    const { value, done } = await reader.read();
    if (done) throw new Error("server ended before its port line");
    text += value;
  }
  reader.releaseLock();
  return text.split("\n")[0];
}

async function measure(variant: string, seconds: number): Promise<number> {
  const args = variant === "python" ? ["python3", "-c", PY_SERVER] : [
    Deno.execPath(),
    "run",
    "-N",
    "--unstable-net",
    import.meta.filename!,
    "serve",
    variant,
  ];
  const server = new Deno.Command(args[0], {
    args: args.slice(1),
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  try {
    const port = await firstLine(server.stdout);
    const before = cpuSeconds(server.pid);
    const out = await new Deno.Command("python3", {
      args: ["-c", PY_SENDER, port, String(seconds)],
      stdout: "piped",
    }).output();
    const cpu = cpuSeconds(server.pid) - before;
    const echoed = Number(new TextDecoder().decode(out.stdout));
    return (cpu / echoed) * 1e6;
  } finally {
    server.kill("SIGKILL");
    await server.status;
  }
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1];

/** Per-op cost, one process, no peer: N sends to a socket nobody reads
 * (the kernel drops what its buffer cannot hold; send still succeeds), then
 * N receives of datagrams a Python blaster sent. CPU µs per call. */
const PY_SENDTO = `
import socket, sys, time, resource
n, port = int(sys.argv[1]), int(sys.argv[2])
s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
addr, msg = ("::1", port), b"x" * 64
t = resource.getrusage(resource.RUSAGE_SELF)
for _ in range(n): s.sendto(msg, addr)
u = resource.getrusage(resource.RUSAGE_SELF)
print((u.ru_utime + u.ru_stime - t.ru_utime - t.ru_stime) / n * 1e6)
`;

function selfCpuSeconds(): number {
  return cpuSeconds(Deno.pid);
}

async function sendOps(n: number): Promise<Record<string, number>> {
  const sink = Deno.listenDatagram({
    hostname: "::1",
    port: 0,
    transport: "udp",
  });
  const port = (sink.addr as Deno.NetAddr).port;
  const socket = Deno.listenDatagram({
    hostname: "::",
    port: 0,
    transport: "udp",
  });
  const msg = new Uint8Array(64);
  const reused: Deno.NetAddr = { transport: "udp", hostname: "::1", port };
  const out: Record<string, number> = {};
  const time = async (name: string, body: () => Promise<unknown>) => {
    const t = selfCpuSeconds();
    await body();
    out[name] = (selfCpuSeconds() - t) / n * 1e6;
  };
  await time("deno send, one address object", async () => {
    for (let i = 0; i < n; i++) await socket.send(msg, reused);
  });
  await time("deno send, new address object each", async () => {
    for (let i = 0; i < n; i++) {
      await socket.send(msg, { transport: "udp", hostname: "::1", port });
    }
  });
  await time("deno send, 8 in flight", async () => {
    for (let i = 0; i < n; i += 8) {
      await Promise.all(
        Array.from({ length: 8 }, () => socket.send(msg, reused)),
      );
    }
  });
  const py = await new Deno.Command("python3", {
    args: ["-c", PY_SENDTO, String(n), String(port)],
    stdout: "piped",
  }).output();
  out["python sendto"] = Number(new TextDecoder().decode(py.stdout));
  socket.close();
  sink.close();
  return out;
}

if (Deno.args[0] === "serve") {
  await serve(Deno.args[1]);
} else if (Deno.args[0] === "--ops") {
  const rounds: Record<string, number>[] = [];
  for (let r = 0; r < 5; r++) rounds.push(await sendOps(100_000));
  const python = median(rounds.map((r) => r["python sendto"]));
  for (const name of Object.keys(rounds[0])) {
    const m = median(rounds.map((r) => r[name]));
    console.log(
      `${name.padEnd(38)} ${m.toFixed(2).padStart(6)} µs CPU/call   ${
        (m / python).toFixed(2)
      }× python sendto`,
    );
  }
} else {
  const flag = (name: string, fallback: number) => {
    const i = Deno.args.indexOf(name);
    return i >= 0 ? Number(Deno.args[i + 1]) : fallback;
  };
  const rounds = Math.min(flag("--rounds", 3), 20);
  const seconds = Math.min(flag("--seconds", 3), 30);
  const names = ["python", ...Object.keys(VARIANTS)];
  const results: Record<string, number[]> = {};
  for (let round = 1; round <= rounds; round++) {
    // Rotate the order each round so no variant always runs first.
    const order = names.map((_, i) => names[(i + round) % names.length]);
    for (const name of order) {
      (results[name] ??= []).push(await measure(name, seconds));
    }
    console.error(`round ${round} of ${rounds} done`);
  }
  const python = median(results.python);
  console.log(
    "variant               µs CPU/datagram (median)   ratio to python   all rounds",
  );
  for (const name of names) {
    const m = median(results[name]);
    console.log(
      `${name.padEnd(22)}${m.toFixed(2).padStart(10)}${
        (m / python).toFixed(2).padStart(26)
      }×   ${results[name].map((x) => x.toFixed(2)).join(" ")}`,
    );
  }
}
