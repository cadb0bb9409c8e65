/**
 * Fair turns (issue 11): past ~128 busy connections, echod.ts must serve
 * every client about as often as every other, where the lesson
 * select_echo.ts (a plain read/write loop, tokio's budget deciding who is
 * served) starves some. Proven by counts, never
 * by timings: a driver sends a fixed total number of messages, each client
 * keeping one in flight, and the test compares how many each client got.
 *
 * What is asserted is that no client starves (tests/fair_share.ts: Jain's
 * index and the slowest client against the mean), not the order of
 * service: a fair server in random order passes with a wide margin, on any
 * machine. And the same test against --no-fair must fail, widely: the
 * criterion is shown to separate a starving server from a fair one in the
 * same run (issue 18).
 *
 * The driver is a small C program, compiled with gcc when the tests run: it
 * reads every ready socket in each turn, so it is fair itself, where a Deno
 * driver meets the same tokio budget as the server it measures; and it is
 * fast enough to keep the server busy (a Node.js driver was not: with it,
 * even --no-fair passed).
 *
 * The turns' bookkeeping (FairTurns) is tested in-process in
 * tests/echod_test.ts.
 */

import assert from "node:assert/strict";
import {
  describeShare,
  HOT_SET_OVER_MEAN,
  MIN_JAIN,
  MIN_SLOWEST_OVER_MEAN,
  share,
  starvation,
} from "./fair_share.ts";
import { startServer, within } from "./helpers.ts";

/** The servers whose fair turns are measured: the script, its arguments
 * (besides --quiet, and --no-fair for the controls) and what the driver
 * expects back ("echo": the message; "ok": "OK\n" per line). The first
 * also takes the 10,000 silent clients.
 * One event loop (echod.ts's default): the turns make each loop fair, and
 * that is what is measured. With --threads 2 the kernel gives the threads
 * unequal shares of the clients and of the CPUs (one also runs the driver),
 * and a client's rate follows its thread's. */
const SERVERS: { script: string; args: string[]; mode: "echo" | "ok" }[] = [
  { script: "echod.ts", args: [], mode: "echo" },
];
/** Servers without fair turns, that must starve some clients at the
 * control's size: each SERVERS entry with --no-fair, and the lesson whose
 * header says so (select_echo.ts: "past ~128 busy clients … starve"). */
const STARVING: { name: string; script: string; args: string[] }[] = [
  ...SERVERS.map(({ script, args }) => ({
    name: [script, ...args, "--no-fair"].join(" "),
    script,
    args: [...args, "--no-fair"],
  })),
  { name: "select_echo.ts (the lesson)", script: "select_echo.ts", args: [] },
];

// ---------------------------------------------------------------------------
// The driver

/** Why the driver cannot be built here, or "". */
const gccMissing = (() => {
  try {
    const out = new Deno.Command("gcc", { args: ["--version"] }).outputSync();
    return out.success ? "" : "gcc --version failed";
  } catch {
    return "gcc is not installed";
  }
})();

/** The soft limit on open files of this process; its children inherit it
 * (Deno raises its own to the hard limit when it starts). */
function openFilesLimit(): number {
  try {
    const limits = Deno.readTextFileSync("/proc/self/limits");
    const soft = limits.match(/^Max open files\s+(\d+|unlimited)/m)?.[1];
    return soft === "unlimited" ? Infinity : Number(soft ?? 0);
  } catch {
    return 0; // not Linux: the tests that need many files say so
  }
}

/** Why the test of `clients` connections cannot run here (each costs a
 * descriptor in the driver and one in the server), or "". */
function cannotRun(clients: number): string {
  if (gccMissing) return gccMissing;
  const limit = openFilesLimit();
  return limit >= clients + 200
    ? ""
    : `needs ${clients + 200} open files, ulimit -n is ${limit}`;
}

/** The driver, in C: one epoll loop that serves every ready socket of each
 * turn, at a few microseconds a message, so the server sets the pace (the
 * same design as bench/load_epoll.c, but stopping at a count, not a time). */
