// The teacher's guide (docs/guide-fr.md, docs/guide-en.md) shows strace
// excerpts. These tests run the guide's own recipe against the real servers
// and check that every syscall the guide shows really appears in the trace,
// so the guide cannot rot when the servers or Deno change.

import assert from "node:assert/strict";
import { ROOT_DIR, taskFlags, WAIT_MS, within } from "./helpers.ts";

const GUIDES = ["docs/guide-fr.md", "docs/guide-en.md"];

/** The recipe's filter, exactly as both guides print it. */
export const RECIPE_FILTER =
  "-qq -e signal=none -e trace=socket,bind,listen,accept4,recvfrom,sendto,shutdown,epoll_wait";

function hasStrace(): boolean {
  try {
    const out = new Deno.Command("strace", {
      args: ["-V"],
      stdout: "null",
      stderr: "null",
    })
      .outputSync();
    return out.success;
  } catch {
    return false;
  }
}
const STRACE = Deno.build.os === "linux" && hasStrace();
const why = STRACE ? "" : " (ignored: strace is not installed on this machine)";

/** Syscall names of the annotated excerpt between `<!-- strace:NAME -->`
 * and the end of the next fenced block. */
export function excerptSyscalls(markdown: string, name: string): string[] {
  const start = markdown.indexOf(`<!-- strace:${name} -->`);
  if (start < 0) return [];
  const open = markdown.indexOf("```", start);
  const body = markdown.indexOf("\n", open) + 1;
  const close = markdown.indexOf("\n```", body);
  const names = new Set<string>();
  for (const line of markdown.slice(body, close).split("\n")) {
    const m = /^([a-z_0-9]+)\(/.exec(line);
    if (m) names.add(m[1]);
  }
  return [...names];
}

Deno.test("both guides print the same strace recipe", async () => {
  for (const guide of GUIDES) {
    const md = await Deno.readTextFile(ROOT_DIR + guide);
    assert.ok(
      md.includes(`strace ${RECIPE_FILTER}`),
      `${guide} lacks the recipe`,
    );
    for (const name of ["tcp", "udp"]) {
      assert.ok(
        excerptSyscalls(md, name).length >= 4,
        `${guide}: no ${name} excerpt`,
      );
    }
  }
});

/** The PID of strace's child (the traced server), 0 if none. */
function traceePid(stracePid: number): number {
  try {
    const list = Deno.readTextFileSync(
      `/proc/${stracePid}/task/${stracePid}/children`,
    ).trim();
    const pid = Number(list.split(/\s+/)[0]);
    return Number.isInteger(pid) && pid > 1 ? pid : 0;
  } catch {
    return 0;
  }
}

async function traceRun(
  script: string,
  talk: (port: number) => Promise<void>,
): Promise<string> {
  const out = await Deno.makeTempFile({ suffix: ".trace" });
  try {
    const child = new Deno.Command("strace", {
      args: [
        ...RECIPE_FILTER.split(" "),
        "-o",
        out,
        Deno.execPath(),
        "run",
        ...taskFlags(script),
        script,
        "--port",
        "0",
      ],
      cwd: ROOT_DIR,
      env: { DENO_NO_UPDATE_CHECK: "1", NO_COLOR: "1" },
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const timer = setTimeout(() => child.kill("SIGKILL"), WAIT_MS * 2);
    const errText = child.stderr.pipeThrough(new TextDecoderStream());
    const outText = child.stdout.pipeThrough(new TextDecoderStream());
    let seen = "";
    const drainOut = (async () => {
      for await (const chunk of outText) seen += chunk;
    })();
    let errSeen = "";
    const drainErr = (async () => {
      for await (const chunk of errText) errSeen += chunk;
    })();
    try {
      let port = 0;
      for (let i = 0; i < 200 && port === 0; i++) {
        const m = /listening on \S*:(\d+)/.exec(seen + errSeen);
        if (m) port = Number(m[1]);
        else await new Promise((r) => setTimeout(r, 50));
      }
      assert.ok(port > 0, `no ready line: ${seen}${errSeen}`);
      await talk(port);
      await new Promise((r) => setTimeout(r, 200)); // let the server log the close
    } finally {
      // Ctrl-C goes to the traced server itself (strace's own child):
      // strace keeps running until its tracee exits.
      const tracee = traceePid(child.pid);
      try {
        if (tracee > 1) Deno.kill(tracee, "SIGINT");
        else child.kill("SIGKILL");
      } catch { /* already gone */ }
      await child.status;
      clearTimeout(timer);
      await drainOut;
      await drainErr;
    }
    return await Deno.readTextFile(out);
  } finally {
    await Deno.remove(out);
  }
}

function checkTrace(name: string, trace: string) {
  const traced = new Set(
    trace.split("\n").map((l) => /^(?:\d+\s+)?([a-z_0-9]+)\(/.exec(l)?.[1])
      .filter(Boolean),
  );
  for (const guide of GUIDES) {
    const md = Deno.readTextFileSync(ROOT_DIR + guide);
    for (const call of excerptSyscalls(md, name)) {
      assert.ok(
        traced.has(call),
        `${guide} shows ${call}() but the real ${name} trace has none`,
      );
    }
  }
}

const hého = new TextEncoder().encode("hého\n");

Deno.test({
  name:
    `guide's strace recipe on tcp_echo.ts shows every syscall of its excerpt${why}`,
  ignore: !STRACE,
  async fn() {
    const trace = await traceRun("tcp_echo.ts", async (port) => {
      for (let i = 0; i < 2; i++) {
        const conn = await Deno.connect({ hostname: "127.0.0.1", port });
        try {
          await conn.write(hého);
          const buf = new Uint8Array(64);
          let got = 0;
          await within(
            (async () => {
              while (got < hého.length) {
                const n = await conn.read(buf.subarray(got));
                if (n === null) break;
                got += n;
              }
            })(),
            "the echo",
          );
          assert.deepEqual(buf.subarray(0, got), hého);
        } finally {
          conn.close();
        }
      }
    });
    assert.match(trace, /recvfrom\(\d+, "h\\303\\251ho\\n"/);
    assert.match(trace, /accept4\(.*EAGAIN/);
    checkTrace("tcp", trace);
  },
});

Deno.test({
  name:
    `guide's strace recipe on udp_echo.ts shows every syscall of its excerpt${why}`,
  ignore: !STRACE,
  async fn() {
    const trace = await traceRun("udp_echo.ts", async (port) => {
      const sock = Deno.listenDatagram({
        transport: "udp",
        hostname: "127.0.0.1",
        port: 0,
      });
      try {
        await sock.send(hého, {
          transport: "udp",
          hostname: "127.0.0.1",
          port,
        });
        const [data] = await within(
          sock.receive(new Uint8Array(64)),
          "the UDP echo",
        );
        assert.deepEqual(data, hého);
      } finally {
        sock.close();
      }
    });
    assert.match(trace, /sendto\(\d+, "h\\303\\251ho\\n"/);
    checkTrace("udp", trace);
  },
});
