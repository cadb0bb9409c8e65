/**
 * worker_echo.ts against real sockets: the threaded echo server of sheet 000
 * §2.2 (Web Workers sharing one port), started exactly as its task in
 * deno.json runs it.
 */

import assert from "node:assert/strict";
import {
  connect,
  copyAlone,
  echoRoundTrip,
  escapeRegExp,
  IPV4,
  readToEnd,
  ROOT_DIR,
  runScript,
  shownAddress,
  startServer,
  taskFlags,
  testBothFamilies,
  utf8,
  within,
} from "./helpers.ts";
import {
  echoEachAtOnce,
  echoProbe,
  spreadOverTwoThreads,
  testEchoesBytes,
  testQuietOutput,
  testStreamingClients,
  testThreadedShutdown,
} from "./echo_contract.ts";
import {
  assertNoStackTrace,
  captured,
  testServerCommandLine,
  testUsageErrors,
} from "./server_cli.ts";
import { testLessonLanguages } from "./lesson_lang.ts";
import { testNoDelay } from "./sockopt.ts";
import {
  destroyListeners,
  destroyListenersMissing,
  listenersOn,
  testDestroyedListenerInFrench,
} from "./proc.ts";

const SCRIPT = "worker_echo.ts";
const RUN_LINE =
  "deno run -N --allow-read=worker_echo.ts --unstable-net worker_echo.ts";

testServerCommandLine({
  script: SCRIPT,
  async probe(server) {
    // The lone copy's threads load the copy itself: they must be up.
    assert.match(server.readyLine, /, \d+ threads?$/);
    await echoProbe(2)(server);
  },
});

testLessonLanguages({
  script: SCRIPT,
  args: ["--threads", "2"],
  readyTail: ", 2 threads",
  tag: "\\[\\d+\\] ",
  left: ["after 4 bytes echoed", "après 4 octets renvoyés"],
});

testUsageErrors(
  SCRIPT,
  RUN_LINE,
  [
    [["--threads", "0"], 'Invalid --threads "0"'],
    [["--threads", "257"], 'Invalid --threads "257"'],
    [["--threads", "two"], 'Invalid --threads "two"'],
  ] as const,
);

Deno.test("worker_echo: the task's run line is the documented one", () => {
  assert.deepEqual(taskFlags(SCRIPT), RUN_LINE.split(" ").slice(2, -1));
});

