/**
 * The command-line behaviour every server shares (SPEC "Common behaviour"),
 * as one set of tests each server's test file registers for itself:
 * --help, usage errors (exit 2), port in use and missing permission (exit 1,
 * one line, no stack trace), and the copy-and-run check.
 */

import assert from "node:assert/strict";
import {
  copyAlone,
  escapeRegExp,
  headerRunLine,
  ptyMissing,
  ROOT,
  runScript,
  type Server,
  startServer,
  stillPending,
  taskFlags,
  utf8,
  WAIT_MS,
  within,
} from "./helpers.ts";

export interface ServerCli {
  /** Root script, e.g. "tcp_echo.ts". */
  script: string;
  /** "tcp" (default) or "udp": what a port in use is made of. */
  transport?: "tcp" | "udp";
  /** A short exchange proving a server works (used on the lone copy). */
  probe: (server: Server) => Promise<void>;
  /** A line the probe makes the server print, if any: on a terminal, the
   * test waits for it before Ctrl-C, since a terminal throws away output not
   * yet read when it takes the interrupt character. */
  probeLine?: RegExp;
}

/** The first line of stderr; Deno's own RUST_BACKTRACE block never comes
 * first. */
export function firstLine(text: string): string {
  return text.split("\n")[0];
}

export function assertNoStackTrace(stderr: string): void {
  assert.doesNotMatch(stderr, /^\s+at /m, `stack trace in:\n${stderr}`);
  assert.doesNotMatch(stderr, /Uncaught|Stack backtrace/, stderr);
}

const INVALID_PORT = "expected a number from 0 to 65535";

