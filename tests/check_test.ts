/**
 * check.ts: its pure pieces in-process, then the real script against each
 * of our servers, the sheets' own Python programs (bench/peers/) and a
 * deliberately broken server, asserting the ✔/✘ pattern for each.
 */

import assert from "node:assert/strict";
import {
  describeDifference,
  isOkAnswer,
  parseOptions,
  summary,
  UsageError,
} from "../check.ts";
import {
  Child,
  type Finished,
  ROOT_DIR,
  runScript,
  type Server,
  startServer,
} from "./helpers.ts";

// ---------------------------------------------------------------------------
// Pure pieces

Deno.test("check.ts parseOptions: kinds, default ports, --lang, --no-fin", () => {
  assert.deepEqual(parseOptions(["echo"]), {
    kind: "echo",
    host: "127.0.0.1",
    port: 7777,
    lang: "en",
    fin: true,
  });
  assert.deepEqual(
    parseOptions(["ok", "--port=5", "--lang", "fr", "--no-fin"]),
    {
      kind: "ok",
      host: "127.0.0.1",
      port: 5,
      lang: "fr",
      fin: false,
    },
  );
  assert.deepEqual(parseOptions(["udp-echo", "--host", "[::1]"])?.host, "::1");
  assert.deepEqual(parseOptions(["--help"]), null);
  for (
    const bad of [
      [],
      ["tcp"],
      ["echo", "ok"],
      ["echo", "--port", "0"],
      ["echo", "--port", "-1"],
      ["echo", "--port"],
      ["echo", "--lang", "de"],
      ["echo", "--no-fin"],
      ["echo", "--verbose"],
    ]
  ) {
    let threw = false;
    try {
      parseOptions(bad);
    } catch (err) {
      threw = err instanceof UsageError;
    }
    assert.ok(threw, `no UsageError for ${JSON.stringify(bad)}`);
  }
});

Deno.test("check.ts isOkAnswer: OK with or without newline, nothing else", () => {
  for (const good of ["OK", "OK\n", "OK\r\n", "\nOK"]) {
    assert.ok(isOkAnswer(good));
  }
  for (const bad of ["", "ok", "OKOK", "OK\nOK", "KO", "OK!"]) {
    assert.ok(!isOkAnswer(bad), bad);
  }
});

Deno.test("check.ts describeDifference and summary, English and French", () => {
  const sent = new Uint8Array([1, 2, 3, 4]);
  assert.deepEqual(
    describeDifference(new Uint8Array([1, 2]), sent).en,
    "got 2 of 4 bytes back",
  );
  assert.deepEqual(
    describeDifference(new Uint8Array([1, 2, 9, 4]), sent).fr,
    "l'octet 2 diffère : envoyé 3, reçu 9",
  );
  const results = [{ pass: true, why: { en: "", fr: "" } }, {
    pass: false,
    why: { en: "", fr: "" },
  }];
  assert.deepEqual(summary(results, "en"), "1 of 2 checks passed");
  assert.deepEqual(summary(results, "fr"), "1 vérifications réussies sur 2");
});

// ---------------------------------------------------------------------------
// The command line

Deno.test("check.ts --help exits 0; misuse exits 2 with one line and usage; a down server exits 1 with one line", async () => {
  await using help = runScript("check.ts", ["--help"]);
  const h = await help.finished();
  assert.deepEqual(h.code, 0);
  assert.match(h.stdout, /^Usage: deno run -N check\.ts KIND/);

  await using bad = runScript("check.ts", ["echo", "--port", "x"]);
  const b = await bad.finished();
  assert.deepEqual(b.code, 2);
  assert.deepEqual(
    b.stderr.split("\n")[0],
    'check: --port must be a whole number from 1 to 65535, not "x"',
  );
  assert.match(b.stderr, /\nUsage: /);

  // A port nobody listens on: bind one, note it, close it.
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  await using down = runScript("check.ts", ["echo", "--port", String(port)]);
  const d = await down.finished();
  assert.deepEqual(d.code, 1);
  assert.deepEqual(
    d.stdout.trim(),
    `✘ cannot connect to 127.0.0.1:${port} (connection refused): is the server running on that port?`,
  );
  assert.deepEqual(d.stderr, "");
});

