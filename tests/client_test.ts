/**
 * client.ts against real servers: the line client of sheet 000 §1.3 and
 * sheet 001, started exactly as its task in deno.json runs it, with stdin
 * piped from the test (and once under a pseudo-terminal).
 *
 * Servers: the real tcp_echo.ts (and ok_server.ts when it is there), and
 * small servers written here when a test needs a server to misbehave on
 * cue: a reply in two pieces, a reply with no newline, a lost datagram.
 * UDP runs against the real udp_echo.ts, and against an in-test UDP socket
 * that loses datagrams on purpose.
 */

import assert from "node:assert/strict";
import net from "node:net";
import { fileURLToPath as fromFileUrl } from "node:url";
import {
  Child,
  closeQuietly,
  concat,
  copyAlone,
  type Family,
  headerRunLine,
  IPV4,
  IPV6,
  ptyMissing,
  ROOT,
  ROOT_DIR,
  sameBytes,
  scriptExists,
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
import { assertNoStackTrace, firstLine, testHeaderCard } from "./server_cli.ts";
import {
  concat as concatBytes,
  describeConnectError,
  describeDisconnect,
  howToRun,
  isStopWord,
  LineReader,
  type Options,
  parseOptions,
  replyEnd,
  splitLine,
  withNewline,
} from "../client.ts";

const SCRIPT = "client.ts";
const RUN_LINE = `deno run ${taskFlags(SCRIPT).join(" ")} ${SCRIPT}`;
const USAGE_START = `Usage: ${RUN_LINE} [options]`;

// ---------------------------------------------------------------------------
// Command line

Deno.test("client: --help prints the usage on stdout and exits 0", async () => {
  const done = await runClient(["--help"]);
  assert.equal(done.code, 0);
  assert.ok(text(done.stdout).startsWith(USAGE_START), text(done.stdout));
  assert.match(text(done.stdout), /--udp/);
  assert.match(text(done.stdout), /--no-newline/);
  assert.equal(done.stderr, "");
});

const INVALID_PORT = "expected a number from 0 to 65535";
const usageErrors: [string[], string][] = [
  [["--nope"], "Unknown option '--nope'"],
  [
    ["extra"],
    "Unexpected argument 'extra'. This command does not take positional arguments",
  ],
  [["--port"], "Option '--port <value>' argument missing"],
  [["--port", "70000"], `Invalid port "70000": ${INVALID_PORT}`],
  [["--port", "12ab"], `Invalid port "12ab": ${INVALID_PORT}`],
  [
    ["--port", "-5"],
    "Option '--port' argument is ambiguous. Did you forget to specify the option argument for '--port'? To specify an option argument starting with a dash use '--port=-XYZ'.",
  ],
  [["--port=-5"], `Invalid port "-5": ${INVALID_PORT}`],
  [
    ["--port", "0"],
    `Invalid port "0": the server's port is needed, from 1 to 65535`,
  ],
];
for (const [args, line] of usageErrors) {
  Deno.test(`client: ${args.join(" ")} is a usage error: one line, usage, exit 2`, async () => {
    const done = await runClient(args);
    assert.equal(done.code, 2);
    assert.equal(firstLine(done.stderr), `client: ${line}`);
    assert.ok(done.stderr.includes(`\n${USAGE_START}\n`), done.stderr);
    assert.equal(done.stdout.length, 0);
    assertNoStackTrace(done.stderr);
  });
}

Deno.test("client: the header's run line is the task's, and a lone copy runs with it", async () => {
  const header = headerRunLine(SCRIPT);
  assert.equal(header.join(" "), RUN_LINE);
  await using server = await startServer("tcp_echo.ts");
  const dir = await copyAlone(SCRIPT);
  try {
    await using client = new ClientProcess(Deno.execPath(), [
      ...header.slice(1),
      "--port",
      String(server.port),
    ], dir);
    const writer = client.process.stdin.getWriter();
    await writer.write(utf8("alone\n"));
    await writer.close();
    const done = await client.finished();
    assert.equal(done.code, 0, done.stderr);
    assert.equal(text(done.stdout), "alone\n");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("client: the shebang carries the task's flags; a lone executable copy runs as ./client.ts", async () => {
  const source = await Deno.readTextFile(new URL(SCRIPT, ROOT));
  assert.equal(
    source.split("\n")[0],
    `#!/usr/bin/env -S deno run ${taskFlags(SCRIPT).join(" ")}`,
  );
  await using server = await startServer("tcp_echo.ts");
  const dir = await copyAlone(SCRIPT);
  try {
    await Deno.chmod(`${dir}/${SCRIPT}`, 0o755);
    await using client = new ClientProcess(`./${SCRIPT}`, [
      "--port",
      String(server.port),
    ], dir);
    const writer = client.process.stdin.getWriter();
    await writer.write(utf8("as a program\n"));
    await writer.close();
    const done = await client.finished();
    assert.equal(done.code, 0, done.stderr);
    assert.equal(text(done.stdout), "as a program\n");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("client: without network permission: one line with the command, exit 1", async () => {
  const flags = taskFlags(SCRIPT).filter((f) => f !== "-N");
  for (const args of [[], ["--udp"]]) {
    const done = await runClient(args, "hello\n", flags);
    assert.equal(done.code, 1);
    assert.equal(
      done.stderr,
      `client: Network permission missing: run it as: ${RUN_LINE}\n`,
    );
  }
});

Deno.test("client: no server listening: one line saying so, exit 1", async () => {
  const port = await freeTcpPort();
  const done = await runClient(["--port", String(port)], "hello\n");
  assert.equal(done.code, 1);
  assert.equal(
    done.stderr,
    `client: Cannot connect to localhost:${port}: connection refused; is the server running?\n`,
  );
  assert.equal(done.stdout.length, 0);
});

// ---------------------------------------------------------------------------
// Against tcp_echo.ts, stdin piped

testBothFamilies(
  "piped lines are echoed; \\r\\n is a line end; replies alone on stdout",
  async (family) => {
    await using server = await startServer("tcp_echo.ts");
    const done = await runClient(
      ["--host", family.host, "--port", String(server.port)],
      "hello\nhé à l'œil\r\nlast line without newline",
    );
    assert.equal(done.code, 0, done.stderr);
    assert.equal(
      text(done.stdout),
      "hello\nhé à l'œil\nlast line without newline\n",
    );
    // No prompt when stdin is a pipe, and our own lines on stderr only.
    assert.equal(
      done.stderr,
      `client: connected to ${shown(family, server.port)}\n` +
        "client: stopped: end of input\n",
    );
  },
);

Deno.test("stop rule: an empty line ends the session and is not sent", async () => {
  await using server = await startServer("tcp_echo.ts");
  const done = await runClient(
    ["--port", String(server.port)],
    "one\n\ntwo\n",
  );
  assert.equal(done.code, 0);
  assert.equal(text(done.stdout), "one\n");
  assert.match(done.stderr, /\nclient: stopped: empty line\n$/);
  // "one\n" only: neither the empty line nor "two" reached the server.
  await server.stdout.waitFor(/ left after 4 bytes echoed$/);
});

Deno.test("stop rule: an empty line ending in \\r\\n is empty too", async () => {
  await using server = await startServer("tcp_echo.ts");
  const done = await runClient(
    ["--port", String(server.port)],
    "one\r\n\r\ntwo\r\n",
  );
  assert.equal(done.code, 0);
  assert.equal(text(done.stdout), "one\n");
  assert.match(done.stderr, /\nclient: stopped: empty line\n$/);
});

Deno.test("stop rule: after printing the reply to fin (sheet 001)", async () => {
  await using server = await startServer("tcp_echo.ts");
  const done = await runClient(
    ["--port", String(server.port)],
    "one\nfin\nnever sent\n",
  );
  assert.equal(done.code, 0);
  assert.equal(text(done.stdout), "one\nfin\n");
  assert.match(done.stderr, /\nclient: stopped: reply to fin\n$/);
  await server.stdout.waitFor(/ left after 8 bytes echoed$/);
});

Deno.test("stop rule: end of input, even right away, exits 0", async () => {
  await using server = await startServer("tcp_echo.ts");
  const done = await runClient(["--port", String(server.port)], "");
  assert.equal(done.code, 0);
  assert.equal(done.stdout.length, 0);
  assert.match(done.stderr, /\nclient: stopped: end of input\n$/);
});

Deno.test("a line that is not UTF-8 is sent and its echo printed byte for byte", async () => {
  await using server = await startServer("tcp_echo.ts");
  // Every byte value except the line ends, plus invalid UTF-8 sequences.
  const awkward = concat([
    Uint8Array.from({ length: 256 }, (_, i) => i).filter((b) =>
      b !== 0x0a && b !== 0x0d
    ),
    Uint8Array.of(0xff, 0xfe, 0xc3, 0x28, 0xe2, 0x82, 0, 0x80),
  ]);
  const input = concat([awkward, utf8("\n"), awkward, utf8("\n")]);
  const done = await runClient(["--port", String(server.port)], input);
  assert.equal(done.code, 0, done.stderr);
  assert.ok(sameBytes(done.stdout, input));
  assertNoStackTrace(done.stderr);
});

testBothFamilies("a 1 MiB line comes back whole", async (family) => {
  await using server = await startServer("tcp_echo.ts");
  const line = letters(1024 * 1024);
  const input = concat([line, utf8("\nafter\n")]);
  const done = await runClient(
    ["--host", family.host, "--port", String(server.port)],
    input,
  );
  assert.equal(done.code, 0, done.stderr);
  assert.equal(done.stdout.length, input.length);
  assert.ok(sameBytes(done.stdout, input));
});

Deno.test("the server killed mid-session: one line, exit 1, no hang", async () => {
  await using server = await startServer("tcp_echo.ts");
  await using client = spawnClient(["--port", String(server.port)]);
  const writer = client.process.stdin.getWriter();
  try {
    await writer.write(utf8("one\n"));
    await client.waitForStdout("one\n");
    server.kill("SIGKILL");
    await server.finished();
    // Another line: the client may already be gone, which is fine.
    await writer.write(utf8("two\n")).catch(() => {});
    const done = await client.finished();
    assert.equal(done.code, 1);
    assert.equal(text(done.stdout), "one\n");
    const lines = done.stderr.trimEnd().split("\n");
    assert.equal(lines.length, 2, done.stderr);
    assert.match(lines[0], /^client: connected to 127\.0\.0\.1:\d+$/);
    assert.match(
      lines[1],
      /^client: the server (closed|reset) the connection$/,
    );
  } finally {
    await writer.close().catch(() => {});
  }
});

Deno.test("stdout closed (| head) during a long line's echo: one line, exit 1, no hang", async () => {
  // 64 MiB is more than the kernel's buffers of both directions hold: the
  // client is still sending when it can no longer print, and the echo
  // server, which the client no longer reads, stops reading it. Before the
  // fix the client waited on that send forever.
  await using server = await startServer("tcp_echo.ts", ["--quiet"]);
  await using client = spawnClient(["--port", String(server.port)]);
  client.stdoutCloseAfter = 1;
  const line = new Uint8Array(64 * 1024 * 1024 + 1).fill(0x61);
  line[line.length - 1] = 0x0a;
  const writer = client.process.stdin.getWriter();
  const feeding = writer.write(line).then(() => writer.close()).catch(() => {
    // The client stopped reading its input: expected.
  });
  const done = await client.finished();
  await feeding;
  assert.equal(done.code, 1, done.stderr);
  assert.match(
    done.stderr,
    /^client: connected to [^\n]+\nclient: cannot print the reply: [^\n]+\n$/,
  );
  assertNoStackTrace(done.stderr);
});

Deno.test("the server closing while the user is still typing: noticed at once", async () => {
  // The client waits for stdin (kept open, nothing typed); the server
  // leaves; the client must not wait for the next line to find out.
  await using fake = fakeTcpServer(async (conn) => {
    await readLine(conn);
    await writeAll(conn, utf8("bye\n"));
  });
  await using client = spawnClient(["--port", String(fake.port)]);
  const writer = client.process.stdin.getWriter();
  try {
    await writer.write(utf8("hello\n"));
    const done = await client.finished();
    assert.equal(done.code, 1);
    assert.equal(text(done.stdout), "bye\n");
    assert.match(done.stderr, /\nclient: the server closed the connection\n$/);
  } finally {
    await writer.close().catch(() => {});
  }
});

// ---------------------------------------------------------------------------
// What "the whole reply" means

Deno.test("a reply split across TCP segments is printed whole before the next line", async () => {
  const order: string[] = [];
  await using fake = fakeTcpServer(async (conn) => {
    order.push(text(await readLine(conn)));
    await writeAll(conn, utf8("hel"));
    // The client has half a reply: it must not send its next line yet.
    const next = readLine(conn);
    assert.ok(await stillPending(next, 300), "next line sent too early");
    await writeAll(conn, utf8("lo\n"));
    order.push(text(await next));
    await writeAll(conn, utf8("world\n"));
    order.push(text(await readLine(conn)));
  });
  const done = await runClient(
    ["--port", String(fake.port)],
    "hello\nworld\n",
  );
  await fake.handled;
  assert.equal(done.code, 0, done.stderr);
  assert.equal(text(done.stdout), "hello\nworld\n");
  assert.deepEqual(order, ["hello", "world", ""]); // "": the client closed
});

Deno.test('replies without a newline (the sheet\'s b"OK") end after a silence', async () => {
  await using fake = fakeTcpServer(async (conn) => {
    for (;;) {
      const line = await readLine(conn);
      if (line.length === 0) return;
      await writeAll(conn, utf8("OK"));
    }
  });
  const done = await runClient(["--port", String(fake.port)], "a\nfin\n");
  await fake.handled;
  assert.equal(done.code, 0, done.stderr);
  assert.equal(text(done.stdout), "OKOK");
  assert.match(done.stderr, /\nclient: stopped: reply to fin\n$/);
});

Deno.test({
  name: "against ok_server.ts: OK to each line, stops after fin",
  ignore: !scriptExists("ok_server.ts"),
  async fn() {
    await using server = await startServer("ok_server.ts");
    const done = await runClient(
      ["--port", String(server.port)],
      "bonjour\nhé\nfin\nnever sent\n",
    );
    assert.equal(done.code, 0, done.stderr);
    assert.equal(text(done.stdout), "OK\nOK\nOK\n");
    assert.match(done.stderr, /\nclient: stopped: reply to fin\n$/);
  },
});

// ---------------------------------------------------------------------------
// A person at a terminal

Deno.test({
  name: ptyMissing
    ? `on a terminal: the > prompt, the typed line and its echo (ignored: ${ptyMissing})`
    : "on a terminal: the > prompt, the typed line and its echo",
  ignore: ptyMissing !== "",
  async fn() {
    await using server = await startServer("tcp_echo.ts");
    const path = fromFileUrl(new URL(SCRIPT, ROOT));
    // `exec`: no shell stays between `script` and Deno to take a Ctrl-C.
    const command = [
      "exec",
      Deno.execPath(),
      "run",
      ...taskFlags(SCRIPT),
      path,
      "--port",
      String(server.port),
    ].join(" ");
    // `script` runs the command on a new pseudo-terminal and copies our
    // pipe to it as if typed; -e: its exit code is the command's.
    await using terminal = new ClientProcess(
      "script",
      ["-qfec", command, "/dev/null"],
    );
    const writer = terminal.process.stdin.getWriter();
    try {
      await terminal.waitForStdout(" quits)\r\n> ");
      await writer.write(utf8("hello\n"));
      // The terminal echoes what was typed, then the server's echo, then
      // the next prompt.
      await terminal.waitForStdout("> hello\r\nhello\r\n> ");
      await writer.write(utf8("\n"));
      const done = await terminal.finished();
      assert.equal(done.code, 0, text(done.stdout));
      const screen = text(done.stdout);
      assert.match(
        screen,
        /^client: connected to 127\.0\.0\.1:\d+ \(an empty line or Ctrl-D quits\)\r\n> hello\r\nhello\r\n> \r\nclient: stopped: empty line\r\n$/,
      );
    } finally {
      await writer.close().catch(() => {});
    }
  },
});

// ---------------------------------------------------------------------------
// UDP

testBothFamilies(
  "--udp against udp_echo.ts: one datagram per line, each reply printed",
  async (family) => {
    await using server = await startServer("udp_echo.ts");
    const done = await runClient(
      ["--udp", "--host", family.host, "--port", String(server.port)],
      "hello\nhé\r\nfin\nnever sent\n",
    );
    assert.equal(done.code, 0, done.stderr);
    assert.equal(text(done.stdout), "hello\nhé\nfin\n");
    assert.equal(
      done.stderr,
      `client: sending to ${shown(family, server.port)} over UDP\n` +
        "client: stopped: reply to fin\n",
    );
    assert.match(
      (await server.stop()).stdout,
      /stopped by SIGINT: 3 datagrams, 14 bytes echoed/,
    );
  },
);

Deno.test({
  name: `--udp --host [::1], the form servers print, is the address ::1${
    IPV6.missing ? ` (ignored: ${IPV6.missing})` : ""
  }`,
  ignore: IPV6.missing !== "",
  fn: async () => {
    await using server = await startServer("udp_echo.ts");
    const done = await runClient(
      ["--udp", "--host", "[::1]", "--port", String(server.port)],
      "hello\n",
    );
    assert.equal(done.code, 0, done.stderr);
    assert.equal(text(done.stdout), "hello\n");
    assert.equal(
      done.stderr,
      `client: sending to [::1]:${server.port} over UDP\n` +
        "client: stopped: end of input\n",
    );
  },
});

Deno.test("--udp: a lost datagram is sent again, and the user told", async () => {
  await using echo = fakeUdpEcho(IPV4, { drop: 1 });
  const done = await runClient(
    ["--udp", "--host", IPV4.host, "--port", String(echo.port)],
    "lost once\n",
  );
  assert.equal(done.code, 0, done.stderr);
  assert.equal(text(done.stdout), "lost once\n");
  assert.match(
    done.stderr,
    /\nclient: no reply within 1000 ms; sending again \(try 2 of 3\)\n/,
  );
  assert.deepEqual(echo.received, ["lost once\n", "lost once\n"]);
});

Deno.test("--udp: no reply at all: says so after the last try, exit 1", async () => {
  await using silent = fakeUdpEcho(IPV4, { drop: Infinity });
  const done = await runClient(
    ["--udp", "--host", IPV4.host, "--port", String(silent.port)],
    "anyone?\nnever sent\n",
  );
  assert.equal(done.code, 1);
  assert.equal(done.stdout.length, 0);
  const lines = done.stderr.trimEnd().split("\n");
  assert.equal(
    lines.at(-1),
    `client: no reply from 127.0.0.1:${silent.port} after 3 tries; is the UDP server running?`,
  );
  assert.equal(silent.received.length, 3);
});

testBothFamilies(
  "--udp: the largest line that fits one datagram goes whole; one byte more is refused",
  async (family) => {
    const max = family.name === "IPv4" ? 65507 : 65527;
    await using server = await startServer("udp_echo.ts");
    const fits = letters(max - 1); // + its newline: exactly one full datagram
    const input = concat([fits, utf8("\n"), letters(max), utf8("\nafter\n")]);
    const done = await runClient(
      ["--udp", "--host", family.host, "--port", String(server.port)],
      input,
    );
    assert.equal(done.code, 1, done.stderr);
    assert.ok(sameBytes(done.stdout, concat([fits, utf8("\nafter\n")])));
    assert.match(
      done.stderr,
      new RegExp(
        `\nclient: line of ${
          max + 1
        } bytes \\(newline included\\) not sent: one UDP datagram carries at most ${max} bytes\n`,
      ),
    );
    // Two datagrams reached the server: the full one and "after\n".
    assert.match(
      (await server.stop()).stdout,
      new RegExp(`stopped by SIGINT: 2 datagrams, ${max + 6} bytes echoed`),
    );
  },
);

Deno.test("--udp without --unstable-net: one line with the command, exit 1", async () => {
  // --no-config: without this project's deno.json, which turns it on.
  const done = await runClient(
    ["--udp"],
    "hello\n",
    ["--no-config", ...taskFlags(SCRIPT)],
  );
  assert.equal(done.code, 1);
  assert.equal(
    done.stderr,
    "client: --udp needs the --unstable-net flag: run it as: deno run -N --unstable-net client.ts --udp\n",
  );
});

// ---------------------------------------------------------------------------
// Running the client
//
// candidates for helpers.ts: ClientProcess (raw stdout bytes, stdin kept
// open and written as the test goes, bounded waits), freeTcpPort,
// and below fakeTcpServer, readLine, fakeUdpEcho.

interface Done {
  code: number;
  /** Raw bytes: the client promises them unchanged. */
  stdout: Uint8Array;
  stderr: string;
}

/** A child process whose stdout is kept as raw bytes, and whose stdin the
 * test writes to as it goes. */
class ClientProcess implements AsyncDisposable {
  readonly process: Deno.ChildProcess;
  #stdout: Uint8Array[] = [];
  #stderr: Uint8Array[] = [];
  #wakers = new Set<() => void>();
  #reading: Promise<void>;

  constructor(
    command: string,
    args: string[],
    cwd = ROOT_DIR,
    env: Record<string, string> = {},
  ) {
    this.process = new Deno.Command(command, {
      args,
      cwd,
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
      env: { NO_COLOR: "1", TERM: "dumb", ...env },
    }).spawn();
    this.#reading = Promise.all([
      this.#collect(this.process.stdout, this.#stdout),
      this.#collect(this.process.stderr, this.#stderr),
    ]).then(() => {});
  }

  /** Set by a test: stdout is closed (as `| head -c N` does) once this
   * many bytes came; the client's next write to it fails. */
  stdoutCloseAfter = Infinity;

  async #collect(stream: ReadableStream<Uint8Array>, into: Uint8Array[]) {
    for await (const chunk of stream) {
      into.push(chunk);
      for (const wake of [...this.#wakers]) wake();
      const total = into.reduce((sum, c) => sum + c.length, 0);
      if (into === this.#stdout && total >= this.stdoutCloseAfter) break;
    }
  }

  get stdout(): Uint8Array {
    return concat(this.#stdout);
  }

  get stderr(): string {
    return text(concat(this.#stderr));
  }

  /** Waits until stdout contains `expected` (bounded). */
  waitForStdout(expected: string | RegExp): Promise<void> {
    return this.#waitFor("stdout", () => text(this.stdout), expected);
  }

  /** Waits until stderr contains `expected` (bounded). */
  waitForStderr(expected: string | RegExp): Promise<void> {
    return this.#waitFor("stderr", () => this.stderr, expected);
  }

  async #waitFor(
    name: string,
    output: () => string,
    expected: string | RegExp,
  ): Promise<void> {
    const found = () =>
      typeof expected === "string"
        ? output().includes(expected)
        : expected.test(output());
    let wake = () => {};
    await within(
      new Promise<void>((resolve) => {
        wake = () => {
          if (found()) resolve();
        };
        this.#wakers.add(wake);
        wake();
      }),
      `${name} to contain ${String(expected)}; so far: ${
        JSON.stringify(output())
      }`,
    ).finally(() => this.#wakers.delete(wake));
  }

  /** Waits for the exit (bounded: a hang is a failure, not a stuck test). */
  async finished(): Promise<Done> {
    const status = await within(this.process.status, "the client to exit");
    await within(this.#reading, "the client's output to end");
    return {
      code: status.code,
      stdout: this.stdout,
      stderr: text(concat(this.#stderr)),
    };
  }

  async [Symbol.asyncDispose](): Promise<void> {
    try {
      this.process.kill("SIGKILL");
    } catch {
      // Already exited.
    }
    await this.process.stdin.close().catch(() => {});
    await this.process.status;
    await this.#reading;
  }
}

function spawnClient(
  args: string[],
  flags = taskFlags(SCRIPT),
  env: Record<string, string> = {},
): ClientProcess {
  const path = fromFileUrl(new URL(SCRIPT, ROOT));
  const command = ["run", ...flags, path, ...args];
  return new ClientProcess(Deno.execPath(), command, ROOT_DIR, env);
}

/** Runs the client with `input` piped to its stdin, then closed. */
async function runClient(
  args: string[],
  input: string | Uint8Array = "",
  flags?: string[],
  env?: Record<string, string>,
): Promise<Done> {
  await using client = spawnClient(args, flags, env);
  const writer = client.process.stdin.getWriter();
  const feeding = (async () => {
    try {
      await writer.write(typeof input === "string" ? utf8(input) : input);
      await writer.close();
    } catch {
      // The client stopped reading (an empty line, an error): fine.
    }
  })();
  const done = await client.finished();
  await feeding;
  return done;
}

/** The address as the client shows it. */
function shown(family: Family, port: number): string {
  return family.name === "IPv4" ? `127.0.0.1:${port}` : `[::1]:${port}`;
}

/** `length` bytes of lowercase letters: a long line with no line end. */
function letters(length: number): Uint8Array {
  return Uint8Array.from({ length }, (_, i) => 97 + (i * 7 + (i >> 10)) % 26);
}

/** A TCP port with nothing listening on it (just released). */
function freeTcpPort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = listener.addr;
  listener.close();
  return port;
}

// ---------------------------------------------------------------------------
// Servers that misbehave on cue

interface FakeServer extends AsyncDisposable {
  port: number;
  /** Settles when the one client has been handled (rejects on a failed
   * assertion inside the handler). */
  handled: Promise<void>;
}

/** Accepts one client on 127.0.0.1 and runs `handle` on it, then closes. */
function fakeTcpServer(
  handle: (conn: Deno.TcpConn) => Promise<void>,
): FakeServer {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const handled = (async () => {
    const conn = await listener.accept();
    try {
      await handle(conn);
    } finally {
      closeQuietly(conn);
    }
  })();
  handled.catch(() => {}); // awaited by the test or at disposal
  return {
    port: listener.addr.port,
    handled,
    async [Symbol.asyncDispose]() {
      listener.close();
      await handled.catch(() => {});
    },
  };
}

/** Reads one line (without its "\n"), byte by byte; "" when the peer
 * closes. Slow, but exact: nothing after the line is consumed. */
async function readLine(conn: Deno.Conn): Promise<Uint8Array> {
  const bytes: number[] = [];
  const one = new Uint8Array(1);
  for (;;) {
    const n = await within(conn.read(one), "a line from the client");
    if (n === null || one[0] === 0x0a) return Uint8Array.from(bytes);
    bytes.push(one[0]);
  }
}

interface FakeUdp extends AsyncDisposable {
  port: number;
  /** Every datagram received, as text. */
  received: string[];
}

/** A UDP echo socket that ignores its first `drop` datagrams. */
function fakeUdpEcho(family: Family, { drop = 0 } = {}): FakeUdp {
  const socket = Deno.listenDatagram({
    hostname: family.host,
    port: 0,
    transport: "udp",
  });
  const received: string[] = [];
  const buffer = new Uint8Array(65536);
  const loop = (async () => {
    for (;;) {
      let datagram: [Uint8Array, Deno.Addr];
      try {
        datagram = await socket.receive(buffer);
      } catch {
        return; // closed
      }
      const [data, from] = datagram;
      received.push(text(data));
      if (received.length > drop) await socket.send(data, from);
    }
  })();
  return {
    port: (socket.addr as Deno.NetAddr).port,
    received,
    async [Symbol.asyncDispose]() {
      socket.close();
      await loop;
    },
  };
}

// ---------------------------------------------------------------------------
// --no-newline: sheet 001's framing (issue 12)

/** Sheet 001's first server, in Deno: one client; each `recv(1024)` is a
 * message, answered `OK` with no newline; stops after answering exactly
 * `fin`. Records every message it read. */
function sheetOkServer(): FakeServer & { messages: string[] } {
  const messages: string[] = [];
  const fake = fakeTcpServer(async (conn) => {
    const buffer = new Uint8Array(1024);
    let message = "";
    while (message !== "fin") {
      const n = await within(conn.read(buffer), "a message from the client");
      if (n === null) return;
      message = text(buffer.subarray(0, n));
      messages.push(message);
      await writeAll(conn, utf8("OK"));
    }
  });
  return Object.assign(fake, { messages });
}

Deno.test("--no-newline: sheet 001's server gets un, deux, trois, fin as four messages and ends", async () => {
  await using server = sheetOkServer();
  const done = await runClient(
    ["--port", String(server.port), "--no-newline"],
    "un\ndeux\ntrois\nfin\nnot sent\n",
  );
  // Hang guard only: with a 1 s silence wait per reply this takes 4 s.
  await within(server.handled, "the sheet's server to end", 3500);
  assert.equal(done.code, 0, done.stderr);
  assert.deepEqual(server.messages, ["un", "deux", "trois", "fin"]);
  // Each answer on its own line, as the sheet's print() shows it.
  assert.equal(text(done.stdout), "OK\nOK\nOK\nOK\n");
  assert.match(done.stderr, /\nclient: stopped: reply to fin\n$/);
});

Deno.test("--no-newline: an empty line still stops (sheet 000) and is not sent", async () => {
  await using server = sheetOkServer();
  const done = await runClient(
    ["--port", String(server.port), "--no-newline"],
    "un\n\ndeux\n",
  );
  await within(server.handled, "the sheet's server to see the close");
  assert.equal(done.code, 0, done.stderr);
  assert.deepEqual(server.messages, ["un"]);
  assert.match(done.stderr, /\nclient: stopped: empty line\n$/);
});

Deno.test("a server that accepts then resets: says it connected, exit 1", async () => {
  const server = net.createServer((socket) => {
    socket.on("error", () => {});
    socket.resetAndDestroy();
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as net.AddressInfo;
  try {
    // A line to send, so the client waits for the server, not for stdin.
    const done = await runClient(
      ["--host", "127.0.0.1", "--port", String(port)],
      "hello\n",
    );
    assert.equal(done.code, 1);
    // The reset comes while Deno sets the connection up, or after: either
    // way the client says it connected, never "Cannot connect".
    assert.ok(
      [
        `client: Connected to 127.0.0.1:${port}, then the server reset the connection at once\n`,
        `client: connected to 127.0.0.1:${port}\nclient: the server reset the connection\n`,
        // Our line's write took the reset; the read after it sees an end.
        `client: connected to 127.0.0.1:${port}\nclient: the server closed the connection\n`,
      ].includes(done.stderr),
      done.stderr,
    );
    assertNoStackTrace(done.stderr);
  } finally {
    await new Promise((resolve) => server.close(resolve));
  }
});

// ---------------------------------------------------------------------------
// Pure pieces, in-process (fast: no socket, no subprocess)

Deno.test("parseOptions: defaults, --no-newline, --udp, help", () => {
  assert.deepEqual(parseOptions([]), {
    host: "localhost",
    port: 7777,
    udp: false,
    noNewline: false,
  });
  assert.deepEqual(
    parseOptions(["--port", "12800", "--no-newline", "--udp", "--host", "::1"]),
    { host: "::1", port: 12800, udp: true, noNewline: true },
  );
  assert.equal(parseOptions(["--host", "[::1]"])?.host, "::1");
  assert.equal(parseOptions(["-h"]), null);
  assert.throws(() => parseOptions(["--newline"]), /Unknown option/);
});

Deno.test("parseOptions: ports are whole numbers 1..65535 only (0 is no server's port)", () => {
  assert.equal(parseOptions(["--port", "1"])?.port, 1);
  assert.throws(() => parseOptions(["--port", "0"]), /Invalid port "0"/);
  assert.equal(parseOptions(["--port", "65535"])?.port, 65535);
  for (const bad of ["65536", "-5", "1e3", "7777abc", "", " 1"]) {
    assert.throws(() => parseOptions([`--port=${bad}`]), /Invalid port/, bad);
  }
});

Deno.test("isStopWord: exactly fin", () => {
  assert.equal(isStopWord(utf8("fin")), true);
  for (const other of ["fin ", "Fin", "fini", "", "fin\n"]) {
    assert.equal(isStopWord(utf8(other)), false, other);
  }
});

Deno.test("withNewline and splitLine: a line and its frame", () => {
  assert.deepEqual(withNewline(utf8("ab")), utf8("ab\n"));
  assert.equal(splitLine(utf8("no end")), null);
  const split = splitLine(utf8("one\r\ntwo\nthree"));
  assert.ok(split);
  assert.equal(text(split[0]), "one\r");
  assert.equal(text(split[1]), "two\nthree");
});

Deno.test("LineReader: lines across reads, \\r\\n, a last line without newline", async () => {
  const chunks = ["he", "llo\r", "\nwor", "ld\n\nlast"].map(utf8);
  const source = {
    read(p: Uint8Array): Promise<number | null> {
      const chunk = chunks.shift();
      if (chunk === undefined) return Promise.resolve(null);
      p.set(chunk);
      return Promise.resolve(chunk.length);
    },
  };
  const reader = new LineReader(source);
  const lines: (string | null)[] = [];
  for (let i = 0; i < 5; i++) {
    const line = await reader.next();
    lines.push(line === null ? null : text(line));
  }
  assert.deepEqual(lines, ["hello", "world", "", "last", null]);
  assert.deepEqual(concatBytes([utf8("a"), utf8("bc")]), utf8("abc"));
});

Deno.test("replyEnd: a newline ends a reply; one read does with --no-newline", () => {
  const NL = 0x0a;
  const K = 0x4b; // "K" of "OK"
  assert.equal(replyEnd(0, -1, false, false), null); // nothing yet: wait
  assert.equal(replyEnd(3, NL, false, false), "line");
  assert.equal(replyEnd(2, K, false, false), null); // only silence ends it
  assert.equal(replyEnd(2, K, false, true), "read"); // sheet 001's recv
  assert.equal(replyEnd(0, -1, false, true), null);
  assert.equal(replyEnd(3, NL, true, false), "line"); // answered, then closed
  assert.equal(replyEnd(2, K, true, false), "gone");
});

Deno.test("error lines: refused, reset right after connect, permission, disconnects", () => {
  const options: Options = {
    host: "localhost",
    port: 12800,
    udp: false,
    noNewline: false,
  };
  assert.equal(
    describeConnectError(new Deno.errors.ConnectionRefused("x"), options),
    "Cannot connect to localhost:12800: connection refused; is the server running?",
  );
  assert.equal(
    describeConnectError(new Deno.errors.ConnectionReset("x"), options),
    "Connected to localhost:12800, then the server reset the connection at once",
  );
  assert.equal(
    describeConnectError(new Deno.errors.NotCapable("x"), options),
    "Network permission missing: run it as: deno run -N client.ts",
  );
  assert.equal(howToRun(), "deno run -N client.ts");
  assert.equal(
    describeDisconnect(new Deno.errors.ConnectionReset("x")),
    "the server reset the connection",
  );
});

// ---------------------------------------------------------------------------
// --no-newline: each answer on its own line (issue 21), bytes kept exact

Deno.test("--no-newline, piped: each answer ends its line; the bytes received are printed exactly", async () => {
  const odd = Uint8Array.of(0x68, 0xc3, 0xa9, 0xff, 0xfe, 0); // "hé", invalid
  const answers = [utf8("OK"), odd, utf8("has its own\n")];
  await using fake = fakeTcpServer(async (conn) => {
    const buffer = new Uint8Array(1024);
    for (const answer of answers) {
      await within(conn.read(buffer), "a message");
      await writeAll(conn, answer);
    }
    await within(conn.read(buffer), "the client to leave");
  });
  const done = await runClient(
    ["--port", String(fake.port), "--no-newline"],
    "un\ndeux\ntrois\n",
  );
  await fake.handled;
  assert.equal(done.code, 0, done.stderr);
  // A newline after each answer that had none; nothing else added.
  const expected = concat([
    utf8("OK\n"),
    odd,
    utf8("\n"),
    utf8("has its own\n"),
  ]);
  assert.ok(sameBytes(done.stdout, expected), JSON.stringify(done.stdout));
  assert.doesNotMatch(done.stderr, /--no-newline/); // no hint in this mode
});

Deno.test("--udp --no-newline: an answer without a newline ends its line too", async () => {
  await using echo = fakeUdpEcho(IPV4);
  const done = await runClient(
    ["--udp", "--no-newline", "--host", IPV4.host, "--port", String(echo.port)],
    "un\ndeux\n",
  );
  assert.equal(done.code, 0, done.stderr);
  assert.equal(text(done.stdout), "un\ndeux\n");
  assert.deepEqual(echo.received, ["un", "deux"]);
});

/** Runs the client on a pseudo-terminal (script(1)), as a person would. */
function onTerminal(
  args: string[],
  { flags = taskFlags(SCRIPT), env = {} as Record<string, string> } = {},
): ClientProcess {
  const path = fromFileUrl(new URL(SCRIPT, ROOT));
  // `exec`: no shell stays between script(1) and Deno to take a Ctrl-C.
  const command = ["exec", Deno.execPath(), "run", ...flags, path, ...args]
    .join(" ");
  return new ClientProcess(
    "script",
    ["-qfec", command, "/dev/null"],
    ROOT_DIR,
    {
      ...env,
    },
  );
}

Deno.test({
  name:
    `--no-newline on a terminal: each answer on its own line, the prompt and our last line after it${
      ptyMissing ? ` (ignored: ${ptyMissing})` : ""
    }`,
  ignore: ptyMissing !== "",
  async fn() {
    await using server = sheetOkServer();
    await using terminal = onTerminal([
      "--port",
      String(server.port),
      "--no-newline",
    ]);
    const writer = terminal.process.stdin.getWriter();
    try {
      await terminal.waitForStdout(" quits)\r\n> ");
      await writer.write(utf8("un\n"));
      await terminal.waitForStdout("> un\r\nOK\r\n> ");
      await writer.write(utf8("fin\n"));
      const done = await terminal.finished();
      assert.equal(done.code, 0, text(done.stdout));
      // Before issue 21: "> fin\r\nOKclient: stopped: reply to fin".
      assert.match(
        text(done.stdout),
        /> fin\r\nOK\r\nclient: stopped: reply to fin\r\n$/,
      );
    } finally {
      await writer.close().catch(() => {});
    }
  },
});

Deno.test({
  name:
    `on a terminal, a reply without a newline: our next line still starts its own${
      ptyMissing ? ` (ignored: ${ptyMissing})` : ""
    }`,
  ignore: ptyMissing !== "",
  async fn() {
    await using fake = fakeTcpServer(async (conn) => {
      await readLine(conn);
      await writeAll(conn, utf8("OK"));
      await readLine(conn);
    });
    await using terminal = onTerminal(["--port", String(fake.port)]);
    const writer = terminal.process.stdin.getWriter();
    try {
      await terminal.waitForStdout(" quits)\r\n> ");
      await writer.write(utf8("fin\n"));
      const done = await terminal.finished();
      assert.equal(done.code, 0, text(done.stdout));
      // "OK", then the hint and the stop line, each at a line's start.
      assert.match(
        text(done.stdout),
        /> fin\r\nOK\r\nclient: the reply has no newline: [^\r\n]*--no-newline\r\nclient: stopped: reply to fin\r\n$/,
      );
    } finally {
      await writer.close().catch(() => {});
    }
  },
});

// ---------------------------------------------------------------------------
// The hint: a server that may expect messages without a newline (issue 21)

const HINT_MS = 3000;
const SILENT_HINT =
  "client: no reply after 3 s: the server may be busy with another client, or expect messages without a newline, as sheet 001's servers do (then use --no-newline)";
const UNFRAMED_HINT =
  "client: the reply has no newline: if the server expects messages without one, as sheet 001's servers do, use --no-newline";

Deno.test("a server silent for 3 s after a line: one hint, once; the client goes on when it answers", async () => {
  let hintSeen = () => {};
  const hinted = new Promise<void>((resolve) => hintSeen = resolve);
  const order: string[] = [];
  await using fake = fakeTcpServer(async (conn) => {
    // A server that waits for something else than a newline: it answers
    // only once the client has given its hint (no timing guess), ...
    order.push(text(await readLine(conn)));
    await within(hinted, "the hint");
    await writeAll(conn, utf8("late\n"));
    // ... then is silent again for longer than the hint's delay: no
    // second hint may come.
    order.push(text(await readLine(conn)));
    await sleep(HINT_MS + 1500);
    await writeAll(conn, utf8("later\n"));
    order.push(text(await readLine(conn)));
  });
  await using client = spawnClient(["--port", String(fake.port)]);
  const writer = client.process.stdin.getWriter();
  try {
    await writer.write(utf8("one\ntwo\n"));
    await writer.close();
    await client.waitForStderr(SILENT_HINT);
    hintSeen();
    const done = await client.finished();
    await fake.handled;
    assert.equal(done.code, 0, done.stderr);
    assert.equal(text(done.stdout), "late\nlater\n");
    assert.deepEqual(order, ["one", "two", ""]);
    assert.deepEqual(done.stderr.trimEnd().split("\n"), [
      `client: connected to 127.0.0.1:${fake.port}`,
      SILENT_HINT,
      "client: stopped: end of input",
    ]);
  } finally {
    await writer.close().catch(() => {});
  }
});

Deno.test("sheet 001's own server, run without --no-newline: one hint to use it, once; replies still printed", async () => {
  const server = new Child("python3", [
    `${ROOT_DIR}bench/peers/sheet001_server.py`,
    "0",
  ]);
  try {
    const ready = /sur le port (\d+)$/;
    const port = Number((await server.stdout.waitFor(ready)).match(ready)![1]);
    const done = await runClient(
      ["--host", "127.0.0.1", "--port", String(port)],
      "un\ndeux\nfin\n",
    );
    assert.equal(done.code, 0, done.stderr);
    assert.equal(text(done.stdout), "OKOKOK");
    assert.deepEqual(done.stderr.trimEnd().split("\n"), [
      `client: connected to 127.0.0.1:${port}`,
      UNFRAMED_HINT,
      "client: stopped: reply to fin",
    ]);
  } finally {
    // Its recv() returns b"" for ever once we left (the sheet's weakness).
    await server[Symbol.asyncDispose]();
  }
});

Deno.test("no hint when every reply ends with a newline, nor with --no-newline", async () => {
  await using server = await startServer("tcp_echo.ts");
  const done = await runClient(["--port", String(server.port)], "a\nb\n");
  assert.doesNotMatch(done.stderr, /hint|--no-newline/);
  await using sheet = sheetOkServer();
  const unframed = await runClient(
    ["--port", String(sheet.port), "--no-newline"],
    "un\nfin\n",
  );
  assert.equal(unframed.code, 0, unframed.stderr);
  assert.doesNotMatch(unframed.stderr, /--no-newline/);
});

// ---------------------------------------------------------------------------
// One permission prompt (issue 21): without -N, on a terminal

for (const udp of [false, true]) {
  for (const yes of [true, false]) {
    const mode = udp ? "--udp" : "TCP";
    const what = yes
      ? "yes: it works, no second prompt"
      : "no: our one-line message, exit 1";
    Deno.test({
      name: `${mode} without -N on a terminal: one prompt; ${what}${
        ptyMissing ? ` (ignored: ${ptyMissing})` : ""
      }`,
      ignore: ptyMissing !== "",
      fn: () => promptOnce(udp, yes),
    });
  }
}

async function promptOnce(udp: boolean, yes: boolean): Promise<void> {
  await using server = await startServer(udp ? "udp_echo.ts" : "tcp_echo.ts");
  const args = ["--host", "127.0.0.1", "--port", String(server.port)];
  await using terminal = onTerminal(udp ? [...args, "--udp"] : args, {
    flags: taskFlags(SCRIPT).filter((f) => f !== "-N"),
  });
  const writer = terminal.process.stdin.getWriter();
  try {
    await terminal.waitForStdout(/Allow\?.*> /);
    // Deno discards what was typed before its prompt reads: type the answer
    // until Deno confirms it (bounded). A "y" typed once too often is a
    // line for the client, echoed like any other.
    const answered = terminal.waitForStdout(/Granted|Denied/);
    for (let i = 0; i < 50; i++) {
      await writer.write(utf8(yes ? "y\n" : "n\n"));
      if (!(await stillPending(answered, 200))) break;
    }
    await answered;
    if (yes) {
      await terminal.waitForStdout(" quits)\r\n> ");
      await writer.write(utf8("hello\n"));
      await terminal.waitForStdout("> hello\r\nhello\r\n> ");
      await writer.write(utf8("\n"));
    }
    const done = await terminal.finished();
    const screen = text(done.stdout);
    assert.equal(screen.match(/Deno requests/g)?.length, 1, screen);
    if (yes) {
      assert.equal(done.code, 0, screen);
      assert.match(screen, /\r\nclient: stopped: empty line\r\n$/);
    } else {
      assert.equal(done.code, 1, screen);
      assert.ok(
        screen.endsWith(
          `\r\nclient: Network permission missing: run it as: ${RUN_LINE}\r\n`,
        ),
        screen,
      );
      assertNoStackTrace(screen);
    }
  } finally {
    await writer.close().catch(() => {});
  }
}

// ---------------------------------------------------------------------------
// French (LANG=fr_FR.UTF-8 or --lang fr), English otherwise (LANG=C)

const FR = { LANG: "fr_FR.UTF-8", LC_ALL: "fr_FR.UTF-8" };
const C = { LANG: "C", LC_ALL: "C" };
/** French puts a no-break space before ":" ";" "?" "!". */
const NBSP = "\u00a0";

Deno.test("LANG=fr_FR.UTF-8: the session's lines in French; the replies untouched", async () => {
  await using server = await startServer("tcp_echo.ts");
  const done = await runClient(
    ["--host", "127.0.0.1", "--port", String(server.port)],
    "bonjour\nfin\n",
    undefined,
    FR,
  );
  assert.equal(done.code, 0, done.stderr);
  assert.equal(text(done.stdout), "bonjour\nfin\n");
  assert.equal(
    done.stderr,
    `client${NBSP}: connecté à 127.0.0.1:${server.port}\n` +
      `client${NBSP}: arrêt${NBSP}: réponse à « fin »\n`,
  );
});

Deno.test("LANG=fr_FR.UTF-8: errors, --udp retries and too large lines in French", async () => {
  const port = await freeTcpPort();
  const refused = await runClient(
    ["--port", String(port)],
    "a\n",
    undefined,
    FR,
  );
  assert.equal(refused.code, 1);
  assert.equal(
    refused.stderr,
    `client${NBSP}: Connexion à localhost:${port} impossible${NBSP}: connexion refusée${NBSP}; le serveur tourne-t-il${NBSP}?\n`,
  );
  // Port 0 names no server: a usage error, in French too, TCP and UDP.
  for (const udp of [[], ["--udp"]]) {
    const zero = await runClient([...udp, "--port", "0"], "a\n", undefined, FR);
    assert.equal(zero.code, 2);
    assert.equal(
      zero.stderr.split("\n")[0],
      `client${NBSP}: Port « 0 » invalide${NBSP}: il faut le port du serveur, de 1 à 65535`,
    );
  }
  const noNet = await runClient(["--udp"], "a\n", [], FR);
  assert.equal(
    noNet.stderr,
    `client${NBSP}: Permission réseau manquante${NBSP}; lancez-le ainsi${NBSP}: deno run -N client.ts\n`,
  );
  const noUnstable = await runClient(
    ["--udp"],
    "a\n",
    ["--no-config", ...taskFlags(SCRIPT)],
    FR,
  );
  assert.equal(
    noUnstable.stderr,
    `client${NBSP}: --udp demande l'option --unstable-net${NBSP}; lancez-le ainsi${NBSP}: deno run -N --unstable-net client.ts --udp\n`,
  );
  await using echo = fakeUdpEcho(IPV4, { drop: 1 });
  const udp = await runClient(
    ["--udp", "--host", IPV4.host, "--port", String(echo.port)],
    `perdu une fois\n${"x".repeat(65507)}\n`,
    undefined,
    FR,
  );
  assert.equal(udp.code, 1);
  assert.equal(text(udp.stdout), "perdu une fois\n");
  // Grouped numbers: a narrow no-break space, as fr-FR writes them.
  assert.deepEqual(udp.stderr.trimEnd().split("\n"), [
    `client${NBSP}: envoi vers 127.0.0.1:${echo.port} en UDP`,
    `client${NBSP}: pas de réponse en 1\u202f000 ms${NBSP}; nouvel envoi (essai 2 sur 3)`,
    `client${NBSP}: ligne de 65\u202f508 octets (saut de ligne compris) non envoyée${NBSP}: un datagramme UDP porte au plus 65\u202f507 octets`,
    `client${NBSP}: arrêt${NBSP}: fin de l'entrée`,
    `client${NBSP}: lignes trop longues pour un datagramme, non envoyées${NBSP}: 1`,
  ]);
});

Deno.test("LANG=fr_FR.UTF-8: the hint in French", async () => {
  await using fake = fakeTcpServer(async (conn) => {
    await readLine(conn);
    await writeAll(conn, utf8("OK"));
    await readLine(conn);
  });
  const done = await runClient(
    ["--port", String(fake.port)],
    "fin\n",
    undefined,
    FR,
  );
  assert.equal(done.code, 0, done.stderr);
  assert.match(
    done.stderr,
    /\nclient\u00a0: la réponse n'a pas de saut de ligne\u00a0: si le serveur attend des messages sans saut de ligne, comme ceux de la fiche 001, utilisez --no-newline\n/,
  );
});

Deno.test("LANG=fr_FR.UTF-8: --help and usage errors in French", async () => {
  const help = await runClient(["--help"], "", undefined, FR);
  assert.equal(help.code, 0);
  const usage = text(help.stdout);
  assert.ok(
    usage.startsWith(`Utilisation${NBSP}: deno run -N client.ts [options]\n`),
    usage,
  );
  assert.match(usage, /--no-newline +parler comme le client de la fiche 001/);
  assert.match(usage, /la sortie standard\s+contient exactement les octets/);
  assert.doesNotMatch(usage, /\bthe\b|\bdefault\b/);
  for (
    const [args, line] of [
      [["--nope"], "Option « --nope » inconnue"],
      [
        ["--port", "12ab"],
        `Port « 12ab » invalide${NBSP}: un nombre de 0 à 65535 attendu`,
      ],
      [["--lang"], `Langue «  » invalide${NBSP}: fr ou en attendu`],
    ] as const
  ) {
    const done = await runClient([...args], "", undefined, FR);
    assert.equal(done.code, 2);
    const [first, second] = done.stderr.split("\n");
    assert.equal(first, `client${NBSP}: ${line}`);
    assert.match(second, /^Utilisation\u00a0: /);
    assertNoStackTrace(done.stderr);
  }
});

Deno.test("--lang overrides the system's language; LANG=C is English; a leading -- is dropped", async () => {
  const firstLine = async (args: string[], env: Record<string, string>) => {
    const done = await runClient(args, "", undefined, env);
    assert.equal(done.code, 0, done.stderr);
    return text(done.stdout).split("\n")[0];
  };
  const french = `Utilisation${NBSP}: ${RUN_LINE} [options]`;
  assert.equal(await firstLine(["--help"], C), USAGE_START);
  assert.equal(await firstLine(["--help"], FR), french);
  assert.equal(await firstLine(["--lang", "fr", "-h"], C), french);
  assert.equal(await firstLine(["-h", "--lang=en"], FR), USAGE_START);
  assert.equal(await firstLine(["--", "--help"], C), USAGE_START);
  await using server = await startServer("tcp_echo.ts");
  const english = await runClient(
    ["--", "--port", String(server.port), "--host", "127.0.0.1"],
    "hi\n",
    undefined,
    C,
  );
  assert.equal(
    english.stderr,
    `client: connected to 127.0.0.1:${server.port}\nclient: stopped: end of input\n`,
  );
});

Deno.test({
  name: `LANG=fr_FR.UTF-8 on a terminal: the prompt line in French${
    ptyMissing ? ` (ignored: ${ptyMissing})` : ""
  }`,
  ignore: ptyMissing !== "",
  async fn() {
    await using server = await startServer("tcp_echo.ts");
    // (The shell of script(1) may warn that this machine lacks the
    // locale: Deno needs only the variable.)
    await using terminal = onTerminal(["--port", String(server.port)], {
      env: FR,
    });
    const writer = terminal.process.stdin.getWriter();
    try {
      await terminal.waitForStdout(" pour finir)\r\n> ");
      await writer.write(utf8("\n"));
      const done = await terminal.finished();
      assert.match(
        text(done.stdout),
        /(?:^|\n)client\u00a0: connecté à \S+:\d+ \(une ligne vide ou Ctrl-D pour finir\)\r\n> \r\nclient\u00a0: arrêt\u00a0: ligne vide\r\n$/,
      );
    } finally {
      await writer.close().catch(() => {});
    }
  },
});

// ---------------------------------------------------------------------------
// The header card

testHeaderCard(SCRIPT, 5);
