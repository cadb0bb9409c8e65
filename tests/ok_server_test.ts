/**
 * ok_server.ts against real sockets: the "OK / fin" server of sheet 001
 * (its second, select-based server, and its first with --one-client), with
 * the bugs the sheet admits fixed, started exactly as its task in deno.json
 * runs it; line clients and the sheet's unframed client. Its pure pieces
 * (the message splitter, option parsing) are tested in-process at the end.
 */

import assert from "node:assert/strict";
import {
  Child,
  closeQuietly,
  concat,
  connect,
  escapeRegExp,
  FAMILIES,
  type Family,
  IPV4,
  IPV6,
  ptyMissing,
  readExactly,
  readToEnd,
  resetAfterEcho,
  ROOT,
  rssBytes,
  runScript,
  type Server,
  shownAddress,
  sleep,
  startServer,
  stillPending,
  taskFlags,
  testBothFamilies,
  text,
  utf8,
  within,
  writeAll,
} from "./helpers.ts";
import { assertNoStackTrace, testServerCommandLine } from "./server_cli.ts";
import { testLessonLanguages } from "./lesson_lang.ts";
import { testNoDelay } from "./sockopt.ts";

const SCRIPT = "ok_server.ts";
const OK = "OK\n";

testServerCommandLine({
  script: SCRIPT,
  async probe(server) {
    const conn = await connect(IPV4, server.port);
    try {
      await writeAll(conn, utf8("copied and run alone\n"));
      assert.equal(text(await readExactly(conn, 3)), OK);
    } finally {
      conn.close();
    }
  },
});

testLessonLanguages({
  script: SCRIPT,
  left: ["after 1 message", "après 1 message"],
  reply: "OK\n",
});

// ---------------------------------------------------------------------------
// Helpers of this file

/** The line the server prints for one message. */
function messageLine(conn: Deno.TcpConn, message: string): string {
  return `ok_server: ${shownAddress(conn.localAddr)}: ${message}`;
}

/** Sends `bytes` and reads exactly `count` OK lines back. */
async function expectOKs(
  conn: Deno.TcpConn,
  bytes: Uint8Array | string,
  count: number,
): Promise<void> {
  await writeAll(conn, typeof bytes === "string" ? utf8(bytes) : bytes);
  assert.equal(
    text(await readExactly(conn, OK.length * count)),
    OK.repeat(count),
  );
}

/** Waits until the server has printed exactly `line`. */
function waitForLine(server: Server, line: string): Promise<string> {
  return server.stdout.waitFor(new RegExp(`^${escapeRegExp(line)}$`));
}

/** Resolves when a connection to the port is refused: nothing listens. */
async function refused(family: Family, port: number): Promise<boolean> {
  try {
    const conn = await Deno.connect({ hostname: family.host, port });
    conn.close();
    return false;
  } catch (err) {
    return err instanceof Deno.errors.ConnectionRefused;
  }
}

// ---------------------------------------------------------------------------
// Command line, listening and logging

Deno.test("--help: port 12800, --max-line 65536, and that any client can stop it with fin", async () => {
  await using child = runScript(SCRIPT, ["--help"]);
  const done = await child.finished();
  assert.equal(done.code, 0);
  assert.match(done.stdout, /^Usage: deno run -N ok_server\.ts \[options\]$/m);
  assert.match(done.stdout, /--port N .*\(default 12800\)$/m);
  assert.match(done.stdout, /\(default 65536\)$/m);
  assert.match(done.stdout, /"fin" from ANY client stops the server/);
  assert.match(done.stdout, /^ {2}--one-client /m);
  assert.match(done.stdout, /A message is a line/);
  assert.match(
    done.stdout,
    /before a\s+200 ms pause is a message, answered "OK" with no newline/,
  );
  const source = await Deno.readTextFile(new URL(SCRIPT, ROOT));
  assert.match(source, /ANY client can stop this server by sending `fin`/);
});

for (const bad of ["0", "-1", "abc", "16777217", "1e3"]) {
  Deno.test(`ok_server: --max-line ${bad} is a usage error, exit 2`, async () => {
    await using child = runScript(SCRIPT, [`--max-line=${bad}`]);
    const done = await child.finished();
    assert.equal(done.code, 2);
    assert.equal(
      done.stderr.split("\n")[0],
      `ok_server: Invalid --max-line "${bad}": expected a number of bytes from 1 to 16777216`,
    );
    assertNoStackTrace(done.stderr);
  });
}

Deno.test("ok_server: LANG=fr_FR.UTF-8: --max-line's limit and default are grouped as French writes them (16 777 216, 65 536)", async () => {
  await using child = runScript(SCRIPT, ["--max-line", "x"], {
    env: { LANG: "fr_FR.UTF-8", LC_ALL: "fr_FR.UTF-8" },
  });
  const done = await child.finished();
  assert.equal(done.code, 2);
  const grouped = (16777216).toLocaleString("fr-FR"); // narrow no-break spaces
  assert.equal(
    done.stderr.split("\n")[0],
    `ok_server\u00a0: --max-line « x » invalide\u00a0: un nombre d'octets de 1 à ${grouped} attendu`,
  );
  assert.equal(grouped.replace(/\D/g, ""), "16777216");
  assert.notEqual(grouped, "16777216");
  // --help's default, too: 65 536.
  await using help = runScript(SCRIPT, ["--help"], {
    env: { LANG: "fr_FR.UTF-8", LC_ALL: "fr_FR.UTF-8" },
  });
  const shown = await help.finished();
  assert.ok(
    shown.stdout.includes(
      `est fermé (défaut ${(65536).toLocaleString("fr-FR")})\n`,
    ),
    shown.stdout,
  );
});

