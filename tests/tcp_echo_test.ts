/**
 * tcp_echo.ts against real sockets: the sequential echo server of sheet 000
 * §1.2, started exactly as its task in deno.json runs it.
 */

import assert from "node:assert/strict";
import {
  closeQuietly,
  connect,
  echoRoundTrip,
  eventually,
  IPV4,
  prlimitMissing,
  readExactly,
  readToEnd,
  resetAfterEcho,
  rssBytes,
  setSoftFileLimit,
  startServer,
  stillPending,
  testBothFamilies,
  utf8,
  writeAll,
} from "./helpers.ts";
import {
  echoProbe,
  sendUntilStalled,
  testEchoesBytes,
  testEchoLogLines,
  testEchoSurvivesReset,
} from "./echo_contract.ts";
import { testServerCommandLine } from "./server_cli.ts";
import { testLessonLanguages } from "./lesson_lang.ts";
import { testNoDelay } from "./sockopt.ts";

const SCRIPT = "tcp_echo.ts";

testServerCommandLine({ script: SCRIPT, probe: echoProbe() });

testLessonLanguages({
  script: SCRIPT,
  left: ["after 4 bytes echoed", "après 4 octets renvoyés"],
});

// ---------------------------------------------------------------------------
// Listening and logging

Deno.test("ready line gives the real port; IPv4 and IPv6 on that one port", async () => {
  await using server = await startServer(SCRIPT);
  assert.match(
    server.readyLine,
    /^tcp_echo: listening on \[::\]:\d+ \(IPv4 and IPv6\)$/,
  );
  assert.notEqual(server.port, 0);
  assert.equal(server.port, Number(server.readyLine.match(/:(\d+) /)![1]));
  for (const hostname of ["127.0.0.1", "::1"]) {
    const conn = await Deno.connect({ hostname, port: server.port });
    try {
      const payload = utf8(`hello over ${hostname}`);
      assert.deepEqual(await echoRoundTrip(conn, payload), payload);
    } finally {
      conn.close();
    }
    // Sequential: wait for this client to be gone before the next.
    await server.stdout.waitFor(/ left after \d+ bytes echoed$/, undefined, 0);
  }
});

testEchoLogLines(SCRIPT);

// ---------------------------------------------------------------------------
// Echo

testEchoesBytes(SCRIPT);

testNoDelay(SCRIPT, { clients: 1 });

// ---------------------------------------------------------------------------
// One client at a time

testBothFamilies(
  "second client waits until the first leaves, then is served",
  async (family) => {
    await using server = await startServer(SCRIPT);
    const first = await connect(family, server.port);
    const second = await connect(family, server.port); // completes in the backlog
    try {
      assert.deepEqual(
        await echoRoundTrip(first, utf8("first")),
        utf8("first"),
      );
      await writeAll(second, utf8("second"));
      const secondEcho = readExactly(second, 6);
      assert.ok(
        await stillPending(secondEcho, 500),
        "the second client got its echo while the first was still connected",
      );
      first.close();
      assert.deepEqual(await secondEcho, utf8("second"));
      const lines = server.stdout.lines;
      const firstLeft = lines.findIndex((l) =>
        l.includes(`:${first.localAddr.port} left`)
      );
      const secondCame = lines.findIndex((l) =>
        l.includes(`:${second.localAddr.port} connected`)
      );
      assert.ok(firstLeft >= 0 && firstLeft < secondCame, lines.join("\n"));
    } finally {
      closeQuietly(first);
      second.close();
    }
  },
);

// ---------------------------------------------------------------------------
// Clients that misbehave

testEchoSurvivesReset(SCRIPT);

testBothFamilies(
  "a client that resets while waiting in the backlog does not stop the accept loop",
  async (family) => {
    await using server = await startServer(SCRIPT);
    const first = await connect(family, server.port);
    assert.deepEqual(await echoRoundTrip(first, utf8("1")), utf8("1"));
    // While the first is served, a second client connects and resets.
    await resetAfterEcho(family, server.port, null);
    const third = await connect(family, server.port);
    try {
      await writeAll(third, utf8("third"));
      first.close(); // now the server accepts: the reset one, then the third
      assert.deepEqual(await readExactly(third, 5), utf8("third"));
    } finally {
      closeQuietly(first);
      third.close();
    }
    assert.doesNotMatch(server.stderr.text, /cannot accept/);
  },
);

Deno.test("a client that sends but never reads cannot grow the server's memory", async () => {
  await using server = await startServer(SCRIPT, ["--quiet"]);
  const before = rssBytes(server.pid);
  const greedy = await connect(IPV4, server.port);
  const limit = 256; // MiB we are ready to send if the server keeps taking
  let pending: Promise<void> | null = null;
  try {
    const stalled = await sendUntilStalled(greedy, limit);
    pending = stalled.pending;
    const grown = rssBytes(server.pid) - before;
    assert.ok(
      stalled.sent < limit,
      `the server accepted all ${limit} MiB unread`,
    );
    assert.ok(
      grown < 32 * 1024 * 1024,
      `server RSS grew by ${grown >> 20} MiB after ${stalled.sent} MiB unread`,
    );
  } finally {
    greedy.close();
    await pending?.catch(() => {}); // the blocked write fails once closed
  }
  const next = await connect(IPV4, server.port);
  try {
    assert.deepEqual(await echoRoundTrip(next, utf8("ok")), utf8("ok"));
  } finally {
    next.close();
  }
});

