/**
 * What every TCP echo server promises about bytes, as one set of tests each
 * echo server's test file registers: any bytes come back exactly (all 256
 * values, invalid UTF-8, NUL), a large payload comes back byte for byte
 * while it is still being sent, and a half-closed client gets everything
 * echoed before the server closes. Over IPv4 and IPv6.
 */

import assert from "node:assert/strict";
import {
  awkwardBytes,
  closeQuietly,
  connect,
  echoRoundTrip,
  escapeRegExp,
  eventually,
  type Family,
  type Finished,
  firstDifference,
  IPV4,
  limitLeaving,
  patternBytes,
  prlimitMissing,
  readExactly,
  readToEnd,
  resetAfterEcho,
  rssBytes,
  runScript,
  sameBytes,
  type Server,
  setSoftFileLimit,
  shownAddress,
  startServer,
  stillPending,
  testBothFamilies,
  utf8,
  writeAll,
} from "./helpers.ts";

/** Large enough to overflow every buffer on the way several times. */
const LARGE_PAYLOAD = 8 * 1024 * 1024;

export function testEchoesBytes(script: string, args: string[] = []): void {
  const name = script.replace(/\.ts$/, "");

  testBothFamilies(
    `${name}: echoes any bytes exactly: all 256 values, invalid UTF-8, NUL`,
    async (family) => {
      await using server = await startServer(script, args);
      const conn = await connect(family, server.port);
      try {
        const payload = awkwardBytes();
        assert.deepEqual(await echoRoundTrip(conn, payload), payload);
      } finally {
        conn.close();
      }
    },
  );

  testBothFamilies(
    `${name}: echoes an 8 MiB payload byte for byte`,
    async (family) => {
      await using server = await startServer(script, args);
      const conn = await connect(family, server.port);
      try {
        const payload = patternBytes(LARGE_PAYLOAD, 7);
        const echo = await echoRoundTrip(conn, payload);
        assert.ok(sameBytes(echo, payload), firstDifference(echo, payload));
      } finally {
        conn.close();
      }
    },
  );

  testBothFamilies(
    `${name}: half-close: everything sent is echoed, then the server closes`,
    async (family) => {
      await using server = await startServer(script, args);
      const conn = await connect(family, server.port);
      try {
        const payload = patternBytes(300_000, 3);
        await writeAll(conn, payload);
        await conn.closeWrite(); // we are done sending, still reading
        const echo = await readToEnd(conn);
        assert.ok(sameBytes(echo, payload), firstDifference(echo, payload));
      } finally {
        conn.close();
      }
    },
  );
}

/** A probe for testServerCommandLine's copy-and-run check: `clients`
 * clients connected at once each get their echo (two show that a copied
 * concurrent server is the real one, not a stub). */
export function echoProbe(clients = 1): (server: Server) => Promise<void> {
  return async (server) => {
    const conns = await Promise.all(
      Array.from({ length: clients }, () => connect(IPV4, server.port)),
    );
    try {
      for (const [i, conn] of conns.entries()) {
        const payload = utf8(`copied and run alone ${i}\n`);
        assert.deepEqual(await echoRoundTrip(conn, payload), payload);
      }
    } finally {
      for (const conn of conns) closeQuietly(conn);
    }
  };
}

/** The log lines of an echo server: one per client arriving and leaving,
 * with its real address (IPv4 shown as such, never "::ffff:"), the summary,
 * and --quiet leaving only the ready line and the summary. */
export function testEchoLogLines(script: string): void {
  const name = script.replace(/\.ts$/, "");

  testBothFamilies(
    `${name}: one line per client arriving and leaving, with its real address`,
    async (family) => {
      await using server = await startServer(script);
      const conn = await connect(family, server.port);
      const shown = shownAddress(conn.localAddr);
      const payload = utf8("12345");
      assert.deepEqual(await echoRoundTrip(conn, payload), payload);
      conn.close();
      await server.stdout.waitFor(
        new RegExp(
          `^${name}: ${escapeRegExp(shown)} left after 5 bytes echoed$`,
        ),
      );
      assert.ok(server.stdout.lines.includes(`${name}: ${shown} connected`));
      assert.doesNotMatch(server.stdout.text, /::ffff:/);
      const done = await server.stop();
      assert.equal(done.code, 0);
      assert.match(
        done.stdout,
        new RegExp(
          `^${name}: stopped by SIGINT: 1 client, 5 bytes echoed$`,
          "m",
        ),
      );
    },
  );

  testQuietOutput(script);
}