Deno.test("ready line gives the real port; IPv4 and IPv6 on that one port", async () => {
  await using server = await startServer(SCRIPT);
  assert.match(
    server.readyLine,
    /^ok_server: listening on \[::\]:\d+ \(IPv4 and IPv6\)$/,
  );
  assert.notEqual(server.port, 0);
  for (const family of FAMILIES.filter((f) => !f.missing)) {
    const conn = await connect(family, server.port);
    try {
      await expectOKs(conn, `over ${family.name}\n`, 1);
    } finally {
      conn.close();
    }
  }
});

testBothFamilies(
  "prints each message with its sender, answers OK, logs arrival and departure",
  async (family) => {
    await using server = await startServer(SCRIPT);
    const conn = await connect(family, server.port);
    const peer = shownAddress(conn.localAddr);
    assert.equal(
      peer.startsWith(family.name === "IPv4" ? "127.0.0.1:" : "[::1]:"),
      true,
    );
    try {
      await expectOKs(conn, "bonjour\n", 1);
      await expectOKs(conn, "ça va ?\n", 1);
    } finally {
      conn.close();
    }
    await waitForLine(server, `ok_server: ${peer} left after 2 messages`);
    const done = await server.stop();
    assert.equal(done.code, 0);
    assert.deepEqual(done.stdout.split("\n").slice(1), [
      `ok_server: ${peer} connected`,
      `ok_server: ${peer}: bonjour`,
      `ok_server: ${peer}: ça va ?`,
      `ok_server: ${peer} left after 2 messages`,
      "ok_server: stopped by SIGINT: 1 client, 2 messages",
    ]);
    assert.doesNotMatch(done.stdout, /::ffff:/);
    assert.equal(done.stderr, "");
  },
);

Deno.test("--quiet leaves only the ready line and the summary", async () => {
  await using server = await startServer(SCRIPT, ["--quiet"]);
  const conn = await connect(IPV4, server.port);
  try {
    await expectOKs(conn, "chut\n", 1);
  } finally {
    conn.close();
  }
  const done = await server.stop("SIGTERM");
  assert.equal(done.code, 0);
  const lines = done.stdout.trimEnd().split("\n");
  assert.equal(lines.length, 2, done.stdout);
  assert.equal(
    lines[1],
    "ok_server: stopped by SIGTERM: 1 client, 1 message",
  );
});

testNoDelay(SCRIPT, {
  clients: 2,
  exchange: (conn) => expectOKs(conn, "n\n", 1),
});

// ---------------------------------------------------------------------------
// Framing: messages are lines, whatever TCP does with them

Deno.test("two messages in one write: two messages, two OKs", async () => {
  await using server = await startServer(SCRIPT);
  const conn = await connect(IPV4, server.port);
  try {
    await expectOKs(conn, "un\ndeux\n", 2);
    await waitForLine(server, messageLine(conn, "deux"));
    assert.ok(server.stdout.lines.includes(messageLine(conn, "un")));
  } finally {
    conn.close();
  }
});

Deno.test("a message split across reads: the server waits for its end", async () => {
  await using server = await startServer(SCRIPT);
  const conn = await connect(IPV4, server.port);
  try {
    await expectOKs(conn, "premier\nbon", 1);
    await expectOKs(conn, "jour\n", 1);
    await waitForLine(server, messageLine(conn, "bonjour"));
    assert.ok(!server.stdout.lines.includes(messageLine(conn, "bon")));
    assert.ok(!server.stdout.lines.includes(messageLine(conn, "jour")));
  } finally {
    conn.close();
  }
});

Deno.test("CRLF is tolerated: the \\r is not part of the message", async () => {
  await using server = await startServer(SCRIPT);
  const conn = await connect(IPV4, server.port);
  try {
    await expectOKs(conn, "salut\r\nbis\n", 2);
    await waitForLine(server, messageLine(conn, "bis"));
    assert.ok(server.stdout.lines.includes(messageLine(conn, "salut")));
  } finally {
    conn.close();
  }
});

Deno.test("an empty line is a message and gets its OK", async () => {
  await using server = await startServer(SCRIPT);
  const conn = await connect(IPV4, server.port);
  try {
    await expectOKs(conn, "\n\r\n", 2);
  } finally {
    conn.close();
  }
  const done = await server.stop();
  assert.match(done.stdout, /: 1 client, 2 messages$/m);
});

Deno.test("an unterminated last message before the client closes still counts", async () => {
  await using server = await startServer(SCRIPT);
  const conn = await connect(IPV4, server.port);
  try {
    await writeAll(conn, utf8("avant\ndernier"));
    await conn.closeWrite();
    assert.equal(text(await readToEnd(conn)), OK + OK);
    await waitForLine(
      server,
      `ok_server: ${shownAddress(conn.localAddr)} left after 2 messages`,
    );
    assert.ok(server.stdout.lines.includes(messageLine(conn, "dernier")));
  } finally {
    conn.close();
  }
});

// ---------------------------------------------------------------------------
// The sheet's unframed client: no newline, one answer per message