const DRIVER_C = String.raw`
/* Fair ping-pong by counts: one epoll loop that serves every ready socket
 * of each turn. Usage: driver PORT BUSY TOTAL IDLE. Opens IDLE clients that
 * each echo 8 bytes once and go silent, then BUSY clients that each keep
 * one 64-byte message in flight until TOTAL messages were sent; as the busy
 * ones start, every silent client speaks once more. Checks every byte.
 * Prints one JSON line. Gives up after 60 s. */
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static long errors = 0;
static const char *first_error = "";
static void fail(const char *what) {
  if (!errors++) first_error = what;
}

/* "echo": each reply is the message itself. "ok" (ok_server.ts): messages
 * are lines, each answered "OK\n". */
static int ok_mode = 0;

/* The reply expected to the n bytes of msg. */
static const char *reply_to(const char *msg, size_t n, size_t *len) {
  if (ok_mode) {
    *len = 3;
    return "OK\n";
  }
  *len = n;
  return msg;
}

/* Busy client i's message: 64 bytes of its own value (a line in ok mode). */
static void fill(unsigned char *msg, int i) {
  if (ok_mode) {
    memset(msg, 'a' + i % 26, 63);
    msg[63] = '\n';
  } else {
    memset(msg, i % 251, 64);
  }
}

static int dial(int port) {
  struct sockaddr_in a = {0};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof a) < 0) {
    perror("connect");
    exit(1);
  }
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  struct timeval tv = {10, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  return fd;
}

/* Blocking: send msg, wait for its whole reply. */
static int echo_once(int fd, const char *msg, size_t n) {
  char buf[64];
  size_t got = 0, len;
  const char *want = reply_to(msg, n, &len);
  if (send(fd, msg, n, 0) != (ssize_t)n) return 0;
  while (got < len) {
    ssize_t r = recv(fd, buf + got, len - got, 0);
    if (r <= 0) return 0;
    got += r;
  }
  return memcmp(buf, want, len) == 0;
}

int main(int argc, char **argv) {
  if (argc != 6) return 2;
  ok_mode = strcmp(argv[5], "ok") == 0;
  size_t idle_len, busy_len;
  const char *idle_want = reply_to("again!\n", 7, &idle_len);
  reply_to("", 64, &busy_len);
  int port = atoi(argv[1]), busy = atoi(argv[2]), idle = atoi(argv[4]);
  long total = atol(argv[3]), sent = 0, received = 0, idle_echoed = 0;
  int *idlers = calloc(idle + 1, sizeof(int));
  for (int i = 0; i < idle; i++) {
    idlers[i] = dial(port);
    if (!echo_once(idlers[i], "idle-8b\n", 8)) fail("idle echo");
  }
  int *fd = calloc(busy, sizeof(int)), *got = calloc(busy, sizeof(int));
  long *count = calloc(busy, sizeof(long));
  int ep = epoll_create1(0);
  unsigned char msg[64], buf[64];
  for (int i = 0; i < busy; i++) {
    fd[i] = dial(port);
    /* One echo first, as bench/load_epoll.c does: the server has accepted
     * and served every client before the counted messages start. */
    fill(msg, i);
    if (!echo_once(fd[i], (const char *)msg, 64)) fail("first echo");
    fcntl(fd[i], F_SETFL, fcntl(fd[i], F_GETFL) | O_NONBLOCK);
    struct epoll_event ev = {.events = EPOLLIN, .data.u32 = (uint32_t)i};
    epoll_ctl(ep, EPOLL_CTL_ADD, fd[i], &ev);
  }
  for (int i = 0; i < busy && sent < total; i++, sent++) {
    fill(msg, i);
    if (send(fd[i], msg, 64, 0) != 64) fail("send");
  }
  /* Then every silent client speaks once more, while the busy ones keep
   * the server full: "idleDoneAt" is how many busy messages had come back
   * when the last of them had its echo. */
  int *idle_got = calloc(idle + 1, sizeof(int));
  long idle_done_at = -1;
  for (int j = 0; j < idle; j++) {
    fcntl(idlers[j], F_SETFL, fcntl(idlers[j], F_GETFL) | O_NONBLOCK);
    struct epoll_event ev = {.events = EPOLLIN, .data.u32 = (uint32_t)(busy + j)};
    epoll_ctl(ep, EPOLL_CTL_ADD, idlers[j], &ev);
    if (send(idlers[j], "again!\n", 7, 0) != 7) fail("idle send");
  }
  time_t deadline = time(NULL) + 60;
  struct epoll_event events[4096];
  while ((received < total || idle_echoed < idle) && !errors) {
    if (time(NULL) > deadline) {
      fail("driver timed out");
      break;
    }
    int n = epoll_wait(ep, events, 4096, 100);
    for (int k = 0; k < n; k++) {
      int i = (int)events[k].data.u32;
      if (i >= busy) {
        int j = i - busy;
        ssize_t r = recv(idlers[j], buf, idle_len - idle_got[j], 0);
        if (r <= 0) {
          fail("idle recv");
          continue;
        }
        if (memcmp(buf, idle_want + idle_got[j], r)) fail("wrong idle bytes");
        idle_got[j] += r;
        if (idle_got[j] == (int)idle_len && ++idle_echoed == idle) idle_done_at = received;
        continue;
      }
      ssize_t r = recv(fd[i], buf, busy_len - got[i], 0);
      if (r <= 0) {
        fail(r == 0 ? "closed by the server" : "recv");
        continue;
      }
      for (ssize_t b = 0; b < r; b++) {
        unsigned char want = ok_mode ? (unsigned char)"OK\n"[got[i] + b]
                                     : (unsigned char)(i % 251);
        if (buf[b] != want) fail("wrong bytes");
      }
      got[i] += r;
      if (got[i] < (int)busy_len) continue;
      got[i] = 0;
      count[i]++;
      received++;
      if (sent < total) {
        fill(msg, i);
        if (send(fd[i], msg, 64, 0) != 64) fail("send");
        sent++;
      }
    }
  }
  printf("{\"sent\":%ld,\"received\":%ld,\"idleEchoed\":%ld,"
         "\"idleDoneAt\":%ld,\"errors\":%ld,\"firstError\":\"%s\","
         "\"counts\":[",
         sent, received, idle_echoed, idle_done_at, errors, first_error);
  for (int i = 0; i < busy; i++) printf("%s%ld", i ? "," : "", count[i]);
  printf("]}\n");
  return 0;
}
`;