/** A client that resets (a real RST) is logged as such, and the next
 * client is served. */
export function testEchoSurvivesReset(script: string): void {
  const name = script.replace(/\.ts$/, "");
  testBothFamilies(
    `${name}: a client reset is logged and the next client is served`,
    async (family) => {
      await using server = await startServer(script);
      await resetAfterEcho(family, server.port, utf8("abc"));
      await server.stdout.waitFor(
        / reset the connection after 3 bytes echoed$/,
      );
      const next = await connect(family, server.port);
      try {
        assert.deepEqual(await echoRoundTrip(next, utf8("next")), utf8("next"));
      } finally {
        next.close();
      }
      assert.equal(server.stderr.text, "");
    },
  );
}

/** --quiet leaves only the ready line and the summary (`args` are extra
 * options, such as a thread count). */
export function testQuietOutput(script: string, args: string[] = []): void {
  const name = script.replace(/\.ts$/, "");
  Deno.test(`${name}: --quiet leaves only the ready line and the summary`, async () => {
    await using server = await startServer(script, ["--quiet", ...args]);
    const conn = await connect(IPV4, server.port);
    assert.deepEqual(await echoRoundTrip(conn, utf8("x")), utf8("x"));
    conn.close();
    const done = await server.stop("SIGTERM");
    assert.equal(done.code, 0);
    const lines = done.stdout.trimEnd().split("\n");
    assert.equal(lines.length, 2, done.stdout);
    assert.match(
      lines[1],
      new RegExp(
        `^${name}: stopped by SIGTERM: 1 client, (0 bytes|1 byte) echoed$`,
      ),
    );
  });
}

// ---------------------------------------------------------------------------
// The event-loop servers (select_echo, echod): many clients at once, clients
// that misbehave, out of file descriptors, shutdown. Each server's test file
// registers them with its own names.

/** Which server, and how its tests are named. */
export interface EventLoopServer {
  script: string;
  /** Put before every test's name: "" in a lesson's own file, "echod: ". */
  title: string;
}

/** The program's name in its lines: the script without ".ts". */
function programOf(server: EventLoopServer): string {
  return server.script.replace(/\.ts$/, "");
}

/** A second client is served while the first stays connected. */
export function testSecondClientServed(server: EventLoopServer): void {
  testBothFamilies(
    `${server.title}a second client is served while the first stays connected`,
    async (family) => {
      await using running = await startServer(server.script);
      const first = await connect(family, running.port);
      const second = await connect(family, running.port);
      try {
        assert.deepEqual(await echoRoundTrip(first, utf8("1st")), utf8("1st"));
        assert.deepEqual(
          await echoRoundTrip(second, utf8("2nd")),
          utf8("2nd"),
        );
        assert.deepEqual(
          await echoRoundTrip(first, utf8("again")),
          utf8("again"),
        );
      } finally {
        first.close();
        second.close();
      }
    },
  );
}

/** 300 clients send their pieces round by round, all mixed together; each
 * gets exactly its own bytes, and the summary counts them. `chunkSize` is
 * chosen by the caller to cross its server's buffer sizes. */