/** The sheet's `b"OK"`: the reply to a message that ended with a pause. */
const BARE_OK = "OK";

testBothFamilies(
  "the sheet's unframed client: a bare OK per message, each logged alone, fin without newline stops the server",
  async (family) => {
    await using server = await startServer(SCRIPT);
    const conn = await connect(family, server.port);
    const peer = shownAddress(conn.localAddr);
    try {
      // As the sheet's client: send, then wait for the answer.
      for (const message of ["bonjour", "ça va ?"]) {
        await writeAll(conn, utf8(message));
        assert.equal(text(await readExactly(conn, BARE_OK.length)), BARE_OK);
      }
      await writeAll(conn, utf8("fin"));
      // Everything until the server closes: a newline anywhere in the
      // replies would show here.
      assert.equal(text(await readToEnd(conn)), BARE_OK);
      const done = await server.finished();
      assert.equal(done.code, 0);
      assert.equal(done.stderr, "");
      assert.deepEqual(done.stdout.split("\n").slice(1), [
        `ok_server: ${peer} connected`,
        `ok_server: ${peer}: bonjour`,
        `ok_server: ${peer}: ça va ?`,
        `ok_server: ${peer}: fin`,
        `ok_server: ${peer} sent "fin" after 3 messages`,
        `ok_server: stopped by "fin" from ${peer}: 1 client, 3 messages`,
      ]);
    } finally {
      conn.close();
    }
  },
);

Deno.test("unframed final, fine, FIN do not stop it; a later line makes it a line client", async () => {
  await using server = await startServer(SCRIPT);
  const conn = await connect(IPV4, server.port);
  try {
    for (const message of ["final", "fine", "FIN"]) {
      await writeAll(conn, utf8(message));
      assert.equal(text(await readExactly(conn, BARE_OK.length)), BARE_OK);
    }
    await expectOKs(conn, "une ligne\n", 1);
  } finally {
    conn.close();
  }
  const done = await server.stop();
  assert.equal(done.code, 0);
  assert.match(done.stdout, /: 1 client, 4 messages$/);
});

Deno.test("a line client: a line in 30 one-byte segments is one message, one OK", async () => {
  await using server = await startServer(SCRIPT);
  const conn = await connect(IPV4, server.port);
  try {
    conn.setNoDelay(true); // each write its own segment
    await expectOKs(conn, "premier\n", 1);
    const line = utf8("trente octets, un par segment\n");
    for (const byte of line) {
      await writeAll(conn, Uint8Array.of(byte));
      await sleep(2); // give the server a read per byte
    }
    assert.equal(text(await readExactly(conn, OK.length)), OK);
    await waitForLine(
      server,
      messageLine(conn, "trente octets, un par segment"),
    );
    await expectOKs(conn, "dernier\n", 1);
  } finally {
    conn.close();
  }
  const done = await server.stop();
  assert.match(done.stdout, /: 1 client, 3 messages$/);
});

testBothFamilies(
  "a client that sent a newline then pauses mid-line gets no OK until the newline",
  async (family) => {
    await using server = await startServer(SCRIPT);
    const conn = await connect(family, server.port);
    try {
      await expectOKs(conn, "bonjour\n", 1);
      await writeAll(conn, utf8("je réfléchis"));
      const reply = readExactly(conn, OK.length);
      // Several times the unframed pause: a line client is not unframed.
      assert.ok(await stillPending(reply, 1000), "an OK before the newline");
      await writeAll(conn, utf8(" encore\n"));
      assert.equal(text(await reply), OK);
      await waitForLine(server, messageLine(conn, "je réfléchis encore"));
    } finally {
      conn.close();
    }
  },
);

Deno.test("Latin-1 bytes, from a line client and from an unframed one: OK each, shown as �", async () => {
  await using server = await startServer(SCRIPT);
  const lines = await connect(IPV4, server.port);
  const unframed = await connect(IPV4, server.port);
  try {
    // "café" and "où" in Latin-1: E9 and F9 are not UTF-8.
    await expectOKs(lines, Uint8Array.of(0x63, 0x61, 0x66, 0xe9, 0x0a), 1);
    await writeAll(unframed, Uint8Array.of(0x6f, 0xf9));
    assert.equal(text(await readExactly(unframed, BARE_OK.length)), BARE_OK);
    await waitForLine(server, messageLine(lines, "caf\uFFFD"));
    await waitForLine(server, messageLine(unframed, "o\uFFFD"));
    await expectOKs(lines, "toujours là\n", 1);
  } finally {
    lines.close();
    unframed.close();
  }
  assert.equal(server.stderr.text, "");
});

// ---------------------------------------------------------------------------
// UTF-8: never crashes, decodes what it can

Deno.test("an accent split across two reads is decoded whole", async () => {
  await using server = await startServer(SCRIPT);
  const conn = await connect(IPV4, server.port);
  try {
    // "é" is C3 A9: the OK for "a" proves the server has read the C3 alone.
    await expectOKs(conn, concat([utf8("a\ncaf"), Uint8Array.of(0xc3)]), 1);
    await expectOKs(conn, Uint8Array.of(0xa9, 0x0a), 1);
    await waitForLine(server, messageLine(conn, "café"));
  } finally {
    conn.close();
  }
  assert.equal(server.stderr.text, "");
});

