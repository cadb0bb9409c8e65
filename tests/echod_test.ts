/**
 * echod.ts against real sockets: the engineers' echo service (RFC 862, TCP
 * and UDP on one port), started exactly as its task in deno.json runs it.
 * The socket contract of every TCP server, UDP on the same port, the limits,
 * the threads, the languages; then every feature moved out of the lessons
 * (fair turns, restart back-off, log limiter, loop guard), in-process.
 */

import assert from "node:assert/strict";
import {
  closeQuietly,
  connect,
  copyAlone,
  echoRoundTrip,
  escapeRegExp,
  eventually,
  FAMILIES,
  firstDifference,
  IPV4,
  IPV6,
  isLinux,
  patternBytes,
  readToEnd,
  ROOT_DIR,
  runScript,
  sameBytes,
  shownAddress,
  sleep,
  startServer,
  stillPending,
  taskFlags,
  testBothFamilies,
  text,
  utf8,
  WAIT_MS,
  within,
} from "./helpers.ts";
import {
  echoProbe,
  spreadOverTwoThreads,
  testEchoesBytes,
  testEchoLogLines,
  testEchoSurvivesReset,
  testInterleavedClients,
  testOutOfDescriptors,
  testOutOfDescriptorsInFrench,
  testResetBeforeAccept,
  testSecondClientServed,
  testShutdownSignals,
  testSlowReader,
  testStreamingClients,
  testThreadedShutdown,
} from "./echo_contract.ts";
import {
  assertNoStackTrace,
  captured,
  testServerCommandLine,
  testUsageErrors,
} from "./server_cli.ts";
import { testNoDelay } from "./sockopt.ts";
import {
  bindUdp,
  localPort,
  lowPortTester,
  serverAddr,
  testLoopGuardFunction,
  testUdpEchoesWhole,
  testUdpFloodsAndVanishedPeers,
  testUdpLoopGuard,
  udpRoundTrip,
  udpSocket,
} from "./udp.ts";
import {
  cpuTicks,
  destroyListeners,
  destroyListenersMissing,
  listenersOn,
  testDestroyedListenerInFrench,
} from "./proc.ts";
import {
  FairTurns,
  LogLimiter,
  loopGuard,
  parseMaxClients,
  parseOptions,
  parseSeconds,
  parseThreads,
  RESTART_DELAY_MAX_MS,
  RESTART_DELAY_MIN_MS,
  RESTART_STABLE_MS,
  restartDelay,
} from "../echod.ts";

const SCRIPT = "echod.ts";
const RUN_LINE = "deno run -N --allow-read=echod.ts --unstable-net echod.ts";
/** A source port below 1024 for the loop-guard tests (not udp_echo_test's
 * 999, so that both files may run at once). */
const LOW_PORT = 998;
const SERVER = { script: SCRIPT, title: "echod: " };
const UDP_SERVER = {
  ...SERVER,
  tcpCounts: "0 clients, 0 bytes echoed, ",
  readyTail: ", TCP and UDP",
  lowPort: LOW_PORT,
  loop: "loops",
};
/** French lines: a no-break space before the colon. */
const NBSP = "\u00a0";

// ---------------------------------------------------------------------------
// The command line

testServerCommandLine({ script: SCRIPT, probe: echoProbe(2) });

testUsageErrors(
  SCRIPT,
  RUN_LINE,
  [
    [["--max-clients", "0"], 'Invalid --max-clients "0"'],
    [["--max-clients", "ten"], 'Invalid --max-clients "ten"'],
    [
      ["--idle-timeout", "-1"],
      "Option '--idle-timeout' argument is ambiguous.",
    ],
    [["--idle-timeout", "1m"], 'Invalid --idle-timeout "1m"'],
    [["--threads", "0"], 'Invalid --threads "0"'],
    [["--threads", "257"], 'Invalid --threads "257"'],
    [["--threads", "two"], 'Invalid --threads "two"'],
    [["--tcp-only", "--udp-only"], "--tcp-only and --udp-only exclude"],
    [["--udp-only", "--threads", "2"], "--threads serves TCP"],
    [["--lang", "de"], 'Invalid language "de": expected fr or en'],
  ] as const,
);