export function testInterleavedClients(
  server: EventLoopServer,
  chunkSize: number,
): void {
  Deno.test(`${server.title}300 interleaved clients each get exactly their own bytes`, async () => {
    await using running = await startServer(server.script, ["--quiet"]);
    const count = 300;
    const chunks = 4;
    const conns: Deno.TcpConn[] = [];
    try {
      for (let i = 0; i < count; i++) {
        conns.push(await connect(IPV4, running.port));
      }
      const payloads = conns.map((_, i) =>
        patternBytes(chunks * chunkSize, i + 1)
      );
      const echoes = conns.map((conn, i) =>
        readExactly(conn, payloads[i].length)
      );
      // Round by round, every client sends its next piece: the server sees
      // all of them mixed together.
      for (let c = 0; c < chunks; c++) {
        for (const [i, conn] of conns.entries()) {
          await writeAll(
            conn,
            payloads[i].subarray(c * chunkSize, (c + 1) * chunkSize),
          );
        }
      }
      for (const [i, echo] of (await Promise.all(echoes)).entries()) {
        assert.ok(
          sameBytes(echo, payloads[i]),
          `client ${i}: ${firstDifference(echo, payloads[i])}`,
        );
      }
    } finally {
      for (const conn of conns) conn.close();
    }
    const done = await running.stop();
    assert.match(
      done.stdout,
      new RegExp(
        `^${programOf(server)}: stopped by SIGINT: ${count} clients, ${
          count * chunks * chunkSize
        } bytes echoed$`,
        "m",
      ),
    );
  });
}

/** How many clients stream how much at once, and over which families. */
export interface Streaming {
  clients?: number;
  mib?: number;
  /** The first client's pattern seed; the others follow. */
  seed?: number;
  /** Ends the test's subject (echod: " (more than the large buffers)"). */
  what?: string;
  /** Options besides --quiet (a thread count). */
  args?: string[];
  /** Over IPv4 and IPv6, or IPv4 only. */
  bothFamilies?: boolean;
}

/** Clients (32 by default) stream MiBs (4) each at once: every client reads
 * into its own buffer, many times over, and gets exactly its own bytes. */
export function testStreamingClients(
  server: EventLoopServer,
  {
    clients = 32,
    mib = 4,
    seed = 1000,
    what = "",
    args = [],
    bothFamilies = false,
  }: Streaming = {},
): void {
  const name =
    `${server.title}${clients} clients streaming ${mib} MiB each at once${what} get exactly their own bytes`;
  const body = async (family: Family) => {
    await using running = await startServer(server.script, [
      ...args,
      "--quiet",
    ]);
    const conns = await Promise.all(
      Array.from({ length: clients }, () => connect(family, running.port)),
    );
    await echoEachAtOnce(conns, mib * 1024 * 1024, seed);
  };
  if (bothFamilies) testBothFamilies(name, body);
  else Deno.test(name, () => body(IPV4));
}

/** Every client sends `size` bytes of its own pattern (seeds `seed`,
 * `seed + 1`…) at once and gets exactly its own bytes back; then all are
 * closed. */
export async function echoEachAtOnce(
  conns: Deno.TcpConn[],
  size: number,
  seed: number,
): Promise<void> {
  try {
    await Promise.all(conns.map(async (conn, i) => {
      const payload = patternBytes(size, seed + i);
      const echo = await echoRoundTrip(conn, payload);
      assert.ok(
        sameBytes(echo, payload),
        `client ${i}: ${firstDifference(echo, payload)}`,
      );
    }));
  } finally {
    for (const conn of conns) conn.close();
  }
}

/** Clients that reset while queued, before the server accepts them, do not
 * stop its accept loop. */
export function testResetBeforeAccept(server: EventLoopServer): void {
  testBothFamilies(
    `${server.title}clients that reset before they are accepted do not stop the accept loop`,
    async (family) => {
      await using running = await startServer(server.script);
      // A stopped server accepts nothing: the kernel completes the
      // handshakes and queues the clients, which then reset in the queue.
      running.kill("SIGSTOP");
      try {
        for (let i = 0; i < 5; i++) {
          await resetAfterEcho(family, running.port, null);
        }
      } finally {
        running.kill("SIGCONT");
      }
      const next = await connect(family, running.port);
      try {
        assert.deepEqual(await echoRoundTrip(next, utf8("next")), utf8("next"));
      } finally {
        next.close();
      }
      assert.equal((await running.stop()).code, 0);
      assert.doesNotMatch(running.stderr.text, /cannot accept/);
    },
  );
}

/** Writes 1 MiB pieces to `conn` until one stays unwritten for a second
 * (the server stopped reading), at most `limit` MiB. Returns the MiB sent
 * and the write still pending (null if the limit came first). */
