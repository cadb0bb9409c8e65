/**
 * The benchmark must never rot: its smoke run (a few seconds per scenario,
 * one run) starts every server and peer that this machine has, checks every
 * echoed byte, and fails if a scenario produced no numbers. Nothing about
 * speed is asserted.
 */

import assert from "node:assert/strict";
import { Child } from "./helpers.ts";

Deno.test("bench:smoke runs every scenario against every server it finds", async () => {
  const denoJson = JSON.parse(
    await Deno.readTextFile(new URL("../deno.json", import.meta.url)),
  );
  const words: string[] = denoJson.tasks["bench:smoke"].split(/\s+/);
  assert.deepEqual(words.slice(0, 2), ["deno", "run"]);
  await using smoke = new Child(Deno.execPath(), words.slice(1));
  // About 20 s on a quiet machine, 33 s with a CPU hog on one core of two:
  // the bound is nine times that, for a hang only.
  const done = await smoke.finished(300_000);
  assert.equal(done.code, 0, `${done.stdout}\n${done.stderr}`);
  assert.match(done.stderr, /^smoke: ok$/m);
  // Progress: every step numbered out of the total, with the time left.
  const total = Number(done.stderr.match(/^step 1 of (\d+)/m)?.[1]);
  assert.ok(total > 1, "no 'step 1 of N' line");
  assert.match(
    done.stderr,
    new RegExp(`^step ${total} of ${total}, about `, "m"),
  );
  // Every throughput ratio says who set the pace.
  assert.match(done.stdout, /server-bound|generator-bound/);
  assert.doesNotMatch(done.stdout, /\| \d[\d.]*× \|/);
  // Every one of our servers that exists was measured, not skipped.
  for (
    const script of [
      "tcp_echo.ts",
      "select_echo.ts",
      "worker_echo.ts",
      "udp_echo.ts",
      "echod.ts",
    ]
  ) {
    assert.match(
      done.stdout,
      new RegExp(`^\\| ${script.replace(".", "\\.")} \\|`, "m"),
    );
  }
});