// ---------------------------------------------------------------------------
// Against real servers: the ✔/✘ pattern, one mark per check in order.
//
// echo: 256 bytes, accents, 1 MiB, half-close, second client, 50 clients,
//       stalled reader, 1,100 clients, abrupt reset
// udp-echo: exact, empty, 1,472, 65,507, several senders
// ok: line client, unframed client, accents/Latin-1, abrupt disconnect, fin

const ALL_ECHO = "✔✔✔✔✔✔✔✔✔";
const ALL_UDP = "✔✔✔✔✔";

/** A Python program from bench/peers/ on port 0, once its ready line
 * ("listening on PORT" or the sheet's "… sur le port PORT") is out. */
async function startPeer(file: string, code?: string): Promise<Server> {
  const args = code === undefined
    ? [`${ROOT_DIR}bench/peers/${file}`, "0"]
    : ["-c", code, "0"];
  const peer = new Child("python3", args) as Server;
  const ready = /(?:listening on|sur le port) (\d+)/;
  try {
    peer.port = Number((await peer.stdout.waitFor(ready)).match(ready)![1]);
  } catch (err) {
    await peer[Symbol.asyncDispose]();
    throw err;
  }
  return peer;
}

/** Runs check.ts against `server` and returns its exit, its marks and lines. */
async function check(
  kind: string,
  server: Server,
): Promise<Finished & { marks: string; lines: string[] }> {
  await using run = runScript("check.ts", [
    kind,
    "--port",
    String(server.port),
  ]);
  const done = await run.finished(90_000);
  const lines = done.stdout.trim().split("\n");
  const marks = lines.map((l) => l[0]).filter((m) => m === "✔" || m === "✘")
    .join("");
  return { ...done, marks, lines };
}

function assertPattern(
  what: string,
  got: { code: number; marks: string; stdout: string; stderr: string },
  marks: string,
): void {
  assert.deepEqual(
    got.marks,
    marks,
    `${what}: ${got.stdout}\nstderr: ${got.stderr}`,
  );
  assert.deepEqual(got.code, marks.includes("✘") ? 1 : 0, `${what} exit code`);
}

