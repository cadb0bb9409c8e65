/**
 * The fairness statistic (tests/fair_share.ts), in-process: its values on
 * counts whose answer is known, and the margin of its bounds against a
 * server fair in expectation but serving in random order (simulated).
 */

import assert from "node:assert/strict";
import {
  HOT_SET_OVER_MEAN,
  MIN_JAIN,
  MIN_SLOWEST_OVER_MEAN,
  randomOrderCounts,
  share,
  starvation,
} from "./fair_share.ts";

Deno.test("share: even counts give Jain's index 1 and no starvation", () => {
  const s = share([400, 400, 400, 400]);
  assert.equal(s.jain, 1);
  assert.equal(s.slowest, 1);
  assert.equal(s.ratio, 1);
  assert.equal(s.belowHalf, 0);
  assert.equal(starvation(s), "");
});

Deno.test("share: one client served alone gives 1/n and the slowest at 0", () => {
  const s = share([1000, 0, 0, 0]);
  assert.equal(s.jain, 0.25);
  assert.equal(s.min, 0);
  assert.equal(s.slowest, 0);
  assert.equal(s.ratio, Infinity);
  assert.equal(s.belowHalf, 3);
  assert.match(starvation(s), /Jain's index 0\.250 < 0\.95/);
  assert.match(starvation(s), /slowest client got 0 echoes, under mean\/3/);
});

Deno.test("share: a hot set of 10 % served 9 times as often fails the index", () => {
  const counts = Array.from({ length: 100 }, (_, i) => i < 10 ? 900 : 100);
  const s = share(counts);
  // (10·900 + 90·100)² / (100 · (10·900² + 90·100²)) = 0.36
  assert.ok(Math.abs(s.jain - 0.36) < 1e-12, String(s.jain));
  assert.match(starvation(s), /^Jain's index 0\.360 < 0\.95$/);
});

Deno.test("share: one starving client fails even when the index is high", () => {
  const counts = [...new Array(999).fill(100), 20];
  const s = share(counts);
  assert.ok(s.jain >= MIN_JAIN, String(s.jain));
  assert.match(starvation(s), /^slowest client got 20 echoes, under mean\/3/);
});

Deno.test("share: no counts is an error, all zero is even", () => {
  assert.throws(() => share([]), /at least one count/);
  assert.equal(starvation(share([0, 0, 0])), "");
});

Deno.test("randomOrderCounts: every message counted once, seeded", () => {
  const counts = randomOrderCounts(50, 30, 7);
  assert.equal(counts.length, 50);
  assert.equal(counts.reduce((a, b) => a + b, 0), 1500);
  assert.deepEqual(randomOrderCounts(50, 30, 7), counts);
  assert.notDeepEqual(randomOrderCounts(50, 30, 8), counts);
});

// The margin, rerun: a random-order fair server at the fairness tests'
// sizes sits far inside both bounds (fairness_test.ts has the figures of
// 10,000 runs). 20 seeded runs each, so this test is exact and quick.
for (const [clients, rounds] of [[500, 400], [2000, 100]]) {
  Deno.test(`randomOrderCounts: a random-order fair server at ${clients} × ${rounds} passes with a wide margin`, () => {
    let jain = 1;
    let slowest = 1;
    let belowHalf = 0;
    let busiest = 0;
    for (let seed = 1; seed <= 20; seed++) {
      const s = share(randomOrderCounts(clients, rounds, seed));
      assert.equal(starvation(s), "", `seed ${seed}`);
      jain = Math.min(jain, s.jain);
      slowest = Math.min(slowest, s.slowest);
      belowHalf = Math.max(belowHalf, s.belowHalf);
      busiest = Math.max(busiest, s.max / s.mean);
    }
    console.log(
      `random order ${clients} × ${rounds}, 20 runs: Jain's index >= ${
        jain.toFixed(4)
      }, slowest/mean >= ${slowest.toFixed(2)}, busiest/mean <= ${
        busiest.toFixed(2)
      }, below half: ${belowHalf}`,
    );
    // Its index misses 1 by 1/(rounds + 1) (Poisson counts): 0.01 at 100,
    // five times inside the 0.05 the bound allows.
    assert.ok(1 - jain < (1 - MIN_JAIN) / 4, `index ${jain}`);
    assert.ok(slowest > 1.5 * MIN_SLOWEST_OVER_MEAN, `slowest ${slowest}`);
    assert.equal(belowHalf, 0);
    // The negative control's hot set is out of its reach.
    assert.ok(busiest < HOT_SET_OVER_MEAN / 1.1, `busiest ${busiest}`);
  });
}