export async function sendUntilStalled(
  conn: Deno.TcpConn,
  limit: number,
): Promise<{ sent: number; pending: Promise<void> | null }> {
  const chunk = patternBytes(1024 * 1024);
  let sent = 0;
  while (sent < limit) {
    const pending = writeAll(conn, chunk);
    if (await stillPending(pending, 1000)) return { sent, pending };
    await pending;
    sent++;
  }
  return { sent, pending: null };
}

/** A client that stops reading delays nobody and cannot grow the server's
 * memory; shutdown closes it even while a write to it is blocked. */
export function testSlowReader(server: EventLoopServer): void {
  Deno.test(`${server.title}a client that stops reading delays nobody and cannot grow the server's memory`, async () => {
    await using running = await startServer(server.script, ["--quiet"]);
    const before = rssBytes(running.pid);
    const greedy = await connect(IPV4, running.port);
    const limit = 256; // MiB we are ready to send if the server keeps taking
    let pending: Promise<void> | null = null;
    const fast: Deno.TcpConn[] = [];
    try {
      const stalled = await sendUntilStalled(greedy, limit);
      pending = stalled.pending;
      assert.ok(
        stalled.sent < limit,
        `the server accepted all ${limit} MiB unread`,
      );
      // The server is stuck writing to the greedy client; others go on.
      for (let i = 0; i < 20; i++) fast.push(await connect(IPV4, running.port));
      for (let round = 0; round < 5; round++) {
        await Promise.all(fast.map(async (conn, i) => {
          const payload = utf8(`fast ${i} round ${round}`);
          assert.deepEqual(await echoRoundTrip(conn, payload), payload);
        }));
      }
      const grown = rssBytes(running.pid) - before;
      assert.ok(
        grown < 32 * 1024 * 1024,
        `server RSS grew by ${
          grown >> 20
        } MiB after ${stalled.sent} MiB unread`,
      );
      // Shutdown closes a client even while a write to it is blocked.
      const done = await running.stop();
      assert.equal(done.code, 0);
      assert.match(done.stdout, /stopped by SIGINT: 21 clients/);
    } finally {
      greedy.close();
      for (const conn of fast) conn.close();
      await pending?.catch(() => {}); // the blocked write fails once closed
    }
  });
}

/** Out of file descriptors, the server stays up, says so once, backs off,
 * and serves the queued clients as descriptors free up. */
export function testOutOfDescriptors(server: EventLoopServer): void {
  const program = programOf(server);
  const subject =
    `${server.title}out of file descriptors: stays up, backs off, serves again once some free`;
  Deno.test({
    name: prlimitMissing ? `${subject} (ignored: ${prlimitMissing})` : subject,
    ignore: prlimitMissing !== "",
    async fn() {
      // Half a second after start, Deno's own update check opens the CA
      // certificates (NODE_EXTRA_CA_CERTS); out of descriptors, it warns on
      // stderr. Not the server's line: keep it out of this test.
      await using running = await startServer(server.script, [], {
        env: { DENO_NO_UPDATE_CHECK: "1" },
      });
      // Room for exactly `room` more descriptors: `room` clients, then EMFILE.
      const room = 4;
      await setSoftFileLimit(running.pid, limitLeaving(running.pid, room));
      const count = 12;
      const conns: Deno.TcpConn[] = [];
      try {
        for (let i = 0; i < count; i++) {
          conns.push(await connect(IPV4, running.port)); // queued by the kernel
        }
        const echoed = new Set<number>();
        const echoes = conns.map(async (conn, i) => {
          const payload = utf8(`client ${String(i).padStart(2, "0")}`);
          await writeAll(conn, payload);
          assert.deepEqual(await readExactly(conn, payload.length), payload);
          echoed.add(i);
        });
        await eventually(() => echoed.size === room, `${room} clients served`);
        await running.stderr.waitFor(
          new RegExp(
            `^${program}: cannot accept clients: Too many open files.*; retrying$`,
          ),
        );
        // Backing off: retries go on, the line is not repeated.
        assert.ok(
          await stillPending(Promise.all(echoes), 500),
          "more clients served than descriptors allow",
        );
        assert.equal(echoed.size, room);
        assert.equal(running.stderr.lines.length, 1, running.stderr.text);
        // Each served client leaves: its descriptor serves a waiting one.
        const served = new Set<number>();
        await eventually(() => {
          for (const i of echoed) {
            if (!served.has(i)) {
              served.add(i);
              conns[i].close();
            }
          }
          return served.size === count;
        }, "every queued client served as descriptors free up");
        await Promise.all(echoes);
        await running.stderr.waitFor(
          new RegExp(`^${program}: accepting clients again$`),
        );
      } finally {
        for (const conn of conns) closeQuietly(conn);
      }
      await setSoftFileLimit(running.pid, 1024);
      const next = await connect(IPV4, running.port);
      try {
        assert.deepEqual(await echoRoundTrip(next, utf8("ok")), utf8("ok"));
      } finally {
        next.close();
      }
      assert.equal((await running.stop()).code, 0);
    },
  });
}