Deno.test("invalid UTF-8 prints replacement characters, never crashes", async () => {
  await using server = await startServer(SCRIPT);
  const conn = await connect(IPV4, server.port);
  try {
    const invalid = Uint8Array.of(0xff, 0xfe, 0x61, 0xc3, 0x28, 0x0a); // ÿþaÃ(
    const cut = concat([utf8("caf"), Uint8Array.of(0xc3, 0x0a)]); // é cut short
    await expectOKs(conn, concat([invalid, cut]), 2);
    await expectOKs(conn, "encore là\n", 1);
    await waitForLine(server, messageLine(conn, "encore là"));
    const lines = server.stdout.lines;
    assert.ok(
      lines.includes(messageLine(conn, "\uFFFD\uFFFDa\uFFFD(")),
      lines.join("\n"),
    );
    assert.ok(lines.includes(messageLine(conn, "caf\uFFFD")), lines.join("\n"));
  } finally {
    conn.close();
  }
  assert.equal(server.stderr.text, "");
});

Deno.test("control characters are shown as \\xNN, not sent to the terminal", async () => {
  await using server = await startServer(SCRIPT);
  const conn = await connect(IPV4, server.port);
  try {
    await expectOKs(conn, "a\x1b[31mrouge\rb\tc\x00\x7f\u009b\n", 1);
    await waitForLine(
      server,
      messageLine(conn, "a\\x1b[31mrouge\\x0db\tc\\x00\\x7f\\x9b"),
    );
  } finally {
    conn.close();
  }
});

// ---------------------------------------------------------------------------
// "fin"

testBothFamilies(
  "fin from any client: its OK, every client closed, listener closed, exit 0",
  async (family) => {
    await using server = await startServer(SCRIPT);
    const other = family === IPV4 ? IPV6 : IPV4;
    const talker = await connect(other.missing ? family : other, server.port);
    const idle = await connect(family, server.port);
    const stopper = await connect(family, server.port);
    try {
      await expectOKs(talker, "bonjour\n", 1);
      await writeAll(stopper, utf8("fin\n"));
      assert.equal(text(await readToEnd(stopper)), OK);
      assert.equal(text(await readToEnd(talker)), "");
      assert.equal(text(await readToEnd(idle)), "");
      const done = await server.finished();
      assert.equal(done.code, 0);
      assert.equal(done.stderr, "");
      const lines = done.stdout.split("\n");
      const summary = `ok_server: stopped by "fin" from ${
        shownAddress(stopper.localAddr)
      }: 3 clients, 2 messages`;
      assert.equal(lines.at(-1), summary);
      assert.ok(lines.includes(messageLine(stopper, "fin")));
      assert.ok(
        lines.includes(
          `ok_server: ${
            shownAddress(stopper.localAddr)
          } sent "fin" after 1 message`,
        ),
      );
      for (const conn of [talker, idle]) {
        assert.ok(
          lines.includes(
            `ok_server: ${
              shownAddress(conn.localAddr)
            } was closed at shutdown after ${
              conn === talker ? "1 message" : "0 messages"
            }`,
          ),
          done.stdout,
        );
      }
      assert.ok(await refused(family, server.port), "still listening");
    } finally {
      talker.close();
      idle.close();
      stopper.close();
    }
  },
);

for (
  const [name, bytes, closeWrite, reply] of [
    ["fin\\r\\n", "fin\r\n", false, OK],
    ["fin without a line ending, then end of input", "fin", true, "OK"],
    ["fin without a line ending, then a pause", "fin", false, "OK"],
  ] as const
) {
  Deno.test(`${name} stops the server too`, async () => {
    await using server = await startServer(SCRIPT);
    const conn = await connect(IPV4, server.port);
    try {
      await writeAll(conn, utf8(bytes));
      if (closeWrite) await conn.closeWrite();
      assert.equal(text(await readToEnd(conn)), reply);
      const done = await server.finished();
      assert.equal(done.code, 0);
      assert.match(
        done.stdout,
        /stopped by "fin" from .*: 1 client, 1 message$/,
      );
    } finally {
      conn.close();
    }
  });
}

Deno.test('final, fine, FIN, " fin", "fin " do not stop it', async () => {
  await using server = await startServer(SCRIPT);
  const conn = await connect(IPV4, server.port);
  try {
    await expectOKs(conn, "final\nfine\nFIN\n fin\nfin \n", 5);
  } finally {
    conn.close();
  }
  const next = await connect(IPV4, server.port);
  try {
    await expectOKs(next, "toujours là\n", 1);
  } finally {
    next.close();
  }
  await waitForLine(
    server,
    `ok_server: ${shownAddress(next.localAddr)} left after 1 message`,
  );
  const done = await server.stop();
  assert.equal(done.code, 0);
  assert.match(
    done.stdout,
    /^ok_server: stopped by SIGINT: 2 clients, 6 messages$/m,
  );
});

Deno.test("lines after fin in the same read are neither printed nor answered", async () => {
  await using server = await startServer(SCRIPT);
  const conn = await connect(IPV4, server.port);
  try {
    await writeAll(conn, utf8("avant\nfin\naprès\n"));
    assert.equal(text(await readToEnd(conn)), OK + OK);
    const done = await server.finished();
    assert.equal(done.code, 0);
    assert.doesNotMatch(done.stdout, /après/);
    assert.match(done.stdout, /: 1 client, 2 messages$/);
  } finally {
    conn.close();
  }
});