Deno.test("echod: the task's run line is the documented one, and --help says --port 7 needs the right to bind it", async () => {
  assert.deepEqual(taskFlags(SCRIPT), RUN_LINE.split(" ").slice(2, -1));
  await using child = runScript(SCRIPT, ["--", "--help"]); // leading -- too
  const done = await child.finished();
  assert.equal(done.code, 0);
  assert.match(done.stdout, /--port 7, the echo service's own, works where/);
  assert.match(done.stdout, /CAP_NET_BIND_SERVICE/);
  for (
    const option of [
      "--tcp-only",
      "--udp-only",
      "--threads N",
      "--max-clients N",
      "--idle-timeout SECONDS",
      "--no-fair",
      "--allow-any-port",
      "--quiet",
      "--lang fr|en",
    ]
  ) {
    assert.ok(done.stdout.includes(`  ${option}`), option);
  }
});

Deno.test("echod: started without --unstable-net (a lone copy): UDP says which flag, exit 1; --tcp-only runs without it", async () => {
  const dir = await copyAlone(SCRIPT);
  try {
    const flags = ["-N", "--allow-read=echod.ts"];
    await using child = runScript(SCRIPT, ["--port", "0"], {
      cwd: dir,
      flags,
    });
    const done = await child.finished();
    assert.equal(done.code, 1);
    assert.equal(
      done.stderr,
      `echod: UDP needs the --unstable-net flag: run it as: ${RUN_LINE}`,
    );
    assert.equal(done.stdout, "");
    await using tcp = await startServer(SCRIPT, ["--tcp-only"], {
      cwd: dir,
      flags,
    });
    await echoProbe(1)(tcp);
    assert.equal((await tcp.stop()).code, 0);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("echod: run from another folder, --threads 2 could not read the script: one line, exit 1; one event loop needs no read", async () => {
  // --allow-read=echod.ts is relative to the current folder.
  const elsewhere = await Deno.makeTempDir({ prefix: "deno-sockets-cwd-" });
  try {
    const options = { cwd: elsewhere, flags: taskFlags(SCRIPT) };
    const path = `${ROOT_DIR}${SCRIPT}`;
    await using child = runScript(path, ["--port", "0", "--threads", "2"], {
      ...options,
    });
    const done = await child.finished();
    assert.equal(done.code, 1);
    assert.equal(
      done.stderr,
      `echod: Read permission missing (each thread reads echod.ts again): run it from its folder as: ${RUN_LINE}`,
    );
    await using one = await startServer(path, [], options);
    await echoProbe(1)(one);
    assert.equal((await one.stop()).code, 0);
  } finally {
    await Deno.remove(elsewhere, { recursive: true });
  }
});

Deno.test("echod: a UDP port in use is one line saying what to do (ss -ulnp), exit 1", async () => {
  using taken = bindUdp("::", 0);
  const port = localPort(taken);
  // --udp-only: on a busy machine the port may be some client's for TCP.
  await using child = runScript(SCRIPT, ["--udp-only", "--port", String(port)]);
  const done = await child.finished();
  assert.equal(done.code, 1);
  assert.equal(
    done.stderr.split("\n")[0],
    `echod: Cannot listen on [::]:${port}: address already in use; stop the other server (see: ss -ulnp) or choose another --port`,
  );
  assertNoStackTrace(done.stderr);
});

/** Why this process cannot bind port 7 (the echo service's), or "". */
const port7Missing = (() => {
  try {
    Deno.listen({ hostname: "127.0.0.1", port: 7 }).close();
    return "";
  } catch (err) {
    return err instanceof Deno.errors.PermissionDenied
      ? "binding port 7 needs root (or CAP_NET_BIND_SERVICE)"
      : `cannot bind port 7: ${(err as Error).message}`;
  }
})();

Deno.test({
  name: `echod: --port 7 serves TCP and UDP where the user may bind it${
    port7Missing ? ` (ignored: ${port7Missing})` : ""
  }`,
  ignore: port7Missing !== "",
  async fn() {
    await using server = runScript(SCRIPT, [
      "--port",
      "7",
      "--host",
      "127.0.0.1",
    ]);
    await server.stdout.waitFor(
      /^echod: listening on 127\.0\.0\.1:7, TCP and UDP$/,
    );
    const conn = await connect(IPV4, 7);
    try {
      assert.deepEqual(await echoRoundTrip(conn, utf8("seven")), utf8("seven"));
    } finally {
      conn.close();
    }
    using socket = udpSocket(IPV4);
    const [echo] = await udpRoundTrip(socket, IPV4, 7, utf8("sept"));
    assert.equal(text(echo), "sept");
    assert.equal((await server.stop()).code, 0);
  },
});

/** Why a child cannot be started without the right to bind low ports, or
 * "": root drops CAP_NET_BIND_SERVICE with setpriv(1); others lack it. */
const dropBindMissing = !isLinux
  ? "setpriv(1) is Linux's"
  : await new Deno.Command("setpriv", { args: ["--version"] }).output().then(
    (o) => o.success ? "" : "setpriv fails",
    () => "no setpriv (util-linux)",
  );

Deno.test({
  name:
    `echod: --port 7 without the right to bind it: one line saying what to do, exit 1${
      dropBindMissing ? ` (ignored: ${dropBindMissing})` : ""
    }`,
  ignore: dropBindMissing !== "",
  async fn() {
    await using child = runScript(
      SCRIPT,
      ["--port", "7", "--host", "127.0.0.1"],
      {
        wrap: [
          "setpriv",
          "--bounding-set=-net_bind_service",
          "--inh-caps=-net_bind_service",
        ],
      },
    );
    const done = await child.finished();
    assert.equal(done.code, 1);
    assert.equal(
      done.stderr,
      "echod: Cannot listen on 127.0.0.1:7: permission denied; ports below 1024 need root (or CAP_NET_BIND_SERVICE), choose --port 7777",
    );
  },
});

// ---------------------------------------------------------------------------
// Listening and logging; the languages

Deno.test("echod: ready line gives the real port; TCP and UDP, IPv4 and IPv6, on that one port", async () => {
  await using server = await startServer(SCRIPT);
  assert.match(
    server.readyLine,
    /^echod: listening on \[::\]:\d+ \(IPv4 and IPv6\), TCP and UDP$/,
  );
  assert.notEqual(server.port, 0);
  for (const family of FAMILIES) {
    if (family.missing) continue;
    const conn = await connect(family, server.port);
    try {
      const payload = utf8(`TCP over ${family.host}`);
      assert.deepEqual(await echoRoundTrip(conn, payload), payload);
    } finally {
      conn.close();
    }
    using socket = udpSocket(family);
    const payload = utf8(`UDP over ${family.host}`);
    const [echo] = await udpRoundTrip(socket, family, server.port, payload);
    assert.deepEqual(echo, payload);
  }
});

testEchoLogLines(SCRIPT);

Deno.test("echod: the summary adds the datagram counts once a datagram came", async () => {
  await using server = await startServer(SCRIPT);
  const conn = await connect(IPV4, server.port);
  try {
    assert.deepEqual(await echoRoundTrip(conn, utf8("abc")), utf8("abc"));
  } finally {
    conn.close();
  }
  using socket = udpSocket(IPV6.missing ? IPV4 : IPV6);
  const family = IPV6.missing ? IPV4 : IPV6;
  await udpRoundTrip(socket, family, server.port, utf8("wxyz"));
  await server.stdout.waitFor(/ left after 3 bytes echoed$/);
  const done = await server.stop("SIGTERM");
  assert.equal(done.code, 0);
  assert.match(
    done.stdout,
    /^echod: stopped by SIGTERM: 1 client, 3 bytes echoed, 1 datagram, 4 bytes echoed, 0 dropped$/m,
  );
  assert.match(
    done.stdout,
    new RegExp(
      `^echod: echoed 4 bytes to ${
        escapeRegExp(`[${family.host}]:${localPort(socket)}`).replace(
          "\\[127.0.0.1\\]",
          "127\\.0\\.0\\.1",
        )
      }$`,
      "m",
    ),
  );
  assert.equal(done.stderr, "");
});

Deno.test("echod: under LANG=fr_FR.UTF-8 it speaks French, with the address in the same place", async () => {
  await using server = runScript(SCRIPT, ["--port", "0"], {
    env: { LANG: "fr_FR.UTF-8", LC_ALL: "fr_FR.UTF-8" },
  });
  const ready = await server.stdout.waitFor(
    new RegExp(
      `^echod${NBSP}: à l'écoute sur \\[::\\]:(\\d+) \\(IPv4 et IPv6\\), TCP et UDP$`,
    ),
  );
  const port = Number(ready.match(/\]:(\d+) /)![1]);
  const conn = await connect(IPV4, port);
  const shown = shownAddress(conn.localAddr);
  try {
    assert.deepEqual(await echoRoundTrip(conn, utf8("12345")), utf8("12345"));
  } finally {
    conn.close();
  }
  await server.stdout.waitFor(
    new RegExp(
      `^echod${NBSP}: ${
        escapeRegExp(shown)
      } est parti après 5 octets renvoyés$`,
    ),
  );
  assert.ok(
    server.stdout.lines.includes(`echod${NBSP}: ${shown} connecté`),
    server.stdout.text,
  );
  const done = await server.stop();
  assert.equal(done.code, 0);
  assert.match(
    done.stdout,
    new RegExp(
      `^echod${NBSP}: arrêté par SIGINT${NBSP}: 1 client, 5 octets renvoyés$`,
      "m",
    ),
  );
  // A usage error in French too; --lang en overrides LANG.
  await using mistake = runScript(SCRIPT, ["--max-clients", "0"], {
    env: { LANG: "fr_FR.UTF-8", LC_ALL: "fr_FR.UTF-8" },
  });
  const wrong = await mistake.finished();
  assert.equal(wrong.code, 2);
  assert.ok(
    wrong.stderr.startsWith(
      `echod${NBSP}: --max-clients « 0 » invalide${NBSP}: `,
    ),
    wrong.stderr,
  );
  assert.match(wrong.stderr, new RegExp(`^Utilisation${NBSP}: deno run`, "m"));
  // The --help's numbers grouped as French writes them: 10 000.
  assert.ok(
    wrong.stderr.includes(`(${(10000).toLocaleString("fr-FR")} par défaut)`),
    wrong.stderr,
  );
  // A name that never resolves (RFC 6761): Deno's English, in French.
  await using nowhere = runScript(SCRIPT, ["--host", "nowhere.invalid"], {
    env: { LANG: "fr_FR.UTF-8", LC_ALL: "fr_FR.UTF-8" },
  });
  const unknown = await nowhere.finished();
  assert.equal(unknown.code, 1);
  assert.equal(
    unknown.stderr,
    `echod${NBSP}: Impossible d'écouter sur nowhere.invalid:7777${NBSP}: hôte inconnu${NBSP}; vérifiez --host`,
  );
  await using english = await startServer(SCRIPT, ["--lang", "en"], {
    env: { LANG: "fr_FR.UTF-8", LC_ALL: "fr_FR.UTF-8" },
  });
  assert.match(english.readyLine, /^echod: listening on /);
});

Deno.test("echod: under LANG=C it speaks English; --lang fr overrides it", async () => {
  await using server = await startServer(SCRIPT, [], {
    env: { LANG: "C", LC_ALL: "C" },
  });
  assert.match(
    server.readyLine,
    /^echod: listening on \[::\]:\d+ \(IPv4 and IPv6\), TCP and UDP$/,
  );
  await using french = runScript(SCRIPT, ["--port", "0", "--lang", "fr"], {
    env: { LANG: "C", LC_ALL: "C" },
  });
  await french.stdout.waitFor(new RegExp(`^echod${NBSP}: à l'écoute sur `));
  const done = await french.stop("SIGTERM");
  assert.match(
    done.stdout,
    new RegExp(
      `^echod${NBSP}: arrêté par SIGTERM${NBSP}: 0 client, 0 octet renvoyé$`,
      "m",
    ),
  );
});

// ---------------------------------------------------------------------------
// --tcp-only, --udp-only

Deno.test("echod: --tcp-only serves TCP and leaves the UDP port alone", async () => {
  await using server = await startServer(SCRIPT, ["--tcp-only"]);
  assert.match(
    server.readyLine,
    /^echod: listening on \[::\]:\d+ \(IPv4 and IPv6\), TCP$/,
  );
  const conn = await connect(IPV4, server.port);
  try {
    assert.deepEqual(await echoRoundTrip(conn, utf8("tcp")), utf8("tcp"));
  } finally {
    conn.close();
  }
  // The server holds no UDP socket on its port: another program may.
  using udp = bindUdp("::", server.port);
  assert.equal(localPort(udp), server.port);
  const done = await server.stop();
  assert.match(
    done.stdout,
    /^echod: stopped by SIGINT: 1 client, 3 bytes echoed$/m,
  );
});

Deno.test("echod: --udp-only serves UDP and refuses TCP; the summary counts datagrams", async () => {
  await using server = await startServer(SCRIPT, ["--udp-only"]);
  assert.match(
    server.readyLine,
    /^echod: listening on \[::\]:\d+ \(IPv4 and IPv6\), UDP$/,
  );
  await assert.rejects(
    Deno.connect({ hostname: "127.0.0.1", port: server.port }),
    Deno.errors.ConnectionRefused,
  );
  using socket = udpSocket(IPV4);
  const [echo] = await udpRoundTrip(socket, IPV4, server.port, utf8("udp"));
  assert.equal(text(echo), "udp");
  const done = await server.stop();
  assert.match(
    done.stdout,
    /^echod: stopped by SIGINT: 1 datagram, 3 bytes echoed, 0 dropped$/m,
  );
});

// ---------------------------------------------------------------------------
// TCP: the socket contract of every TCP server

testEchoesBytes(SCRIPT);

testNoDelay(SCRIPT, { clients: 3 });

testSecondClientServed(SERVER);

// Over the idle buffer: each client switches buffers.
testInterleavedClients(SERVER, 2500);

testStreamingClients(SERVER, { what: " (more than the large buffers)" });

Deno.test("echod: 16 clients that sent exactly 128 bytes and went quiet hold no large buffer: a 64 MiB echo after them still reads in large buffers", async () => {
  // Each quiet client's read fills its small buffer once: with a large
  // buffer borrowed after one full read, these 16 would hold all 16 large
  // ones, and the bulk client below would crawl through 128-byte reads.
  // Counted, not timed: the server's reads are seen as its CPU time.
  await using server = await startServer(SCRIPT, ["--quiet"]);
  const quiet = await Promise.all(
    Array.from({ length: 16 }, () => connect(IPV4, server.port)),
  );
  const bulk = await connect(IPV4, server.port);
  try {
    for (const conn of quiet) {
      const payload = patternBytes(128, 9);
      assert.deepEqual(await echoRoundTrip(conn, payload), payload);
    }
    const payload = patternBytes(64 * 1024 * 1024, 17);
    const before = isLinux ? cpuTicks(server.pid) : 0;
    const echo = await echoRoundTrip(bulk, payload);
    assert.ok(sameBytes(echo, payload), firstDifference(echo, payload));
    if (isLinux) {
      // 64 MiB in 128-byte reads is 524,288 reads and writes: measured 106
      // to 109 ticks (at 100 Hz) with a large buffer borrowed after one full
      // read; in 256 KiB reads, 3 ticks.
      const used = cpuTicks(server.pid) - before;
      assert.ok(used < 20, `the server used ${used} ticks for 64 MiB`);
    }
  } finally {
    for (const conn of quiet) conn.close();
    bulk.close();
  }
});

// ---------------------------------------------------------------------------
// TCP: clients that misbehave

testEchoSurvivesReset(SCRIPT);

testResetBeforeAccept(SERVER);

testSlowReader(SERVER);

testOutOfDescriptors(SERVER);
testOutOfDescriptorsInFrench(SERVER);

// ---------------------------------------------------------------------------
// TCP: the limits, --max-clients and --idle-timeout

Deno.test("echod: --max-clients: a client over the limit is closed at once and logged; a freed slot is reused", async () => {
  await using server = await startServer(SCRIPT, ["--max-clients", "2"]);
  const first = await connect(IPV4, server.port);
  const second = await connect(IPV4, server.port);
  const conns = [first, second];
  try {
    for (const conn of conns) {
      assert.deepEqual(await echoRoundTrip(conn, utf8("in")), utf8("in"));
    }
    const third = await connect(IPV4, server.port);
    conns.push(third);
    assert.deepEqual(await readToEnd(third), new Uint8Array(0));
    await server.stdout.waitFor(
      new RegExp(
        `^echod: 127\\.0\\.0\\.1:${third.localAddr.port} refused: 2 clients already \\(--max-clients 2\\)$`,
      ),
    );
    assert.deepEqual(await echoRoundTrip(second, utf8("still")), utf8("still"));
    first.close();
    await server.stdout.waitFor(
      new RegExp(`:${first.localAddr.port} left after 2 bytes echoed$`),
    );
    const fourth = await connect(IPV4, server.port);
    conns.push(fourth);
    assert.deepEqual(await echoRoundTrip(fourth, utf8("4th")), utf8("4th"));
  } finally {
    for (const conn of conns) closeQuietly(conn);
  }
  const done = await server.stop();
  assert.match(done.stdout, /stopped by SIGINT: 3 clients, 12 bytes echoed$/m);
});

Deno.test("echod: --idle-timeout: a silent client is closed and logged; a talking one stays", async () => {
  // The talking client's pauses (100 ms and an echo) stay far under the
  // timeout even on a loaded machine: 2 s is 20 times the pause.
  await using server = await startServer(SCRIPT, ["--idle-timeout", "2"]);
  const silent = await connect(IPV4, server.port);
  const talking = await connect(IPV4, server.port);
  try {
    assert.deepEqual(await echoRoundTrip(silent, utf8("hi")), utf8("hi"));
    let silentClosed = false;
    const closed = readToEnd(silent).finally(() => silentClosed = true);
    // The talking client sends every 100 ms until the silent one is closed,
    // then once more: it outlived a whole timeout. Bounded.
    for (let i = 0; i < 200 && !silentClosed; i++) {
      assert.deepEqual(await echoRoundTrip(talking, utf8(".")), utf8("."));
      await sleep(100);
    }
    assert.deepEqual(await closed, new Uint8Array(0));
    await server.stdout.waitFor(
      new RegExp(
        `^echod: 127\\.0\\.0\\.1:${silent.localAddr.port} timed out \\(silent for 2 s\\) after 2 bytes echoed$`,
      ),
    );
    assert.deepEqual(await echoRoundTrip(talking, utf8("!")), utf8("!"));
  } finally {
    silent.close();
    talking.close();
  }
  assert.equal(server.stderr.text, "");
});

Deno.test("echod: without --idle-timeout a silent client stays connected", async () => {
  await using server = await startServer(SCRIPT);
  const conn = await connect(IPV4, server.port);
  try {
    const end = readToEnd(conn);
    assert.ok(await stillPending(end, 1500), "the silent client was closed");
    conn.close(); // ends the pending read
    await end.catch(() => {});
  } finally {
    closeQuietly(conn);
  }
});

Deno.test({
  name:
    "echod: --idle-timeout 2592000 (30 days, longer than a timer holds) is clamped: no TimeoutOverflowWarning, no spinning CPU while a client is connected" +
    (isLinux ? "" : " (ignored: needs Linux /proc)"),
  ignore: !isLinux,
  fn: async () => {
    await using server = await startServer(SCRIPT, [
      "--idle-timeout",
      "2592000",
    ]);
    const conn = await connect(IPV4, server.port);
    try {
      const before = cpuTicks(server.pid);
      // A bounded count of echoes, with pauses that give a spinning timer
      // (one wake-up a millisecond) room to show itself.
      for (let i = 0; i < 40; i++) {
        const payload = patternBytes(100, i + 1);
        const echo = await echoRoundTrip(conn, payload);
        assert.ok(sameBytes(echo, payload), firstDifference(echo, payload));
        await sleep(50);
      }
      const used = cpuTicks(server.pid) - before;
      assert.doesNotMatch(server.stderr.text, /TimeoutOverflowWarning/);
      // About 2 s connected: a timer firing every millisecond costs a
      // share of a CPU all along (tens of ticks at 100 Hz), while 40 small
      // echoes cost a tick or two.
      assert.ok(used < 12, `the server used ${used} CPU ticks for 40 echoes`);
    } finally {
      closeQuietly(conn);
    }
    const done = await server.stop();
    assert.equal(done.code, 0);
    assert.equal(done.stderr, "");
  },
});

Deno.test("echod: --no-fair is accepted and still echoes (the fair turns off)", async () => {
  await using server = await startServer(SCRIPT, ["--no-fair", "--quiet"]);
  const conns = await Promise.all(
    Array.from({ length: 10 }, () => connect(IPV4, server.port)),
  );
  try {
    for (let round = 0; round < 3; round++) {
      await Promise.all(conns.map(async (conn, i) => {
        const payload = utf8(`client ${i} round ${round}`);
        assert.deepEqual(await echoRoundTrip(conn, payload), payload);
      }));
    }
  } finally {
    for (const conn of conns) conn.close();
  }
  assert.equal((await server.stop()).code, 0);
});

// ---------------------------------------------------------------------------
// Shutdown: SIGINT and SIGTERM drain and sum up

testShutdownSignals(SERVER, {
  what: ", prints the summary with the datagrams, exits 0",
  more: async (port) => {
    using socket = udpSocket(IPV4);
    await udpRoundTrip(socket, IPV4, port, utf8("ciao"));
  },
  summary: "3 clients, 9 bytes echoed, 1 datagram, 4 bytes echoed, 0 dropped",
});

// ---------------------------------------------------------------------------
// UDP on the same port: whole datagrams, to their exact sender

testUdpEchoesWhole(UDP_SERVER);

testBothFamilies(
  "echod: one line per datagram, with the sender's real address",
  async (family) => {
    await using server = await startServer(SCRIPT);
    using socket = udpSocket(family);
    await udpRoundTrip(socket, family, server.port, utf8("12345"));
    const port = localPort(socket);
    const shown = family.name === "IPv4"
      ? `127.0.0.1:${port}`
      : `[::1]:${port}`;
    await server.stdout.waitFor(
      new RegExp(`^echod: echoed 5 bytes to ${escapeRegExp(shown)}$`),
    );
    assert.doesNotMatch(server.stdout.text, /::ffff:/);
  },
);

testUdpFloodsAndVanishedPeers(UDP_SERVER, {
  what:
    "of datagrams from several sockets leaves it alive and answering, TCP too",
  args: ["--quiet"],
  perSender: 20_000, // 80 000 datagrams per family, never read back
  more: async (family, port) => {
    const conn = await connect(family, port);
    try {
      assert.deepEqual(await echoRoundTrip(conn, utf8("tcp?")), utf8("tcp?"));
    } finally {
      conn.close();
    }
  },
});

const NOT_LOGGED =
  /^echod: (\d+) more datagrams echoed without a line \(at most 10 lines a second; --quiet for none\)$/;

Deno.test("echod: a flood of datagrams gets a bounded number of lines, and the rest are counted", async () => {
  const FLOOD = 300;
  await using server = await startServer(SCRIPT);
  using socket = udpSocket(IPV4);
  for (let i = 0; i < FLOOD; i++) {
    await udpRoundTrip(socket, IPV4, server.port, utf8("z"), 3);
  }
  const done = await server.stop();
  assert.equal(done.code, 0);
  const echoed = Number(done.stdout.match(/, (\d+) datagrams?, /)![1]);
  assert.ok(echoed >= FLOOD, done.stdout);
  const lines = done.stdout.trimEnd().split("\n");
  const echoLines = lines.filter((l) => / echoed 1 byte to /.test(l)).length;
  const leftOut = lines
    .map((l) => l.match(NOT_LOGGED))
    .reduce((sum, m) => sum + (m ? Number(m[1]) : 0), 0);
  assert.ok(leftOut > 0, "no line says how many were left out");
  assert.ok(echoLines < echoed / 2, `${echoLines} lines for ${echoed}`);
  assert.equal(echoLines + leftOut, echoed, done.stdout);
});

Deno.test("echod: --quiet: no line per datagram", async () => {
  const family = IPV6.missing ? IPV4 : IPV6;
  await using server = await startServer(SCRIPT, ["--quiet"]);
  using socket = udpSocket(family);
  await udpRoundTrip(socket, family, server.port, utf8("abc"));
  const done = await server.stop();
  assert.deepEqual(done.stdout.trimEnd().split("\n"), [
    server.readyLine,
    "echod: stopped by SIGINT: 0 clients, 0 bytes echoed, 1 datagram, 3 bytes echoed, 0 dropped",
  ]);
});

// ---------------------------------------------------------------------------
// UDP: the loop guard (privileged and own-port drop)

const testLowPort = lowPortTester(LOW_PORT);

testUdpLoopGuard(UDP_SERVER);

testLowPort(
  "echod: a flood of guarded datagrams gets at most one log line per second, all counted",
  async (family) => {
    await using server = await startServer(SCRIPT);
    using low = udpSocket(family, LOW_PORT);
    const to = serverAddr(family, server.port);
    const started = Date.now();
    for (let i = 0; i < 300; i++) await low.send(utf8(`${i}`), to);
    // The server's socket queue is first in, first out: once this echo is
    // back, the whole burst has been handled. The burst's length is counted
    // to here, so a server slowed by a busy machine gets the lines its
    // longer handling allows.
    using normal = udpSocket(family);
    await udpRoundTrip(normal, family, server.port, utf8("after"), 10);
    const burstMs = Date.now() - started;
    // After a pause longer than the interval, the next drop gets a line,
    // and it carries the count of the drops that got none.
    await sleep(1200);
    const linesBefore = server.stderr.lines.length;
    await low.send(utf8("last"), to);
    await server.stderr.waitFor(/dropped a datagram/, undefined, linesBefore);
    const done = await server.stop();
    const dropped = Number(done.stdout.match(/, (\d+) dropped$/m)![1]);
    const lines = server.stderr.lines.filter((l) => l !== "");
    let counted = 0;
    for (const line of lines) {
      const match = line.match(
        /^echod: dropped a datagram from \S+: .*?(?:; (\d+) more dropped since the last such line)?$/,
      );
      assert.ok(match, `unexpected line: ${line}`);
      counted += 1 + Number(match[1] ?? 0);
    }
    assert.equal(counted, dropped, server.stderr.text);
    assert.ok(
      lines.length <= 2 + Math.ceil(burstMs / 1000),
      `${lines.length} lines for ${dropped} drops in ${burstMs} ms`,
    );
    assert.ok(dropped > 2 * lines.length, `only ${dropped} drops counted`);
    assert.match(lines.at(-1)!, /; \d+ more dropped since the last such line$/);
  },
);

// ---------------------------------------------------------------------------
// --threads N: workers on the shared port, supervised

Deno.test({
  name:
    "echod: --threads 2: one listener per thread on the port, the kernel spreads the clients, their lines never mix; UDP still answers" +
    (isLinux ? "" : " (ignored: needs Linux reusePort and /proc)"),
  ignore: !isLinux,
  async fn() {
    await using server = await startServer(SCRIPT, ["--threads", "2"]);
    assert.match(
      server.readyLine,
      /^echod: listening on \[::\]:\d+ \(IPv4 and IPv6\), TCP and UDP, 2 threads$/,
    );
    assert.equal(listenersOn(server.port, server.pid), 2);
    using socket = udpSocket(IPV4);
    const done = await spreadOverTwoThreads(server, "echod", 60, async () => {
      await udpRoundTrip(socket, IPV4, server.port, utf8("udp"));
    });
    assert.match(
      done.stdout,
      /^echod: stopped by SIGINT: 60 clients, \d+ bytes echoed, 1 datagram, 3 bytes echoed, 0 dropped$/m,
    );
  },
});

Deno.test("echod --threads 2 --max-clients 1: the bound is per thread: at most 2 clients at once, the next one refused by its thread", async () => {
  await using server = await startServer(SCRIPT, [
    "--threads",
    "2",
    "--max-clients",
    "1",
  ]);
  const conns: Deno.TcpConn[] = [];
  let served = 0;
  let refusal = "";
  try {
    // Each thread serves one client: whichever threads the kernel picks,
    // the third client at the latest finds its thread full.
    for (let i = 0; i < 3 && !refusal; i++) {
      const conn = await connect(IPV4, server.port);
      conns.push(conn);
      const line = await server.stdout.waitFor(
        new RegExp(
          `^echod: \\[[12]\\] 127\\.0\\.0\\.1:${conn.localAddr.port} (connected|refused: .*)$`,
        ),
      );
      if (line.endsWith(" connected")) served++;
      else refusal = line;
    }
    assert.match(
      refusal,
      /^echod: \[[12]\] \S+ refused: 1 clients already \(--max-clients 1\)$/,
    );
    assert.ok(served >= 1 && served <= 2, `${served} clients served`);
    assert.deepEqual(await readToEnd(conns.at(-1)!), new Uint8Array(0));
    assert.deepEqual(await echoRoundTrip(conns[0], utf8("in")), utf8("in"));
  } finally {
    for (const conn of conns) closeQuietly(conn);
  }
});

testEchoesBytes(SCRIPT, ["--threads", "2"]);

testThreadedShutdown(
  { script: SCRIPT, title: "echod --threads 2: " },
  " and sums their counts",
  false,
);

const destroyMissing = await destroyListenersMissing();

Deno.test({
  name: destroyMissing
    ? `echod --threads 2: a thread whose listener is destroyed (ss -K) dies and is replaced; the process and UDP live on (ignored: ${destroyMissing})`
    : "echod --threads 2: a thread whose listener is destroyed (ss -K) dies and is replaced; the process and UDP live on",
  ignore: destroyMissing !== "",
  async fn() {
    await using server = await startServer(SCRIPT, ["--threads", "2"]);
    const before = await connect(IPV4, server.port);
    assert.deepEqual(await echoRoundTrip(before, utf8("12345")), utf8("12345"));
    const its = await server.stdout.waitFor(
      new RegExp(
        `^echod: \\[\\d\\] ${
          escapeRegExp(shownAddress(before.localAddr))
        } connected$`,
      ),
    );
    // ss -K destroys the port's listeners it finds: one of the reusePort
    // group or both, depending on the kernel. Each one's thread dies.
    // (An ss that lists nothing it destroyed: /proc tells, before the
    // replacements, 100 ms later.)
    const killed = (await destroyListeners(server.port)) ||
      2 - listenersOn(server.port, server.pid);
    assert.ok(killed === 1 || killed === 2, `ss -K destroyed ${killed}`);
    const DIED =
      /^echod: \[([12])\] thread died: cannot accept clients: Invalid argument \(os error 22\); starting another in 100 ms$/;
    const deaths = () => server.stderr.lines.filter((l) => DIED.test(l));
    await eventually(() => deaths().length >= killed, `${killed} deaths`);
    const dead = deaths().map((l) => l.match(DIED)![1]);
    assert.equal(new Set(dead).size, killed, dead.join(" "));
    for (const n of dead) {
      await server.stderr.waitFor(
        new RegExp(`^echod: \\[${n}\\] new thread listening$`),
      );
    }
    // A thread that dies takes its clients with it, and reports their
    // counts as it dies.
    const sameThread = dead.some((n) => its.includes(`[${n}]`));
    if (sameThread) {
      await within(
        readToEnd(before).catch(() => new Uint8Array(0)),
        "the dead thread's client to be closed",
      );
    }
    before.close();
    assert.equal(listenersOn(server.port, server.pid), 2);
    for (let i = 0; i < 6; i++) {
      const conn = await connect(IPV4, server.port);
      try {
        assert.deepEqual(await echoRoundTrip(conn, utf8("abc")), utf8("abc"));
      } finally {
        conn.close();
      }
    }
    using socket = udpSocket(IPV4);
    await udpRoundTrip(socket, IPV4, server.port, utf8("udp"));
    await eventually(
      () =>
        server.stdout.lines.filter((l) => / left after 3 bytes/.test(l))
          .length === 6,
      "the six clients' last lines",
    );
    const done = await server.stop();
    assert.equal(done.code, 0);
    assert.match(
      done.stdout,
      new RegExp(
        `^echod: stopped by SIGINT: 7 clients, ${
          sameThread ? 18 : 23
        } bytes echoed, 1 datagram, 3 bytes echoed, 0 dropped$`,
        "m",
      ),
    );
    assertNoStackTrace(done.stderr);
    assert.equal(
      done.stderr.trimEnd().split("\n").length,
      2 * killed,
      done.stderr,
    );
  },
});

testDestroyedListenerInFrench(
  "echod --threads 2, LANG=fr_FR.UTF-8: a destroyed listener's thread dies in French, Deno's EINVAL included",
  SCRIPT,
  ["--threads", "2"],
  destroyMissing,
  [
    /^echod\u00a0: \[[12]\] fil mort\u00a0: impossible d'accepter des clients\u00a0: argument invalide \(erreur système 22\)\u00a0; un autre démarre dans 100 ms$/,
  ],
);

// ---------------------------------------------------------------------------
// The pure pieces, in-process (fast). Importing echod.ts starts nothing.

Deno.test("echod.parseOptions: defaults, services, threads, limits, --no-fair", () => {
  const defaults = parseOptions([]);
  assert.ok(typeof defaults === "object");
  assert.deepEqual(defaults, {
    host: "::",
    port: 7777,
    quiet: false,
    tcp: true,
    udp: true,
    threads: 1,
    maxClients: 10_000,
    idleTimeoutMs: 0,
    fair: true,
    allowAnyPort: false,
  });
  const options = parseOptions([
    "--",
    "--port",
    "0",
    "--tcp-only",
    "--threads",
    "3",
    "--max-clients",
    "3",
    "--idle-timeout",
    "0.5",
    "--no-fair",
  ]);
  assert.ok(typeof options === "object");
  assert.equal(options.port, 0);
  assert.equal(options.udp, false);
  assert.equal(options.threads, 3);
  assert.equal(options.maxClients, 3);
  assert.equal(options.idleTimeoutMs, 500);
  assert.equal(options.fair, false);
  const udpOnly = parseOptions(["--udp-only", "--allow-any-port"]);
  assert.ok(typeof udpOnly === "object");
  assert.equal(udpOnly.tcp, false);
  assert.equal(udpOnly.allowAnyPort, true);
  const help = captured(() => parseOptions(["--help"]));
  assert.equal(help.result, 0);
  assert.ok(help.out.startsWith(`Usage: ${RUN_LINE} [options]`), help.out);
  const mistake = captured(() => parseOptions(["--threads", "2.5"]));
  assert.equal(mistake.result, 2);
  assert.ok(mistake.err.startsWith('echod: Invalid --threads "2.5": '));
  assert.equal(parseThreads("256"), 256);
  assert.throws(() => parseThreads("257"), /Invalid --threads/);
  assert.throws(() => parseMaxClients("0"), /Invalid --max-clients/);
  assert.equal(parseSeconds("0.5"), 0.5);
  assert.throws(() => parseSeconds("-1"), /Invalid --idle-timeout "-1"/);
  assert.throws(() => parseSeconds("1m"), /Invalid --idle-timeout "1m"/);
});

Deno.test("echod.restartDelay: doubles while threads die young, capped, reset by a long life", () => {
  let wait: number | undefined;
  const waits: number[] = [];
  for (let i = 0; i < 12; i++) {
    wait = restartDelay(0, wait);
    waits.push(wait);
  }
  const min = RESTART_DELAY_MIN_MS;
  assert.deepEqual(waits.slice(0, 4), [min, 2 * min, 4 * min, 8 * min]);
  assert.equal(waits.at(-1), RESTART_DELAY_MAX_MS);
  assert.equal(restartDelay(RESTART_STABLE_MS, RESTART_DELAY_MAX_MS), min);
  assert.equal(restartDelay(RESTART_STABLE_MS - 1, min), 2 * min);
});

testLoopGuardFunction("echod.loopGuard", loopGuard);

Deno.test("echod.LogLimiter: at most N lines per interval, then says how many it left out", () => {
  const limiter = new LogLimiter(2, 1000);
  assert.equal(limiter.allow(0), 0);
  assert.equal(limiter.allow(10), 0);
  assert.equal(limiter.allow(20), -1);
  assert.equal(limiter.allow(999), -1);
  assert.equal(limiter.allow(1000), 2); // new interval: 2 were left out
  assert.equal(limiter.allow(1001), 0);
  assert.equal(limiter.allow(1002), -1);
  assert.equal(limiter.takeSuppressed(), 1);
  assert.equal(limiter.takeSuppressed(), 0);
});

// The fair turns' bookkeeping, with stand-in connections whose reads the
// test completes by hand.

/** A connection whose reads complete when the test says so. */
class StandIn {
  readonly waiting: ((n: number | null) => void)[] = [];
  reads = 0;

  constructor(readonly name: string) {}

  read(_buffer: Uint8Array): Promise<number | null> {
    this.reads++;
    return new Promise((resolve) => this.waiting.push(resolve));
  }

  /** Completes its oldest pending read with `n` bytes. */
  answer(n: number | null = 1): void {
    const resolve = this.waiting.shift();
    assert.ok(resolve, `${this.name} has no read pending`);
    resolve(n);
  }
}

/** Lets every promise reaction run. */
function settle(): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, 0));
}

