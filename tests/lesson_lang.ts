/**
 * The TCP lessons in the reader's language (issue 21, item 1), as one set
 * of tests each lesson's test file registers: under LANG=fr_FR.UTF-8 the
 * ready line, the per-client lines, the summary, a usage error and --help
 * are French (no-break space before ":", the address and port where the
 * English line has them); under LANG=C they are the English ones, exactly;
 * `--lang` overrides the system's language both ways.
 */

import assert from "node:assert/strict";
import {
  connect,
  escapeRegExp,
  IPV4,
  readExactly,
  runScript,
  shownAddress,
  taskFlags,
  utf8,
  writeAll,
} from "./helpers.ts";
import { assertNoStackTrace } from "./server_cli.ts";

/** LC_ALL too: it wins over LANG, and the tester's own may be set. */
const FRENCH = { LANG: "fr_FR.UTF-8", LC_ALL: "fr_FR.UTF-8" };
const POSIX = { LANG: "C", LC_ALL: "C" };
const NBSP = "\u00a0";

export interface LessonLanguage {
  script: string;
  /** What the ready line adds after the addresses, e.g. ", 2 threads". */
  readyTail?: string;
  /** Extra options to start the server with. */
  args?: string[];
  /** The per-client lines' prefix after the program's name: "[1] " in a
   * worker_echo thread ("\\[\\d+\\] " as a pattern), "" elsewhere. */
  tag?: string;
  /** What a client that sent "hé\n" (4 bytes) and left is logged with,
   * after "left" ("est parti"): in English and in French. */
  left: [string, string];
  /** The server's answer to "hé\n" (default: the same bytes). */
  reply?: string;
}

export function testLessonLanguages(lesson: LessonLanguage): void {
  const { script } = lesson;
  const name = script.replace(/\.ts$/, "");
  const runLine = escapeRegExp(
    `deno run ${taskFlags(script).join(" ")} ${script}`,
  );
  const tag = lesson.tag ?? "";
  const cases = [
    {
      what: "LANG=fr_FR.UTF-8: French",
      env: FRENCH,
      args: [],
      colon: `${NBSP}: `,
      ready: `à l'écoute sur \\[::\\]:(\\d+) \\(IPv4 et IPv6\\)`,
      connected: "connecté",
      left: `est parti ${lesson.left[1]}`,
      stopped: "arrêté par SIGINT",
      usage: "Utilisation",
      badPort: `Port « 70000 » invalide${NBSP}: un nombre de 0 à 65535 attendu`,
      help: `--lang L     fr ou en${NBSP}: la langue des messages`,
    },
    {
      what: "LANG=C: English, exactly as before",
      env: POSIX,
      args: [],
      colon: ": ",
      ready: `listening on \\[::\\]:(\\d+) \\(IPv4 and IPv6\\)`,
      connected: "connected",
      left: `left ${lesson.left[0]}`,
      stopped: "stopped by SIGINT",
      usage: "Usage",
      badPort: 'Invalid port "70000": expected a number from 0 to 65535',
      help: "--lang L     fr or en: the language of the messages",
    },
  ];
  for (const c of cases) {
    Deno.test(`${name}: ${c.what}: ready line, a client's lines, summary`, async () => {
      await using server = runScript(
        script,
        ["--port", "0", ...(lesson.args ?? [])],
        { env: c.env },
      );
      const ready = await server.stdout.waitFor(/./);
      const readyShape = new RegExp(
        `^${name}${c.colon}${c.ready}${escapeRegExp(lesson.readyTail ?? "")}$`,
      );
      assert.match(ready, readyShape);
      const port = Number(ready.match(readyShape)![1]);
      const conn = await connect(IPV4, port);
      const shown = escapeRegExp(shownAddress(conn.localAddr));
      const reply = utf8(lesson.reply ?? "hé\n");
      await writeAll(conn, utf8("hé\n"));
      assert.deepEqual(await readExactly(conn, reply.length), reply);
      conn.close();
      await server.stdout.waitFor(
        new RegExp(`^${name}${c.colon}${tag}${shown} ${c.left}$`),
      );
      assert.ok(
        server.stdout.lines.some((l) =>
          new RegExp(`^${name}${c.colon}${tag}${shown} ${c.connected}$`).test(l)
        ),
        server.stdout.text,
      );
      const done = await server.stop();
      assert.equal(done.code, 0);
      assert.match(
        done.stdout,
        new RegExp(`^${name}${c.colon}${c.stopped}`, "m"),
      );
      assert.equal(done.stderr, "");
    });

    Deno.test(`${name}: ${c.what}: a usage error and --help`, async () => {
      await using bad = runScript(script, ["--port", "70000"], { env: c.env });
      const failed = await bad.finished();
      assert.equal(failed.code, 2);
      assert.equal(
        failed.stderr.split("\n")[0],
        `${name}${c.colon}${c.badPort}`,
      );
      assert.match(
        failed.stderr,
        new RegExp(`^${c.usage}${c.colon}${runLine} \\[options\\]`, "m"),
      );
      assertNoStackTrace(failed.stderr);
      await using help = runScript(script, ["--help"], { env: c.env });
      const shown = await help.finished();
      assert.equal(shown.code, 0);
      assert.match(
        shown.stdout,
        new RegExp(`^${c.usage}${c.colon}${runLine} \\[options\\]`),
      );
      assert.ok(
        shown.stdout.replace(/--lang L +/, "--lang L     ").includes(c.help),
        shown.stdout,
      );
      assert.equal(shown.stderr, "");
    });
  }

  Deno.test(`${name}: an unknown --host: French in French, Deno's words in English`, async () => {
    const where = "nowhere.invalid:0"; // .invalid never resolves (RFC 6761)
    for (
      const [env, expected] of [
        [
          FRENCH,
          `${name}${NBSP}: Impossible d'écouter sur ${where}${NBSP}: hôte inconnu${NBSP}; vérifiez --host`,
        ],
        [
          POSIX,
          `${name}: Cannot listen on ${where}: failed to lookup address information: `,
        ],
      ] as const
    ) {
      await using child = runScript(
        script,
        ["--host", "nowhere.invalid", "--port", "0", ...(lesson.args ?? [])],
        { env },
      );
      const done = await child.finished();
      assert.equal(done.code, 1);
      assert.ok(done.stderr.startsWith(expected), done.stderr);
      assert.ok(!done.stderr.trim().includes("\n"), done.stderr);
      assert.equal(done.stdout, "");
    }
  });

  Deno.test(`${name}: --lang overrides the system's language, both ways`, async () => {
    for (
      const [env, lang, expected] of [
        [POSIX, "fr", `${name}${NBSP}: Port « 70000 » invalide`],
        [FRENCH, "en", `${name}: Invalid port "70000"`],
      ] as const
    ) {
      // After a leading "--" too, as `deno task NAME -- …` passes it.
      await using child = runScript(
        script,
        ["--", "--lang", lang, "--port", "70000"],
        { env },
      );
      const done = await child.finished();
      assert.equal(done.code, 2);
      assert.ok(done.stderr.startsWith(expected), done.stderr);
    }
    await using wrong = runScript(script, ["--lang", "de"], { env: POSIX });
    const done = await wrong.finished();
    assert.equal(done.code, 2);
    assert.ok(
      done.stderr.startsWith(
        `${name}: Invalid language "de": expected fr or en`,
      ),
      done.stderr,
    );
  });
}