/** One echo server per row; rows run at the same time. */
const ECHO_ROWS: {
  what: string;
  start: () => Promise<Server>;
  marks: string;
  line?: RegExp;
}[] = [
  {
    what: "tcp_echo.ts (sequential: ✘ only on concurrency)",
    start: () => startServer("tcp_echo.ts", ["--quiet"]),
    marks: "✔✔✔✔✘✘✘✘✔",
    line: /^✘ second client: .*sequential server of §1\.2; §2 serves several/m,
  },
  {
    what: "select_echo.ts",
    start: () => startServer("select_echo.ts", ["--quiet"]),
    marks: ALL_ECHO,
  },
  {
    what: "worker_echo.ts",
    start: () => startServer("worker_echo.ts", ["--quiet"]),
    marks: ALL_ECHO,
  },
  {
    what: "sheet_tcp_thread.py",
    start: () => startPeer("sheet_tcp_thread.py"),
    marks: ALL_ECHO,
  },
  {
    what:
      "sheet_tcp_select.py (✘ on a stalled reader, at 1,100 clients, then gone)",
    start: () => startPeer("sheet_tcp_select.py"),
    marks: "✔✔✔✔✔✔✘✘✘",
    line:
      /^✘ 1,100 clients at once: 10\d\d of 1100 served, then the server stopped answering \(select\(\) cannot watch a descriptor numbered 1024 or more, FD_SETSIZE/m,
  },
];

Deno.test("check.ts echo: the expected ✔/✘ pattern for our servers and the sheet's", async () => {
  const errors: string[] = [];
  await Promise.all(ECHO_ROWS.map(async (row) => {
    await using server = await row.start();
    const got = await check("echo", server);
    try {
      assertPattern(row.what, got, row.marks);
      if (row.line) assert.match(got.stdout, row.line);
      assert.match(got.lines.at(-1)!, /^\d of 9 checks passed$/);
    } catch (err) {
      errors.push((err as Error).message);
    }
  }));
  assert.deepEqual(errors, []);
});

/** Echoes everything but the 100th byte of each connection's stream. */
const BROKEN_ECHO = `
import socket, sys, threading
s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
s.bind(("", int(sys.argv[1])))
s.listen(64)
print("listening on", s.getsockname()[1], flush=True)
def handle(sc):
    seen = 0
    while True:
        data = sc.recv(4096)
        if not data:
            break
        if seen <= 99 < seen + len(data):
            data = data[:99 - seen] + data[100 - seen:]
        seen += len(data) + 1 if seen <= 99 else len(data)
        sc.sendall(data)
    sc.close()
while True:
    sc, _ = s.accept()
    threading.Thread(target=handle, args=(sc,), daemon=True).start()
`;

Deno.test("check.ts echo: a server that drops one byte fails", async () => {
  await using broken = await startPeer("broken", BROKEN_ECHO);
  // Its first line is enough: the later checks would each wait for their
  // deadline for the missing byte.
  await using run = runScript("check.ts", [
    "echo",
    "--port",
    String(broken.port),
  ]);
  const first = await run.stdout.waitFor(/^[✔✘] 256 byte values/);
  assert.equal(first, "✘ 256 byte values: got 511 of 512 bytes back");
});

Deno.test("check.ts udp-echo: udp_echo.ts and the sheet's sheet_udp.py pass all", async () => {
  await using ours = await startServer("udp_echo.ts", ["--quiet"]);
  await using sheet = await startPeer("sheet_udp.py");
  const [a, b] = await Promise.all([
    check("udp-echo", ours),
    check("udp-echo", sheet),
  ]);
  assertPattern("udp_echo.ts", a, ALL_UDP);
  assertPattern("sheet_udp.py", b, ALL_UDP);
});

Deno.test("check.ts ok: the sheet 001 servers, each with its limits", async () => {
  await using first = await startPeer("sheet001_server.py");
  await using select = await startPeer("sheet001_server_select.py");
  const [a, b] = await Promise.all([check("ok", first), check("ok", select)]);
  // One client only: the others wait unanswered; fin from that client stops it.
  assertPattern("sheet001_server.py", a, "✔✘✘✘✔");
  // decode() raises on Latin-1 bytes: the server dies there.
  assertPattern("sheet001_server_select.py", b, "✔✔✘✘✘");
  assert.deepEqual(
    b.lines[2],
    "✘ accents and Latin-1 bytes: no OK for message 2 of 3 within 2 s",
  );
  const ended = await first.finished();
  assert.equal(ended.code, 0, ended.stderr);
  assert.match(ended.stdout, /\nFermeture de la connexion$/);
});

Deno.test("check.ts ok: ok_server.ts passes all, and fin stops it", async () => {
  await using server = await startServer("ok_server.ts", ["--quiet"]);
  const got = await check("ok", server);
  assertPattern("ok_server.ts", got, "✔✔✔✔✔");
  assert.deepEqual((await server.finished()).code, 0);
});

Deno.test("check.ts ok --no-fin --lang fr: French lines, the server keeps running", async () => {
  await using server = await startServer("ok_server.ts", ["--quiet"]);
  await using run = runScript("check.ts", [
    "ok",
    "--port",
    String(server.port),
    "--no-fin",
    "--lang",
    "fr",
  ]);
  const done = await run.finished(30_000);
  const lines = done.stdout.trim().split("\n");
  assert.deepEqual(lines.length, 5);
  assert.deepEqual(
    lines[0],
    "✔ client ligne par ligne: OK à chacun des 3 messages",
  );
  assert.match(lines[4], /^\d vérifications réussies sur 4$/);
  // Still running: it answers a new client.
  const conn = await Deno.connect({ hostname: "127.0.0.1", port: server.port });
  try {
    await conn.write(new TextEncoder().encode("encore\n"));
    const buf = new Uint8Array(16);
    const n = await conn.read(buf);
    assert.deepEqual(new TextDecoder().decode(buf.subarray(0, n ?? 0)), "OK\n");
  } finally {
    conn.close();
  }
});