/** Out of file descriptors under LANG=fr_FR.UTF-8, the warning is French
 * to its end: Deno's "Too many open files (os error 24)" included. */
export function testOutOfDescriptorsInFrench(server: EventLoopServer): void {
  const program = programOf(server);
  const subject =
    `${server.title}LANG=fr_FR.UTF-8, out of file descriptors: the warning is French`;
  Deno.test({
    name: prlimitMissing ? `${subject} (ignored: ${prlimitMissing})` : subject,
    ignore: prlimitMissing !== "",
    async fn() {
      await using running = runScript(server.script, ["--port", "0"], {
        env: {
          DENO_NO_UPDATE_CHECK: "1",
          LANG: "fr_FR.UTF-8",
          LC_ALL: "fr_FR.UTF-8",
        },
      });
      const ready = /à l'écoute sur \S*:(\d+)/;
      const port = Number(
        (await running.stdout.waitFor(ready)).match(ready)![1],
      );
      await setSoftFileLimit(running.pid, limitLeaving(running.pid, 1));
      const conns: Deno.TcpConn[] = [];
      try {
        for (let i = 0; i < 3; i++) conns.push(await connect(IPV4, port));
        const line = await running.stderr.waitFor(/accepter/);
        assert.match(
          line,
          new RegExp(
            `^${program}\u00a0: impossible d'accepter des clients\u00a0: trop de fichiers ouverts \\(erreur système 24\\)\u00a0; nouvel essai$`,
          ),
        );
      } finally {
        for (const conn of conns) closeQuietly(conn);
      }
      await setSoftFileLimit(running.pid, 1024);
      assert.equal((await running.stop()).code, 0);
    },
  });
}

/** How a server's shutdown test differs: `args` to start it, `what` ends
 * the test's name after "closes every client", `more` runs once the
 * clients got their echo (a datagram, say), and `summary` is what the
 * summary line says after "stopped by SIGxxx: ". */
export interface ShutdownCase {
  args?: string[];
  what: string;
  more?: (port: number) => Promise<void>;
  summary: string;
  clients?: number;
}

/** SIGINT and SIGTERM each close every client (3 by default, each told
 * "closed at shutdown"), print the summary, exit 0 with nothing on stderr. */
export function testShutdownSignals(
  server: EventLoopServer,
  shutdown: ShutdownCase,
): void {
  const program = programOf(server);
  const clients = shutdown.clients ?? 3;
  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    Deno.test(`${server.title}${signal} closes every client${shutdown.what}`, async () => {
      await using running = await startServer(
        server.script,
        shutdown.args ?? [],
      );
      const conns = await Promise.all(
        Array.from({ length: clients }, () => connect(IPV4, running.port)),
      );
      try {
        for (const conn of conns) {
          assert.deepEqual(
            await echoRoundTrip(conn, utf8("bye")),
            utf8("bye"),
          );
        }
        await shutdown.more?.(running.port);
        const done = await running.stop(signal);
        assert.equal(done.code, 0);
        assert.match(
          done.stdout,
          new RegExp(
            `^${program}: stopped by ${signal}: ${
              escapeRegExp(shutdown.summary)
            }$`,
            "m",
          ),
        );
        assert.equal(
          done.stdout.match(/ was closed at shutdown after 3 bytes echoed$/gm)
            ?.length,
          clients,
          done.stdout,
        );
        for (const conn of conns) {
          assert.deepEqual(await readToEnd(conn), new Uint8Array(0));
        }
        assert.equal(done.stderr, "");
      } finally {
        for (const conn of conns) conn.close();
      }
    });
  }
}

