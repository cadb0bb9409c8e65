/**
 * udp_echo.ts against real sockets: the UDP echo server of sheet 000 §1.4,
 * started exactly as its task in deno.json runs it.
 *
 * UDP on loopback does not lose datagrams unless a receive buffer is full,
 * so exchanges are single tries with a bounded wait, except right after a
 * flood, where the kernel may still be dropping.
 */

import assert from "node:assert/strict";
import {
  copyAlone,
  escapeRegExp,
  IPV4,
  IPV6,
  ROOT,
  runScript,
  startServer,
  taskFlags,
  testBothFamilies,
  text,
  utf8,
  WAIT_MS,
  within,
} from "./helpers.ts";
import {
  assertNoStackTrace,
  testHeaderCard,
  testServerCommandLine,
} from "./server_cli.ts";
import {
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
import { dirname } from "node:path";
import { loopGuard, parseOptions } from "../udp_echo.ts";

const SCRIPT = "udp_echo.ts";
/** A port below 1024 for the loop-guard tests (one that nothing on a test
 * machine is likely to use; the echo service itself is 7). */
const LOW_PORT = 999;
const SERVER = {
  script: SCRIPT,
  title: "",
  tcpCounts: "",
  readyTail: "",
  lowPort: LOW_PORT,
  loop: "loop",
};

testServerCommandLine({
  script: SCRIPT,
  transport: "udp",
  async probe(server) {
    using socket = udpSocket(IPV4);
    const payload = utf8("copied and run alone\n");
    const [echo] = await udpRoundTrip(socket, IPV4, server.port, payload);
    assert.deepEqual(echo, payload);
  },
  probeLine: /echoed 21 bytes to 127\.0\.0\.1:\d+/,
});

// ---------------------------------------------------------------------------
// Listening, logging, the summary

Deno.test("ready line gives the real port; IPv4 and IPv6 on that one port", async () => {
  await using server = await startServer(SCRIPT);
  assert.match(
    server.readyLine,
    /^udp_echo: listening on \[::\]:\d+ \(IPv4 and IPv6\)$/,
  );
  assert.notEqual(server.port, 0);
  for (const family of [IPV4, IPV6]) {
    if (family.missing) continue;
    using socket = udpSocket(family);
    const payload = utf8(`hello over ${family.host}`);
    const [echo] = await udpRoundTrip(socket, family, server.port, payload);
    assert.deepEqual(echo, payload);
  }
});

Deno.test("started without --unstable-net (a lone copy): one line with the command, exit 1", async () => {
  const dir = await copyAlone(SCRIPT);
  try {
    await using child = runScript(SCRIPT, ["--port", "0"], {
      cwd: dir,
      flags: ["-N"],
    });
    const done = await child.finished();
    assert.equal(done.code, 1);
    assert.equal(
      done.stderr,
      "udp_echo: UDP needs the --unstable-net flag: run it as: deno run -N --unstable-net udp_echo.ts",
    );
    assert.equal(done.stdout, "");
    assertNoStackTrace(done.stderr);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

testBothFamilies(
  "one line per datagram by default, with the sender's address; the summary counts datagrams and bytes",
  async (family) => {
    await using server = await startServer(SCRIPT);
    using socket = udpSocket(family);
    const shown = family.name === "IPv4"
      ? `127.0.0.1:${localPort(socket)}`
      : `[::1]:${localPort(socket)}`;
    for (const payload of ["one", "two!"]) {
      const [echo] = await udpRoundTrip(
        socket,
        family,
        server.port,
        utf8(payload),
      );
      assert.equal(text(echo), payload);
    }
    const done = await server.stop();
    assert.equal(done.code, 0);
    assert.deepEqual(done.stdout.trimEnd().split("\n"), [
      server.readyLine,
      `udp_echo: echoed 3 bytes to ${shown}`,
      `udp_echo: echoed 4 bytes to ${shown}`,
      "udp_echo: stopped by SIGINT: 2 datagrams, 7 bytes echoed, 0 dropped",
    ]);
    assert.equal(done.stderr, "");
  },
);

testBothFamilies(
  "the line per datagram shows the sender's real address",
  async (family) => {
    await using server = await startServer(SCRIPT);
    using socket = udpSocket(family);
    const [echo] = await udpRoundTrip(
      socket,
      family,
      server.port,
      utf8("12345"),
    );
    assert.equal(echo.length, 5);
    const port = localPort(socket);
    const shown = family.name === "IPv4"
      ? `127.0.0.1:${port}`
      : `[::1]:${port}`;
    await server.stdout.waitFor(
      new RegExp(`^udp_echo: echoed 5 bytes to ${escapeRegExp(shown)}$`),
    );
    assert.doesNotMatch(server.stdout.text, /::ffff:/);
  },
);

for (const signal of ["SIGINT", "SIGTERM"] as const) {
  Deno.test(`${signal} prints the summary and exits 0`, async () => {
    await using server = await startServer(SCRIPT);
    using socket = udpSocket(IPV4);
    await udpRoundTrip(socket, IPV4, server.port, utf8("bye"));
    const done = await server.stop(signal);
    assert.equal(done.code, 0);
    assert.match(
      done.stdout,
      new RegExp(
        `^udp_echo: stopped by ${signal}: 1 datagram, 3 bytes echoed, 0 dropped$`,
        "m",
      ),
    );
    assert.equal(done.stderr, "");
  });
}

// ---------------------------------------------------------------------------
// Echo: whole datagrams, to their exact sender

testUdpEchoesWhole(SERVER);

// ---------------------------------------------------------------------------
// The loop guard

const testLowPort = lowPortTester(LOW_PORT);

testUdpLoopGuard(SERVER);

// IPv6 loopback has one address only (::1), so there a second socket on the
// server's port cannot exist.
Deno.test({
  name: "a datagram from the server's own port is dropped [IPv6] (ignored: " +
    "::1 is the only IPv6 loopback address, so no second socket can hold the server's port)",
  ignore: true,
  fn() {},
});

// ---------------------------------------------------------------------------
// Floods and vanished peers

testUdpFloodsAndVanishedPeers(SERVER, {
  what: "from several sockets leaves it alive and answering",
  args: [],
  perSender: 50_000, // 200 000 datagrams per family, never read back
});

// ---------------------------------------------------------------------------
// client.ts --udp, end to end

Deno.test("client.ts --udp talks to it", async () => {
  await using server = await startServer(SCRIPT);
  await using client = runScript(
    "client.ts",
    ["--udp", "--host", "127.0.0.1", "--port", String(server.port)],
    { stdin: "hello\nsecond line\n" },
  );
  const done = await client.finished();
  assert.equal(done.code, 0, done.stderr);
  // The output collector joins lines: the last newline does not show.
  assert.equal(done.stdout, "hello\nsecond line");
  const stopped = await server.stop();
  assert.match(stopped.stdout, /: 2 datagrams, 18 bytes echoed, 0 dropped$/m);
});

// ---------------------------------------------------------------------------
// The pure pieces, in-process (fast)

Deno.test("parseOptions: defaults, flags, help; ports 0..65535 whole numbers only", () => {
  assert.deepEqual(parseOptions([]), {
    host: "::",
    port: 7777,
    quiet: false,
    allowAnyPort: false,
  });
  assert.deepEqual(
    parseOptions(["--port", "0", "--host", "127.0.0.1", "--quiet"]),
    { host: "127.0.0.1", port: 0, quiet: true, allowAnyPort: false },
  );
  assert.equal(parseOptions(["--allow-any-port"])?.allowAnyPort, true);
  assert.equal(parseOptions(["--port", "65535"])?.port, 65535);
  assert.equal(parseOptions(["-h"]), null);
  assert.throws(() => parseOptions(["--nope"]), /Unknown option '--nope'/);
  assert.throws(() => parseOptions(["--verbose"]), /Unknown option/);
  for (const bad of ["65536", "-1", "1e3", "7777abc", "", " 80"]) {
    assert.throws(() => parseOptions([`--port=${bad}`]), /Invalid port/, bad);
  }
});

testLoopGuardFunction("loopGuard", loopGuard);

// ---------------------------------------------------------------------------
// Logging under a flood, --quiet

Deno.test("a burst of datagrams: every one gets its line (the lesson has no rate limit)", async () => {
  const COUNT = 40;
  await using server = await startServer(SCRIPT);
  using socket = udpSocket(IPV4);
  for (let i = 0; i < COUNT; i++) {
    await udpRoundTrip(socket, IPV4, server.port, utf8("v"), 3);
  }
  const done = await server.stop();
  const [, echoed] = done.stdout.match(/: (\d+) datagrams?, /)!;
  const echoLines =
    done.stdout.split("\n").filter((l) => / echoed 1 byte to /.test(l))
      .length;
  assert.equal(Number(echoed), COUNT);
  assert.equal(echoLines, COUNT);
});

Deno.test("--quiet: no line per echoed datagram", async () => {
  await using server = await startServer(SCRIPT, ["--quiet"]);
  using socket = udpSocket(IPV6);
  await udpRoundTrip(socket, IPV6, server.port, utf8("abc"));
  const done = await server.stop();
  assert.deepEqual(done.stdout.trimEnd().split("\n"), [
    server.readyLine,
    "udp_echo: stopped by SIGINT: 1 datagram, 3 bytes echoed, 0 dropped",
  ]);
});

// ---------------------------------------------------------------------------
// Run as a program: shebang, and a person at a terminal without -N

Deno.test({
  name: Deno.build.os === "windows"
    ? "chmod +x on a lone copy, then ./udp_echo.ts runs (ignored: no shebangs on Windows)"
    : "chmod +x on a lone copy, then ./udp_echo.ts runs (its shebang has the task's flags)",
  ignore: Deno.build.os === "windows",
  async fn() {
    const source = Deno.readTextFileSync(new URL(SCRIPT, ROOT));
    assert.equal(
      source.split("\n")[0],
      `#!/usr/bin/env -S deno run ${taskFlags(SCRIPT).join(" ")}`,
    );
    const dir = await copyAlone(SCRIPT);
    try {
      await Deno.chmod(`${dir}/${SCRIPT}`, 0o755);
      const child = new Deno.Command(`./${SCRIPT}`, {
        args: ["--port", "0"],
        cwd: dir,
        env: { PATH: `${dirname(Deno.execPath())}:${Deno.env.get("PATH")}` },
        stdin: "null",
        stdout: "piped",
        stderr: "piped",
      }).spawn();
      const out = readLines(child.stdout);
      try {
        const ready = await within(out.next(), "ready line", WAIT_MS);
        const port = Number(String(ready.value).match(/\]:(\d+) /)?.[1]);
        assert.ok(port > 0, String(ready.value));
        using socket = udpSocket(IPV4);
        const [echo] = await udpRoundTrip(socket, IPV4, port, utf8("hi"));
        assert.equal(text(echo), "hi");
      } finally {
        child.kill("SIGINT");
        const status = await child.status;
        await child.stderr.cancel();
        await out.return(undefined);
        assert.equal(status.code, 0);
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

async function* readLines(
  stream: ReadableStream<Uint8Array>,
): AsyncGenerator<string> {
  let pending = "";
  for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
    pending += chunk;
    let at;
    while ((at = pending.indexOf("\n")) >= 0) {
      yield pending.slice(0, at);
      pending = pending.slice(at + 1);
    }
  }
}

Deno.test("without -N and no terminal: no prompt, the one-line message, exit 1", async () => {
  await using child = runScript(SCRIPT, ["--port", "0"], {
    flags: ["--unstable-net"],
  });
  const done = await child.finished();
  assert.equal(done.code, 1);
  assert.equal(
    done.stderr,
    "udp_echo: Network permission missing: run it as: deno run -N --unstable-net udp_echo.ts",
  );
  assert.equal(done.stdout, "");
});

// ---------------------------------------------------------------------------
// French (LANG=fr_FR.UTF-8 or --lang fr), English otherwise (LANG=C)

const FR = { LANG: "fr_FR.UTF-8", LC_ALL: "fr_FR.UTF-8" };
const C = { LANG: "C", LC_ALL: "C" };
/** The no-break space French puts before ":" and ";". */
const NBSP = "\u00a0";

/** Starts the server in French on port 0 and reads its French ready line
 * (helpers' startServer waits for the English one). */
async function startFrench(args: string[] = []) {
  const server = runScript(SCRIPT, ["--port", "0", ...args], { env: FR });
  try {
    const ready = await server.stdout.waitFor(
      /^udp_echo\u00a0: à l'écoute sur \S+:(\d+)/,
    );
    const port = Number(ready.match(/\]:(\d+)/)![1]);
    return Object.assign(server, { readyLine: ready, port });
  } catch (err) {
    await server[Symbol.asyncDispose]();
    throw err;
  }
}

testBothFamilies(
  "LANG=fr_FR.UTF-8: ready line, a line per datagram and the summary in French",
  async (family) => {
    await using server = await startFrench();
    assert.equal(
      server.readyLine,
      `udp_echo${NBSP}: à l'écoute sur [::]:${server.port} (IPv4 et IPv6)`,
    );
    using socket = udpSocket(family);
    const shown = family.name === "IPv4"
      ? `127.0.0.1:${localPort(socket)}`
      : `[::1]:${localPort(socket)}`;
    for (const payload of ["un", "deux", "x".repeat(1500)]) {
      await udpRoundTrip(socket, family, server.port, utf8(payload));
    }
    await udpRoundTrip(socket, family, server.port, new Uint8Array(0));
    const done = await server.stop();
    assert.equal(done.code, 0);
    assert.deepEqual(done.stdout.split("\n"), [
      server.readyLine,
      `udp_echo${NBSP}: écho de 2 octets vers ${shown}`,
      `udp_echo${NBSP}: écho de 4 octets vers ${shown}`,
      // Grouped the French way (a narrow no-break space).
      `udp_echo${NBSP}: écho de 1\u202f500 octets vers ${shown}`,
      `udp_echo${NBSP}: écho de 0 octet vers ${shown}`,
      `udp_echo${NBSP}: arrêté par SIGINT${NBSP}: 4 datagrammes et 1\u202f506 octets renvoyés, 0 écarté`,
    ]);
    assert.equal(done.stderr, "");
  },
);

testLowPort(
  "LANG=fr_FR.UTF-8: a dropped datagram's line and the summary in French, singular for 1",
  async (family) => {
    await using server = await startFrench();
    using low = udpSocket(family, LOW_PORT);
    await low.send(utf8("boucle ?"), serverAddr(family, server.port));
    const from = family.name === "IPv4"
      ? `127.0.0.1:${LOW_PORT}`
      : `[::1]:${LOW_PORT}`;
    await server.stderr.waitFor(/écarté/);
    using normal = udpSocket(family);
    await udpRoundTrip(normal, family, server.port, utf8("a"));
    const done = await server.stop();
    assert.equal(
      done.stderr,
      `udp_echo${NBSP}: datagramme de ${from} écarté${NBSP}: port source inférieur à 1024 (garde anti-boucle${NBSP}; --allow-any-port la lève)`,
    );
    assert.match(
      done.stdout,
      /: arrêté par SIGINT\u00a0: 1 datagramme et 1 octet renvoyés, 1 écarté$/,
    );
  },
);

Deno.test("LANG=fr_FR.UTF-8: --help, usage errors and one-line failures in French", async () => {
  const run = async (args: string[], flags?: string[]) => {
    await using child = runScript(SCRIPT, args, { env: FR, flags });
    return await child.finished();
  };
  const help = await run(["--help"]);
  assert.equal(help.code, 0);
  assert.match(
    help.stdout,
    /^Utilisation\u00a0: deno run -N --unstable-net udp_echo\.ts \[options\]\n/,
  );
  assert.match(help.stdout, /--quiet +aucune ligne par datagramme/);
  assert.doesNotMatch(help.stdout, /\bthe\b|\bdefault\b/);
  const errors: [string[], string][] = [
    [["--nope"], "Option « --nope » inconnue"],
    [["extra"], `Argument « extra » inattendu${NBSP}: des options seulement`],
    [["--port"], "L'option « --port » attend une valeur"],
    [
      ["--port", "-5"],
      `Valeur de « --port » ambiguë${NBSP}: écrivez --port=-XYZ pour une valeur qui commence par un tiret`,
    ],
    [["--quiet=yes"], "L'option « --quiet » ne prend pas de valeur"],
    [
      ["--port", "70000"],
      `Port « 70000 » invalide${NBSP}: un nombre de 0 à 65535 attendu`,
    ],
    [["--lang", "de"], `Langue « de » invalide${NBSP}: fr ou en attendu`],
  ];
  for (const [args, line] of errors) {
    const done = await run(args);
    assert.equal(done.code, 2, args.join(" "));
    const [first, second] = done.stderr.split("\n");
    assert.equal(first, `udp_echo${NBSP}: ${line}`);
    assert.match(second, /^Utilisation\u00a0: /);
    assertNoStackTrace(done.stderr);
  }
  const noNet = await run(["--port", "0"], ["--unstable-net"]);
  assert.equal(noNet.code, 1);
  assert.equal(
    noNet.stderr,
    `udp_echo${NBSP}: Permission réseau manquante${NBSP}; lancez-le ainsi${NBSP}: deno run -N --unstable-net udp_echo.ts`,
  );
  // A name that never resolves (RFC 6761): Deno's English, in French.
  const unknown = await run(["--host", "nowhere.invalid", "--port", "0"]);
  assert.equal(unknown.code, 1);
  assert.equal(
    unknown.stderr,
    `udp_echo${NBSP}: Impossible d'écouter sur nowhere.invalid:0${NBSP}: hôte inconnu${NBSP}; vérifiez --host`,
  );
  const taken = Deno.listenDatagram({
    hostname: "::",
    port: 0,
    transport: "udp",
  });
  try {
    const port = (taken.addr as Deno.NetAddr).port;
    const inUse = await run(["--port", String(port)]);
    assert.equal(inUse.code, 1);
    assert.equal(
      inUse.stderr,
      `udp_echo${NBSP}: Impossible d'écouter sur [::]:${port}${NBSP}: adresse déjà utilisée${NBSP}; arrêtez l'autre serveur (voir${NBSP}: ss -ulnp) ou choisissez un autre --port`,
    );
  } finally {
    taken.close();
  }
});

Deno.test("LANG=fr_FR.UTF-8, started without --unstable-net: the one line in French", async () => {
  const dir = await copyAlone(SCRIPT);
  try {
    await using child = runScript(SCRIPT, ["--port", "0"], {
      cwd: dir,
      flags: ["-N"],
      env: FR,
    });
    const done = await child.finished();
    assert.equal(done.code, 1);
    assert.equal(
      done.stderr,
      `udp_echo${NBSP}: UDP demande l'option --unstable-net${NBSP}; lancez-le ainsi${NBSP}: deno run -N --unstable-net udp_echo.ts`,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("--lang overrides the system's language; LANG=C is English; a leading -- is dropped", async () => {
  const firstLineOf = async (args: string[], env: Record<string, string>) => {
    await using child = runScript(SCRIPT, args, { env });
    const done = await child.finished();
    assert.equal(done.code, 0, done.stderr);
    return done.stdout.split("\n")[0];
  };
  const english = "Usage: deno run -N --unstable-net udp_echo.ts [options]";
  const french =
    "Utilisation\u00a0: deno run -N --unstable-net udp_echo.ts [options]";
  assert.equal(await firstLineOf(["--help"], C), english);
  assert.equal(await firstLineOf(["--help"], FR), french);
  assert.equal(await firstLineOf(["--lang", "fr", "--help"], C), french);
  assert.equal(await firstLineOf(["--help", "--lang=en"], FR), english);
  assert.equal(await firstLineOf(["--", "--help"], C), english);
  assert.equal(await firstLineOf(["--", "--lang", "fr", "-h"], C), french);
});

Deno.test("LANG=C: the ready line and the summary stay as they were", async () => {
  await using server = await startServer(SCRIPT, [], { env: C });
  assert.match(
    server.readyLine,
    /^udp_echo: listening on \[::\]:\d+ \(IPv4 and IPv6\)$/,
  );
  using socket = udpSocket(IPV4);
  await udpRoundTrip(socket, IPV4, server.port, utf8("1500"));
  const done = await server.stop();
  assert.match(
    done.stdout,
    /\nudp_echo: echoed 4 bytes to 127\.0\.0\.1:\d+\nudp_echo: stopped by SIGINT: 1 datagram, 4 bytes echoed, 0 dropped$/,
  );
});

// ---------------------------------------------------------------------------
// The header card

testHeaderCard(SCRIPT, 4);