export function testServerCommandLine(cli: ServerCli): void {
  const { script } = cli;
  const name = script.replace(/\.ts$/, "");
  const runLine = `deno run ${taskFlags(script).join(" ")} ${script}`;
  const usageStart = new RegExp(
    `^Usage: ${runLine.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")} \\[options\\]`,
    "m",
  );

  Deno.test(`${name}: --help prints the usage on stdout and exits 0`, async () => {
    await using child = runScript(script, ["--help"]);
    const done = await child.finished();
    assert.equal(done.code, 0);
    assert.match(done.stdout, usageStart);
    assert.match(done.stdout, /--port N/);
    assert.equal(done.stderr, "");
  });

  const usageErrors: [string[], string][] = [
    [["--nope"], "Unknown option '--nope'"],
    [
      ["extra"],
      "Unexpected argument 'extra'. This command does not take positional arguments",
    ],
    [["--port"], "Option '--port <value>' argument missing"],
    [
      ["--port", "-5"],
      "Option '--port' argument is ambiguous. Did you forget to specify the option argument for '--port'? To specify an option argument starting with a dash use '--port=-XYZ'.",
    ],
    [["--port", "70000"], `Invalid port "70000": ${INVALID_PORT}`],
    [["--port", "12ab"], `Invalid port "12ab": ${INVALID_PORT}`],
    [["--port=-1"], `Invalid port "-1": ${INVALID_PORT}`],
  ];
  for (const [args, line] of usageErrors) {
    Deno.test(`${name}: ${args.join(" ")} is a usage error: one line, usage, exit 2`, async () => {
      await using child = runScript(script, args);
      const done = await child.finished();
      assert.equal(done.code, 2);
      assert.equal(firstLine(done.stderr), `${name}: ${line}`);
      assert.match(done.stderr, usageStart);
      assert.equal(done.stdout, "");
      assertNoStackTrace(done.stderr);
    });
  }

  Deno.test(`${name}: a port in use is one line saying what to do, exit 1`, async () => {
    const taken = cli.transport === "udp"
      ? Deno.listenDatagram({ hostname: "::", port: 0, transport: "udp" })
      : Deno.listen({ hostname: "::", port: 0 });
    try {
      const port = (taken.addr as Deno.NetAddr).port;
      await using child = runScript(script, ["--port", String(port)]);
      const done = await child.finished();
      assert.equal(done.code, 1);
      const ss = cli.transport === "udp" ? "ss -ulnp" : "ss -tlnp";
      assert.equal(
        firstLine(done.stderr),
        `${name}: Cannot listen on [::]:${port}: address already in use; stop the other server (see: ${ss}) or choose another --port`,
      );
      assertNoStackTrace(done.stderr);
    } finally {
      taken.close();
    }
  });

  Deno.test(`${name}: without network permission: one line with the command, exit 1`, async () => {
    const flags = taskFlags(script).filter((f) => f !== "-N");
    await using child = runScript(script, ["--port", "0"], { flags });
    const done = await child.finished();
    assert.equal(done.code, 1);
    assert.equal(
      firstLine(done.stderr),
      `${name}: Network permission missing: run it as: ${runLine}`,
    );
    assertNoStackTrace(done.stderr);
  });

  Deno.test({
    name: `${name}: a lone copy made executable runs through its shebang line`,
    ignore: Deno.build.os === "windows",
    fn: async () => {
      const source = await Deno.readTextFile(new URL(script, ROOT));
      const shebang = source.split("\n")[0];
      assert.equal(
        shebang,
        `#!/usr/bin/env -S ${runLine.replace(/ \S+$/, "")}`,
      );
      const dir = await copyAlone(script);
      try {
        await Deno.chmod(`${dir}/${script}`, 0o755);
        // `env` finds deno on the PATH, as it would for a user.
        const bin = Deno.execPath().replace(/\/[^/]*$/, "");
        await using server = await startServer(script, [], {
          cwd: dir,
          command: [`./${script}`],
          env: { PATH: `${bin}:${Deno.env.get("PATH") ?? ""}` },
        });
        await cli.probe(server);
        assert.equal((await server.stop()).code, 0);
      } finally {
        await Deno.remove(dir, { recursive: true });
      }
    },
  });

  Deno.test(`${name}: the header's run line is the task's, and a lone copy runs with it`, async () => {
    const header = headerRunLine(script);
    assert.equal(header.join(" "), runLine);
    const dir = await copyAlone(script);
    try {
      await using server = await startServer(script, [], {
        cwd: dir,
        flags: header.slice(2, -1),
      });
      await cli.probe(server);
      assert.equal((await server.stop()).code, 0);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });

  for (const answer of ["y", "n"]) {
    const what = answer === "y"
      ? "yes: a working server, and no second prompt"
      : "no: the one-line message, exit 1";
    Deno.test({
      name: `${name}: without -N on a terminal, one prompt; ${what}${
        ptyMissing ? ` (ignored: ${ptyMissing})` : ""
      }`,
      ignore: ptyMissing !== "",
      fn: () => promptOnce(cli, runLine, answer === "y"),
    });
  }
}

/** Runs the server without -N on a pseudo-terminal (script(1), so that Deno
 * prompts), answers Deno's permission prompt, and checks that it was the
 * only one: no second prompt for the dual-stack probe (the TCP servers),
 * for each thread (worker_echo) or for each peer (udp_echo's send()). */
async function promptOnce(
  cli: ServerCli,
  runLine: string,
  yes: boolean,
): Promise<void> {
  const { script } = cli;
  const name = script.replace(/\.ts$/, "");
  const flags = taskFlags(script).filter((f) => f !== "-N");
  // `exec`: no shell stays between script(1) and Deno to take the Ctrl-C.
  const command = [
    "exec",
    Deno.execPath(),
    "run",
    ...flags,
    script,
    "--port",
    "0",
  ].join(" ");
  const child = new Deno.Command("script", {
    args: ["-qfec", command, "/dev/null"],
    cwd: new URL(".", ROOT),
    env: { NO_COLOR: "1" },
    stdin: "piped",
    stdout: "piped",
    stderr: "null",
  }).spawn();
  const writer = child.stdin.getWriter();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let screen = "";
  const waitFor = (pattern: RegExp) =>
    within(
      (async () => {
        while (!pattern.test(screen)) {
          const { value, done } = await reader.read();
          if (done) throw new Error(`ended before ${pattern}: ${screen}`);
          screen += value;
        }
      })(),
      String(pattern),
      WAIT_MS,
    );
  try {
    await waitFor(/Allow\?.*> /);
    // Deno discards what was typed before its prompt reads: type the answer
    // until Deno confirms it (bounded).
    const answered = waitFor(/Granted|Denied/);
    for (let i = 0; i < 50; i++) {
      await writer.write(utf8(yes ? "y\n" : "n\n"));
      if (!(await stillPending(answered, 200))) break;
    }
    await answered;
    if (yes) {
      const ready = new RegExp(
        `${name}: listening on \\[::\\]:(\\d+) [^\\n]*\\n`,
      );
      await waitFor(ready);
      const readyLine = screen.match(ready)![0].trim();
      const port = Number(screen.match(ready)![1]);
      // The probe connects, so every thread and listener is up by now.
      await cli.probe({ port, readyLine } as unknown as Server);
      if (cli.probeLine) await waitFor(cli.probeLine);
      await writer.write(new Uint8Array([3])); // Ctrl-C
      await waitFor(/stopped by SIGINT/);
    } else {
      await waitFor(new RegExp(`${name}: .*\\r?\\n`));
    }
    await writer.close();
    while (!(await reader.read()).done) { /* drain */ }
    const status = await within(child.status, "exit", WAIT_MS);
    assert.equal(screen.match(/Deno requests/g)?.length, 1, screen);
    if (yes) {
      assert.equal(status.code, 0, screen);
    } else {
      assert.equal(status.code, 1, screen);
      assert.ok(
        screen.includes(
          `\n${name}: Network permission missing: run it as: ${runLine}`,
        ),
        screen,
      );
      assertNoStackTrace(screen);
    }
  } finally {
    await writer.close().catch(() => {});
    await reader.cancel().catch(() => {});
    try {
      child.kill("SIGKILL");
    } catch {
      // exited already
    }
    await child.status;
  }
}

/** Runs `parse` with console.log and console.error captured: the command
 * line prints its usage and its mistakes itself. */
export function captured<T>(
  parse: () => T,
): { result: T; out: string; err: string } {
  const out: string[] = [];
  const err: string[] = [];
  const { log, error } = console;
  console.log = (...words: unknown[]) => out.push(words.join(" "));
  console.error = (...words: unknown[]) => err.push(words.join(" "));
  try {
    const result = parse();
    return { result, out: out.join("\n"), err: err.join("\n") };
  } finally {
    console.log = log;
    console.error = error;
  }
}

/** Each of `cases` (options and the start of the line they give) is a usage
 * error: that line, then the usage with the run line, on stderr, exit 2,
 * nothing on stdout, no stack trace; each test named after the script. */
export function testUsageErrors(
  script: string,
  runLine: string,
  cases: readonly (readonly [readonly string[], string])[],
): void {
  const name = script.replace(/\.ts$/, "");
  for (const [args, line] of cases) {
    Deno.test(`${name}: ${args.join(" ")} is a usage error, exit 2`, async () => {
      await using child = runScript(script, [...args]);
      const done = await child.finished();
      assert.equal(done.code, 2);
      assert.ok(
        done.stderr.startsWith(`${name}: ${line}`),
        done.stderr.split("\n")[0],
      );
      assert.match(
        done.stderr,
        new RegExp(`^Usage: ${escapeRegExp(runLine)} \\[options\\]`, "m"),
      );
      assert.equal(done.stdout, "");
      assertNoStackTrace(done.stderr);
    });
  }
}

/** A lesson's header card: at most 40 lines, whose ↔ map (at least
 * `minRights` lines) names only code the file has. */
export function testHeaderCard(script: string, minRights: number): void {
  Deno.test("header: a card of at most 40 lines whose ↔ map names code the file has", () => {
    const source = Deno.readTextFileSync(new URL(script, ROOT));
    const lines = source.split("\n");
    const end = lines.indexOf(" */");
    assert.ok(end >= 0 && end < 40, `header ends at line ${end + 1}`);
    const code = lines.slice(end + 1).filter((l) => !/^\s*(\*|\/\/)/.test(l))
      .join("\n");
    const rights = lines.slice(0, end).filter((l) => l.includes("↔"))
      .map((l) => l.slice(l.indexOf("↔") + 1));
    assert.ok(rights.length >= minRights, "no ↔ map");
    for (const right of rights.slice(1)) {
      for (const [, fragment] of right.matchAll(/`([^`]+)`/g)) {
        assert.ok(code.includes(fragment), `not in the code: ${fragment}`);
      }
    }
  });
}