/** With `--threads 2`, SIGINT and SIGTERM each close the 16 clients of
 * every thread (each line tagged with its thread) and the summary sums the
 * threads' counts. `what` ends the test's name after "of every thread";
 * `bothThreads` also requires that both threads had clients. */
export function testThreadedShutdown(
  server: EventLoopServer,
  what: string,
  bothThreads: boolean,
): void {
  const program = programOf(server);
  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    Deno.test(`${server.title}${signal} closes every client of every thread${what}`, async () => {
      await using running = await startServer(server.script, [
        "--threads",
        "2",
      ]);
      const count = 16;
      const conns: Deno.TcpConn[] = [];
      try {
        for (let i = 0; i < count; i++) {
          const conn = await connect(IPV4, running.port);
          conns.push(conn);
          assert.deepEqual(
            await echoRoundTrip(conn, utf8("bye")),
            utf8("bye"),
          );
        }
        const done = await running.stop(signal);
        assert.equal(done.code, 0);
        assert.equal(done.stderr, "");
        assert.match(
          done.stdout,
          new RegExp(
            `^${program}: stopped by ${signal}: ${count} clients, ${
              3 * count
            } bytes echoed$`,
            "m",
          ),
        );
        const closed = done.stdout.match(
          new RegExp(
            `^${program}: \\[(\\d)\\] \\S+ was closed at shutdown after 3 bytes echoed$`,
            "gm",
          ),
        ) ?? [];
        assert.equal(closed.length, count, done.stdout);
        if (bothThreads) {
          // Both threads had clients to close: the sum is over threads.
          assert.equal(
            new Set(closed.map((l) => l.match(/\[(\d)\]/)![1])).size,
            2,
          );
        }
        for (const conn of conns) {
          assert.deepEqual(await readToEnd(conn), new Uint8Array(0));
        }
      } finally {
        for (const conn of conns) conn.close();
      }
    });
  }
}

/** Connects `count` clients to a server started with `--threads 2`, one
 * after another: each client has a new port, hence a new hash, hence a
 * thread drawn again (all of them on one thread of two: a chance of 2 in
 * 2^count). Then stops it (SIGINT) and checks that nothing went to stderr,
 * that every client line is whole (written by two threads at once, none
 * is cut) and tagged with its thread, and that both threads served.
 * `more` runs after the clients (echod: a datagram still answered).
 * Returns the stop's result for the caller's summary checks. */
export async function spreadOverTwoThreads(
  running: Server,
  program: string,
  count: number,
  more?: () => Promise<void>,
): Promise<Finished> {
  for (let i = 0; i < count; i++) {
    const conn = await connect(IPV4, running.port);
    try {
      const payload = utf8(`client ${i}`);
      assert.deepEqual(await echoRoundTrip(conn, payload), payload);
    } finally {
      conn.close();
    }
  }
  await more?.();
  // Stopped before a thread reads its last client's end, that client would
  // be "closed at shutdown": wait for every "left" line first.
  await eventually(
    () =>
      running.stdout.lines.filter((l) => / left after /.test(l)).length ===
        count,
    `${count} "left" lines`,
  );
  const done = await running.stop();
  assert.equal(done.code, 0);
  assert.equal(done.stderr, "");
  const clientLines = done.stdout.split("\n").filter((l) =>
    l.startsWith(`${program}: [`)
  );
  assert.equal(clientLines.length, 2 * count, done.stdout);
  const threads = new Set<string>();
  const whole = new RegExp(
    `^${program}: \\[([12])\\] 127\\.0\\.0\\.1:\\d+ (connected|left after \\d+ bytes echoed)$`,
  );
  for (const line of clientLines) {
    const match = line.match(whole);
    assert.ok(match, `malformed line: ${JSON.stringify(line)}`);
    threads.add(match[1]);
  }
  assert.deepEqual([...threads].sort(), ["1", "2"]);
  return done;
}
