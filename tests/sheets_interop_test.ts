/**
 * The sheets' own Python programs (bench/peers/, transcribed from the
 * sheets) talk to our scripts, both ways, unmodified:
 * - sheet 001's client ↔ ok_server.ts (unframed messages, `fin` ends both);
 * - client.ts --no-newline ↔ sheet 001's first server and select server;
 * - sheet 000 §1.3's echo client ↔ tcp_echo.ts.
 */

import assert from "node:assert/strict";
import {
  Child,
  type Finished,
  ROOT_DIR,
  runScript,
  type Server,
  startServer,
} from "./helpers.ts";

const peer = (file: string) => `${ROOT_DIR}bench/peers/${file}`;

/** A sheet 001 server on port 0, once it says which port it listens on. */
async function startSheetServer(file: string): Promise<Server> {
  const server = new Child("python3", [peer(file), "0"]) as Server;
  const ready = /sur le port (\d+)$/;
  try {
    server.port = Number(
      (await server.stdout.waitFor(ready)).match(ready)![1],
    );
  } catch (err) {
    await server[Symbol.asyncDispose]();
    throw err;
  }
  return server;
}

function describe(what: string, done: Finished): string {
  return `${what} exited ${done.code}\nstdout:\n${done.stdout}\nstderr:\n${done.stderr}`;
}

Deno.test("sheet 001's client ↔ ok_server.ts: OK to each unframed message, fin ends both", async () => {
  await using server = await startServer("ok_server.ts");
  await using client = new Child(
    "python3",
    [peer("sheet001_client.py"), String(server.port), "127.0.0.1"],
    { stdin: "bonjour\ncafé\nfin\n" },
  );
  const c = await client.finished();
  assert.equal(c.code, 0, describe("the sheet's client", c));
  assert.equal(
    c.stdout,
    `Connexion établie avec le serveur sur le port ${server.port}\n` +
      "> OK\n> OK\n> OK\nFermeture de la connexion",
  );
  const s = await server.finished();
  assert.equal(s.code, 0, describe("ok_server.ts", s));
  // Each message logged alone, not run together with the next.
  assert.match(s.stdout, /bonjour/);
  assert.match(s.stdout, /café/);
  assert.doesNotMatch(s.stdout, /bonjourcafé/);
});

for (const file of ["sheet001_server.py", "sheet001_server_select.py"]) {
  Deno.test(`client.ts --no-newline ↔ ${file}: three messages and fin, the sheet's server ends normally`, async () => {
    await using server = await startSheetServer(file);
    await using client = runScript(
      "client.ts",
      ["--no-newline", "--host", "127.0.0.1", "--port", String(server.port)],
      { stdin: "un\ndeux\ntrois\nfin\n" },
    );
    // "Well under a second per message": client.ts without --no-newline
    // waits a second of silence after each newline-less OK (4 s for these
    // four messages); this bound fails that, with room for a busy machine.
    const c = await client.finished(3_500);
    assert.equal(c.code, 0, describe("client.ts", c));
    assert.equal(c.stdout.match(/OK/g)?.length, 4, describe("client.ts", c));
    const s = await server.finished();
    assert.equal(s.code, 0, describe(file, s));
    assert.match(s.stdout, /un\n.*deux\n.*trois\n.*fin\n/s);
    assert.match(s.stdout, /\nFermeture (?:de la connexion|des connexions)$/);
    assert.equal(s.stderr, "");
  });
}

Deno.test("sheet 000 §1.3 echo client ↔ tcp_echo.ts: each line echoed, an empty line ends it", async () => {
  await using server = await startServer("tcp_echo.ts");
  await using client = new Child(
    "python3",
    [peer("sheet_tcp_client.py"), String(server.port), "::1"],
    { stdin: "hého\nbonjour à tous\n\nnot sent\n" },
  );
  const c = await client.finished();
  assert.equal(c.code, 0, describe("the sheet's echo client", c));
  // (The collected output has its last newline trimmed.)
  assert.equal(c.stdout, "hého\nbonjour à tous");
  // The server saw the client come and go, and still runs.
  await server.stdout.waitFor(/left after/);
  const s = await server.stop();
  assert.equal(s.code, 0, describe("tcp_echo.ts", s));
});