// ---------------------------------------------------------------------------
// Many clients, one thread

Deno.test("50 clients at once, messages split and interleaved: each gets its OKs", async () => {
  await using server = await startServer(SCRIPT);
  const families = FAMILIES.filter((f) => !f.missing);
  const conns: Deno.TcpConn[] = [];
  try {
    for (let i = 0; i < 50; i++) {
      conns.push(await connect(families[i % families.length], server.port));
    }
    const ROUNDS = 5;
    const message = (i: number, r: number) => `client ${i} message ${r} é`;
    for (let r = 0; r < ROUNDS; r++) {
      // Every client sends the first half of its message, then every client
      // the second half: the server sees 100 pieces from 50 sockets in turn.
      const halves = conns.map((_, i) => {
        const bytes = utf8(`${message(i, r)}\n`);
        const cut = bytes.length - 2; // inside "é"
        return [bytes.subarray(0, cut), bytes.subarray(cut)];
      });
      for (const [i, conn] of conns.entries()) {
        await writeAll(conn, halves[i][0]);
      }
      for (const [i, conn] of conns.entries()) {
        await writeAll(conn, halves[i][1]);
      }
    }
    const replies = await Promise.all(
      conns.map((conn) => readExactly(conn, OK.length * ROUNDS)),
    );
    for (const reply of replies) assert.equal(text(reply), OK.repeat(ROUNDS));
    for (const conn of conns) conn.close();
    await server.stdout.waitFor(/^ok_server: .* left after 5 messages$/);
    for (const conn of conns) {
      await waitForLine(
        server,
        `ok_server: ${shownAddress(conn.localAddr)} left after 5 messages`,
      );
    }
    for (const [i, conn] of conns.entries()) {
      const prefix = `ok_server: ${shownAddress(conn.localAddr)}: `;
      const printed = server.stdout.lines.filter((l) => l.startsWith(prefix));
      assert.deepEqual(
        printed,
        Array.from({ length: ROUNDS }, (_, r) => prefix + message(i, r)),
      );
    }
  } finally {
    for (const conn of conns) closeQuietly(conn);
  }
  assert.equal(server.stderr.text, "");
});

testBothFamilies(
  "a client reset beside a live one removes that client only",
  async (family) => {
    await using server = await startServer(SCRIPT);
    const live = await connect(family, server.port);
    try {
      await expectOKs(live, "avant\n", 1);
      await resetAfterEcho(family, server.port, utf8("x\n"));
      await server.stdout.waitFor(/ reset the connection after 1 message$/);
      await expectOKs(live, "après\n", 1);
    } finally {
      live.close();
    }
    const done = await server.stop();
    assert.equal(done.code, 0);
    assert.match(done.stdout, /: 2 clients, 3 messages$/);
    assert.equal(done.stderr, "");
  },
);

Deno.test("a client killed mid-line is removed; the others go on", async () => {
  await using server = await startServer(SCRIPT);
  const live = await connect(IPV4, server.port);
  try {
    await expectOKs(live, "avant\n", 1);
    // A real process, killed with SIGKILL while its line is unfinished.
    await using victim = new Deno.Command(Deno.execPath(), {
      args: [
        "eval",
        `const c = await Deno.connect({hostname: "127.0.0.1", port: ${server.port}});
         await c.write(new TextEncoder().encode("a\\nunfinished"));
         await c.read(new Uint8Array(3)); console.log("sent"); await new Promise(() => {});`,
      ],
      stdout: "piped",
      stderr: "null",
    }).spawn();
    const reader = victim.stdout.getReader();
    assert.equal(
      text((await within(reader.read(), "the victim to send")).value!),
      "sent\n",
    );
    reader.releaseLock();
    victim.kill("SIGKILL");
    await victim.status;
    await victim.stdout.cancel();
    await server.stdout.waitFor(/ left after 2 messages$/);
    await expectOKs(live, "après\n", 1);
  } finally {
    live.close();
  }
  assert.equal(server.stderr.text, "");
});

/** Sends empty lines (each byte a message asking for a 3-byte OK) and never
 * reads, until a write stays blocked for a second: the server has stopped
 * reading from us. Returns how many 256 KiB chunks went through and the
 * blocked write (it fails once `conn` is closed), or null for `blocked` when
 * the server took all `limit` chunks. */
async function sendUntilBlocked(
  conn: Deno.TcpConn,
  limit: number,
): Promise<{ sent: number; blocked: Promise<void> | null }> {
  const chunk = utf8("\n".repeat(256 * 1024));
  for (let sent = 0; sent < limit; sent++) {
    const write = writeAll(conn, chunk);
    if (await stillPending(write, 1000)) {
      return { sent, blocked: write.catch(() => {}) };
    }
    await write;
  }
  return { sent: limit, blocked: null };
}