Deno.test("started without --unstable-net (a lone copy): one line with the command, exit 1, not Deno's exit 70", async () => {
  const dir = await copyAlone(SCRIPT);
  try {
    await using child = runScript(SCRIPT, ["--port", "0"], {
      cwd: dir,
      flags: ["-N", "--allow-read=worker_echo.ts"],
    });
    const done = await child.finished();
    assert.equal(done.code, 1);
    assert.equal(
      done.stderr,
      `worker_echo: Threads sharing a port need the --unstable-net flag: run it as: ${RUN_LINE}`,
    );
    assert.equal(done.stdout, "");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("run from another folder, the threads could not read the script: one line, exit 1", async () => {
  // --allow-read=worker_echo.ts is relative to the current folder.
  const elsewhere = await Deno.makeTempDir({ prefix: "deno-sockets-cwd-" });
  try {
    await using child = runScript(`${ROOT_DIR}${SCRIPT}`, ["--port", "0"], {
      cwd: elsewhere,
      flags: taskFlags(SCRIPT),
    });
    const done = await child.finished();
    assert.equal(done.code, 1);
    assert.equal(
      done.stderr,
      `worker_echo: Read permission missing (each thread reads worker_echo.ts again): run it from its folder as: ${RUN_LINE}`,
    );
    assert.equal(done.stdout, "");
  } finally {
    await Deno.remove(elsewhere, { recursive: true });
  }
});

// ---------------------------------------------------------------------------
// Listening and logging

Deno.test("ready line gives the real port and the threads; IPv4 and IPv6 on that one port", async () => {
  await using server = await startServer(SCRIPT, ["--threads", "3"]);
  assert.match(
    server.readyLine,
    /^worker_echo: listening on \[::\]:\d+ \(IPv4 and IPv6\), 3 threads$/,
  );
  assert.notEqual(server.port, 0);
  // One listening socket per thread, all on the same port, all this process's.
  assert.equal(listenersOn(server.port, server.pid), 3);
  const conns = await Promise.all(
    ["127.0.0.1", "::1"].map((hostname) =>
      Deno.connect({ hostname, port: server.port })
    ),
  );
  try {
    for (const conn of conns) {
      const payload = utf8(`hello over ${conn.localAddr.hostname}`);
      assert.deepEqual(await echoRoundTrip(conn, payload), payload);
    }
  } finally {
    for (const conn of conns) conn.close();
  }
});

Deno.test("--threads defaults to one thread per CPU", async () => {
  await using server = await startServer(SCRIPT);
  const cpus = navigator.hardwareConcurrency;
  assert.ok(
    server.readyLine.endsWith(`, ${cpus} thread${cpus === 1 ? "" : "s"}`),
    server.readyLine,
  );
  assert.equal(listenersOn(server.port, server.pid), cpus);
});

testBothFamilies(
  "one line per client arriving and leaving, with its thread and real address",
  async (family) => {
    await using server = await startServer(SCRIPT, ["--threads", "2"]);
    const conn = await connect(family, server.port);
    const shown = shownAddress(conn.localAddr);
    const payload = utf8("12345");
    assert.deepEqual(await echoRoundTrip(conn, payload), payload);
    conn.close();
    const left = await server.stdout.waitFor(
      new RegExp(
        `^worker_echo: \\[[12]\\] ${
          escapeRegExp(shown)
        } left after 5 bytes echoed$`,
      ),
    );
    const thread = left.match(/\[(\d)\]/)![1];
    assert.ok(
      server.stdout.lines.includes(
        `worker_echo: [${thread}] ${shown} connected`,
      ),
      server.stdout.text,
    );
    assert.doesNotMatch(server.stdout.text, /::ffff:/);
    const done = await server.stop();
    assert.equal(done.code, 0);
    assert.match(
      done.stdout,
      /^worker_echo: stopped by SIGINT: 1 client, 5 bytes echoed$/m,
    );
    assert.equal(done.stderr, "");
  },
);

testQuietOutput(SCRIPT, ["--threads", "2"]);

// ---------------------------------------------------------------------------
// Several threads

Deno.test("the kernel spreads clients over the threads; their lines never mix", async () => {
  await using server = await startServer(SCRIPT, ["--threads", "2"]);
  const done = await spreadOverTwoThreads(server, "worker_echo", 60);
  const lines = done.stdout.trimEnd().split("\n");
  // Nothing but the ready line, the client lines and the summary.
  assert.equal(lines.length, 2 * 60 + 2, done.stdout);
  assert.match(
    lines.at(-1)!,
    /^worker_echo: stopped by SIGINT: 60 clients, \d+ bytes echoed$/,
  );
});

Deno.test("--threads 1 serves many clients at once too (each thread is an event loop)", async () => {
  await using server = await startServer(SCRIPT, ["--threads", "1", "--quiet"]);
  const conns = await Promise.all(
    Array.from({ length: 20 }, () => connect(IPV4, server.port)),
  );
  await echoEachAtOnce(conns, 10_000, 1);
});

// ---------------------------------------------------------------------------
// Echo

testEchoesBytes(SCRIPT, ["--threads", "2"]);

testStreamingClients({ script: SCRIPT, title: "" }, {
  clients: 16,
  mib: 2,
  seed: 100,
  what: ", over the threads,",
  args: ["--threads", "2"],
  bothFamilies: true,
});

testNoDelay(SCRIPT, { clients: 4, args: ["--threads", "2"] });

// ---------------------------------------------------------------------------
// A thread that dies

const destroyMissing = await destroyListenersMissing();

Deno.test({
  name: destroyMissing
    ? `a thread whose listener is destroyed (ss -K) dies and is replaced; the process lives on (ignored: ${destroyMissing})`
    : "a thread whose listener is destroyed (ss -K) dies and is replaced; the process lives on",
  ignore: destroyMissing !== "",
  async fn() {
    // One thread: without a replacement, nobody would listen any more.
    await using server = await startServer(SCRIPT, ["--threads", "1"]);
    const before = await connect(IPV4, server.port);
    try {
      assert.deepEqual(
        await echoRoundTrip(before, utf8("12345")),
        utf8("12345"),
      );
      await destroyListeners(server.port);
      await server.stderr.waitFor(
        /^worker_echo: \[1\] thread died: cannot accept clients: Invalid argument \(os error 22\); starting another in 100 ms$/,
      );
      await server.stderr.waitFor(/^worker_echo: \[1\] new thread listening$/);
      // The dead thread took its client with it.
      await within(
        readToEnd(before).catch(() => new Uint8Array(0)),
        "the dead thread's client to be closed",
      );
    } finally {
      before.close();
    }
    assert.equal(listenersOn(server.port, server.pid), 1);
    const after = await connect(IPV4, server.port);
    try {
      assert.deepEqual(await echoRoundTrip(after, utf8("abc")), utf8("abc"));
    } finally {
      after.close();
    }
    await server.stdout.waitFor(/ left after 3 bytes echoed$/);
    const done = await server.stop();
    assert.equal(done.code, 0);
    // The dead thread's counts were not lost: it reported them as it died.
    assert.match(
      done.stdout,
      /^worker_echo: stopped by SIGINT: 2 clients, 3 bytes echoed$/m,
    );
    assertNoStackTrace(done.stderr);
    assert.equal(done.stderr.trimEnd().split("\n").length, 2, done.stderr);
  },
});

testDestroyedListenerInFrench(
  "LANG=fr_FR.UTF-8: a thread whose listener is destroyed says so in French, Deno's EINVAL included",
  SCRIPT,
  ["--threads", "1"],
  destroyMissing,
  [
    /^worker_echo\u00a0: \[1\] le thread est mort\u00a0: impossible d'accepter des clients\u00a0: argument invalide \(erreur système 22\)\u00a0; un autre démarre dans 100 ms$/,
    /^worker_echo\u00a0: \[1\] nouveau thread à l'écoute$/,
  ],
);

// ---------------------------------------------------------------------------
// Shutdown

testThreadedShutdown(
  { script: SCRIPT, title: "" },
  ", sums their counts, exits 0",
  true,
);

// Pure pieces, in-process (fast). Importing the file starts nothing: the
// server runs only when the file is the main module or a worker.
import * as workerEcho from "../worker_echo.ts";

Deno.test("worker_echo.parseOptions: --threads and the rest, in-process", () => {
  const options = workerEcho.parseOptions(["--threads", "3", "--port", "0"]);
  assert.ok(typeof options === "object", String(options));
  assert.equal(options.threads, 3);
  assert.equal(options.port, 0);
  const help = captured(() => workerEcho.parseOptions(["--help"]));
  assert.equal(help.result, 0);
  assert.ok(help.out.startsWith(`Usage: ${RUN_LINE} [options]`), help.out);
  assert.equal(help.err, "");
  for (
    const [bad, line] of [
      [["--threads", "0"], 'Invalid --threads "0"'],
      [["--threads", "2.5"], 'Invalid --threads "2.5"'],
      [["--port=-1"], 'Invalid port "-1"'],
    ] as const
  ) {
    const mistake = captured(() => workerEcho.parseOptions([...bad]));
    assert.equal(mistake.result, 2, bad.join(" "));
    assert.ok(mistake.err.startsWith(`worker_echo: ${line}: `), mistake.err);
    assert.match(mistake.err, /^Usage: /m);
    assert.equal(mistake.out, "");
  }
  const { parseThreads, UsageError } = workerEcho;
  assert.equal(parseThreads("256"), 256);
  assert.throws(() => parseThreads("257"), UsageError);
});

Deno.test("worker_echo.restartDelay: doubles while threads die young, capped, reset by a long life", () => {
  const { restartDelay, RESTART_DELAY_MIN_MS: min, RESTART_STABLE_MS: stable } =
    workerEcho;
  let wait: number | undefined;
  const waits: number[] = [];
  for (let i = 0; i < 12; i++) {
    wait = restartDelay(0, wait);
    waits.push(wait);
  }
  assert.deepEqual(waits.slice(0, 4), [min, 2 * min, 4 * min, 8 * min]);
  assert.equal(waits.at(-1), workerEcho.RESTART_DELAY_MAX_MS);
  assert.equal(restartDelay(stable, workerEcho.RESTART_DELAY_MAX_MS), min);
  assert.equal(restartDelay(stable - 1, min), 2 * min);
});

Deno.test("worker_echo.plural: 1 client, 2 clients, 0 bytes", () => {
  assert.equal(workerEcho.plural(1, "client"), "1 client");
  assert.equal(workerEcho.plural(2, "client"), "2 clients");
  assert.equal(workerEcho.plural(0, "byte"), "0 bytes");
});
