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
  firstDifference,
  IPV4,
  patternBytes,
  readToEnd,
  resetAfterEcho,
  sameBytes,
  type Server,
  shownAddress,
  startServer,
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