const buffer = new Uint8Array(8);
/** Long enough never to fire during a test: they call sweep() themselves. */
const NEVER_MS = WAIT_MS * 10;

/** Names of the stand-ins with a read pending inside "Deno". */
function pending(conns: StandIn[]): string[] {
  return conns.filter((c) => c.waiting.length > 0).map((c) => c.name);
}

Deno.test("echod.FairTurns: at most SLOTS reads wait at once, and clients take turns first come, first served", async () => {
  const turns = new FairTurns(2, NEVER_MS);
  const conns = ["a", "b", "c", "d", "e"].map((n) => new StandIn(n));
  const served: string[] = [];
  const loops = conns.map(async (conn) => {
    while (await turns.read(conn, buffer, true) !== null) {
      served.push(conn.name);
    }
  });
  await settle();
  assert.deepEqual(pending(conns), ["a", "b"]);
  assert.equal(turns.waiting, 3);
  for (const step of ["a", "b", "c", "d", "e", "a", "b"]) {
    conns.find((c) => c.name === step)!.answer();
    await settle();
    assert.equal(pending(conns).length, 2, `after ${step}`);
  }
  assert.deepEqual(served, ["a", "b", "c", "d", "e", "a", "b"]);
  assert.deepEqual(pending(conns), ["c", "d"]);
  for (const name of ["c", "d", "e", "a", "b"]) {
    conns.find((c) => c.name === name)!.answer(null);
    await settle();
  }
  await Promise.all(loops);
  assert.equal(turns.waiting, 0);
  assert.equal(turns.holding, 0);
  turns.sweep(); // nobody waits: no timer is left behind
});

