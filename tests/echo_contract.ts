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
  connect,
  echoRoundTrip,
  firstDifference,
  patternBytes,
  readToEnd,
  sameBytes,
  startServer,
  testBothFamilies,
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
