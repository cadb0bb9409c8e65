/**
 * select_echo.ts against real sockets: the one-thread, many-clients echo
 * server of sheet 000 §2.1, started exactly as its task in deno.json runs it.
 */

import assert from "node:assert/strict";
import { echoRoundTrip, startServer, utf8 } from "./helpers.ts";
import {
  echoProbe,
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
} from "./echo_contract.ts";
import { testServerCommandLine } from "./server_cli.ts";
import { testLessonLanguages } from "./lesson_lang.ts";
import { testNoDelay } from "./sockopt.ts";

const SCRIPT = "select_echo.ts";
const SERVER = { script: SCRIPT, title: "" };

testServerCommandLine({ script: SCRIPT, probe: echoProbe(2) });

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
    /^select_echo: listening on \[::\]:\d+ \(IPv4 and IPv6\)$/,
  );
  assert.notEqual(server.port, 0);
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

testEchoLogLines(SCRIPT);

// ---------------------------------------------------------------------------
// Echo

testEchoesBytes(SCRIPT);

testNoDelay(SCRIPT, { clients: 3 });

// ---------------------------------------------------------------------------
// Many clients at once

testSecondClientServed(SERVER);

// Over a client's buffer: several reads each.
testInterleavedClients(SERVER, 20_000);

testStreamingClients(SERVER);

// ---------------------------------------------------------------------------
// Clients that misbehave

testEchoSurvivesReset(SCRIPT);

testResetBeforeAccept(SERVER);

testSlowReader(SERVER);

// ---------------------------------------------------------------------------
// Out of file descriptors

testOutOfDescriptors(SERVER);
testOutOfDescriptorsInFrench(SERVER);

// ---------------------------------------------------------------------------
// Shutdown

testShutdownSignals(SERVER, {
  what: ", prints the summary, exits 0",
  summary: "3 clients, 9 bytes echoed",
});

Deno.test("select_echo exports its pure pieces: option parsing", async () => {
  const { parseOptions } = await import("../select_echo.ts");
  const options = parseOptions(["--port", "0", "--host", "::1", "--quiet"]);
  assert.deepEqual(options, { host: "::1", port: 0, quiet: true });
});