Deno.test("echod.FairTurns: a silent reader is parked by the sweep, and its late read gives no slot back", async () => {
  const turns = new FairTurns(1, NEVER_MS);
  const [silent, busy, late] = ["silent", "busy", "late"].map((n) =>
    new StandIn(n)
  );
  const silentRead = turns.read(silent, buffer, true);
  const busyRead = turns.read(busy, buffer, true);
  await settle();
  assert.deepEqual(pending([silent, busy]), ["silent"]);
  assert.equal(turns.waiting, 1);
  turns.sweep();
  await settle();
  assert.deepEqual(pending([silent, busy]), ["silent", "busy"]);
  assert.equal(turns.holding, 1);
  silent.answer();
  assert.equal(await silentRead, 1);
  const lateRead = turns.read(late, buffer, true);
  await settle();
  assert.deepEqual(pending([silent, busy, late]), ["busy"]);
  busy.answer();
  assert.equal(await busyRead, 1);
  await settle();
  assert.deepEqual(pending([silent, busy, late]), ["late"]);
  late.answer(null);
  assert.equal(await lateRead, null);
  assert.equal(turns.holding, 0);
  turns.sweep();
});

Deno.test("echod.FairTurns: while reads end, a read is parked only after a whole sweep interval", async () => {
  const turns = new FairTurns(2, NEVER_MS);
  const conns = ["a", "x", "b", "c", "d"].map((n) => new StandIn(n));
  const [a, x, b, c, d] = conns;
  const reads = conns.map((conn) => turns.read(conn, buffer, true));
  await settle();
  assert.deepEqual(pending(conns), ["a", "x"]);
  a.answer();
  await settle();
  assert.deepEqual(pending(conns), ["x", "b"]);
  turns.sweep();
  await settle();
  assert.deepEqual(pending(conns), ["x", "b", "c"]);
  c.answer();
  await settle();
  assert.deepEqual(pending(conns), ["x", "b", "d"]);
  turns.sweep();
  await settle();
  assert.equal(turns.holding, 1);
  assert.equal(turns.waiting, 0);
  for (const conn of [x, b, d]) conn.answer(null);
  await Promise.all(reads);
  assert.equal(turns.holding, 0);
  turns.sweep();
});

