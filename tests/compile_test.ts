// `deno task compile` (tools/compile.ts): offline it fails with one clear
// line; with a real denort runtime every binary is built and run as the
// script it came from (a deno CLI that ignores the program fails here).

import assert from "node:assert/strict";
import { ROOT_DIR, WAIT_MS, within } from "./helpers.ts";
import { cachedZip, compileFlags, SCRIPTS } from "../tools/compile.ts";

const decoder = new TextDecoder();

function realDenoDir(): string {
  const out = new Deno.Command(Deno.execPath(), {
    args: ["info", "--json"],
    stdout: "piped",
    stderr: "null",
  }).outputSync();
  try {
    return JSON.parse(decoder.decode(out.stdout)).denoDir ?? "";
  } catch {
    return "";
  }
}

function denortAvailable(): boolean {
  if (Deno.env.get("DENORT_BIN")) return true;
  try {
    Deno.statSync(
      cachedZip(realDenoDir(), Deno.version.deno, Deno.build.target),
    );
    return true;
  } catch {
    return false;
  }
}
const DENORT = denortAvailable();

Deno.test("compile flags: task permissions, --unstable-net once, worker_echo embeds itself", async () => {
  const tasks =
    JSON.parse(await Deno.readTextFile(ROOT_DIR + "deno.json")).tasks;
  assert.deepEqual(compileFlags("tcp_echo.ts", tasks), [
    "-N",
    "--unstable-net",
  ]);
  assert.deepEqual(compileFlags("worker_echo.ts", tasks), [
    "-N",
    "--allow-read=worker_echo.ts",
    "--unstable-net",
    "--include",
    "worker_echo.ts",
  ]);
});

Deno.test("compile flags: check.ts keeps its task's permissions (connect, start a server with --run, read a targets file)", async () => {
  const tasks =
    JSON.parse(await Deno.readTextFile(ROOT_DIR + "deno.json")).tasks;
  assert.ok(SCRIPTS.includes("check.ts"));
  assert.deepEqual(compileFlags("check.ts", tasks), [
    "-N",
    "--allow-run",
    "--allow-read",
    "--unstable-net",
  ]);
});

Deno.test({
  name: DENORT
    ? "deno task compile without denort fails with one line (ignored: a denort runtime is available here)"
    : "deno task compile without denort fails with one line naming DENORT_BIN and the cached zip",
  ignore: DENORT,
  async fn() {
    // A proxy that refuses every connection (on loopback) makes a connected
    // machine as offline as ours.
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["task", "compile"],
      cwd: ROOT_DIR,
      env: {
        HTTPS_PROXY: "http://127.0.0.1:9",
        HTTP_PROXY: "http://127.0.0.1:9",
        NO_PROXY: "",
        DENO_NO_UPDATE_CHECK: "1",
        NO_COLOR: "1",
      },
      stdout: "piped",
      stderr: "piped",
    }).output();
    const lines = decoder.decode(out.stderr).split("\n").filter((l) =>
      l && !l.startsWith("Task compile")
    );
    assert.equal(out.code, 1, lines.join("\n"));
    assert.equal(lines.length, 1, lines.join("\n"));
    assert.match(
      lines[0],
      /^compile: cannot get Deno's denort runtime .*DENORT_BIN=.*dl\/release\/v\d+\.\d+\.\d+\/denort-.*\.zip/,
    );
  },
});

async function startBinary(
  name: string,
): Promise<{ child: Deno.ChildProcess; port: number; log: () => string }> {
  const child = new Deno.Command(`${ROOT_DIR}bin/${name}`, {
    args: ["--port", "0"],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let seen = "";
  for (const stream of [child.stdout, child.stderr]) {
    (async () => {
      for await (const c of stream.pipeThrough(new TextDecoderStream())) {
        seen += c;
      }
    })();
  }
  let port = 0;
  for (let i = 0; i < WAIT_MS / 50 && port === 0; i++) {
    const m = /listening on \S*:(\d+)/.exec(seen);
    if (m) port = Number(m[1]);
    else await new Promise((r) => setTimeout(r, 50));
  }
  return { child, port, log: () => seen };
}

async function exchange(
  port: number,
  send: string,
  expect: string,
): Promise<void> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  try {
    await conn.write(new TextEncoder().encode(send));
    let got = "";
    const buf = new Uint8Array(256);
    await within(
      (async () => {
        while (got.length < expect.length) {
          const n = await conn.read(buf);
          if (n === null) break;
          got += decoder.decode(buf.subarray(0, n));
        }
      })(),
      `the reply ${JSON.stringify(expect)}`,
    );
    assert.equal(got, expect);
  } finally {
    conn.close();
  }
}

Deno.test({
  name: DENORT
    ? "deno task compile builds every binary, and each runs as its script"
    : "deno task compile builds every binary, and each runs as its script (ignored: no denort runtime here; set DENORT_BIN or cache denort-<target>.zip)",
  ignore: !DENORT,
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const build = await new Deno.Command(Deno.execPath(), {
      args: ["task", "compile"],
      cwd: ROOT_DIR,
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert.equal(build.code, 0, decoder.decode(build.stderr));
    for (const script of SCRIPTS) {
      const name = script.replace(/\.ts$/, "");
      const help = await new Deno.Command(`${ROOT_DIR}bin/${name}`, {
        args: ["--help"],
        stdout: "piped",
        stderr: "piped",
      }).output();
      assert.equal(help.code, 0, `${name} --help`);
      const first = decoder.decode(help.stdout).split("\n")[0];
      assert.match(
        first,
        new RegExp(`^Usage: .*\\b${name}\\b`),
        `${name} --help: ${first}`,
      );
      // Inside a binary, messages name the binary, not a `deno run` line.
      assert.doesNotMatch(first, /deno run/, `${name} --help: ${first}`);
      if (name === "client") continue;
      if (name === "check") continue; // a client too: its --help is enough
      const { child, port, log } = await startBinary(name);
      try {
        assert.ok(port > 0, `${name}: no ready line: ${log()}`);
        if (name === "udp_echo") {
          const sock = Deno.listenDatagram({
            transport: "udp",
            hostname: "127.0.0.1",
            port: 0,
          });
          try {
            await sock.send(new TextEncoder().encode("hého\n"), {
              transport: "udp",
              hostname: "127.0.0.1",
              port,
            });
            const [data] = await within(
              sock.receive(new Uint8Array(64)),
              "the UDP echo",
            );
            assert.equal(decoder.decode(data), "hého\n");
          } finally {
            sock.close();
          }
        } else if (name === "ok_server") {
          await exchange(port, "bonjour\n", "OK\n");
        } else {
          await exchange(port, "hého\n", "hého\n");
        }
      } finally {
        child.kill("SIGINT");
        const status = await within(child.status, `${name} to exit`).catch(
          async (err) => {
            child.kill("SIGKILL");
            await child.status;
            throw err;
          },
        );
        assert.equal(
          status.code,
          0,
          `${name}: Ctrl-C exit code; log: ${log()}`,
        );
      }
    }
  },
});