// ---------------------------------------------------------------------------
// Out of file descriptors

Deno.test({
  name: prlimitMissing
    ? `out of file descriptors: backs off, then recovers (ignored: ${prlimitMissing})`
    : "out of file descriptors: backs off, then recovers",
  ignore: prlimitMissing !== "",
  async fn() {
    await using server = await startServer(SCRIPT);
    // Lower the server's soft limit to the lowest free descriptor number:
    // the next accept() has no descriptor to give and fails with EMFILE.
    const open = [...Deno.readDirSync(`/proc/${server.pid}/fd`)]
      .map((e) => Number(e.name));
    let lowestFree = 0;
    while (open.includes(lowestFree)) lowestFree++;
    await setSoftFileLimit(server.pid, lowestFree);
    const conn = await connect(IPV4, server.port); // queued by the kernel
    try {
      await writeAll(conn, utf8("patience"));
      await server.stderr.waitFor(
        /^tcp_echo: cannot accept clients: Too many open files.*; retrying$/,
      );
      assert.equal(server.stderr.lines.length, 1, "one line, not a flood");
      await setSoftFileLimit(server.pid, 1024);
      assert.deepEqual(await readExactly(conn, 8), utf8("patience"));
      await server.stderr.waitFor(/^tcp_echo: accepting clients again$/);
    } finally {
      conn.close();
    }
    assert.equal((await server.stop()).code, 0);
  },
});

// ---------------------------------------------------------------------------
// Shutdown

for (const signal of ["SIGINT", "SIGTERM"] as const) {
  Deno.test(`${signal} closes the client, prints the summary, exits 0`, async () => {
    await using server = await startServer(SCRIPT);
    const conn = await connect(IPV4, server.port);
    try {
      assert.deepEqual(await echoRoundTrip(conn, utf8("bye")), utf8("bye"));
      const done = await server.stop(signal);
      assert.equal(done.code, 0);
      assert.match(
        done.stdout,
        new RegExp(
          `^tcp_echo: stopped by ${signal}: 1 client, 3 bytes echoed$`,
          "m",
        ),
      );
      assert.deepEqual(await readToEnd(conn), new Uint8Array(0));
    } finally {
      conn.close();
    }
  });
}

Deno.test("SIGINT while clients wait in the backlog still exits 0 at once", async () => {
  await using server = await startServer(SCRIPT);
  const conns = await Promise.all(
    [1, 2, 3].map(() => connect(IPV4, server.port)),
  );
  try {
    await eventually(
      () => server.stdout.lines.some((l) => l.endsWith(" connected")),
      "the first client to be accepted",
    );
    const done = await server.stop("SIGINT");
    assert.equal(done.code, 0);
    assert.equal(done.stderr, "");
  } finally {
    for (const conn of conns) conn.close();
  }
});

// Pure pieces, in-process (fast): importing the script starts nothing, the
// server runs only when the file is the main module.
Deno.test("tcp_echo exports its pure pieces: ports, addresses, plurals, disconnects", async () => {
  const echo = await import("../tcp_echo.ts");
  assert.equal(echo.parsePort("0"), 0);
  assert.equal(echo.parsePort("65535"), 65535);
  for (const bad of ["65536", "-1", "1e3", "7777abc", "", "123456"]) {
    assert.throws(
      () => echo.parsePort(bad),
      (err: unknown) =>
        err instanceof echo.UsageError &&
        err.message ===
          `Invalid port "${bad}": expected a number from 0 to 65535`,
      bad,
    );
  }
  const tcp = (hostname: string, port: number): Deno.NetAddr => ({
    transport: "tcp",
    hostname,
    port,
  });
  assert.equal(echo.formatAddress(tcp("127.0.0.1", 53422)), "127.0.0.1:53422");
  assert.equal(
    echo.formatAddress(tcp("::ffff:127.0.0.1", 53422)),
    "127.0.0.1:53422",
  );
  assert.equal(echo.formatAddress(tcp("::1", 7)), "[::1]:7");
  assert.equal(echo.formatAddress(tcp("::ffff", 7)), "[::ffff]:7");
  assert.equal(echo.plural(1, "client"), "1 client");
  assert.equal(echo.plural(0, "byte"), "0 bytes");
  assert.equal(
    echo.describeDisconnect(new Deno.errors.ConnectionReset("x"), "p"),
    "reset the connection",
  );
  assert.equal(
    echo.describeDisconnect(new Deno.errors.BrokenPipe("x"), "p"),
    "stopped reading and left",
  );
  const options = echo.parseOptions(["--port", "0", "--host", "::1"]);
  assert.deepEqual(
    typeof options === "object" ? [options.port, options.host] : options,
    [0, "::1"],
  );
});