Deno.test("echod.FairTurns: a sweep that saw no read end parks every holder", async () => {
  const turns = new FairTurns(1, NEVER_MS);
  const conns = ["first", "second", "third"].map((n) => new StandIn(n));
  const reads = conns.map((c) => turns.read(c, buffer, true));
  await settle();
  assert.deepEqual(pending(conns), ["first"]);
  turns.sweep();
  await settle();
  assert.deepEqual(pending(conns), ["first", "second"]);
  assert.equal(turns.waiting, 1);
  turns.sweep();
  await settle();
  assert.deepEqual(pending(conns), ["first", "second", "third"]);
  assert.equal(turns.waiting, 0);
  assert.equal(turns.holding, 1);
  for (const conn of conns) conn.answer(null);
  assert.deepEqual(await Promise.all(reads), [null, null, null]);
  assert.equal(turns.holding, 0);
  turns.sweep();
});

Deno.test("echod.FairTurns: a parked read that ends takes a slot (the next one given back, or a free one) until a sweep sees none end", async () => {
  const turns = new FairTurns(2, NEVER_MS);
  const conns = ["s1", "s2", "q1", "q2", "q3"].map((n) => new StandIn(n));
  const [s1, s2, q1, q2, q3] = conns;
  const reads = conns.map((c) => turns.read(c, buffer, true));
  await settle();
  assert.deepEqual(pending(conns), ["s1", "s2"]);
  turns.sweep(); // s1 and s2 waited since the queue formed: parked
  await settle();
  assert.deepEqual(pending(conns), ["s1", "s2", "q1", "q2"]);
  assert.equal(turns.waiting, 1);
  s1.answer(); // a parked client talks again: its read took tokio's budget
  await settle();
  assert.equal(turns.lent, 1);
  q1.answer(); // its slot pays the parked read's debt: q3 still waits
  await settle();
  assert.deepEqual(pending(conns), ["s2", "q2"]);
  assert.equal(turns.waiting, 1);
  assert.equal(turns.holding, 1);
  turns.sweep(); // a parked read ended since the last sweep: still lent
  await settle();
  assert.deepEqual(pending(conns), ["s2", "q2"]);
  assert.equal(turns.lent, 1);
  turns.sweep(); // none since: the slot comes back, to the first in the queue
  await settle();
  assert.deepEqual(pending(conns), ["s2", "q2", "q3"]);
  assert.equal(turns.lent, 0);
  assert.equal(turns.waiting, 0);
  turns.sweep(); // nobody waits: sweeping stops
  s2.answer(); // no sweep would come to give a slot back: it takes none
  await settle();
  assert.equal(turns.lent, 0);
  for (const conn of [q2, q3]) conn.answer(null);
  await Promise.all(reads);
  assert.equal(turns.holding, 0);

  // Between sweeps, with a slot free, a parked read takes the free one.
  const more = ["a", "b", "c", "d", "g"].map((n) => new StandIn(n));
  const [a, b, c, d, g] = more;
  const moreReads = more.map((conn) => turns.read(conn, buffer, true));
  await settle();
  turns.sweep(); // a and b parked, c and d served, g waits
  await settle();
  c.answer(null); // c leaves: g is served, the queue is empty
  d.answer(null); // d leaves: a slot is free
  await settle();
  assert.deepEqual(pending(more), ["a", "b", "g"]);
  assert.equal(turns.waiting, 0);
  a.answer(null); // parked: takes the free slot
  await settle();
  assert.equal(turns.lent, 1);
  const e = new StandIn("e");
  const eRead = turns.read(e, buffer, true); // no slot free: waits
  await settle();
  assert.deepEqual(pending([e]), []);
  assert.equal(turns.waiting, 1);
  b.answer(null); // parked too, but one slot at least stays ours (2 / 8)
  await settle();
  assert.equal(turns.lent, 1);
  turns.sweep();
  turns.sweep();
  await settle();
  assert.deepEqual(pending([e]), ["e"]);
  for (const conn of [g, e]) conn.answer(null);
  await Promise.all([...moreReads, eRead]);
  assert.equal(turns.holding, 0);
  turns.sweep();
});

Deno.test("echod.FairTurns: new clients and --no-fair read straight away", async () => {
  const turns = new FairTurns(1, NEVER_MS);
  const conns = ["a", "b", "c"].map((n) => new StandIn(n));
  const reads = conns.map((c) => turns.read(c, buffer, false));
  assert.deepEqual(pending(conns), ["a", "b", "c"]);
  assert.equal(turns.holding, 0);
  assert.equal(turns.waiting, 0);
  turns.enabled = false;
  const more = conns.map((c) => turns.read(c, buffer, true));
  assert.deepEqual(conns.map((c) => c.reads), [2, 2, 2]);
  assert.equal(turns.waiting, 0);
  for (const c of conns) {
    c.answer(null);
    c.answer(null);
  }
  await Promise.all([...reads, ...more]);
});
