// The teacher's guide (docs/guide-fr.md, docs/guide-en.md) shows strace
// excerpts. These tests run the guide's own recipe against the real servers
// and check that every syscall the guide shows really appears in the trace,
// so the guide cannot rot when the servers or Deno change.

import assert from "node:assert/strict";
import {
  eventually,
  ROOT_DIR,
  runScript,
  taskFlags,
  WAIT_MS,
  within,
} from "./helpers.ts";

const GUIDES = ["docs/guide-fr.md", "docs/guide-en.md"];

/** The recipe's filter, exactly as both guides print it. */
export const RECIPE_FILTER =
  "-qq -e signal=none -e trace=socket,bind,listen,accept4,recvfrom,sendto,shutdown,epoll_wait";

function hasStrace(): boolean {
  try {
    const out = new Deno.Command("strace", {
      args: ["-V"],
      stdout: "null",
      stderr: "null",
    })
      .outputSync();
    return out.success;
  } catch {
    return false;
  }
}
const STRACE = Deno.build.os === "linux" && hasStrace();
const why = STRACE ? "" : " (ignored: strace is not installed on this machine)";

/** Syscall names of the annotated excerpt between `<!-- strace:NAME -->`
 * and the end of the next fenced block. */
export function excerptSyscalls(markdown: string, name: string): string[] {
  const start = markdown.indexOf(`<!-- strace:${name} -->`);
  if (start < 0) return [];
  const open = markdown.indexOf("```", start);
  const body = markdown.indexOf("\n", open) + 1;
  const close = markdown.indexOf("\n```", body);
  const names = new Set<string>();
  for (const line of markdown.slice(body, close).split("\n")) {
    const m = /^([a-z_0-9]+)\(/.exec(line);
    if (m) names.add(m[1]);
  }
  return [...names];
}

Deno.test("both guides print the same strace recipe", async () => {
  for (const guide of GUIDES) {
    const md = await Deno.readTextFile(ROOT_DIR + guide);
    assert.ok(
      md.includes(`strace ${RECIPE_FILTER}`),
      `${guide} lacks the recipe`,
    );
    for (const name of ["tcp", "udp"]) {
      assert.ok(
        excerptSyscalls(md, name).length >= 4,
        `${guide}: no ${name} excerpt`,
      );
    }
  }
});

/** The PID of strace's child (the traced server), 0 if none. */
function traceePid(stracePid: number): number {
  try {
    const list = Deno.readTextFileSync(
      `/proc/${stracePid}/task/${stracePid}/children`,
    ).trim();
    const pid = Number(list.split(/\s+/)[0]);
    return Number.isInteger(pid) && pid > 1 ? pid : 0;
  } catch {
    return 0;
  }
}

async function traceRun(
  script: string,
  talk: (port: number) => Promise<void>,
): Promise<string> {
  const out = await Deno.makeTempFile({ suffix: ".trace" });
  try {
    const child = new Deno.Command("strace", {
      args: [
        ...RECIPE_FILTER.split(" "),
        "-o",
        out,
        Deno.execPath(),
        "run",
        ...taskFlags(script),
        script,
        "--port",
        "0",
      ],
      cwd: ROOT_DIR,
      // English: the ready line below is read in English.
      env: { DENO_NO_UPDATE_CHECK: "1", NO_COLOR: "1", LANG: "C", LC_ALL: "C" },
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const timer = setTimeout(() => child.kill("SIGKILL"), WAIT_MS * 2);
    const errText = child.stderr.pipeThrough(new TextDecoderStream());
    const outText = child.stdout.pipeThrough(new TextDecoderStream());
    let seen = "";
    const drainOut = (async () => {
      for await (const chunk of outText) seen += chunk;
    })();
    let errSeen = "";
    const drainErr = (async () => {
      for await (const chunk of errText) errSeen += chunk;
    })();
    try {
      let port = 0;
      for (let i = 0; i < 200 && port === 0; i++) {
        const m = /listening on \S*:(\d+)/.exec(seen + errSeen);
        if (m) port = Number(m[1]);
        else await new Promise((r) => setTimeout(r, 50));
      }
      assert.ok(port > 0, `no ready line: ${seen}${errSeen}`);
      await talk(port);
      await new Promise((r) => setTimeout(r, 200)); // let the server log the close
    } finally {
      // Ctrl-C goes to the traced server itself (strace's own child):
      // strace keeps running until its tracee exits.
      const tracee = traceePid(child.pid);
      try {
        if (tracee > 1) Deno.kill(tracee, "SIGINT");
        else child.kill("SIGKILL");
      } catch { /* already gone */ }
      await child.status;
      clearTimeout(timer);
      await drainOut;
      await drainErr;
    }
    return await Deno.readTextFile(out);
  } finally {
    await Deno.remove(out);
  }
}

function checkTrace(name: string, trace: string) {
  const traced = new Set(
    trace.split("\n").map((l) => /^(?:\d+\s+)?([a-z_0-9]+)\(/.exec(l)?.[1])
      .filter(Boolean),
  );
  for (const guide of GUIDES) {
    const md = Deno.readTextFileSync(ROOT_DIR + guide);
    for (const call of excerptSyscalls(md, name)) {
      assert.ok(
        traced.has(call),
        `${guide} shows ${call}() but the real ${name} trace has none`,
      );
    }
  }
}

const hého = new TextEncoder().encode("hého\n");

Deno.test({
  name:
    `guide's strace recipe on tcp_echo.ts shows every syscall of its excerpt${why}`,
  ignore: !STRACE,
  async fn() {
    const trace = await traceRun("tcp_echo.ts", async (port) => {
      for (let i = 0; i < 2; i++) {
        const conn = await Deno.connect({ hostname: "127.0.0.1", port });
        try {
          await conn.write(hého);
          const buf = new Uint8Array(64);
          let got = 0;
          await within(
            (async () => {
              while (got < hého.length) {
                const n = await conn.read(buf.subarray(got));
                if (n === null) break;
                got += n;
              }
            })(),
            "the echo",
          );
          assert.deepEqual(buf.subarray(0, got), hého);
        } finally {
          conn.close();
        }
      }
    });
    assert.match(trace, /recvfrom\(\d+, "h\\303\\251ho\\n"/);
    assert.match(trace, /accept4\(.*EAGAIN/);
    checkTrace("tcp", trace);
  },
});

Deno.test({
  name:
    `guide's strace recipe on udp_echo.ts shows every syscall of its excerpt${why}`,
  ignore: !STRACE,
  async fn() {
    const trace = await traceRun("udp_echo.ts", async (port) => {
      const sock = Deno.listenDatagram({
        transport: "udp",
        hostname: "127.0.0.1",
        port: 0,
      });
      try {
        await sock.send(hého, {
          transport: "udp",
          hostname: "127.0.0.1",
          port,
        });
        const [data] = await within(
          sock.receive(new Uint8Array(64)),
          "the UDP echo",
        );
        assert.deepEqual(data, hého);
      } finally {
        sock.close();
      }
    });
    assert.match(trace, /sendto\(\d+, "h\\303\\251ho\\n"/);
    checkTrace("udp", trace);
  },
});

// ---------------------------------------------------------------------------
// What the guides, LISEZMOI and README say, checked without sockets.

const FRENCH_DOCS = ["LISEZMOI.md", "docs/guide-fr.md"];

/** The prose of a markdown text: fenced blocks, inline code, HTML comments
 * and link targets removed (typography rules do not apply to code). */
export function prose(markdown: string): string {
  return markdown
    .replace(/^\s*```[^\n]*\n[\s\S]*?^\s*```/gm, "")
    .replace(/`+[^`]*?`+/g, "`C`")
    .replace(/<!--[\s\S]*?-->/g, "")
    .replace(/\]\([^)]*\)/g, "]");
}

/** French typography slips in a markdown text: `:` `;` `?` `!` not preceded
 * by a no-break space (U+00A0 or U+202F), « » without one inside. */
export function typographySlips(markdown: string): string[] {
  const slips: string[] = [];
  for (const line of prose(markdown).split("\n")) {
    // Also a space beside a no-break space (« ok\n» wrapped badly).
    const rule =
      /[^\u00a0\u202f]([:;?!])(?=\s|$)|«[^\u00a0\u202f]|[^\u00a0\u202f]»|[ \t\u00a0\u202f][\u00a0\u202f]|[\u00a0\u202f][ \t]|[\u00a0\u202f]$|^[\u00a0\u202f]/g;
    for (const m of line.matchAll(rule)) {
      slips.push(line.slice(Math.max(0, m.index - 30), m.index + 10));
    }
  }
  return slips;
}

Deno.test("French docs: a no-break space before : ; ? ! and inside « » (outside code)", async () => {
  // The rule catches what the docs used to say.
  assert.equal(typographySlips("Terminal 1 :").length, 1);
  assert.equal(
    typographySlips("En tube : `printf`; ok ? « instable »").length,
    5,
  );
  assert.equal(typographySlips("`a : b` et\n```\nx : y\n```").length, 0);
  assert.equal(typographySlips("« ok\n\u00a0»").length, 2);
  for (const file of FRENCH_DOCS) {
    const slips = typographySlips(await Deno.readTextFile(ROOT_DIR + file));
    assert.deepEqual(slips, [], `${file}: ${slips.length} slips`);
  }
});

Deno.test("guides: netstat's -a means all sockets and -n turns name lookup off", async () => {
  const resolvesWithA = /-a\b[^.\n]{0,40}(résout|resolves)/;
  assert.match("`-a` de `netstat` résout les noms", resolvesWithA);
  for (const guide of GUIDES) {
    const text = prose(await Deno.readTextFile(ROOT_DIR + guide))
      .replaceAll("`C`", "");
    assert.doesNotMatch(text, resolvesWithA, guide);
    const md = await Deno.readTextFile(ROOT_DIR + guide);
    assert.match(md, /`-a`\s+(toutes les sockets|all\s+sockets)/, guide);
    assert.match(md, /`-n`\s+(des numéros|numbers)/, guide);
  }
});

/** Each question of both sheets, by a token its answer-sheet row must hold
 * (the same in both languages: a command or a name from the sheet). */
const SHEET_QUESTIONS: [sheet: string, token: string][] = [
  ["000", "/etc/services"], // echo's port number
  ["000", "--port 7`"], // why 7777: ports below 1024
  ["000", "ss -tlnp"], // the server in netstat / ss -tuap
  ["000", "nc localhost 7777"], // the client port changes each time
  ["000", "Address already in use"], // bind fails
  ["000", "SO_REUSEADDR"], // the option, and why it needs waiting
  ["000", "client.ts`"], // §1.3: the client stops on an empty line
  ["000", "recvfrom"], // §1.4: strace the UDP server
  ["000", "UNCONN"], // §1.4: the UDP server in ss -tuap
  ["000", "nc -u"], // §1.4: the client port changes each time
  ["000", "listen(1)"], // §2: several clients at once
  ["000", "select_echo.ts"], // §2.1
  ["000", "run_starvation.sh"], // §2.1 under load
  ["000", "worker-1"], // §2.2
  ["001", "listen(5)"],
  ["001", "accept"], // accept blocks
  ["001", "infos_connexion"],
  ["001", "(32)"], // send returns 32
  ["001", "recv(1024)"],
  ["001", "--one-client"], // first server
  ["001", "--no-newline"], // the sheet's client and servers
  ["001", "Latin-1"], // accents
  ["001", "nc localhost 12800"], // second server, several clients
  ["001", "grep 12800"], // Errno 98 after fin
];

/** The answer sheet's rows: the table under the guide's first "## ". */
function answerSheet(markdown: string): string[][] {
  const start = markdown.indexOf("\n## ");
  const end = markdown.indexOf("\n## ", start + 1);
  return markdown.slice(start, end).split("\n")
    .filter((line) => /^\| *\d{3}/.test(line))
    .map((line) => line.split(/(?<!\\)\|/).slice(1, -1).map((c) => c.trim()));
}

Deno.test("guides: a one-screen answer sheet at the top answers every question of both sheets", async () => {
  const sheets: string[][][] = [];
  for (const guide of GUIDES) {
    const md = await Deno.readTextFile(ROOT_DIR + guide);
    const rows = answerSheet(md);
    sheets.push(rows);
    assert.ok(
      md.indexOf(rows[0]?.[1] ?? "\0") < md.indexOf("\n## 0."),
      `${guide}: the answer sheet comes before section 0`,
    );
    assert.ok(rows.length <= 30, `${guide}: ${rows.length} rows: one screen`);
    for (const [sheet, token] of SHEET_QUESTIONS) {
      assert.ok(
        rows.some((row) =>
          row[0].startsWith(sheet) && row.join(" ").includes(token)
        ),
        `${guide}: no answer-sheet row of sheet ${sheet} with ${token}`,
      );
    }
    for (const row of rows) {
      assert.equal(row.length, 4, `${guide}: ${row.join(" | ")}`);
      assert.match(row[3], /`|§/, `${guide}: "${row[1]}" shows no command`);
    }
  }
  // The two languages answer the same questions in the same order.
  assert.deepEqual(
    sheets[0].map((row) => row[0].replace(/\s+/g, "")),
    sheets[1].map((row) => row[0].replace(/\s+/g, "")),
  );
});

Deno.test("guides: hého's byte count is the one UTF-8 gives (h, é in 2 bytes, h, o, newline)", async () => {
  const bytes = new TextEncoder().encode("hého\n").length;
  for (const guide of GUIDES) {
    const md = await Deno.readTextFile(ROOT_DIR + guide);
    assert.ok(
      md.includes(`**${bytes} octets pour \`hého\`**`) ||
        md.includes(`**${bytes} bytes for \`hého\`**`),
      `${guide} does not say hého is ${bytes} bytes`,
    );
    // The first log after the guide types hého counts those bytes.
    const typed = md.indexOf("`hého`");
    const logged =
      /(?:left after|est parti après) (\d+) (?:bytes echoed|octets renvoyés)/
        .exec(md.slice(typed));
    assert.equal(Number(logged?.[1]), bytes, guide);
    assert.match(
      md,
      new RegExp(`2 clients, ${2 * bytes} (bytes echoed|octets renvoyés)`),
      guide,
    );
  }
});

Deno.test("LISEZMOI and README give a run line for every root script, with its task's flags", async () => {
  const docs = {
    "LISEZMOI.md": await Deno.readTextFile(ROOT_DIR + "LISEZMOI.md"),
    "README.md": await Deno.readTextFile(ROOT_DIR + "README.md"),
  };
  let scripts = 0;
  for await (const entry of Deno.readDir(ROOT_DIR)) {
    if (!entry.isFile || !entry.name.endsWith(".ts")) continue;
    scripts++;
    const line = ["deno", "run", ...taskFlags(entry.name), entry.name].join(
      " ",
    );
    for (const [name, text] of Object.entries(docs)) {
      assert.ok(text.includes(line), `${name} lacks "${line}"`);
    }
  }
  assert.ok(scripts >= 7, `${scripts} root scripts`);
});

// ---------------------------------------------------------------------------
// Sheet 001's two consoles: the guide's `deno repl -N` session, replayed.

interface ReplBlock {
  role: "server" | "client";
  inputs: string[];
  outputs: string[];
}

/** The blocks after `<!-- repl:server -->` / `<!-- repl:client -->`, in the
 * guide's order: the lines typed (after "> ") and the lines printed. */
export function replBlocks(markdown: string): ReplBlock[] {
  const blocks: ReplBlock[] = [];
  for (
    const m of markdown.matchAll(
      /<!-- repl:(server|client) -->\s*```\n([\s\S]*?)\n```/g,
    )
  ) {
    const lines = m[2].split("\n");
    blocks.push({
      role: m[1] as "server" | "client",
      inputs: lines.filter((l) => l.startsWith("> ")).map((l) => l.slice(2)),
      outputs: lines.filter((l) => !l.startsWith("> ")),
    });
  }
  return blocks;
}

/** What varies from run to run: the client's port. */
const normalise = (line: string) => line.replace(/port: \d+/, "port: N");

/** A `deno repl -N` fed through a pipe (it prints results, no prompts). */
class Repl {
  readonly child: Deno.ChildProcess;
  readonly lines: string[] = [];
  readonly #writer: WritableStreamDefaultWriter<Uint8Array>;
  readonly #done: Promise<void>;

  constructor() {
    this.child = new Deno.Command(Deno.execPath(), {
      args: ["repl", "-N"],
      env: { DENO_NO_UPDATE_CHECK: "1", NO_COLOR: "1" },
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    this.#writer = this.child.stdin.getWriter();
    const stdout = this.child.stdout;
    this.#done = (async () => {
      let rest = "";
      const stream = stdout.pipeThrough(new TextDecoderStream());
      for await (const chunk of stream) {
        const parts = (rest + chunk).split("\n");
        rest = parts.pop() ?? "";
        for (const line of parts) {
          // The banner: "Deno 2.9.6", "exit using ctrl+d, ctrl+c, or close()".
          if (/^Deno \d|^exit using/.test(line)) continue;
          this.lines.push(line);
        }
      }
    })();
  }

  async type(line: string) {
    await this.#writer.write(new TextEncoder().encode(line + "\n"));
  }

  /** Waits until the repl has printed `count` lines (bounded). */
  async printed(count: number, what: string) {
    await eventually(() => this.lines.length >= count, what, WAIT_MS * 3);
  }

  async [Symbol.asyncDispose]() {
    await this.#writer.close().catch(() => {});
    const timer = setTimeout(() => {
      try {
        this.child.kill("SIGKILL");
      } catch { /* gone */ }
    }, WAIT_MS);
    await this.child.status;
    clearTimeout(timer);
    await this.#done;
    await this.child.stderr.cancel();
  }
}

Deno.test("guides: sheet 001's two consoles in deno repl -N print what the guide shows (accept blocks, send returns 32)", async () => {
  for (const guide of GUIDES) {
    const blocks = replBlocks(await Deno.readTextFile(ROOT_DIR + guide));
    assert.ok(blocks.length >= 6, `${guide}: ${blocks.length} repl blocks`);
    const typed = blocks.flatMap((b) => b.inputs).join("\n");
    for (const call of ["accept()", "remoteAddr", "write(", "read(tampon)"]) {
      assert.ok(typed.includes(call), `${guide}: no ${call} in the session`);
    }
    await using server = new Repl();
    await using client = new Repl();
    const expected = { server: [] as string[], client: [] as string[] };
    let port = 0;
    let extra = 0; // lines the test itself asked for (the real port)
    for (const [i, block] of blocks.entries()) {
      const repl = block.role === "server" ? server : client;
      for (const input of block.inputs) {
        if (block.role === "server" && /Deno\.listen\(/.test(input)) {
          // Port 0, then ask which port the system chose.
          await repl.type(input.replace(/port: \d+/, "port: 0"));
          await repl.type("connexion_principale.addr.port");
          await repl.printed(2, "the listening port");
          port = Number(repl.lines.splice(1, 1)[0]);
          extra = 0;
          continue;
        }
        await repl.type(input.replace(/port: 12800/, `port: ${port}`));
      }
      expected[block.role].push(...block.outputs);
      const want = expected[block.role];
      await repl.printed(want.length + extra, `${guide}: block ${i + 1}`);
      if (i === 0) {
        // accept() is pending: nothing printed after the listen's undefined.
        assert.deepEqual(server.lines, ["undefined"], "accept() blocks");
      }
      assert.deepEqual(
        repl.lines.map(normalise),
        want.map(normalise),
        `${guide}: ${block.role} console after block ${i + 1}`,
      );
    }
    assert.ok(port > 0);
  }
});

// ---------------------------------------------------------------------------
// The guides' tcp_echo log lines are what tcp_echo prints in their language.

/** Lines of `script`'s log shown by a guide (in code blocks and code spans),
 * with client ports replaced by P. */
export function shownLog(markdown: string, script: string): Set<string> {
  const lines = new Set<string>();
  const start = new RegExp(`^${script}(:|\u00a0:) `);
  const code = [
    ...markdown.matchAll(/^```[^\n]*\n([\s\S]*?)^```/gm),
  ].flatMap((m) => m[1].split("\n"))
    .concat([...markdown.matchAll(/`([^`\n]+)`/g)].map((m) => m[1]));
  for (const line of code) {
    if (start.test(line)) {
      lines.add(line.replace(/(127\.0\.0\.1):\d+/g, "$1:P"));
    }
  }
  return lines;
}

const FRENCH_LESSONS = Deno.readTextFileSync(ROOT_DIR + "tcp_echo.ts")
  .includes("à l'écoute");

for (
  const [guide, locale] of [
    ["docs/guide-en.md", "C"],
    ["docs/guide-fr.md", "fr_FR.UTF-8"],
  ]
) {
  const french = locale !== "C";
  Deno.test({
    name:
      `${guide}: tcp_echo's log lines are what tcp_echo.ts prints under LANG=${locale}${
        french && !FRENCH_LESSONS
          ? " (ignored: tcp_echo.ts does not speak French on this branch)"
          : ""
      }`,
    ignore: french && !FRENCH_LESSONS,
    async fn() {
      const shown = shownLog(
        await Deno.readTextFile(ROOT_DIR + guide),
        "tcp_echo",
      );
      await using server = runScript("tcp_echo.ts", ["--port", "0"], {
        env: { LANG: locale, LC_ALL: locale },
      });
      const ready = await server.stdout.waitFor(
        /(listening on|à l'écoute sur) \S*:(\d+)/,
      );
      const port = Number(/:(\d+) \(/.exec(ready)?.[1]);
      const hého = new TextEncoder().encode("hého\n");
      for (let i = 0; i < 2; i++) {
        const conn = await Deno.connect({ hostname: "127.0.0.1", port });
        try {
          await conn.write(hého);
          const buffer = new Uint8Array(64);
          let got = 0;
          while (got < hého.length) {
            const n = await within(conn.read(buffer.subarray(got)), "echo");
            if (n === null) break;
            got += n;
          }
          assert.equal(got, hého.length);
          conn.closeWrite();
          assert.equal(await within(conn.read(buffer), "close"), null);
        } finally {
          conn.close();
        }
        // Each client's "left" line before the next connects.
        await eventually(
          () => server.stdout.lines.length >= 3 + 2 * i,
          "the client's lines",
        );
      }
      const { stdout } = await server.stop("SIGINT");
      const printed = stdout.trim().split("\n").map((line) =>
        line.replace(`:${port} `, ":7777 ").replace(
          /(127\.0\.0\.1):\d+/g,
          "$1:P",
        )
      );
      assert.equal(printed.length, 6, stdout);
      for (const line of printed) {
        assert.ok(shown.has(line), `${guide} does not show: ${line}`);
      }
    },
  });
}