Deno.test("a client that stops reading delays no one else, and cannot grow the server's memory", async () => {
  await using server = await startServer(SCRIPT, ["--quiet"]);
  const before = rssBytes(server.pid);
  const greedy = await connect(IPV4, server.port);
  const polite = await connect(IPV4, server.port);
  const limit = 128; // chunks we are ready to send if the server keeps taking
  let blocked: Promise<void> | null = null;
  try {
    const result = await sendUntilBlocked(greedy, limit);
    blocked = result.blocked;
    assert.ok(blocked, `the server took all ${limit * 256} KiB unanswered`);
    // Blocked on the greedy client's OKs, the server still answers others.
    await expectOKs(polite, "et moi ?\n", 1);
    // Millions of messages leave the server's JavaScript heap larger (about
    // 30 MiB measured: garbage V8 collects at its leisure); a server that
    // did not wait for its writes would also hold 3 bytes of OK per byte
    // sent, for good (118 MiB measured after 17 MiB sent).
    const grown = rssBytes(server.pid) - before;
    assert.ok(
      grown < 64 * 1024 * 1024,
      `server RSS grew by ${grown >> 20} MiB after ${result.sent * 256} KiB`,
    );
  } finally {
    greedy.close();
    await blocked;
  }
  try {
    await expectOKs(polite, "encore\n", 1);
  } finally {
    polite.close();
  }
});

Deno.test("fin while another client's OKs are blocked: everyone closed, exit 0, no warning", async () => {
  await using server = await startServer(SCRIPT, ["--quiet"]);
  const greedy = await connect(IPV4, server.port);
  const stopper = await connect(IPV4, server.port);
  let blocked: Promise<void> | null = null;
  try {
    blocked = (await sendUntilBlocked(greedy, 128)).blocked;
    assert.ok(blocked, "the server never stopped reading the greedy client");
    await writeAll(stopper, utf8("fin\n"));
    assert.equal(text(await readToEnd(stopper)), OK);
    const done = await server.finished();
    assert.equal(done.code, 0);
    assert.equal(done.stderr, "");
    assert.match(
      done.stdout,
      /stopped by "fin" from 127\.0\.0\.1:\d+: 2 clients/,
    );
  } finally {
    greedy.close();
    stopper.close();
    await blocked;
  }
});

// ---------------------------------------------------------------------------
// Too-long lines

const TOO_LONG = "ERROR line too long (max 65536 bytes)\n";

Deno.test("a line over --max-line (default 64 KiB): an error line, that client closed, others unaffected", async () => {
  await using server = await startServer(SCRIPT);
  const other = await connect(IPV4, server.port);
  const long = await connect(IPV4, server.port);
  try {
    await expectOKs(other, "avant\n", 1);
    // Exactly the limit is fine, the line ending not counted.
    await expectOKs(long, `${"a".repeat(65536)}\r\n`, 1);
    const [, reply] = await Promise.all([
      writeAll(long, utf8(`court\n${"b".repeat(65537)}\n`)),
      readToEnd(long),
    ]);
    assert.equal(text(reply), OK + TOO_LONG);
    long.close(); // ends the server's lingering read at once
    await server.stdout.waitFor(
      new RegExp(
        `^ok_server: ${
          escapeRegExp(shownAddress(long.localAddr))
        } sent a line longer than 65536 bytes and was closed after 2 messages$`,
      ),
    );
    await expectOKs(other, "après\n", 1);
  } finally {
    other.close();
    closeQuietly(long);
  }
  assert.equal(server.stderr.text, "");
});

Deno.test("an endless line is cut off at --max-line without waiting for its end", async () => {
  await using server = await startServer(SCRIPT, ["--max-line", "1000"]);
  const conn = await connect(IPV4, server.port);
  try {
    await expectOKs(conn, `${"a".repeat(1000)}\n`, 1);
    await writeAll(conn, utf8("x".repeat(1002))); // and no "\n", ever
    assert.equal(
      text(await readToEnd(conn)),
      "ERROR line too long (max 1000 bytes)\n",
    );
  } finally {
    conn.close();
  }
});

Deno.test("a 16 MiB line sent before reading: the error line, not a reset; memory stays bounded", async () => {
  await using server = await startServer(SCRIPT);
  const before = rssBytes(server.pid);
  const conn = await connect(IPV4, server.port);
  try {
    // Far more than the kernel buffers hold: the server must keep reading
    // (and dropping) after its error line, or this write fails with a reset
    // and the error line may be lost with it.
    const chunk = utf8("y".repeat(1024 * 1024));
    for (let i = 0; i < 16; i++) await writeAll(conn, chunk);
    await writeAll(conn, utf8("\n"));
    assert.equal(text(await readToEnd(conn)), TOO_LONG);
  } finally {
    conn.close();
  }
  const grown = rssBytes(server.pid) - before;
  assert.ok(grown < 8 * 1024 * 1024, `server RSS grew by ${grown >> 20} MiB`);
  assert.equal(server.stderr.text, "");
});

// ---------------------------------------------------------------------------
// Shutdown by signal

for (const signal of ["SIGINT", "SIGTERM"] as const) {
  Deno.test(`${signal} closes every client, prints the summary, exits 0`, async () => {
    await using server = await startServer(SCRIPT);
    const a = await connect(IPV4, server.port);
    const b = await connect(IPV4, server.port);
    try {
      await expectOKs(a, "un\n", 1);
      await expectOKs(b, "deux\ntrois\n", 2);
      const done = await server.stop(signal);
      assert.equal(done.code, 0);
      assert.equal(
        done.stdout.split("\n").at(-1),
        `ok_server: stopped by ${signal}: 2 clients, 3 messages`,
      );
      assert.equal(text(await readToEnd(a)), "");
      assert.equal(text(await readToEnd(b)), "");
    } finally {
      a.close();
      b.close();
    }
  });
}