const DRIVER = new URL("../bench/.cache/fairness_driver", import.meta.url);

/** Compiles the driver once per run of this file. */
let built: Promise<string> | undefined;

function buildDriver(): Promise<string> {
  built ??= (async () => {
    const path = DRIVER.pathname;
    await Deno.mkdir(new URL(".", DRIVER), { recursive: true });
    await Deno.writeTextFile(`${path}.c`, DRIVER_C);
    const out = await new Deno.Command("gcc", {
      args: ["-O2", "-o", path, `${path}.c`],
      stderr: "piped",
      stdout: "null",
    }).output();
    const stderr = new TextDecoder().decode(out.stderr);
    assert.ok(out.success, `gcc failed: ${stderr}`);
    return path;
  })();
  return built;
}

interface DriverResult {
  counts: number[];
  sent: number;
  received: number;
  idleEchoed: number;
  /** Busy messages echoed when the last silent client had its answer. */
  idleDoneAt: number;
  errors: number;
  firstError: string;
}

async function drive(
  port: number,
  busy: number,
  total: number,
  idle = 0,
  mode: "echo" | "ok" = "echo",
): Promise<DriverResult> {
  const child = new Deno.Command(await buildDriver(), {
    args: [...[port, busy, total, idle].map(String), mode],
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  try {
    const out = await within(child.output(), "the driver", 90_000);
    const stderr = new TextDecoder().decode(out.stderr);
    assert.ok(out.success, `driver failed: ${stderr}`);
    return JSON.parse(new TextDecoder().decode(out.stdout));
  } finally {
    try {
      child.kill("SIGKILL");
    } catch {
      // exited already
    }
  }
}

/** Checks the run itself (every message sent, echoed and right) and
 * returns the share statistics of its counts, logged for the record. */
function measured(
  result: DriverResult,
  busy: number,
  total: number,
  label: string,
) {
  assert.equal(result.errors, 0, result.firstError);
  assert.equal(result.counts.length, busy);
  assert.equal(result.received, total);
  const s = share(result.counts);
  console.log(`fairness: ${label}: ${describeShare(s)}`);
  return s;
}

function assertFair(
  result: DriverResult,
  busy: number,
  total: number,
  label: string,
) {
  const s = measured(result, busy, total, label);
  const why = starvation(s);
  assert.equal(why, "", `${label}: ${why} (${describeShare(s)})`);
}

// ---------------------------------------------------------------------------
// Busy clients, counted

// The sizes: enough rounds for a hot set to form without the turns.
//
// The bounds (tests/fair_share.ts) against a server fair in expectation but
// serving in random order (randomOrderCounts, 10,000 seeded runs of each
// size; tests/fair_share_test.ts reruns some):
//   500 × 400:   Jain's index 0.9969-0.9980, slowest/mean 0.76-0.90
//   2,000 × 100: Jain's index 0.9888-0.9912, slowest/mean 0.51-0.75
// against bounds of 0.95 and 0.33: far inside. Its busiest/slowest, the
// old bound of 1.5, spans 1.26-1.56 and 1.75-2.67: a fair server failed it.
// Measured with the fair turns, quiet and under a CPU hog (issue 18; about
// 37 runs of each server at each size):
//   500 × 400:   Jain's index 1.000, slowest/mean 0.98-1.00
//   2,000 × 100: Jain's index 0.981-1.000, slowest/mean 0.70-0.97
const SIZES: [busy: number, rounds: number][] = [[500, 400], [2000, 100]];

// The negative control runs at the larger size, 2,000 × 100, where the
// turns' absence shows most. Measured with --no-fair, quiet and under a CPU
// hog with the machine's load average at 4-8 (222 runs): Jain's index
// 0.12-0.87 in all but 7, slowest/mean 0.01-0.45, busiest/mean 2.4-13 (fair
// turns: at most 1.21; a random-order fair server: at most 1.57 in 10,000
// simulated runs). The 7 had Jain's index 0.904-0.969 and slowest/mean
// 0.48-0.60: 3 of them passed the criterion outright. A saturated machine
// can serve even the plain loop nearly evenly (a server that waits for the
// CPU finds every socket ready and reads them in order), so the control
// gets up to CONTROL_TRIES runs, one of which must starve widely. At
// 500 × 400 the plain loop looked fair under the hog (Jain's index
// 0.95-0.97, slowest/mean 0.65-0.68): no control there.
const CONTROL: [busy: number, rounds: number] = [2000, 100];
/** A control run starves widely when it fails the criterion with an index
 * at most this, where the fair turns measured 0.981 or more at the same
 * size (a spread, sqrt(1/index - 1), of 0.33 or more: over 1.4 times what
 * MIN_JAIN allows, 2.4 times the fair turns' worst)... */
const CONTROL_MAX_JAIN = 0.9;
/** Runs of the control, of which one must starve widely: at most 1 run in
 * 10 missed in any batch measured (7 of 222 in all; each time the test
 * retried, its second run starved widely),
 * so five all missing is about 1 in 100,000. */
const CONTROL_TRIES = 5;

for (const { script, args, mode } of SERVERS) {
  const name = [script, ...args].join(" ");
  for (const [busy, rounds] of SIZES) {
    const why = cannotRun(busy);
    const total = busy * rounds;
    Deno.test({
      name:
        `${name}: ${busy} busy clients are all served: Jain's index >= ${MIN_JAIN}, slowest >= mean/${
          1 / MIN_SLOWEST_OVER_MEAN
        } over ${total.toLocaleString("en-US")} messages${
          why ? ` (ignored: ${why})` : ""
        }`,
      ignore: why !== "",
      async fn() {
        await using server = await startServer(script, ["--quiet", ...args]);
        const result = await drive(server.port, busy, total, 0, mode);
        assertFair(result, busy, total, `${name}: ${busy} × ${rounds}`);
        const done = await server.stop();
        assert.equal(done.code, 0);
        assert.equal(done.stderr, "");
      },
    });
  }
}

// The negative controls: the same test, without fair turns, fails.
for (const { name, script, args } of STARVING) {
  const [busy, rounds] = CONTROL;
  const why = cannotRun(busy);
  const total = busy * rounds;
  Deno.test({
    name:
      `${name}: ${busy} busy clients: some starve, the same criterion fails widely (Jain's index <= ${CONTROL_MAX_JAIN} or busiest >= ${HOT_SET_OVER_MEAN} × mean) in one of ${CONTROL_TRIES} runs${
        why ? ` (ignored: ${why})` : ""
      }`,
    ignore: why !== "",
    async fn() {
      const label = `${name}: ${busy} × ${rounds}`;
      const missed: string[] = [];
      for (let run = 1; run <= CONTROL_TRIES; run++) {
        await using server = await startServer(script, ["--quiet", ...args]);
        const result = await drive(server.port, busy, total, 0, "echo");
        const s = measured(result, busy, total, `${label}, run ${run}`);
        const done = await server.stop();
        assert.equal(done.code, 0);
        assert.equal(done.stderr, "");
        const wide = s.jain <= CONTROL_MAX_JAIN ||
          s.max >= HOT_SET_OVER_MEAN * s.mean;
        if (starvation(s) !== "" && wide) return;
        missed.push(describeShare(s));
      }
      assert.fail(
        `${label}: no run starved widely (Jain's index <= ${CONTROL_MAX_JAIN} or busiest >= ${HOT_SET_OVER_MEAN} × mean): ${
          missed.join("; ")
        }`,
      );
    },
  });
}

const whyNot10k = cannotRun(10_500);
Deno.test({
  name: "10,000 clients that spoke once and went silent hold no turn: 500 " +
    "busy ones are all served, and each silent one that speaks again is " +
    `answered while they run${whyNot10k ? ` (ignored: ${whyNot10k})` : ""}`,
  ignore: whyNot10k !== "",
  async fn() {
    const { script, args, mode } = SERVERS[0];
    await using server = await startServer(script, [
      "--quiet",
      ...args,
      "--max-clients",
      "20000",
    ]);
    const busy = 500;
    const total = busy * 200;
    const result = await drive(server.port, busy, total, 10_000, mode);
    assertFair(result, busy, total, `${script}: 500 × 200, 10,000 silent`);
    assert.equal(result.idleEchoed, 10_000);
    assert.ok(
      result.idleDoneAt >= 0 && result.idleDoneAt < total,
      `the last silent client was answered after ${result.idleDoneAt} of ${total} busy messages`,
    );
    const done = await server.stop();
    assert.equal(done.code, 0);
    assert.match(done.stdout, /stopped by SIGINT: 10500 clients/);
  },
});
