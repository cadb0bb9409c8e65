/**
 * The lesson-first layout, checked: the TCP servers share one skeleton word
 * for word, and each script shows its lesson early (issue: "Every script
 * reads as its lesson first").
 */

import assert from "node:assert/strict";
import { ROOT } from "./helpers.ts";

const TCP_SERVERS = [
  "tcp_echo.ts",
  "select_echo.ts",
  "worker_echo.ts",
  "ok_server.ts",
];
const BEGIN = "// ==== SKELETON BEGIN";
const END = "// ==== SKELETON END";

function source(script: string): string {
  return Deno.readTextFileSync(new URL(script, ROOT));
}

/** The fenced skeleton of a script, from its BEGIN line to its END line. */
export function skeletonOf(text: string): string {
  const begin = text.indexOf(BEGIN);
  const end = text.indexOf(END);
  if (begin < 0 || end < begin) throw new Error("no fenced skeleton");
  return text.slice(begin, text.indexOf("\n", end));
}

/** "line N: …" of the first line where two texts differ, for messages. */
function firstDifference(a: string, b: string): string {
  const al = a.split("\n");
  const bl = b.split("\n");
  for (let i = 0; i < Math.max(al.length, bl.length); i++) {
    if (al[i] !== bl[i]) {
      return `skeleton line ${i + 1}:\n  ${al[i]}\n  ${bl[i]}`;
    }
  }
  return "";
}

Deno.test("the four TCP servers share the fenced skeleton byte for byte", () => {
  const model = skeletonOf(source(TCP_SERVERS[0]));
  for (const script of TCP_SERVERS.slice(1)) {
    const theirs = skeletonOf(source(script));
    assert.ok(
      theirs === model,
      `${script} drifted from ${TCP_SERVERS[0]}: ${
        firstDifference(model, theirs)
      }`,
    );
  }
});

Deno.test("the skeleton is the end of each TCP server: only the entry point follows", () => {
  for (const script of TCP_SERVERS) {
    const text = source(script);
    const after = text.slice(text.indexOf("\n", text.indexOf(END)) + 1);
    const code = after.split("\n").filter((l) =>
      l.trim() !== "" && !l.trim().startsWith("//")
    );
    assert.ok(code.length <= 6, `${script}: after the skeleton:\n${after}`);
    assert.match(after, /import\.meta\.main/, script);
  }
});

/** The line where the lesson's own socket call first appears. */
const LESSON_CALL: Record<string, RegExp> = {
  "tcp_echo.ts": /listener\.accept\(\)/,
  "select_echo.ts": /listener\.accept\(\)/,
  "worker_echo.ts": /new Worker\(/,
  "ok_server.ts": /listener\.accept\(\)/,
  "udp_echo.ts": /\.receive\(/,
};

for (const [script, call] of Object.entries(LESSON_CALL)) {
  Deno.test(`${script}: header maps the sheet to the code; the lesson comes first`, () => {
    const lines = source(script).split("\n");
    const header = lines.slice(0, lines.findIndex((l) => l === " */") + 1);
    assert.ok(header.some((l) => l.includes("↔")), `${script}: no ↔ map`);
    assert.match(lines[0], /^#!\/usr\/bin\/env -S deno run /, script);
    const at = lines.findIndex((l) => call.test(l) && !l.startsWith(" *"));
    assert.ok(at >= 0, `${script}: no ${call}`);
    assert.ok(
      at < lines.length * 0.4,
      `${script}: first ${call} at line ${at + 1} of ${lines.length}`,
    );
    const deciding = lines.filter((l) => /\bTHE line\b/.test(l));
    assert.equal(deciding.length, 1, `${script}: "THE line" comments`);
    const decidingAt = lines.findIndex((l) => /\bTHE line\b/.test(l));
    assert.ok(decidingAt < 200, `${script}: THE line at ${decidingAt + 1}`);
  });
}

/** The fenced "fair turns" section of a script (issue 11). */
function fairTurnsOf(text: string): string {
  const begin = text.indexOf("// ---- FAIR TURNS BEGIN");
  const end = text.indexOf("// ---- FAIR TURNS END");
  if (begin < 0 || end < begin) throw new Error("no fenced fair turns");
  return text.slice(begin, text.indexOf("\n", end));
}

Deno.test("the event-loop servers share the fenced fair turns byte for byte, and read through them", () => {
  const servers = ["select_echo.ts", "worker_echo.ts", "ok_server.ts"];
  const model = fairTurnsOf(source(servers[0]));
  for (const script of servers) {
    const text = source(script);
    const theirs = fairTurnsOf(text);
    assert.ok(
      theirs === model,
      `${script} drifted from ${servers[0]}: ${firstDifference(model, theirs)}`,
    );
    // Every client read goes through the turns: no direct conn.read() is
    // left outside the section.
    const outside = text.replace(theirs, "");
    const code = outside.split("\n").filter((line) =>
      !/^\s*(\*|\/\/|\/\*\*)/.test(line)
    ).join("\n");
    assert.equal(
      code.match(/\bconn\.read\(/g)?.length ?? 0,
      0,
      `${script} reads a connection outside the fair turns`,
    );
    assert.match(outside, /fairRead\(conn, buffer, /, script);
    assert.match(outside, /fairTurns\.enabled = options\.fair;/, script);
  }
});