// ---------------------------------------------------------------------------
// --one-client: the sheet's first server

testBothFamilies(
  "--one-client: a second client connects but gets no OK; the first one's fin stops the server, exit 0",
  async (family) => {
    await using server = await startServer(SCRIPT, ["--one-client"]);
    const first = await connect(family, server.port);
    let second: Deno.TcpConn | undefined;
    let secondReply: Promise<unknown> | undefined;
    try {
      await expectOKs(first, "un\n", 1);
      // The handshake completes in the kernel's backlog: connect() succeeds.
      second = await connect(family, server.port);
      await writeAll(second, utf8("et moi ?\n"));
      const buffer = new Uint8Array(16);
      secondReply = second.read(buffer).then(
        (n) => text(buffer.subarray(0, n ?? 0)),
        () => "", // reset when the server exits: no OK either
      );
      assert.ok(await stillPending(secondReply, 500), "the second got bytes");
      // The first is still served meanwhile.
      await expectOKs(first, "deux\n", 1);
      assert.ok(await stillPending(secondReply, 100), "the second got bytes");
      await writeAll(first, utf8("fin\n"));
      assert.equal(text(await readToEnd(first)), OK);
      const done = await server.finished();
      assert.equal(done.code, 0);
      assert.equal(done.stderr, "");
      const peer = shownAddress(first.localAddr);
      assert.equal(
        done.stdout.split("\n").at(-1),
        `ok_server: stopped by "fin" from ${peer}: 1 client, 3 messages`,
      );
      assert.doesNotMatch(done.stdout, /et moi/);
      assert.equal(
        done.stdout.split("\n").filter((l) => l.endsWith(" connected")).length,
        1,
      );
      assert.equal(await within(secondReply, "the second's read"), "");
    } finally {
      first.close();
      second?.close();
      await secondReply;
    }
  },
);

Deno.test("--one-client: the first client leaving stops the server too, exit 0", async () => {
  await using server = await startServer(SCRIPT, ["--one-client"]);
  const conn = await connect(IPV4, server.port);
  const peer = shownAddress(conn.localAddr);
  try {
    await expectOKs(conn, "au revoir\n", 1);
  } finally {
    conn.close();
  }
  const done = await server.finished();
  assert.equal(done.code, 0);
  assert.equal(done.stderr, "");
  assert.deepEqual(done.stdout.split("\n").slice(1), [
    `ok_server: ${peer} connected`,
    `ok_server: ${peer}: au revoir`,
    `ok_server: ${peer} left after 1 message`,
    `ok_server: stopped by ${peer} leaving: 1 client, 1 message`,
  ]);
});

Deno.test("--one-client with the sheet's unframed client: bare OKs, fin stops it", async () => {
  await using server = await startServer(SCRIPT, ["--one-client"]);
  const conn = await connect(IPV6.missing ? IPV4 : IPV6, server.port);
  try {
    await writeAll(conn, utf8("salut"));
    assert.equal(text(await readExactly(conn, BARE_OK.length)), BARE_OK);
    await writeAll(conn, utf8("fin"));
    assert.equal(text(await readToEnd(conn)), BARE_OK);
  } finally {
    conn.close();
  }
  const done = await server.finished();
  assert.equal(done.code, 0);
  assert.match(done.stdout, /stopped by "fin" from .*: 1 client, 2 messages$/);
});

// ---------------------------------------------------------------------------
// client.ts against it

const clientMissing = await Deno.stat(new URL("client.ts", ROOT)).then(
  () => "",
  () => "client.ts not written yet",
);

Deno.test({
  name: clientMissing
    ? `client.ts: piped lines get OK each, the session ends after fin (ignored: ${clientMissing})`
    : "client.ts: piped lines get OK each, the session ends after fin",
  ignore: clientMissing !== "",
  async fn() {
    await using server = await startServer(SCRIPT);
    await using client = runScript(
      "client.ts",
      ["--host", "127.0.0.1", "--port", String(server.port)],
      { stdin: "bonjour\ncafé\nfin\nnever sent\n" },
    );
    const done = await client.finished();
    assert.equal(done.code, 0, done.stderr);
    assert.equal(done.stdout, "OK\nOK\nOK");
    const stopped = await server.finished();
    assert.equal(stopped.code, 0);
    assert.doesNotMatch(stopped.stdout, /never sent/);
    assert.match(stopped.stdout, /: café$/m);
    assert.match(
      stopped.stdout,
      /stopped by "fin" from 127\.0\.0\.1:\d+: 1 client, 3 messages$/,
    );
  },
});

const scriptMissing = clientMissing || ptyMissing;

Deno.test({
  name: scriptMissing
    ? `client.ts on a terminal: "> " prompt, OK after each line, ends after fin (ignored: ${scriptMissing})`
    : `client.ts on a terminal: "> " prompt, OK after each line, ends after fin`,
  ignore: scriptMissing !== "",
  async fn() {
    await using server = await startServer(SCRIPT);
    // script(1) runs the client on a pseudo-terminal, as a person would.
    const command = [
      Deno.execPath(),
      "run",
      ...taskFlags("client.ts"),
      new URL("client.ts", ROOT).pathname,
      "--host",
      "127.0.0.1",
      "--port",
      String(server.port),
    ].map((word) => `'${word.replaceAll("'", `'\\''`)}'`).join(" ");
    await using client = new Child("script", ["-qec", command, "/dev/null"], {
      stdin: "bonjour\nfin\n",
    });
    const done = await client.finished();
    assert.equal(done.code, 0, done.stdout);
    assert.match(done.stdout, /> OK\r?\n> OK\r?\n/);
    assert.equal((await server.finished()).code, 0);
  },
});

// ---------------------------------------------------------------------------
// In-process: the pure pieces

const okServer = await import("../ok_server.ts");

function split(maxLine = 100) {
  return new okServer.MessageSplitter(maxLine);
}

Deno.test("MessageSplitter: a line split over many pushes is one message", () => {
  const s = split();
  const bytes = utf8("bonjour à tous\r\n");
  for (const [i, byte] of bytes.entries()) {
    const got = s.push(Uint8Array.of(byte));
    assert.deepEqual(
      got.messages,
      i === bytes.length - 1 ? ["bonjour à tous"] : [],
    );
    assert.equal(got.tooLong, false);
  }
  assert.equal(s.lineClient, true);
});

Deno.test("MessageSplitter: two lines and a half in one push; the half waits", () => {
  const s = split();
  assert.deepEqual(s.push(utf8("un\ndeux\r\ntr")), {
    messages: ["un", "deux"],
    tooLong: false,
  });
  assert.equal(s.waitingForPause, false, "a line client never pauses");
  assert.deepEqual(s.pause(), { messages: [], tooLong: false });
  assert.deepEqual(s.push(utf8("ois\n")).messages, ["trois"]);
  assert.deepEqual(s.end(), { messages: [], tooLong: false });
});

Deno.test("MessageSplitter: unframed until the first newline; a pause ends its messages", () => {
  const s = split();
  assert.equal(s.waitingForPause, false, "nothing held yet");
  assert.deepEqual(s.push(utf8("bon")).messages, []);
  assert.deepEqual(s.push(utf8("jour")).messages, []);
  assert.equal(s.waitingForPause, true);
  assert.deepEqual(s.pause().messages, ["bonjour"]);
  assert.equal(s.waitingForPause, false);
  assert.equal(s.lineClient, false);
  assert.deepEqual(s.push(utf8("fin")).messages, []);
  assert.deepEqual(s.end().messages, ["fin"]);
  assert.equal(s.lineClient, false);
});

Deno.test("MessageSplitter: an empty pause or end is no message", () => {
  const s = split();
  assert.deepEqual(s.pause(), { messages: [], tooLong: false });
  assert.deepEqual(s.end(), { messages: [], tooLong: false });
  assert.deepEqual(s.push(utf8("\n")).messages, [""]);
});

Deno.test("MessageSplitter: Latin-1 and cut UTF-8 decode to U+FFFD; UTF-8 split across pushes is whole", () => {
  const s = split();
  assert.deepEqual(
    s.push(Uint8Array.of(0x63, 0x61, 0x66, 0xe9, 0x0a)).messages,
    ["caf\uFFFD"],
  );
  assert.deepEqual(s.push(Uint8Array.of(0x63, 0xc3)).messages, []);
  assert.deepEqual(s.push(Uint8Array.of(0xa9, 0x0a)).messages, ["c\u00e9"]);
  const unframed = split();
  unframed.push(Uint8Array.of(0x6f, 0xf9));
  assert.deepEqual(unframed.pause().messages, ["o\uFFFD"]);
});

Deno.test("MessageSplitter: the limit counts bytes without the line ending", () => {
  const s = split(4);
  assert.deepEqual(s.push(utf8("abcd\r\n")), {
    messages: ["abcd"],
    tooLong: false,
  });
  assert.deepEqual(s.push(utf8("ok\nabcde\nnot")), {
    messages: ["ok"],
    tooLong: true,
  });
  // An endless line is cut off before its end.
  assert.equal(split(4).push(utf8("abcdef")).tooLong, true);
  // An unframed message over the limit is too long at its pause.
  const unframed = split(4);
  assert.equal(unframed.push(utf8("abcde")).tooLong, false);
  assert.deepEqual(unframed.pause(), { messages: [], tooLong: true });
});

Deno.test("parseOptions: defaults, --max-line, --one-client", () => {
  assert.deepEqual(okServer.parseOptions([]), {
    host: "::",
    port: 12800,
    quiet: false,
    maxLine: 65536,
    oneClient: false,
  });
  assert.deepEqual(
    okServer.parseOptions([
      "--one-client",
      "--max-line=10",
      "--port",
      "0",
      "--host",
      "127.0.0.1",
    ]),
    {
      host: "127.0.0.1",
      port: 0,
      quiet: false,
      maxLine: 10,
      oneClient: true,
    },
  );
  assert.equal(okServer.parseMaxLine("16777216"), 16777216);
  for (const bad of ["0", "-1", "abc", "16777217", "1e3", ""]) {
    assert.throws(
      () => okServer.parseMaxLine(bad),
      new RegExp(`^Error: Invalid --max-line "${escapeRegExp(bad)}"`),
    );
  }
});

Deno.test("printable: control characters as \\xNN, tab and accents as sent", () => {
  assert.equal(
    okServer.printable("a\x1b[31mb\rc\td\x00\x7f\u009bé"),
    "a\\x1b[31mb\\x0dc\td\\x00\\x7f\\x9bé",
  );
});
