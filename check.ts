#!/usr/bin/env -S deno run -N --allow-run --allow-read --unstable-net
/**
 * # check.ts — grades a socket server against what its sheet asks
 *
 * For teachers and students: points at a running server (yours, a
 * student's, in any language), or starts it itself (`--run "CMD {port}"`),
 * and runs a series of small clients against it, one line per check:
 * ✔ passed, ✘ failed (with what arrived), – not run (and why), · beyond
 * the step asked for (information, not counted). `--targets FILE` grades a
 * whole class in one table. Every check is bounded in count and in time,
 * and talks only to the host you give (loopback by default).
 *
 * Sheets: TP5b "Socket Serveur" (seeds/000) §1.2, §1.4, §2.1, §2.2;
 * "Python – les sockets" (seeds/001), the first and second OK servers.
 *   `check.ts echo --step 1.2|2.1|2.2`  ↔ the TCP echo server, step by step
 *   `check.ts udp-echo --step 1.4`      ↔ the recvfrom()/sendto() loop
 *   `check.ts ok --step 1|2`            ↔ sheet 001's first / second server
 *
 * @run deno run -N --allow-run --allow-read --unstable-net check.ts
 * Try it: `deno run -N tcp_echo.ts` in one terminal, then
 * `deno task check echo --step 1.2` in another; or let it start the server:
 * `deno task check echo --run "python3 server.py {port}"`.
 *
 * Permissions: `-N` to connect; `--allow-run` for `--run` (it starts your
 * command) and to read /proc with `cat` (Linux: a started server's CPU
 * time and open-files limit, whether a port is bound); `--allow-read` for
 * a `--targets` file.
 * `--unstable-net` for `udp-echo` (Deno's UDP API is still marked unstable).
 *
 * Sections: §1.2 and §2 (TCP echo), §1.4 (UDP echo), sheet 001 (OK/fin),
 * then the runner (steps, liveness, --run), a class (--targets, table,
 * --json), the command line, the common fence.
 */

import net from "node:net";

// ===========================================================================
// What a check is
//
// A check is one small client doing what a real client does, with a
// deadline. `steps` lists the sheet steps that require it: with `--step S`
// a check whose steps do not include S still runs, but as information (·),
// and does not count. Without `--step`, every check counts.

export type Kind = "echo" | "udp-echo" | "ok";
export type Status = "pass" | "fail" | "not-run";

export interface Result {
  status: Status;
  why: string;
}

export interface Check {
  id: string;
  name: () => string;
  steps: string[];
  run: (t: Target) => Promise<Result>;
  /** Runs only when check.ts started the server (--run, Linux /proc). */
  needsRun?: boolean;
  /** Cannot run against a server that serves one client at a time. */
  needsConcurrency?: boolean;
}

/** What the checks share about one server under test. */
export interface Target {
  host: string;
  port: number;
  /** The server process, when check.ts started it (--run). */
  proc?: Launched;
  /** Found by the second-client check: one client at a time. */
  oneClient?: boolean;
  /** The server ends by itself (exit status 0) once a client leaves. */
  endsAfterClient?: boolean;
  /** ok: the first client's connection (the sheet's one client). */
  main?: Lined;
  /** ok: connections left open until fin (the sheet's servers do not
   * survive a client that leaves without "fin"). */
  kept?: Deno.Conn[];
  /** What the stalled-reader session found about the other clients. */
  stallOthers?: Result;
}

/** The sheets' steps and what each is, for --help and the summary. */
export const STEPS: Record<Kind, string[]> = {
  echo: ["1.2", "2.1", "2.2"],
  "udp-echo": ["1.4"],
  ok: ["1", "2"],
};

const ok = (why: string): Result => ({ status: "pass", why });
const bad = (why: string): Result => ({ status: "fail", why });
const notRun = (why: string): Result => ({ status: "not-run", why });

/** French typography for a French message: a no-break space before
 * `:` `;` `?` `!` `»` and after `«`. */
export function typo(fr: string): string {
  return fr.replace(/ ([:;?!»])/g, "\u00a0$1").replace(/« /g, "«\u00a0");
}

/** say() with French typography applied to the French text. */
function tr(en: string, fr: string): string {
  return say(en, typo(fr));
}

/** The first bytes of `bytes`, quoted: 'ok', 'OK\n', '\xe9t\xe9…'. */
export function quote(bytes: Uint8Array, max = 24): string {
  const shown = bytes.subarray(0, max);
  let asText: string | null = null;
  try {
    asText = new TextDecoder("utf-8", { fatal: true }).decode(shown);
  } catch {
    // not UTF-8 (or cut inside a character): bytes, escaped
  }
  if (
    asText !== null && /[^ -~\n\r\t]/.test(asText) &&
    ![...asText].some((c) => c < " " && !"\n\r\t".includes(c))
  ) {
    const out = asText.replace(/[\n\r\t\\']/g, (c) =>
      c === "\n"
        ? "\\n"
        : c === "\r"
        ? "\\r"
        : c === "\\" || c === "'"
        ? `\\${c}`
        : `\\x${c.charCodeAt(0).toString(16).padStart(2, "0")}`) +
      (bytes.length > max ? "…" : "");
    return say(`'${out}'`, `«\u00a0${out}\u00a0»`);
  }
  let out = "";
  for (const b of bytes.subarray(0, max)) {
    if (b === 0x0a) out += "\\n";
    else if (b === 0x0d) out += "\\r";
    else if (b === 0x09) out += "\\t";
    else if (b === 0x5c) out += "\\\\";
    else if (b === 0x27) out += "\\'";
    else if (b >= 0x20 && b < 0x7f) out += String.fromCharCode(b);
    else out += `\\x${b.toString(16).padStart(2, "0")}`;
  }
  if (bytes.length > max) out += "…";
  return say(`'${out}'`, `«\u00a0${out}\u00a0»`);
}

const bytesOf = (n: number) => plural(n, "byte", "octet");
/** The French plural "s" of a participle agreeing with `n` things (0 and
 * 1 take the singular: "0 octet renvoyé", "2 octets renvoyés"). */
const frS = (n: number) => Math.abs(n) >= 2 ? "s" : "";

/** How many bytes the server sent before the echo began (a greeting),
 * or 0: the smallest k (up to 512) after which `got` goes on as `sent`
 * does, for at least 4 bytes or to the end of either. */
function ownBytesFirst(got: Uint8Array, sent: Uint8Array): number {
  for (let k = 1; k <= Math.min(512, got.length - 1); k++) {
    const n = Math.min(got.length - k, sent.length);
    if (n < Math.min(4, sent.length)) break;
    let j = 0;
    while (j < n && got[k + j] === sent[j]) j++;
    if (j === n) return k;
  }
  return 0;
}

/** U+FFFD (EF BF BD) at `i`: what a decode, errors="replace" (or Node's
 * toString()) makes of bytes that are not UTF-8 text. */
function replacementAt(got: Uint8Array, i: number): boolean {
  return got[i] === 0xef && got[i + 1] === 0xbf && got[i + 2] === 0xbd;
}

const REPLACEMENT_HINT = () =>
  tr(
    " (U+FFFD, the replacement character: the server decodes the bytes as UTF-8 text, which they need not be, and a character may be split between two recv(); an echo sends back the bytes as they are)",
    " (U+FFFD, le caractère de remplacement : le serveur décode les octets en texte UTF-8, ce qu'ils ne sont pas forcément, et un caractère peut être coupé entre deux recv() ; un écho renvoie les octets tels quels)",
  );

/** The echo stopped right after a newline, and what is missing has none:
 * the server waits for a line end before it echoes. */
function cutAfterLastNewline(
  length: number,
  sent: Uint8Array | number,
  pattern?: Uint8Array,
): boolean {
  // `sent` bytes of `pattern` repeated (the stalled client's stream).
  const at = (i: number) =>
    typeof sent === "number" ? pattern![i % pattern!.length] : sent[i];
  const total = typeof sent === "number" ? sent : sent.length;
  if (length <= 0 || length >= total || at(length - 1) !== 0x0a) return false;
  for (let i = length; i < total; i++) if (at(i) === 0x0a) return false;
  return true;
}

const LINES_HINT = () =>
  tr(
    " — the echo stops after the last '\\n' sent: the server waits for a newline (readline()?); an echo sends back whatever recv() returns, at once",
    " — l'écho s'arrête après le dernier '\\n' envoyé : le serveur attend une fin de ligne (readline() ?) ; un écho renvoie tout de suite ce que recv() renvoie",
  );

/** Why an echo is not the bytes sent, or null when it is exactly them.
 * `ended`: the server closed the connection. */
export function judgeEcho(
  got: Uint8Array,
  sent: Uint8Array,
  ended: boolean,
): string | null {
  const n = Math.min(got.length, sent.length);
  let i = 0;
  while (i < n && got[i] === sent[i]) i++;
  // A greeting differs from the first byte (a repeated chunk, later).
  const own = i === 0 && n > 0 ? ownBytesFirst(got, sent) : 0;
  if (own > 0) {
    return tr(
      `the server sent ${bytesOf(own)} of its own first (${
        quote(got.subarray(0, own), 40)
      }), then the echo: an echo sends nothing but what it receives`,
      `le serveur a d'abord envoyé ${bytesOf(own)} de lui-même (${
        quote(got.subarray(0, own), 40)
      }), puis l'écho : un écho n'envoie rien d'autre que ce qu'il reçoit`,
    );
  }
  if (i < n) {
    return tr(
      `byte ${formatCount(i)} differs: sent ${
        quote(sent.subarray(i, i + 1))
      }, got ${quote(got.subarray(i, i + 8))}`,
      `l'octet ${formatCount(i)} diffère : envoyé ${
        quote(sent.subarray(i, i + 1))
      }, reçu ${quote(got.subarray(i, i + 8))}`,
    ) + (replacementAt(got, i) ? REPLACEMENT_HINT() : "");
  }
  if (got.length < sent.length) {
    const what = tr(
      `got ${formatCount(got.length)} of ${bytesOf(sent.length)} back`,
      `${formatCount(got.length)} reçu${frS(got.length)} sur ${
        bytesOf(sent.length)
      }`,
    );
    if (ended) {
      return what + tr(
        ", then the server closed the connection",
        ", puis le serveur a fermé la connexion",
      );
    }
    return what + (cutAfterLastNewline(got.length, sent) ? LINES_HINT() : "");
  }
  if (got.length > sent.length) {
    const extra = got.subarray(sent.length);
    const newline = extra.length <= 2 &&
      extra.every((b) => b === 0x0a || b === 0x0d);
    return tr(
      `${formatCount(got.length)} bytes for ${formatCount(sent.length)}: ${
        newline
          ? `an extra ${quote(extra)}? (an echo adds nothing)`
          : `${bytesOf(extra.length)} too many, ${quote(extra)}`
      }`,
      `${formatCount(got.length)} octets pour ${formatCount(sent.length)} : ${
        newline
          ? `un ${quote(extra)} en trop ? (un écho n'ajoute rien)`
          : `${bytesOf(extra.length)} de trop, ${quote(extra)}`
      }`,
    );
  }
  return null;
}

// ===========================================================================
// Sheet 000 §1.2, §2.1, §2.2: the TCP echo server
//
// An echo server sends back every byte, unchanged (TCP carries bytes, not
// text), however TCP splits them, for as long as the client stays, then
// closes when recv() returns b"". §1.2 serves one client at a time; §2.1
// (select) and §2.2 (threads) serve several. The sheet's §2.1 server uses
// a blocking sendall(), so a client that stops reading stalls it, and
// recv() raises on a reset: §2.2's threads get both right, hence the
// stalled-reader and reset checks count at §2.2. 1,100 clients is past
// every step (select() stops at descriptor 1024, FD_SETSIZE; a process
// under `ulimit -n 1024` too): it counts only without --step.

/** How long to wait for bytes beyond an expected echo. */
const GRACE_MS = 300;

export const ECHO_CHECKS: Check[] = [
  {
    id: "bytes",
    name: () => tr("256 byte values", "les 256 valeurs d'octet"),
    steps: ["1.2", "2.1", "2.2"],
    run: (t) => echoOnce(t, new Uint8Array(512).map((_, i) => i % 256)),
  },
  {
    id: "accents",
    name: () => tr("UTF-8 accents", "accents UTF-8"),
    steps: ["1.2", "2.1", "2.2"],
    run: (t) => echoOnce(t, utf8("hého, àéèùç, ñ, 日本語, €, 🙂\n")),
  },
  {
    id: "several",
    name: () =>
      tr(
        "several messages on one connection",
        "plusieurs messages sur une connexion",
      ),
    steps: ["1.2", "2.1", "2.2"],
    run: severalMessages,
  },
  {
    id: "big",
    name: () => tr("1 MiB message", "message de 1 Mio"),
    steps: ["1.2", "2.1", "2.2"],
    run: (t) => echoOnce(t, patternBytes(1 << 20), 20_000),
  },
  {
    id: "half-close",
    name: () => tr("half-close", "demi-fermeture"),
    steps: ["1.2", "2.1", "2.2"],
    run: halfClose,
  },
  {
    id: "idle",
    name: () => tr("idle CPU", "CPU au repos"),
    steps: ["2.1", "2.2"],
    run: idleCpu,
    needsRun: true,
  },
  {
    id: "second",
    name: () => tr("second client", "deuxième client"),
    steps: ["2.1", "2.2"],
    run: secondClient,
  },
  {
    id: "many50",
    name: () => tr("50 clients at once", "50 clients à la fois"),
    steps: ["2.1", "2.2"],
    run: (t) => manyClients(t, 50),
    needsConcurrency: true,
  },
  {
    id: "stalled",
    name: () =>
      tr(
        "client that stops reading gets every byte back",
        "le client qui ne lit plus retrouve tous ses octets",
      ),
    steps: ["2.1", "2.2"],
    run: stalledReader,
    needsConcurrency: true,
  },
  {
    id: "reset",
    name: () => tr("abrupt reset", "réinitialisation brutale"),
    steps: ["2.2"],
    run: abruptReset,
  },
  {
    id: "stalled-others",
    name: () =>
      tr(
        "others served while one client stops reading",
        "les autres servis pendant qu'un client ne lit plus",
      ),
    steps: ["2.2"],
    run: async (t) => {
      if (!t.stallOthers) await stalledReader(t);
      const result = t.stallOthers!;
      t.stallOthers = undefined;
      return result;
    },
    needsConcurrency: true,
  },

  {
    id: "many1100",
    name: () =>
      tr("1,100 clients at once", `${formatCount(1_100)} clients à la fois`),
    steps: [],
    run: (t) => manyClients(t, 1_100),
    needsConcurrency: true,
  },
];

/** One connection, one message, its exact echo (and nothing after it). */
async function echoOnce(
  t: Target,
  payload: Uint8Array,
  ms = 5_000,
): Promise<Result> {
  const conn = await connectTo(t);
  const incoming = new Lined(conn, LINED_MAX_BYTES);
  try {
    const writing = bounded(writeAll(conn, payload), ms).catch(() => {});
    // Up to `ms` in all, but not 5 s more without a byte coming back.
    const by = Date.now() + ms;
    let seen = -1;
    while (
      incoming.length < payload.length && !incoming.ended &&
      incoming.length > seen && Date.now() < by
    ) {
      seen = incoming.length;
      await incoming.until(
        payload.length,
        Math.min(5_000, Math.max(0, by - Date.now())),
      );
    }
    // Still writing to a server that sends nothing back: closing the
    // connection (finally) ends the write.
    if (incoming.length >= payload.length) await writing;
    await incoming.until(payload.length + 1, GRACE_MS);
    const got = incoming.take();
    if (got.length === 0 && payload.length > 0 && !incoming.ended) {
      return bad(noEcho(Math.min(ms, 5_000)));
    }
    const why = judgeEcho(got, payload, incoming.ended);
    if (why !== null) return bad(withError(why, incoming));
    return ok(tr(
      `${bytesOf(payload.length)} back, exactly`,
      `${bytesOf(payload.length)} renvoyé${frS(payload.length)} à l'identique`,
    ));
  } finally {
    closeQuietly(conn);
  }
}

/** Nothing back, and the connection still open. */
const noEcho = (ms: number) =>
  tr(
    `no echo within ${
      formatCount(ms / 1000)
    } s (the connection stays open: is the server reading?)`,
    `pas d'écho en ${
      formatCount(ms / 1000)
    } s (la connexion reste ouverte : le serveur lit-il ?)`,
  );

/** A reset or other error that ended the reading, after a reason. */
function withError(why: string, incoming: Lined): string {
  return incoming.error === null
    ? why
    : `${why} (${errorMessage(incoming.error)})`;
}

/** Four messages on one connection, each waiting for its echo: a server
 * that reads once and closes, or answers only the first, shows here. */
async function severalMessages(t: Target): Promise<Result> {
  const messages = ["one\n", "two, a bit longer\n", "3\n", "the last one\n"]
    .map(utf8);
  const conn = await connectTo(t);
  const incoming = new Lined(conn);
  try {
    let sent: Uint8Array = new Uint8Array(0);
    for (const [i, m] of messages.entries()) {
      sent = concat([sent, m]);
      await bounded(writeAll(conn, m), 3_000).catch(() => {});
      await incoming.until(sent.length, 3_000);
      const got = incoming.peek();
      if (
        got.length < sent.length && sameBytes(got, sent.subarray(0, got.length))
      ) {
        if (got.length === 0 && !incoming.ended) {
          return bad(tr(
            `message 1 of ${messages.length}: ${noEcho(3_000)}`,
            `message 1 sur ${messages.length} : ${noEcho(3_000)}`,
          ));
        }
        if (i > 0 && got.length === sent.length - m.length) {
          return bad(withError(
            tr(
              `message ${i + 1} of ${messages.length} got no echo${
                incoming.ended
                  ? ': the server closed the connection after the previous one (loop on recv() until it returns b"")'
                  : ""
              }`,
              `le message ${i + 1} sur ${messages.length} n'a pas d'écho${
                incoming.ended
                  ? ' : le serveur a fermé la connexion après le précédent (bouclez sur recv() jusqu\'à b"")'
                  : ""
              }`,
            ),
            incoming,
          ));
        }
      }
      const why = got.length <= sent.length
        ? judgeEcho(got, sent, incoming.ended)
        : null;
      if (why !== null) return bad(withError(why, incoming));
    }
    await incoming.until(sent.length + 1, GRACE_MS);
    const why = judgeEcho(incoming.peek(), sent, incoming.ended);
    if (why !== null) return bad(why);
    return ok(tr(
      `${messages.length} messages, each echoed in turn`,
      `${messages.length} messages, chacun renvoyé à son tour`,
    ));
  } finally {
    closeQuietly(conn);
  }
}

async function halfClose(t: Target): Promise<Result> {
  const payload = patternBytes(100_000, 7);
  const conn = await connectTo(t);
  const incoming = new Lined(conn);
  try {
    await bounded(writeAll(conn, payload), 5_000);
    await conn.closeWrite();
    await incoming.until(Infinity, 5_000);
    const got = incoming.take();
    if (got.length === 0 && !incoming.ended) return bad(noEcho(5_000));
    if (got.length < payload.length || !incoming.ended) {
      const why = judgeEcho(got, payload, incoming.ended);
      if (why !== null && got.length !== payload.length) {
        return bad(withError(
          incoming.ended
            ? tr(
              `${why}: after the client's half-close, the server must still send back everything it received`,
              `${why} : après la demi-fermeture du client, le serveur doit encore renvoyer tout ce qu'il a reçu`,
            )
            : why,
          incoming,
        ));
      }
    }
    const why = judgeEcho(got, payload, incoming.ended);
    if (why !== null) return bad(why);
    if (!incoming.ended) {
      return bad(tr(
        'everything echoed, but the server did not close within 5 s after the client\'s half-close (recv() returns b"": close the socket)',
        'tout est renvoyé, mais le serveur n\'a pas fermé dans les 5 s après la demi-fermeture du client (recv() renvoie b"" : fermez la socket)',
      ));
    }
    return ok(tr(
      "everything echoed, then the server closed",
      "tout est renvoyé, puis le serveur ferme",
    ));
  } finally {
    closeQuietly(conn);
  }
}

/** With no client connected, a server sleeps in accept()/select(). One
 * that keeps a closed socket in select()'s list wakes at once, forever:
 * measured from /proc/PID/stat over IDLE_MS. */
async function idleCpu(t: Target): Promise<Result> {
  // What the last check left to finish (a thread ending, a collection)
  // is not idleness yet.
  await sleep(IDLE_SETTLE_MS);
  const before = await cpuTicks(await serverPids(t.proc!.pid));
  await sleep(IDLE_MS);
  const after = await cpuTicks(await serverPids(t.proc!.pid));
  if (await t.proc!.exitedWithin(0)) {
    return bad(tr(
      "the server stopped while no client was connected (its error is below)",
      "le serveur s'est arrêté alors qu'aucun client n'était connecté (son erreur est ci-dessous)",
    ));
  }
  if (before === null || after === null) {
    return notRun(tr(
      "cannot read /proc/PID/stat (Linux only)",
      "impossible de lire /proc/PID/stat (Linux seulement)",
    ));
  }
  const seconds = (after - before) / CLOCK_TICKS;
  const share = seconds / (IDLE_MS / 1000);
  const used = tr(
    `${seconds.toFixed(2)} s of CPU in ${IDLE_MS / 1000} s with no client`,
    `${seconds.toFixed(2).replace(".", ",")} s de CPU en ${
      String(IDLE_MS / 1000).replace(".", ",")
    } s sans aucun client`,
  );
  if (share >= IDLE_CPU_LIMIT && await threadsLeft(t.proc!.pid) > 1) {
    // Threads still there with no client: each spins on a socket whose
    // client left (the threads of §2.2 end when their client leaves).
    return bad(tr(
      `${used}: a busy loop (§2.1, §2.2: threads still running with no client connected: recv() on a socket whose client left returns b"" at once, forever; when it does, close the socket and leave the loop, so the thread ends)`,
      `${used} : une boucle active (§2.1, §2.2 : des threads tournent encore sans aucun client : recv() sur une socket dont le client est parti renvoie b"" tout de suite, sans fin ; quand c'est le cas, fermez la socket et sortez de la boucle, pour que le thread se termine)`,
    ));
  }
  if (share >= IDLE_CPU_LIMIT) {
    return bad(tr(
      `${used}: a busy loop (§2.1: a socket whose client left, still in select()'s list, is "readable" at once, forever: close it and remove it from the list)`,
      `${used} : une boucle active (§2.1 : une socket dont le client est parti, restée dans la liste de select(), est « lisible » tout de suite, sans fin : fermez-la et retirez-la de la liste)`,
    ));
  }
  return ok(used);
}

const ONE_AT_A_TIME = () =>
  tr(
    "not served while the first client stays connected: one client at a time is the sequential server of §1.2; §2 serves several (select() or threads)",
    "pas servi tant que le premier client reste connecté : un client à la fois, c'est le serveur séquentiel du §1.2 ; le §2 en sert plusieurs (select() ou threads)",
  );

async function secondClient(t: Target): Promise<Result> {
  const first = await connectTo(t);
  const one = new Lined(first);
  let second: Deno.TcpConn | null = null;
  try {
    const a = await exchange(first, one, "first\n");
    if (a !== null) {
      return bad(tr(`the first client: ${a}`, `le premier client : ${a}`));
    }
    second = await connectTo(t);
    const two = new Lined(second);
    const b = await exchange(second, two, "second\n");
    if (b !== null) {
      if (two.length === 0 && !two.ended) {
        t.oneClient = true;
        return bad(ONE_AT_A_TIME());
      }
      return bad(tr(`the second client: ${b}`, `le deuxième client : ${b}`));
    }
    const c = await exchange(first, one, "first again\n");
    if (c !== null) {
      return bad(tr(
        `the first client, speaking again after the second: ${c}`,
        `le premier client, qui reparle après le deuxième : ${c}`,
      ));
    }
    return ok(tr(
      "served while the first one stays connected, and the first still is",
      "servi pendant que le premier reste connecté, et le premier l'est toujours",
    ));
  } finally {
    closeQuietly(first);
    if (second) closeQuietly(second);
  }
}

/** Sends `line` on `conn`, waits for exactly its echo: null, or why not. */
async function exchange(
  conn: Deno.Conn,
  incoming: Lined,
  line: string,
  ms = 3_000,
): Promise<string | null> {
  const bytes = utf8(line);
  const start = incoming.length;
  await bounded(writeAll(conn, bytes), ms).catch(() => {});
  await incoming.until(start + bytes.length, ms);
  const got = incoming.peek().subarray(start);
  const why = judgeEcho(got, bytes, incoming.ended);
  if (why === null) return null;
  if (got.length === 0 && !incoming.ended) {
    return tr(
      `no echo within ${ms / 1000} s`,
      `pas d'écho en ${ms / 1000} s`,
    );
  }
  return withError(why, incoming);
}

async function abruptReset(t: Target): Promise<Result> {
  await resetAfterEcho(t, utf8("about to crash\n"));
  // The server sees the reset on its next recv(); give it that moment.
  let after: string | null;
  try {
    const conn = await connectTo(t);
    try {
      after = await exchange(conn, new Lined(conn), "still there?\n");
    } finally {
      closeQuietly(conn);
    }
  } catch (err) {
    after = errorMessage(err);
  }
  // Twice, the second time from another new client: a one-thread server
  // may answer once before its loop comes to the reset socket.
  if (after === null) {
    try {
      const conn = await connectTo(t);
      try {
        after = await exchange(conn, new Lined(conn), "and now?\n");
      } finally {
        closeQuietly(conn);
      }
    } catch (err) {
      after = errorMessage(err);
    }
  }
  if (after !== null) {
    const stopped = t.proc
      ? await t.proc.exitedWithin(2_000)
      : !(await reachable(t));
    return bad(
      stopped
        ? tr(
          "after a client reset its connection (RST), the server stopped: catch ConnectionResetError (recv() raises it) for that client only",
          "après la réinitialisation (RST) d'un client, le serveur s'est arrêté : interceptez ConnectionResetError (levée par recv()) pour ce client seulement",
        )
        : tr(
          `after a client reset its connection (RST), a new client: ${after}`,
          `après la réinitialisation (RST) d'un client, un nouveau client : ${after}`,
        ),
    );
  }
  return ok(tr(
    "a reset client does not stop the server",
    "un client réinitialisé n'arrête pas le serveur",
  ));
}

/** A client sends and never reads: once its buffers fill, a server that
 * writes to it with a blocking sendall() waits for it, and so does every
 * other client of a one-thread server. Then every byte it was sent back is
 * read and compared: a server that drops what a non-blocking send() could
 * not send loses bytes here. */
async function stalledReader(t: Target): Promise<Result> {
  const stalled = await connectTo(t);
  const chunk = patternBytes(64 * 1024, 3);
  let sent = 0;
  let pending: Promise<unknown> | null = null;
  try {
    // Write until a write stays pending (buffers full), at most 32 MiB. A
    // write slow for a moment on a busy machine is not full buffers: one
    // still pending after STALL_MS more is.
    while (sent < STALL_MAX_BYTES) {
      const w = writeAll(stalled, chunk);
      sent += chunk.length;
      if (
        !(await settlesWithin(w, 300)) && !(await settlesWithin(w, STALL_MS))
      ) {
        pending = w.catch(() => {});
        break;
      }
    }
    let other: string | null;
    try {
      const conn = await connectTo(t);
      try {
        other = await exchange(conn, new Lined(conn), "anyone there?\n");
      } finally {
        closeQuietly(conn);
      }
    } catch (err) {
      other = errorMessage(err);
    }
    t.stallOthers = other === null
      ? ok(tr(
        "another client was served while one did not read",
        "un autre client a été servi pendant qu'un client ne lisait pas",
      ))
      : bad(tr(
        `another client was not served while one client did not read (${other}): the server waits in sendall() to that client; §2.2's threads, or select() on writable sockets, do not`,
        `un autre client n'a pas été servi pendant qu'un client ne lisait pas (${other}) : le serveur attend dans sendall() vers ce client ; les threads du §2.2, ou select() sur les sockets prêtes en écriture, n'attendent pas`,
      ));
    // Release the server: read back, and compare, everything it echoes.
    const incoming = new Lined(stalled, LINED_MAX_BYTES);
    let idleSince = Date.now();
    let seen = 0;
    const drainBy = Date.now() + 30_000;
    while (incoming.length < sent && !incoming.ended && Date.now() < drainBy) {
      await incoming.until(incoming.length + 1, 500);
      if (incoming.length > seen) {
        seen = incoming.length;
        idleSince = Date.now();
      } else if (Date.now() - idleSince > 5_000) break;
    }
    if (pending) await bounded(pending, 5_000).catch(() => {});
    const got = incoming.take();
    let i = 0;
    while (i < got.length && got[i] === chunk[i % chunk.length]) i++;
    if (i < got.length && i < sent && replacementAt(got, i)) {
      return bad(
        tr(
          `byte ${formatCount(i)} of the stalled client's echo differs (sent ${
            quote(chunk.subarray(i % chunk.length, i % chunk.length + 1))
          }, got ${quote(got.subarray(i, i + 3))})`,
          `l'octet ${
            formatCount(i)
          } de l'écho du client bloqué diffère (envoyé ${
            quote(chunk.subarray(i % chunk.length, i % chunk.length + 1))
          }, reçu ${quote(got.subarray(i, i + 3))})`,
        ) + REPLACEMENT_HINT(),
      );
    }
    if (i < got.length && i < sent) {
      return bad(tr(
        `byte ${formatCount(i)} of the stalled client's echo differs (sent ${
          quote(chunk.subarray(i % chunk.length, i % chunk.length + 1))
        }, got ${quote(got.subarray(i, i + 1))}): bytes were lost or reordered`,
        `l'octet ${formatCount(i)} de l'écho du client bloqué diffère (envoyé ${
          quote(chunk.subarray(i % chunk.length, i % chunk.length + 1))
        }, reçu ${
          quote(got.subarray(i, i + 1))
        }) : des octets ont été perdus ou mélangés`,
      ));
    }
    const gotBack = tr(
      `the client that stopped reading got ${formatCount(got.length)} of ${
        bytesOf(sent)
      } back once it read again`,
      `le client qui ne lisait plus a reçu ${formatCount(got.length)} sur ${
        bytesOf(sent)
      } en relisant`,
    );
    if (got.length < sent && (incoming.ended || got.length === 0)) {
      // Not a non-blocking send() losing bytes: the server closed this
      // client (or never echoed, or crashed on what it was sent).
      return bad(withError(
        gotBack + (incoming.ended
          ? tr(
            ", then the server closed the connection",
            ", puis le serveur a fermé la connexion",
          )
          : tr(
            ", and the connection stayed open",
            ", et la connexion est restée ouverte",
          )),
        incoming,
      ));
    }
    if (got.length < sent && cutAfterLastNewline(got.length, sent, chunk)) {
      return bad(gotBack + LINES_HINT());
    }
    if (got.length < sent) {
      return bad(
        gotBack + tr(
          `: ${
            formatCount(sent - got.length)
          } lost (a non-blocking send() sends only what fits: keep the rest and send it when select() says the socket is writable)`,
          ` : ${formatCount(sent - got.length)} perdu${
            frS(sent - got.length)
          } (un send() non bloquant n'envoie que ce qui tient : gardez le reste et envoyez-le quand select() dit la socket prête en écriture)`,
        ),
      );
    }
    if (got.length > sent) {
      return bad(tr(
        `${formatCount(got.length)} bytes for ${formatCount(sent)}`,
        `${formatCount(got.length)} octets pour ${formatCount(sent)}`,
      ));
    }
    return ok(tr(
      `all ${bytesOf(sent)} came back, in order, once it read again`,
      `les ${bytesOf(sent)} sont revenus, dans l'ordre, quand il a relu`,
    ));
  } finally {
    closeQuietly(stalled);
    if (pending) await bounded(pending, 2_000).catch(() => {});
  }
}

/** Only one many-clients check at a time, whatever the number of targets:
 * each holds up to 1,100 descriptors of ours. */
let manyLock: Promise<void> = Promise.resolve();

/** `count` clients connect one after the other and stay connected; each
 * gets one echo as it arrives (so a short listen() backlog is no excuse),
 * then all of them, still connected, send again at once. */
async function manyClients(t: Target, count: number): Promise<Result> {
  const previous = manyLock;
  let release = () => {};
  manyLock = new Promise<void>((r) => release = r);
  await previous;
  try {
    return await manyClientsNow(t, count);
  } finally {
    release();
  }
}

async function manyClientsNow(t: Target, count: number): Promise<Result> {
  const conns: { conn: Deno.TcpConn; incoming: Lined }[] = [];
  const limit = t.proc ? await openFilesLimit(t.proc.pid) : null;
  let served = 0;
  let stop = "";
  try {
    const openBy = Date.now() + 30_000;
    while (conns.length < count && Date.now() < openBy) {
      let conn: Deno.TcpConn;
      try {
        conn = await connectTo(t);
      } catch (err) {
        stop = errorMessage(err);
        break;
      }
      const incoming = new Lined(conn);
      conns.push({ conn, incoming });
      const why = await exchange(conn, incoming, `client ${conns.length}\n`);
      if (why !== null) {
        stop = why;
        break;
      }
      served++;
    }
    if (conns.length < count && stop === "") {
      stop = tr(
        `not reached: the first ${
          formatCount(served)
        } took the 30 s allowed (the server answers each new client slowly)`,
        `pas atteint : les ${
          formatCount(served)
        } premiers ont pris les 30 s accordées (le serveur répond lentement à chaque nouveau client)`,
      );
    }
    if (served === count) {
      const again = await Promise.all(
        conns.map(({ conn, incoming }, i) =>
          exchange(conn, incoming, `again ${i}\n`, 10_000)
        ),
      );
      served = again.filter((why) => why === null).length;
      stop = again.find((why) => why !== null) ?? "";
    }
  } finally {
    for (const { conn } of conns) closeQuietly(conn);
  }
  if (served === count) {
    return ok(tr(
      `all ${formatCount(count)} served`,
      `les ${formatCount(count)} sont servis`,
    ));
  }
  const gone = t.proc
    ? await t.proc.exitedWithin(1_000)
    : !(await reachable(t));
  let why = tr(
    `${formatCount(served)} of ${formatCount(count)} served (client ${
      formatCount(served + 1)
    }: ${stop})`,
    `${formatCount(served)} servi${frS(served)} sur ${
      formatCount(count)
    } (client ${formatCount(served + 1)} : ${stop})`,
  );
  if (gone) {
    why += tr(", then the server stopped", ", puis le serveur s'est arrêté");
  }
  return bad(why + descriptorHint(t, served, count, limit));
}

/** Why a server stopped near a descriptor count: its open-files limit
 * (read from /proc or named in its last error), or select()'s FD_SETSIZE,
 * which numbers descriptors from 0 and stops at 1024. */
export function descriptorHint(
  t: Target,
  served: number,
  count: number,
  limit: number | null,
): string {
  const stderr = t.proc?.tail().join("\n") ?? "";
  const fdSetSize = tr(
    " — select() cannot watch a descriptor numbered 1024 or more (FD_SETSIZE): use selectors/poll/epoll or an event loop",
    " — select() ne peut pas surveiller un descripteur numéroté 1024 ou plus (FD_SETSIZE) : utilisez selectors/poll/epoll ou une boucle d'événements",
  );
  if (/out of range in select|FD_SETSIZE/i.test(stderr)) return fdSetSize;
  const byLimit = /Too many open files|EMFILE|errno 24/i.test(stderr) ||
    (limit !== null && limit < count + 16 && served >= limit - 64);
  if (byLimit) {
    const shown = limit === null ? "" : ` (${formatCount(limit)})`;
    return tr(
      ` — the server's own open files limit${shown} stopped it (ulimit -n): raise it (ulimit -n 4096) before starting the server; this is not a bug of the server`,
      ` — c'est la limite de fichiers ouverts du serveur${shown} qui l'a arrêté (ulimit -n) : relevez-la (ulimit -n 4096) avant de lancer le serveur ; ce n'est pas un défaut du serveur`,
    );
  }
  if (served < 990 || served > 1_030) return "";
  if (t.proc) return fdSetSize;
  return tr(
    " — near 1,020 descriptors: either select()'s FD_SETSIZE (1024) or the server's open files limit (ulimit -n); --run tells which",
    " — près de 1 020 descripteurs : soit FD_SETSIZE de select() (1024), soit la limite de fichiers ouverts du serveur (ulimit -n) ; --run dit lequel",
  );
}

// ===========================================================================
// Sheet 000 §1.4: the UDP echo server
//
// A datagram is a whole message: it comes back whole or not at all. The
// empty datagram is a real one (recvfrom() returns b""); 1,472 bytes fill
// one Ethernet frame; 65,507 is the largest IPv4 UDP payload, which a
// server reading with recvfrom(1500) truncates (the sheet gives no size:
// past the step). Each reply goes to the address recvfrom() returned.

export const UDP_CHECKS: Check[] = [
  {
    id: "exact",
    name: () => tr("exact echo", "écho exact"),
    steps: ["1.4"],
    run: (t) => udpEcho(t, new Uint8Array(256).map((_, i) => i)),
  },
  {
    id: "empty",
    name: () => tr("empty datagram", "datagramme vide"),
    steps: ["1.4"],
    run: (t) => udpEcho(t, new Uint8Array(0)),
  },
  {
    id: "1472",
    name: () => tr("1,472 bytes", `${formatCount(1_472)} octets`),
    steps: ["1.4"],
    run: (t) => udpEcho(t, patternBytes(1_472)),
  },
  {
    id: "senders",
    name: () => tr("several senders", "plusieurs expéditeurs"),
    steps: ["1.4"],
    run: udpSenders,
  },
  {
    id: "65507",
    name: () => tr("65,507 bytes", `${formatCount(65_507)} octets`),
    steps: [],
    run: (t) => udpEcho(t, patternBytes(65_507)),
  },
];

async function udpEcho(t: Target, payload: Uint8Array): Promise<Result> {
  const reply = await udpExchange(t, payload, GRACE_MS);
  if (reply === null) {
    const stopped = t.proc !== undefined && await t.proc.exitedWithin(500);
    return bad(tr(
      `no reply within 1 s (3 tries)${
        stopped ? ": the server stopped (its error is below)" : ""
      }`,
      `pas de réponse en 1 s (3 essais)${
        stopped ? " : le serveur s'est arrêté (son erreur est ci-dessous)" : ""
      }`,
    ));
  }
  const got = reply.data;
  const why = judgeEcho(got, payload, false);
  if (why !== null) {
    const cut = got.length < payload.length && got.length > 0 &&
      sameBytes(got, payload.subarray(0, got.length));
    const size = formatCount(got.length);
    return bad(
      cut
        ? why + tr(
          `: the datagram was cut (recvfrom(${got.length})? a UDP datagram can carry up to 65,507 bytes: recvfrom(65535))`,
          ` : le datagramme a été tronqué (recvfrom(${got.length}) ? un datagramme UDP peut porter jusqu'à 65 507 octets : recvfrom(65535))`,
        ) + (got.length < 1_472
          ? tr(
            `; ${size} bytes is less than one Ethernet frame's 1,472`,
            ` ; ${size} octets, c'est moins que les 1 472 d'une trame Ethernet`,
          )
          : "")
        : why,
    );
  }
  if (reply.port !== t.port) {
    return bad(tr(
      `the reply came from port ${reply.port}, not ${t.port}: a client that connected its socket (nc -u) never sees it; reply with the socket that received, s.sendto(data, addr)`,
      `la réponse vient du port ${reply.port}, pas ${t.port} : un client qui a connecté sa socket (nc -u) ne la voit jamais ; répondez avec la socket qui a reçu, s.sendto(data, addr)`,
    ));
  }
  if (reply.more > 0) {
    return bad(tr(
      `${
        formatCount(reply.more + 1)
      } replies to one datagram: an echo sends each datagram back once`,
      `${
        formatCount(reply.more + 1)
      } réponses à un seul datagramme : un écho renvoie chaque datagramme une fois`,
    ));
  }
  return ok(tr(
    `${bytesOf(payload.length)} back, exactly`,
    `${bytesOf(payload.length)} renvoyé${frS(payload.length)} à l'identique`,
  ));
}

async function udpSenders(t: Target): Promise<Result> {
  const replies = await Promise.all(
    Array.from(
      { length: UDP_SENDERS },
      (_, i) => udpRoundTrip(t, utf8(`sender ${i}`)),
    ),
  );
  const sent = replies.map((_, i) => `sender ${i}`);
  const right = replies.filter((r, i) => r !== null && text(r) === sent[i])
    .length;
  if (right === UDP_SENDERS) {
    return ok(tr(
      `each of ${UDP_SENDERS} got its own reply`,
      `chacun des ${UDP_SENDERS} a reçu sa réponse`,
    ));
  }
  // Every sender got a reply, none of them another sender's message: the
  // replies went to the right senders, but are not the echo.
  const wrong = replies.findIndex((r, i) => r !== null && text(r) !== sent[i]);
  if (
    replies.every((r) => r !== null) &&
    !replies.some((r, i) => sent.some((m, j) => j !== i && text(r!) === m))
  ) {
    const why = judgeEcho(replies[wrong]!, utf8(sent[wrong]), false);
    return bad(tr(
      `each got a reply, ${right} of ${UDP_SENDERS} their own message back (sender ${
        wrong + 1
      }: ${why})`,
      `chacun a reçu une réponse, ${right} sur ${UDP_SENDERS} leur propre message (expéditeur ${
        wrong + 1
      } : ${why})`,
    ));
  }
  return bad(tr(
    `${right} of ${UDP_SENDERS} got their own reply: answer to the address recvfrom() returned`,
    `${right} sur ${UDP_SENDERS} ont reçu leur réponse : répondez à l'adresse renvoyée par recvfrom()`,
  ));
}

/** Whether a UDP socket is bound to `port` on this machine (Linux /proc),
 * or null when that cannot be known. Deno has no connected UDP socket, so
 * the ICMP "port unreachable" a connected socket would report is read this
 * way instead: same answer, "is anything listening there?". */
export function udpPortBound(port: number): Promise<boolean | null> {
  return portInProc("udp", port);
}

/** Whether a TCP socket listens on `port` on this machine (Linux /proc),
 * or null when that cannot be known. */
export function tcpListening(port: number): Promise<boolean | null> {
  return portInProc("tcp", port);
}

/** Whether /proc/net/TABLE or TABLE6 has a socket on local port `port`
 * (TCP: in state LISTEN, 0A), or null when neither can be read. */
async function portInProc(
  table: "tcp" | "udp",
  port: number,
): Promise<boolean | null> {
  const hex = `:${port.toString(16).toUpperCase().padStart(4, "0")}`;
  let seen = false;
  for (const file of [`/proc/net/${table}`, `/proc/net/${table}6`]) {
    const body = await readProc(file);
    if (body === null) continue;
    seen = true;
    for (const row of body.split("\n").slice(1)) {
      const f = row.trim().split(/\s+/);
      if (f[1]?.endsWith(hex) && (table === "udp" || f[3] === "0A")) {
        return true;
      }
    }
  }
  return seen ? false : null;
}

/** A file of /proc (Linux), or null. Deno asks for every permission to
 * read /proc directly, so it is read through `cat` (--allow-run). */
async function readProc(path: string): Promise<string | null> {
  if (Deno.build.os !== "linux") return null;
  if (
    Deno.permissions.querySync({ name: "run", command: "cat" }).state !==
      "granted"
  ) return null;
  try {
    const out = await new Deno.Command("cat", {
      args: [path],
      stdin: "null",
      stdout: "piped",
      stderr: "null",
    }).output();
    return out.success ? text(out.stdout) : null;
  } catch {
    return null;
  }
}

// ===========================================================================
// Sheet 001: the OK server
//
// The sheet's server answers b"OK" to each message and stops on "fin". Its
// client sends msg.encode() with no newline and waits for the answer; a
// line client (nc) ends each message with a newline; a good server answers
// both. The first server has one client only, for its whole life: the
// conversations run on that first connection. The second (select) serves
// several. decode() "may raise" on Latin-1 bytes, and "fortuitous
// disconnections are not handled": both are past the sheet's steps.
// "fin" is sent as the sheet's client sends it, and the connection left
// open: the server must stop by itself.

export const OK_CHECKS: Check[] = [
  {
    id: "unframed",
    name: () =>
      tr(
        "unframed client (the sheet's)",
        "client sans fin de ligne (celui de la fiche)",
      ),
    steps: ["1", "2"],
    run: (t) => okConversation(t, ["bonjour", "encore", "merci"]),
  },
  {
    id: "accents",
    name: () => tr("UTF-8 accents", "accents UTF-8"),
    steps: ["1", "2"],
    run: (t) => okConversation(t, ["café, ñ, 日本", "àéèùç"]),
  },
  {
    id: "line",
    name: () => tr("line client (nc)", "client ligne par ligne (nc)"),
    steps: ["1", "2"],
    run: (t) => okConversation(t, ["bonjour\n", "encore\n", "merci\n"]),
  },
  {
    id: "second",
    name: () => tr("second client", "deuxième client"),
    steps: ["2"],
    run: okSecond,
  },
  {
    id: "latin1",
    name: () => tr("Latin-1 bytes", "octets Latin-1"),
    steps: [],
    run: (t) =>
      okConversation(t, [new Uint8Array([0x63, 0x61, 0x66, 0xe9, 0x0a])], true),
    needsConcurrency: true,
  },
  {
    id: "abrupt",
    name: () => tr("abrupt disconnect", "déconnexion brutale"),
    steps: [],
    run: okAbrupt,
    needsConcurrency: true,
  },
  {
    id: "fin",
    name: () => tr("fin stops the server", "fin arrête le serveur"),
    steps: ["1", "2"],
    run: okFin,
  },
];

/** The first client's connection, opened once (the sheet's first server
 * never accepts another). */
async function mainConn(t: Target): Promise<Lined> {
  if (t.main && !t.main.ended) return t.main;
  const conn = await connectTo(t);
  t.main = new Lined(conn, OK_MAX_BYTES);
  return t.main;
}

/** Sends `message`, waits up to 2 s for one answer OK: null, or why not. */
async function askOk(
  line: Lined,
  message: Uint8Array,
): Promise<string | null> {
  const start = line.length;
  await bounded(writeAll(line.conn, message), 2_000).catch(() => {});
  await line.waitFor(
    () => /OK(\r?\n)?$/.test(text(line.peek().subarray(start))),
    2_000,
  );
  const got = line.take().subarray(start);
  if (isOkAnswer(text(got))) return null;
  if (got.length === 0) {
    return line.ended
      ? withError(
        tr(
          "the server closed the connection",
          "le serveur a fermé la connexion",
        ),
        line,
      )
      : tr("no answer within 2 s", "pas de réponse en 2 s");
  }
  if (sameBytes(got, message)) {
    return tr(
      `got ${
        quote(got)
      }, the message itself (an echo: the sheet's server answers b"OK")`,
      `reçu ${
        quote(got)
      }, le message lui-même (un écho : le serveur de la fiche répond b"OK")`,
    );
  }
  const lower = /^ok\r?\n?$/i.test(text(got));
  return tr(
    `got ${quote(got)}${lower ? ' (the sheet sends b"OK", in capitals)' : ""}`,
    `reçu ${quote(got)}${
      lower ? ' (la fiche envoie b"OK", en majuscules)' : ""
    }`,
  );
}

/** True for one answer "OK", "OK\n" or "OK\r\n" (a newline left from the
 * previous answer may come first). */
export function isOkAnswer(answer: string): boolean {
  return /^(\r?\n)?OK(\r?\n)?$/.test(answer);
}

async function okConversation(
  t: Target,
  messages: (string | Uint8Array)[],
  ownConnection = false,
): Promise<Result> {
  const own = ownConnection && !t.oneClient;
  const line = own
    ? new Lined(await connectTo(t), OK_MAX_BYTES)
    : await mainConn(t);
  try {
    for (const [i, m] of messages.entries()) {
      const bytes = typeof m === "string" ? utf8(m) : m;
      const why = await askOk(line, bytes);
      if (why !== null) {
        // A conversation gone wrong leaves the connection out of step:
        // the next check starts a new one (this one stays open: a
        // one-client server must not see its client leave).
        if (!own && t.main === line) {
          t.kept = [...(t.kept ?? []), line.conn];
          t.main = undefined;
        }
        return bad(tr(
          `message ${i + 1} of ${messages.length} (${quote(bytes)}): ${why}`,
          `message ${i + 1} sur ${messages.length} (${quote(bytes)}) : ${why}`,
        ));
      }
    }
    return ok(tr(
      messages.length === 1
        ? "OK to the message"
        : `OK to each of ${messages.length} messages`,
      messages.length === 1
        ? "OK au message"
        : `OK à chacun des ${messages.length} messages`,
    ));
  } finally {
    if (own) closeQuietly(line.conn);
  }
}

async function okSecond(t: Target): Promise<Result> {
  const first = await mainConn(t);
  const second = new Lined(await connectTo(t), OK_MAX_BYTES);
  // Left open until the end: the sheet's servers do not survive a client
  // that leaves without "fin".
  t.kept = [...(t.kept ?? []), second.conn];
  const why = await askOk(second, utf8("et moi ?\n"));
  if (why !== null) {
    if (second.length === 0 && !second.ended) {
      // One client at a time answers its first client still; a server
      // that answers nobody is not that.
      const firstToo = await askOk(first, utf8("et toi ?\n"));
      if (firstToo !== null) {
        return bad(tr(
          `the second client: ${why}; nor the first client: ${firstToo}`,
          `le deuxième client : ${why} ; le premier non plus : ${firstToo}`,
        ));
      }
      t.oneClient = true;
      return bad(tr(
        "not answered while the first client stays connected: one client at a time is sheet 001's first server; its second (select) serves several",
        "pas de réponse tant que le premier client reste connecté : un client à la fois, c'est le premier serveur de la fiche 001 ; le deuxième (select) en sert plusieurs",
      ));
    }
    return bad(tr(`the second client: ${why}`, `le deuxième client : ${why}`));
  }
  const again = await askOk(first, utf8("toujours là\n"));
  if (again !== null) {
    return bad(tr(
      `the first client, after the second: ${again}`,
      `le premier client, après le deuxième : ${again}`,
    ));
  }
  return ok(tr(
    "both answered, each on its own connection",
    "les deux ont leur réponse, chacun sur sa connexion",
  ));
}

async function okAbrupt(t: Target): Promise<Result> {
  const stays = await mainConn(t);
  await resetAfterEcho(t, utf8("je plante\n"), 2);
  // Twice: a one-thread server may answer once before its loop comes to
  // the reset socket.
  const why = await askOk(stays, utf8("toujours là ?\n")) ??
    await askOk(stays, utf8("et maintenant ?\n"));
  if (why !== null) {
    return bad(tr(
      `after a client reset its connection, the one that stays: ${why}`,
      `après la réinitialisation d'un client, celui qui reste : ${why}`,
    ));
  }
  return ok(tr(
    "the others are still answered",
    "les autres ont toujours leur OK",
  ));
}

/** "fin" as the sheet's client sends it: no newline, and the connection
 * stays open: a server that waits for a line end never sees it. The
 * server must stop by itself: its process ends (--run), or it refuses
 * new connections. */
async function okFin(t: Target): Promise<Result> {
  const line = await mainConn(t);
  // "fin" from the first client (the only one a one-client server reads)
  // and from a new client that never sent a newline (the first one has,
  // in the line client's check: a server may read it as a line client
  // from then on, for good).
  const freshConn = t.oneClient ? null : await connectTo(t).catch(() => null);
  const fresh = freshConn ? new Lined(freshConn, OK_MAX_BYTES) : null;
  // Served before fin: accepted for sure, so no connection of ours comes
  // after fin to wake a main loop blocked in accept(). Then a pause: a main
  // loop written `while running: accept()` has just accepted this client,
  // and would see a flag that fin sets before it gets back to accept(),
  // stopping by luck rather than by design.
  if (fresh) {
    await askOk(fresh, utf8("bonjour"));
    await sleep(FIN_SETTLE_MS);
  }
  const freshStart = fresh?.length ?? 0;
  const start = line.length;
  for (const conn of freshConn ? [line.conn, freshConn] : [line.conn]) {
    await bounded(writeAll(conn, utf8("fin")), 2_000).catch(() => {});
  }
  const stopBy = Date.now() + FIN_MS;
  let stopped = false;
  while (!stopped && Date.now() < stopBy) {
    if (t.proc) {
      stopped = await t.proc.exitedWithin(200);
    } else {
      // Here, /proc tells without connecting (a connection would wake a
      // main loop blocked in accept(), which the sheet's client never does).
      const local = /^(127\.|::1$|localhost$)/.test(t.host)
        ? await tcpListening(t.port)
        : null;
      stopped = local === null ? !(await reachable(t, 1_000)) : !local;
      if (!stopped) await sleep(100);
    }
  }
  // What the server did with "fin", if it did not stop: answered it (it
  // saw it), closed that client only, or neither (it waits for a line).
  const answered = isOkAnswer(text(line.peek().subarray(start))) ||
    (fresh !== null && isOkAnswer(text(fresh.peek().subarray(freshStart))));
  const closed = line.ended || (fresh?.ended ?? false);
  for (const conn of t.kept ?? []) closeQuietly(conn);
  t.kept = [];
  closeQuietly(line.conn);
  if (freshConn) closeQuietly(freshConn);
  t.main = undefined;
  if (stopped) {
    return ok(tr("the server stopped", "le serveur s'est arrêté"));
  }
  if (closed) {
    return bad(tr(
      `"fin" closed that client's connection, but the server still runs ${
        FIN_MS / 1000
      } s later: fin stops the whole server (sheet 001: leave the main loop, close every client and the listening socket; a flag set by a client's thread is not seen while the main thread waits in accept())`,
      `« fin » a fermé la connexion de ce client, mais le serveur tourne encore ${
        FIN_MS / 1000
      } s après : fin arrête tout le serveur (fiche 001 : sortez de la boucle principale, fermez chaque client et la socket d'écoute ; un drapeau levé par le thread d'un client n'est pas vu tant que le thread principal attend dans accept())`,
    ));
  }
  if (answered) {
    return bad(tr(
      `answered OK to "fin" but still runs ${
        FIN_MS / 1000
      } s later: "fin" comes as the sheet's client sends it, b"fin" with no newline; compare the message received with exactly that`,
      `a répondu OK à « fin » mais tourne encore ${
        FIN_MS / 1000
      } s après : « fin » arrive comme l'envoie le client de la fiche, b"fin" sans fin de ligne ; comparez le message reçu à exactement cela`,
    ));
  }
  if (line.length === 0 && (fresh?.length ?? 0) === 0) {
    return bad(tr(
      `still running ${
        FIN_MS / 1000
      } s after "fin", sent as the sheet's client sends it (no newline, connection left open): it answered nothing on these connections, neither the messages before nor "fin"`,
      `tourne encore ${
        FIN_MS / 1000
      } s après « fin », envoyé comme le fait le client de la fiche (sans fin de ligne, connexion laissée ouverte) : il n'a rien répondu sur ces connexions, ni aux messages d'avant ni à « fin »`,
    ));
  }
  return bad(tr(
    `still running ${
      FIN_MS / 1000
    } s after "fin", sent as the sheet's client sends it (no newline, connection left open): a server that reads lines never sees it`,
    `tourne encore ${
      FIN_MS / 1000
    } s après « fin », envoyé comme le fait le client de la fiche (sans fin de ligne, connexion laissée ouverte) : un serveur qui lit des lignes ne le voit jamais`,
  ));
}

// ===========================================================================
// The runner: one server, its checks in order, liveness before each.
//
// Before each check the server must still be there. If it stopped, the
// check is not run ("–") and says during which check it stopped; with
// --run it is started again on a fresh port instead, and the last lines
// of its stderr (a Python traceback) are shown under the check that
// stopped it. With --step, the checks that step requires run first, so
// one that crashes the server in an optional check cannot cost the grade.

export interface Graded {
  name: string;
  address: string;
  /** null when a server answered; otherwise why not. */
  unreachable: string | null;
  /** 1 (a server is there but wrong) or 3 (nothing there), when not reached. */
  code: number;
  notes: string[];
  results: {
    check: Check;
    result: Result;
    counted: boolean;
    stderr: string[];
  }[];
}

export interface TargetSpec {
  name: string;
  host: string;
  port: number;
  command?: string;
}

function checksFor(options: Options): Check[] {
  if (options.kind === "echo") return ECHO_CHECKS;
  if (options.kind === "udp-echo") return UDP_CHECKS;
  return options.fin ? OK_CHECKS : OK_CHECKS.filter((c) => c.id !== "fin");
}

/** The checks in the order they run: with a step, the required ones first
 * (each list is already in the order the lessons build on each other). */
export function runOrder(checks: Check[], step: string | null): Check[] {
  if (step === null) return checks;
  return [
    ...checks.filter((c) => c.steps.includes(step)),
    ...checks.filter((c) => !c.steps.includes(step)),
  ];
}

async function grade(
  spec: TargetSpec,
  options: Options,
  out: (line: string) => void,
): Promise<Graded> {
  const t: Target = { host: spec.host, port: spec.port };
  const graded: Graded = {
    name: spec.name,
    address: "",
    unreachable: null,
    code: 0,
    notes: [],
    results: [],
  };
  const note = (line: string) => {
    graded.notes.push(line);
    out(line);
  };
  try {
    if (spec.command !== undefined) {
      const started = await Launched.start(spec.command, options.kind);
      if (typeof started === "string") {
        graded.unreachable = started;
        graded.code = 3;
        out(`✘ ${started}`);
        return graded;
      }
      t.proc = started;
      t.port = started.port;
    }
    graded.address = shownHost(t);
    const contact = await firstContact(t, options.kind, note);
    graded.address = shownHost(t);
    if (contact !== null) {
      graded.unreachable = contact.why;
      graded.code = contact.code;
      out(`✘ ${contact.why}`);
      for (const line of t.proc?.tail() ?? []) out(`    ${line}`);
      return graded;
    }
    if (
      options.kind === "echo" && t.proc && await endedByItself(t.proc, 1_000)
    ) {
      // Its first client, check.ts's connection test, has come and gone.
      t.endsAfterClient = true;
      note(ENDS_AFTER_CLIENT());
      const again = await Launched.start(t.proc.command, options.kind);
      if (typeof again !== "string") {
        t.proc = again;
        t.port = again.port;
      }
    }
    const linux = Deno.build.os === "linux";
    const checks = runOrder(
      checksFor(options).filter((c) => !c.needsRun || (t.proc && linux)),
      options.step,
    );
    let stoppedDuring: Check | null = null;
    let last: Graded["results"][number] | null = null;
    let mark = 0;
    for (const check of checks) {
      const counted = options.step === null ||
        check.steps.includes(options.step);
      if (stoppedDuring === null && !(await alive(t, options.kind))) {
        if (last && t.proc && last.stderr.length === 0) {
          last.stderr = t.proc.tail();
          for (const line of last.stderr) out(`    ${line}`);
        }
        if (last && t.proc && last.check.id === "fin") {
          // Stopping is what fin asks for: start it again, quietly.
        } else if (
          last && t.proc && last.result.status === "pass" &&
          t.proc.code === 0 && last.stderr.length === 0
        ) {
          // Ended by itself, no error, once its client had left.
          t.endsAfterClient = true;
          note(tr(
            `  (the server ended by itself, exit status 0, after ${
              quoteName(last.check.name())
            }: started again; §1.2 accepts client after client, in an infinite loop)`,
            `  (le serveur s'est terminé de lui-même, code de sortie 0, après ${
              quoteName(last.check.name())
            } : relancé ; le §1.2 accepte client après client, dans une boucle infinie)`,
          ));
        } else if (last && t.proc) {
          note(tr(
            `  (the server stopped during ${
              quoteName(last.check.name())
            }: started again)`,
            `  (le serveur s'est arrêté pendant ${
              quoteName(last.check.name())
            } : relancé)`,
          ));
        }
        if (t.proc) {
          const again = await Launched.start(t.proc.command, options.kind);
          if (typeof again === "string") {
            stoppedDuring = last?.check ?? check;
          } else {
            t.proc = again;
            t.port = again.port;
            t.main = undefined;
            for (const conn of t.kept ?? []) closeQuietly(conn);
            t.kept = [];
            if (options.kind === "ok") await firstContact(t, "ok", () => {});
          }
        } else {
          stoppedDuring = last?.check ?? check;
        }
      }
      let result: Result;
      if (stoppedDuring !== null) {
        result = notRun(
          stoppedDuring.id === "fin"
            ? tr(
              "not run: fin stopped the server (with --run, check.ts starts it again)",
              "non testée : fin a arrêté le serveur (avec --run, check.ts le relance)",
            )
            : tr(
              `not run: the server stopped during ${
                quoteName(stoppedDuring.name())
              }`,
              `non testée : le serveur s'est arrêté pendant ${
                quoteName(stoppedDuring.name())
              }`,
            ),
        );
      } else if (check.needsConcurrency && t.oneClient) {
        result = notRun(tr(
          `not run: the server serves one client at a time (see ${
            quoteName("second client")
          })`,
          `non testée : le serveur sert un client à la fois (voir ${
            quoteName("deuxième client")
          })`,
        ));
      } else {
        mark = t.proc?.written ?? 0;
        result = await runCheck(check, t);
      }
      if (result.status === "fail" && t.proc) {
        // A crash closes the server's sockets as its process ends: give
        // the end a moment to be seen, so the next check restarts it.
        await t.proc.exitedWithin(500);
      } else if (
        result.status === "pass" && options.kind === "echo" && t.proc &&
        await t.proc.exitedWithin(t.endsAfterClient ? 1_000 : 150)
      ) {
        // It passed, then stopped as its client left (a select() loop
        // that closes a socket but keeps it in its list crashes there):
        // this check's fault, not the next one's.
        result = bad(
          await endedByItself(t.proc, 0)
            ? tr(
              `${result.why}, but then the server ended by itself (exit status 0) once this client left: §1.2 accepts client after client, in an infinite loop`,
              `${result.why}, mais le serveur s'est ensuite terminé de lui-même (code de sortie 0) au départ de ce client : le §1.2 accepte client après client, dans une boucle infinie`,
            )
            : tr(
              `${result.why}, but then the server stopped as this client left (exit status ${t.proc.code}; its error is below)`,
              `${result.why}, mais le serveur s'est ensuite arrêté au départ de ce client (code de sortie ${t.proc.code} ; son erreur est ci-dessous)`,
            ),
        );
      }
      // The server goes on, but wrote an error meanwhile (a thread's
      // traceback): it is likely the reason, shown under the check.
      const wrote = result.status === "fail" && t.proc && !t.proc.exited
        ? t.proc.since(mark)
        : [];
      if (wrote.some((l) => /error|exception|traceback|panic|fault/i.test(l))) {
        result = bad(
          result.why + tr(
            " — the server wrote an error meanwhile (below)",
            " — le serveur a écrit une erreur entre-temps (ci-dessous)",
          ),
        );
      }
      last = { check, result, counted, stderr: wrote };
      graded.results.push(last);
      out(formatLine(check, result, counted, options.step));
      for (const line of wrote) out(`    ${line}`);
      if (t.proc?.exited && last.stderr.length === 0 && check.id !== "fin") {
        last.stderr = t.proc.tail();
        for (const line of last.stderr) out(`    ${line}`);
      }
    }
    return graded;
  } finally {
    for (const conn of t.kept ?? []) closeQuietly(conn);
    if (t.main) closeQuietly(t.main.conn);
    if (t.proc) await t.proc.stop();
  }
}

/** Whether the server ends within `ms`, by itself: exit status 0 and
 * nothing on stderr (not a crash). */
async function endedByItself(proc: Launched, ms: number): Promise<boolean> {
  return await proc.exitedWithin(ms) && proc.code === 0 &&
    proc.tail().length === 0;
}

const ENDS_AFTER_CLIENT = () =>
  tr(
    "  (the server ended by itself, exit status 0, once its first client left: started again; §1.2 accepts client after client, in an infinite loop)",
    "  (le serveur s'est terminé de lui-même, code de sortie 0, au départ de son premier client : relancé ; le §1.2 accepte client après client, dans une boucle infinie)",
  );

/** "127.0.0.1:7777" or "[::1]:7777". */
function shownHost(t: Target): string {
  return formatAddress({ transport: "tcp", hostname: t.host, port: t.port });
}

/** Reaches the server once before any check: null, or why not and the exit
 * code. TCP: when 127.0.0.1 refuses and ::1 accepts, the server listens on
 * IPv6 only, and the checks go over ::1. UDP: no reply is either nothing
 * bound to the port, or a reply sent elsewhere. */
async function firstContact(
  t: Target,
  kind: Kind,
  note: (line: string) => void,
): Promise<{ why: string; code: number } | null> {
  const where = () => shownHost(t);
  if (kind === "udp-echo") {
    if (await udpRoundTrip(t, utf8("hello?")) !== null) return null;
    const bound = await udpPortBound(t.port);
    if (bound === true) {
      return {
        code: 1,
        why: tr(
          `a server is bound to UDP port ${t.port}, but no reply came back to the sender in 3 s: reply with sendto(data, addr) to the address recvfrom() returned, not to a fixed port`,
          `un serveur occupe le port UDP ${t.port}, mais aucune réponse n'est revenue à l'expéditeur en 3 s : répondez avec sendto(data, addr) à l'adresse renvoyée par recvfrom(), pas à un port fixe`,
        ),
      };
    }
    return {
      code: 3,
      why: bound === false
        ? tr(
          `nothing listening at ${where()} (no UDP socket bound to port ${t.port}): is the server running on that port?`,
          `rien n'écoute à ${where()} (aucune socket UDP liée au port ${t.port}) : le serveur tourne-t-il sur ce port ?`,
        )
        : tr(
          `no UDP reply from ${where()} within 3 s: nothing listening there, or the reply went to another address than the sender's`,
          `pas de réponse UDP de ${where()} en 3 s : rien n'écoute là, ou la réponse est partie ailleurs que chez l'expéditeur`,
        ),
    };
  }
  let conn: Deno.TcpConn;
  try {
    conn = await connectTo(t);
  } catch (err) {
    const refused = err instanceof Deno.errors.ConnectionRefused;
    if (refused && (t.host === "127.0.0.1" || t.host === "localhost")) {
      const v6 = { ...t, host: "::1" };
      const other = await connectTo(v6).catch(() => null);
      if (other) {
        note(tr(
          `note: ${t.host}:${t.port} refuses, [::1]:${t.port} accepts: the server listens on IPv6 only (an AF_INET6 socket with IPV6_V6ONLY set, the default on Windows and OpenBSD), so the checks go over ::1. To take IPv4 clients too: setsockopt(IPPROTO_IPV6, IPV6_V6ONLY, 0) before bind()`,
          `remarque : ${t.host}:${t.port} refuse, [::1]:${t.port} accepte : le serveur n'écoute qu'en IPv6 (une socket AF_INET6 avec IPV6_V6ONLY, le réglage par défaut sous Windows et OpenBSD), les vérifications passent donc par ::1. Pour accepter aussi les clients IPv4 : setsockopt(IPPROTO_IPV6, IPV6_V6ONLY, 0) avant bind()`,
        ));
        t.host = "::1";
        conn = other;
      } else {
        return { code: 3, why: cannotConnect(t, err) };
      }
    } else {
      return { code: 3, why: cannotConnect(t, err) };
    }
  }
  if (kind === "ok") t.main = new Lined(conn, OK_MAX_BYTES);
  else closeQuietly(conn);
  return null;
}

function cannotConnect(t: Target, err: unknown): string {
  return tr(
    `cannot connect to ${shownHost(t)} (${
      errorMessage(err)
    }): is the server running on that port?`,
    `impossible de se connecter à ${shownHost(t)} (${
      frenchDenoError(err)
    }) : le serveur tourne-t-il sur ce port ?`,
  );
}

/** errorMessage() in French, also for what Deno says in its own words: a
 * host name that does not resolve, a permission it lacks. */
export function frenchDenoError(err: unknown): string {
  const text = errorMessage(err);
  if (/^failed to lookup address/.test(text)) return "hôte inconnu";
  const read =
    /^Requires read access to "?(.*?)"?, run again with the --allow-read flag$/
      .exec(text);
  return read
    ? `lecture de « ${read[1]} » non permise : ajoutez --allow-read`
    : text;
}

/** Is the server still there? Its process (--run); else a connection it
 * accepts (ok: the first client's connection, still open, is enough: a
 * one-client server would never accept another). */
async function alive(t: Target, kind: Kind): Promise<boolean> {
  if (t.proc) return !t.proc.exited;
  if (kind === "udp-echo") return (await udpPortBound(t.port)) !== false;
  if (kind === "ok" && t.main && !t.main.ended) return true;
  return await reachable(t);
}

/** Whether a TCP connection to the server succeeds (then closed). */
async function reachable(t: Target, ms = 3_000): Promise<boolean> {
  try {
    closeQuietly(await connectTo(t, ms));
    return true;
  } catch {
    return false;
  }
}

/** Runs one check; an unexpected error (refused, reset, timeout) is its ✘. */
async function runCheck(check: Check, t: Target): Promise<Result> {
  try {
    return await check.run(t);
  } catch (err) {
    const refused = err instanceof Deno.errors.ConnectionRefused ||
      err instanceof Deno.errors.ConnectionReset;
    if (refused && t.proc && await t.proc.exitedWithin(500)) {
      // It ended between the last client and this one.
      return bad(
        t.proc.code === 0 && t.proc.tail().length === 0
          ? tr(
            "connection refused: the server ended by itself (exit status 0) after its previous client left: accept() client after client, in an infinite loop (§1.2)",
            "connexion refusée : le serveur s'est terminé de lui-même (code de sortie 0) après le départ du client précédent : accept() client après client, dans une boucle infinie (§1.2)",
          )
          : tr(
            `connection refused: the server stopped (exit status ${t.proc.code})`,
            `connexion refusée : le serveur s'est arrêté (code de sortie ${t.proc.code})`,
          ),
      );
    }
    if (err instanceof Deno.errors.ConnectionRefused) {
      return bad(tr(
        "connection refused: the server is no longer running",
        "connexion refusée : le serveur ne tourne plus",
      ));
    }
    if (err instanceof ConnectTimeout) return bad(err.message);
    if (err instanceof Timeout) {
      return bad(tr(
        `no answer within ${formatCount(err.ms)} ms`,
        `pas de réponse en ${formatCount(err.ms)} ms`,
      ));
    }
    return bad(errorMessage(err));
  }
}

/** `✔ name: reason`, `✘ …`, `– …`, or for a check past the step,
 * `· name (beyond step 1.2): passes — reason`. */
export function formatLine(
  check: Check,
  result: Result,
  counted: boolean,
  step: string | null,
): string {
  const colon = say(": ", "\u00a0: ");
  if (!counted) {
    const verb = result.status === "pass"
      ? tr("passes", "réussie")
      : result.status === "fail"
      ? tr("fails", "échouée")
      : "";
    return `· ${check.name()} (${
      tr(
        `beyond step ${step}, not counted`,
        `au-delà de l'étape ${step}, non comptée`,
      )
    })${colon}${verb ? `${verb} — ` : ""}${result.why}`;
  }
  return `${MARK[result.status]} ${check.name()}${colon}${result.why}`;
}

const MARK: Record<Status, string> = { pass: "✔", fail: "✘", "not-run": "–" };

/** Passed and counted checks, for one step or (null) for every check. */
export function score(
  graded: Graded,
  step: string | null,
): { passed: number; of: number } {
  const rows = graded.results.filter((r) =>
    step === null || r.check.steps.includes(step)
  );
  return {
    passed: rows.filter((r) => r.result.status === "pass").length,
    of: rows.length,
  };
}

export function summary(graded: Graded, options: Options): string {
  const steps = STEPS[options.kind];
  if (options.step !== null) {
    const { passed, of } = score(graded, options.step);
    const more = graded.results.length - of;
    const mark = passed === of ? "✔" : "✘";
    return tr(
      `${mark} step ${options.step}: ${passed} of ${of} required checks passed${
        more ? ` (${more} more shown as information)` : ""
      }`,
      `${mark} étape ${options.step} : ${formatCount(passed)} ${
        passed >= 2 ? "réussies" : "réussie"
      } sur ${formatCount(of)} ${
        of >= 2 ? "vérifications requises" : "vérification requise"
      }${
        more
          ? ` (${formatCount(more)} ${
            more >= 2 ? "autres" : "autre"
          } à titre d'information)`
          : ""
      }`,
    );
  }
  const { passed, of } = score(graded, null);
  const bySteps = steps.map((s) => {
    const x = score(graded, s);
    return `${s} ${x.passed}/${x.of}`;
  }).join(", ");
  return tr(
    `${passed} of ${of} checks passed (by step: ${bySteps})`,
    `${formatCount(passed)} ${passed >= 2 ? "réussies" : "réussie"} sur ${
      formatCount(of)
    } ${of >= 2 ? "vérifications" : "vérification"} (par étape : ${bySteps})`,
  );
}

/** 0: every counted check passed; 1: one did not; 3: nothing reached. */
export function exitCode(graded: Graded): number {
  if (graded.unreachable !== null) return graded.code;
  return graded.results.every((r) => !r.counted || r.result.status === "pass")
    ? 0
    : 1;
}

// ===========================================================================
// --run: check.ts starts the server itself, on a free port.

/** A server started by check.ts: its PID, its last stderr lines, whether it
 * has exited. Stopped by its PID (and its children's, from /proc). */
export class Launched {
  exited = false;
  /** Its exit status, once it exited. */
  code: number | null = null;
  /** How many lines the server has written on stderr so far. */
  written = 0;
  private lines: string[] = [];
  private partial = "";
  private status: Promise<unknown>;
  private constructor(
    readonly command: string,
    readonly port: number,
    private child: Deno.ChildProcess,
  ) {
    this.status = child.status.then((status) => {
      this.code = status.code;
      this.exited = true;
    });
    (async () => {
      try {
        for await (
          const chunk of child.stderr.pipeThrough(new TextDecoderStream())
        ) {
          const parts = (this.partial + chunk).split("\n");
          this.partial = parts.pop() ?? "";
          // A server writing without newlines: keep its end, bounded.
          if (this.partial.length > STDERR_LINE_MAX) {
            this.partial = this.partial.slice(-STDERR_LINE_MAX);
          }
          this.lines.push(...parts.map((l) => l.slice(0, STDERR_LINE_MAX)));
          this.written += parts.length;
          if (this.lines.length > 40) {
            this.lines.splice(0, this.lines.length - 40);
          }
        }
      } catch {
        // the pipe closed
      }
    })();
    child.stdout.pipeTo(new WritableStream()).catch(() => {});
  }

  get pid(): number {
    return this.child.pid;
  }

  /** The lines written on stderr since `written` was `mark` (a thread's
   * traceback while the server goes on), the last few. */
  since(mark: number, count = STDERR_LINES): string[] {
    const fresh = Math.min(this.written - mark, this.lines.length);
    const lines = fresh > 0 ? this.lines.slice(-fresh) : [];
    return lines.filter((l) => l.trim() !== "").slice(-count).map(shortLine);
  }

  /** The last lines the server wrote on stderr (a traceback). */
  tail(count = STDERR_LINES): string[] {
    const all = this.partial ? [...this.lines, this.partial] : this.lines;
    return all.filter((l) => l.trim() !== "").slice(-count).map(shortLine);
  }

  async exitedWithin(ms: number): Promise<boolean> {
    if (this.exited) return true;
    await settlesWithin(this.status, ms);
    return this.exited;
  }

  /** SIGTERM to the server and its children, SIGKILL 3 s later. */
  async stop(): Promise<void> {
    for (const signal of ["SIGTERM", "SIGKILL"] as const) {
      if (this.exited) break;
      for (const pid of (await serverPids(this.pid)).reverse()) {
        try {
          Deno.kill(pid, signal);
        } catch {
          // already gone
        }
      }
      await this.exitedWithin(3_000);
    }
    await this.status;
    await settlesWithin(sleep(0), 0);
  }

  /** Starts `command` with {port} replaced by a free port, and waits until
   * it listens; a string is why it did not start. */
  static async start(command: string, kind: Kind): Promise<Launched | string> {
    let why = "";
    for (let attempt = 0; attempt < 3; attempt++) {
      const started = await Launched.startOn(command, kind, freePort(kind));
      if (typeof started !== "string") return started;
      why = started;
      // Another program took the port between our check and its bind().
      if (!/already in use|EADDRINUSE|AddrInUse/i.test(why)) break;
    }
    return why;
  }

  private static async startOn(
    command: string,
    kind: Kind,
    port: number,
  ): Promise<Launched | string> {
    const line = command.replaceAll("{port}", String(port));
    const argv = commandWords(line);
    let child: Deno.ChildProcess;
    try {
      child = new Deno.Command(argv[0], {
        args: argv.slice(1),
        stdin: "null",
        stdout: "piped",
        stderr: "piped",
      }).spawn();
    } catch (err) {
      return tr(
        `cannot start ${quoteCommand(line)}: ${errorMessage(err)}`,
        `impossible de lancer ${quoteCommand(line)} : ${errorMessage(err)}`,
      );
    }
    const proc = new Launched(command, port, child);
    const readyBy = Date.now() + START_MS;
    while (Date.now() < readyBy && !proc.exited) {
      if (await listening(port, kind)) return proc;
      await sleep(50);
    }
    const why = proc.exited
      ? tr(
        `${quoteCommand(line)} exited before listening on port ${port}`,
        `${
          quoteCommand(line)
        } s'est terminé avant d'écouter sur le port ${port}`,
      )
      : tr(
        `${quoteCommand(line)} is not listening on port ${port} after ${
          START_MS / 1000
        } s (does it take the port from {port}?)`,
        `${quoteCommand(line)} n'écoute pas sur le port ${port} après ${
          START_MS / 1000
        } s (prend-il le port de {port} ?)`,
      );
    await settlesWithin(sleep(100), 200);
    const tail = proc.tail();
    await proc.stop();
    return tail.length
      ? `${why}\n${tail.map((l) => `    ${l}`).join("\n")}`
      : why;
  }
}

/** A line of the server's stderr as shown: at most STDERR_SHOWN chars. */
function shortLine(line: string): string {
  return line.length > STDERR_SHOWN ? `${line.slice(0, STDERR_SHOWN)}…` : line;
}

/** A check's name in a sentence: "second client", « deuxième client ». */
function quoteName(name: string): string {
  return say(`"${name}"`, `«\u00a0${name}\u00a0»`);
}

function quoteCommand(line: string): string {
  return say(`"${line}"`, `«\u00a0${line}\u00a0»`);
}

/** A port nobody uses now: bound, noted, released. Chosen below the
 * range the system gives outgoing connections (32768 and up on Linux), so
 * that a client's port cannot take it before the server binds it. */
function freePort(kind: Kind): number {
  for (let attempt = 0; attempt < 50; attempt++) {
    const port = 20_000 + Math.floor(Math.random() * 12_000);
    try {
      if (kind === "udp-echo") {
        Deno.listenDatagram({ transport: "udp", hostname: "::", port })
          .close();
      } else {
        Deno.listen({ hostname: "::", port }).close();
      }
      return port;
    } catch {
      // taken: another one
    }
  }
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}

/** Is something listening on `port`, without becoming one of its clients
 * (a one-client server would keep a probe as its only client)? */
async function listening(port: number, kind: Kind): Promise<boolean> {
  if (kind === "udp-echo") {
    const bound = await udpPortBound(port);
    if (bound !== null) return bound;
    await sleep(1_000);
    return true;
  }
  const local = await tcpListening(port);
  if (local !== null) return local;
  for (const host of ["127.0.0.1", "::1"]) {
    if (await reachable({ host, port }, 1_000)) return true;
  }
  return false;
}

/** A command line as words: plain words and '…' "…" quotes; anything a
 * shell must read (; | & < > $ ` ( ) *) goes to `sh -c` whole. */
export function commandWords(line: string): string[] {
  if (/[;|&<>$`()*?~\n]/.test(line)) {
    return Deno.build.os === "windows"
      ? ["cmd", "/c", line]
      : ["sh", "-c", line];
  }
  const words: string[] = [];
  const re = /'([^']*)'|"([^"]*)"|(\S+)/g;
  let current = "";
  let last = 0;
  let m: RegExpExecArray | null;
  while ((m = re.exec(line)) !== null) {
    if (m.index > last && /\s/.test(line.slice(last, m.index)) && current) {
      words.push(current);
      current = "";
    }
    current += m[1] ?? m[2] ?? m[3];
    last = re.lastIndex;
  }
  if (current) words.push(current);
  return words;
}

/** `pid` and its descendants (Linux /proc), parents first. */
async function serverPids(pid: number): Promise<number[]> {
  const out = [pid];
  for (let i = 0; i < out.length && out.length < 64; i++) {
    const children = await readProc(`/proc/${out[i]}/task/${out[i]}/children`);
    for (const c of (children ?? "").trim().split(/\s+/)) {
      if (c) out.push(Number(c));
    }
  }
  return out;
}

/** The most threads one of the server's processes has (/proc), or 0. */
async function threadsLeft(pid: number): Promise<number> {
  let most = 0;
  for (const p of await serverPids(pid)) {
    const status = await readProc(`/proc/${p}/status`);
    const n = Number(status?.match(/^Threads:\s*(\d+)/m)?.[1] ?? 0);
    most = Math.max(most, n);
  }
  return most;
}

/** CPU time (user + system, in clock ticks) of these processes, or null. */
async function cpuTicks(pids: number[]): Promise<number | null> {
  let total = 0;
  for (const pid of pids) {
    const stat = await readProc(`/proc/${pid}/stat`);
    if (stat === null) {
      if (pid === pids[0]) return null;
      continue;
    }
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    total += Number(fields[11]) + Number(fields[12]);
  }
  return total;
}

/** The soft limit on open files of the server (its last descendant: the
 * real server behind a `sh -c`), or null. */
async function openFilesLimit(pid: number): Promise<number | null> {
  const pids = await serverPids(pid);
  const limits = await readProc(`/proc/${pids.at(-1)}/limits`);
  const m = /^Max open files\s+(\d+)/m.exec(limits ?? "");
  return m ? Number(m[1]) : null;
}

// ===========================================================================
// A whole class: --targets FILE, one table, --json.

/** Reads a targets file: `name host:port` per line, or with --run
 * `name CMD`; blank lines and `#` comments skipped. */
export function parseTargets(
  body: string,
  options: Pick<Options, "host" | "port" | "run">,
): TargetSpec[] {
  const specs: TargetSpec[] = [];
  for (const [i, raw] of body.split(/\r?\n/).entries()) {
    const line = raw.trim();
    if (line === "" || line.startsWith("#")) continue;
    const m = /^(\S+)\s+(.+)$/.exec(line);
    if (!m) {
      throw new UsageError(tr(
        `targets line ${i + 1}: expected "name ${
          options.run ? "CMD" : "host:port"
        }", not "${line}"`,
        `ligne ${i + 1} des cibles : « nom ${
          options.run ? "CMD" : "hôte:port"
        } » attendu, pas « ${line} »`,
      ));
    }
    const [, name, rest] = m;
    if (options.run) {
      noPortPlaceholder(rest.trim(), i + 1);
      specs.push({ name, host: options.host, port: 0, command: rest.trim() });
      continue;
    }
    const a = /^\[([^\]]+)\]:(\d+)$/.exec(rest) ??
      /^([^:\s]+):(\d+)$/.exec(rest) ?? /^()(\d+)$/.exec(rest);
    if (!a) {
      throw new UsageError(tr(
        `targets line ${i + 1}: "${rest}" is not host:port`,
        `ligne ${i + 1} des cibles : « ${rest} » n'est pas hôte:port`,
      ));
    }
    specs.push({ name, host: a[1] || options.host, port: parsePort(a[2]) });
  }
  if (specs.length === 0) {
    throw new UsageError(
      tr(
        "the targets file names no server",
        "le fichier de cibles ne nomme aucun serveur",
      ),
    );
  }
  return specs;
}

/** A --run command must say where the server takes its port: check.ts
 * gives it a free one (a server on a fixed port would be waited for in
 * vain, then called unreachable). */
function noPortPlaceholder(command: string, line?: number): void {
  if (command.includes("{port}")) return;
  const where = line === undefined ? "--run" : tr(
    `targets line ${line}`,
    `ligne ${line} des cibles`,
  );
  throw new UsageError(tr(
    `${where}: "${command}" has no {port}: check.ts starts the server on a free port; write {port} where it takes its port (python3 server.py {port})`,
    `${where} : « ${command} » n'a pas de {port} : check.ts lance le serveur sur un port libre ; écrivez {port} là où il prend son port (python3 server.py {port})`,
  ));
}

/** Runs `work` on every item, at most `jobs` at a time, results in order. */
async function pooled<T, R>(
  items: T[],
  jobs: number,
  work: (item: T) => Promise<R>,
): Promise<R[]> {
  const results: R[] = new Array(items.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(jobs, items.length) }, async () => {
      while (next < items.length) {
        const i = next++;
        results[i] = await work(items[i]);
      }
    }),
  );
  return results;
}

/** One row per student, one column per check (✔ ✘ –, · past the step),
 * then the score for each step; a legend names the columns. */
export function table(all: Graded[], options: Options): string {
  const checks = checksFor(options).filter((c) =>
    all.some((g) => g.results.some((r) => r.check === c))
  );
  const steps = options.step === null
    ? [...STEPS[options.kind], tr("all", "tout")]
    : [options.step];
  const nameWidth = Math.max(
    ...all.map((g) => g.name.length),
    tr("student", "étudiant").length,
  );
  const head = [
    tr("student", "étudiant").padEnd(nameWidth),
    ...checks.map((_, i) => String(i + 1).padStart(2)),
    " ",
    ...steps.map((s) => s.padStart(6)),
  ].join(" ");
  const rows = all.map((g) => {
    if (g.unreachable !== null) {
      return `${g.name.padEnd(nameWidth)} ✘ ${g.unreachable.split("\n")[0]}`;
    }
    const cells = checks.map((c) => {
      const r = g.results.find((x) => x.check === c);
      if (!r) return " ";
      return (r.counted ? MARK[r.result.status] : "·").padStart(2);
    });
    const scores = steps.map((s) => {
      const x = score(g, STEPS[options.kind].includes(s) ? s : null);
      return `${x.passed}/${x.of}`.padStart(6);
    });
    return [g.name.padEnd(nameWidth), ...cells, "|", ...scores].join(" ");
  });
  const legend = checks.map((c, i) => `${i + 1} ${c.name()}`).join(", ");
  return [head, ...rows, "", legend].join("\n");
}

/** Everything as JSON: per target, per check its id, steps, status and
 * reason (in the chosen language). */
export function toJson(all: Graded[], options: Options): string {
  return JSON.stringify(
    {
      kind: options.kind,
      step: options.step,
      lang,
      targets: all.map((g) => ({
        name: g.name,
        address: g.address,
        reachable: g.unreachable === null,
        unreachable: g.unreachable,
        exit: exitCode(g),
        notes: g.notes.map((n) => n.trim()),
        score: Object.fromEntries(
          [...STEPS[options.kind], "all"].map((s) => [
            s,
            score(g, s === "all" ? null : s),
          ]),
        ),
        checks: g.results.map((r) => ({
          id: r.check.id,
          name: r.check.name(),
          steps: r.check.steps,
          counted: r.counted,
          status: r.result.status,
          reason: r.result.why,
          stderr: r.stderr,
        })),
      })),
    },
    null,
    2,
  );
}

// ===========================================================================
// The command line

const PROGRAM = "check";
const DEFAULT_PORTS = { echo: 7777, "udp-echo": 7777, ok: 12800 } as const;
const DEFAULT_HOST = "127.0.0.1";
const RUN_LINE = "deno run -N --allow-run --allow-read --unstable-net check.ts";
/** Most a stalled-reader check sends before concluding buffers are full. */
const STALL_MAX_BYTES = 32 * 1024 * 1024;
/** How long a write must stay pending to mean the buffers are full. */
const STALL_MS = 1_500;
/** The most one connection reads from the server: past every check's
 * need (the stalled client's STALL_MAX_BYTES), so a flood stays bounded. */
const LINED_MAX_BYTES = STALL_MAX_BYTES + 8 * 1024 * 1024;
/** The most other connections read: twice any message they send. */
const LINED_SMALL_BYTES = 2 * 1024 * 1024;
/** The same for the OK server, whose answers are two bytes. */
const OK_MAX_BYTES = 1024 * 1024;
const UDP_SENDERS = 5;
/** The idle-CPU check's window, and the share of one core that is a busy
 * loop (an idle server uses ~0; a loop, even on a loaded machine, > 0.5). */
const IDLE_MS = 1_500;
const IDLE_CPU_LIMIT = 0.1;
const IDLE_SETTLE_MS = 300;
const CLOCK_TICKS = 100;
/** How long a server may take to listen once started (--run). */
const START_MS = 15_000;
const STDERR_LINES = 8;
/** The longest stderr line kept, and shown. */
const STDERR_LINE_MAX = 4096;
const STDERR_SHOWN = 300;
/** How long a server has to stop after "fin". */
const FIN_MS = 5_000;
/** The pause between the last client accepted and "fin" (see okFin). */
const FIN_SETTLE_MS = 500;

export interface Options {
  kind: Kind;
  step: string | null;
  host: string;
  port: number;
  fin: boolean;
  /** --run CMD (one server), or true with --targets (commands in the file). */
  run: string | boolean;
  targets: string | null;
  jobs: number;
  json: boolean;
}

/** How to start this program: the `deno run` line, or a binary's name. */
function howToRun(): string {
  if (!Deno.build.standalone) return RUN_LINE;
  const path = Deno.execPath();
  return path.slice(
    Math.max(path.lastIndexOf("/"), path.lastIndexOf("\\")) + 1,
  );
}

export function usage(): string {
  const steps = (Object.keys(STEPS) as Kind[]).flatMap((kind) => {
    const checks = checksFor({ kind, fin: true } as Options);
    const named = (list: Check[]) =>
      list.map((c) => c.name() + (c.needsRun ? " (--run)" : "")).join(", ");
    return [
      ...STEPS[kind].map((s, i) => {
        const before = i === 0 ? null : STEPS[kind][i - 1];
        const added = checks.filter((c) =>
          c.steps.includes(s) && (before === null || !c.steps.includes(before))
        );
        return `  ${kind} --step ${s}`.padEnd(22) +
          (before === null ? "" : `${before} + `) + named(added);
      }),
      `  ${kind}`.padEnd(22) +
      tr("without --step, also: ", "sans --step, en plus : ") +
      named(checks.filter((c) => c.steps.length === 0)),
    ];
  }).join("\n");
  return tr(
    `Usage: ${howToRun()} KIND [options]
Checks a server against its sheet, one line per check: ✔ passed, ✘ failed,
– not run, · beyond the step asked for (information, not counted).
KIND:
  echo       TCP echo server (sheet 000 §1.2, §2.1 select, §2.2 threads); port 7777
  udp-echo   UDP echo server (sheet 000 §1.4); port 7777 (needs --unstable-net)
  ok         OK/fin server (sheet 001, first and second server); port 12800
Options:
  --step S        only what step S requires counts (the others: information)
  --port N        the server's port
  --host H        the server's address (default ${DEFAULT_HOST})
  --run "CMD {port}"  start the server (CMD, {port} replaced by a free port),
                  start it again after a crash, show its last stderr lines,
                  flag a busy loop while idle, stop it at the end
  --targets FILE  a whole class: one "name host:port" per line (with --run:
                  "name CMD"); prints one table, student × check
  --jobs N        with --targets, servers checked at once (default 4)
  --json          the results as JSON on stdout
  --no-fin        ok: do not send fin (the server keeps running)
  --lang fr|en    language (default: the system's)
  -h, --help      this help
Steps and the checks each requires:
${steps}
Exit status: 0 every counted check passed, 1 one did not, 2 misuse,
3 nothing reachable at that address (with --targets: at any address).`,
    `Utilisation : ${howToRun()} TYPE [options]
Vérifie un serveur selon sa fiche, une ligne par vérification : ✔ réussie,
✘ échouée, – non testée, · au-delà de l'étape demandée (information, non comptée).
TYPE :
  echo       serveur écho TCP (fiche 000 §1.2, §2.1 select, §2.2 threads) ; port 7777
  udp-echo   serveur écho UDP (fiche 000 §1.4) ; port 7777 (demande --unstable-net)
  ok         serveur OK/fin (fiche 001, premier et deuxième serveur) ; port 12800
Options :
  --step S        seul ce que l'étape S demande compte (le reste : information)
  --port N        le port du serveur
  --host H        l'adresse du serveur (${DEFAULT_HOST} par défaut)
  --run "CMD {port}"  lance le serveur (CMD, {port} remplacé par un port libre),
                  le relance après un plantage, montre ses dernières lignes
                  d'erreur, repère une boucle active au repos, l'arrête à la fin
  --targets FICHIER  toute une classe : une ligne « nom hôte:port » par serveur
                  (avec --run : « nom CMD ») ; affiche un tableau étudiant × vérification
  --jobs N        avec --targets, serveurs vérifiés à la fois (4 par défaut)
  --json          les résultats en JSON sur la sortie standard
  --no-fin        ok : ne pas envoyer fin (le serveur continue)
  --lang fr|en    langue (par défaut : celle du système)
  -h, --help      cette aide
Étapes et vérifications requises :
${steps}
Code de sortie : 0 toutes les vérifications comptées réussies, 1 une a échoué,
2 mauvaise utilisation, 3 rien de joignable à cette adresse (avec --targets : nulle part).`,
  );
}

/** Parses the command line (after takeCommonArgs); null means --help. */
export function parseOptions(args: string[]): Options | null {
  let kind: Kind | null = null;
  let step: string | null = null;
  let host = DEFAULT_HOST;
  let port: number | null = null;
  let fin = true;
  let run: string | boolean = false;
  let targets: string | null = null;
  let jobs = 4;
  let json = false;
  const withTargets = args.some((a) =>
    a === "--targets" || a.startsWith("--targets=")
  );
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    const eq = arg.startsWith("--") ? arg.indexOf("=") : -1;
    const [flag, inline] = eq > 0
      ? [arg.slice(0, eq), arg.slice(eq + 1)]
      : [arg, undefined];
    const value = (): string => {
      const v = inline ?? args[++i];
      if (v === undefined || v === "") {
        throw new UsageError(tr(
          `option ${flag} needs a value`,
          `l'option « ${flag} » attend une valeur`,
        ));
      }
      return v;
    };
    switch (flag) {
      case "-h":
      case "--help":
        return null;
      case "--port": {
        const v = value();
        const p = parsePort(v);
        if (p === 0) {
          throw new UsageError(tr(
            "--port 0 is no server's port (with --run, check.ts chooses one)",
            "--port 0 n'est le port d'aucun serveur (avec --run, check.ts en choisit un)",
          ));
        }
        port = p;
        break;
      }
      case "--host":
        host = value();
        break;
      case "--step":
        step = value();
        break;
      case "--run":
        run = withTargets && inline === undefined ? true : value();
        break;
      case "--targets":
        targets = value();
        break;
      case "--jobs": {
        const v = value();
        if (!/^\d+$/.test(v) || Number(v) < 1 || Number(v) > 32) {
          throw new UsageError(tr(
            `--jobs must be a number from 1 to 32, not "${v}"`,
            `--jobs doit être un nombre de 1 à 32, pas « ${v} »`,
          ));
        }
        jobs = Number(v);
        break;
      }
      case "--json":
        json = true;
        break;
      case "--no-fin":
        fin = false;
        break;
      default:
        if (flag.startsWith("-")) {
          // The other scripts' wording (node:util's parseArgs), shared.
          throw new UsageError(
            describeArgsError(new TypeError(`Unknown option '${flag}'`)),
          );
        }
        if (kind !== null) {
          throw new UsageError(tr(
            `one KIND only, not "${kind}" and "${arg}"`,
            `un seul TYPE, pas « ${kind} » et « ${arg} »`,
          ));
        }
        if (arg !== "echo" && arg !== "udp-echo" && arg !== "ok") {
          throw new UsageError(tr(
            `KIND must be echo, udp-echo or ok, not "${arg}"`,
            `TYPE doit être echo, udp-echo ou ok, pas « ${arg} »`,
          ));
        }
        kind = arg;
    }
  }
  if (kind === null) {
    throw new UsageError(tr(
      "which kind of server? echo, udp-echo or ok",
      "quel type de serveur ? echo, udp-echo ou ok",
    ));
  }
  if (step !== null && !STEPS[kind].includes(step)) {
    throw new UsageError(tr(
      `the steps of ${kind} are ${STEPS[kind].join(", ")}, not "${step}"`,
      `les étapes de ${kind} sont ${STEPS[kind].join(", ")}, pas « ${step} »`,
    ));
  }
  if (!fin && kind !== "ok") {
    throw new UsageError(tr(
      "--no-fin applies to ok only",
      "--no-fin ne concerne que ok",
    ));
  }
  if (typeof run === "string") noPortPlaceholder(run);
  if (run !== false && port !== null) {
    throw new UsageError(tr(
      "--run chooses the port itself: no --port with it",
      "--run choisit le port lui-même : pas de --port avec lui",
    ));
  }
  if (host.startsWith("[") && host.endsWith("]")) host = host.slice(1, -1);
  return {
    kind,
    step,
    host,
    port: port ?? DEFAULT_PORTS[kind],
    fin,
    run,
    targets,
    jobs,
    json,
  };
}

async function main(args: string[]): Promise<number> {
  let options: Options | null;
  let specs: TargetSpec[];
  try {
    options = parseOptions(takeCommonArgs(args));
    if (options === null) {
      console.log(usage());
      return 0;
    }
    if (
      options.kind === "udp-echo" && typeof Deno.listenDatagram !== "function"
    ) {
      throw new UsageError(tr(
        `UDP needs the --unstable-net flag: ${RUN_LINE} udp-echo …`,
        `UDP demande l'option --unstable-net : ${RUN_LINE} udp-echo …`,
      ));
    }
    if (
      options.run !== false &&
      Deno.permissions.querySync({ name: "run" }).state !== "granted"
    ) {
      throw new UsageError(tr(
        `--run starts your command: it needs --allow-run (${RUN_LINE} …)`,
        `--run lance votre commande : il faut --allow-run (${RUN_LINE} …)`,
      ));
    }
    // One prompt for the whole network, up front: left to the checks, Deno
    // would ask again for each address and API (TCP, then UDP).
    const net = { name: "net" } as const;
    if (
      Deno.permissions.querySync(net).state !== "granted" &&
      Deno.permissions.requestSync(net).state !== "granted"
    ) {
      console.error(
        prefix() + tr(
          `Network permission missing: run it as: ${RUN_LINE} …`,
          `Permission réseau manquante ; lancez-le ainsi : ${RUN_LINE} …`,
        ),
      );
      return 2;
    }
    if (options.targets !== null) {
      let body: string;
      try {
        body = await Deno.readTextFile(options.targets);
      } catch (err) {
        throw new UsageError(tr(
          `cannot read ${options.targets}: ${errorMessage(err)}`,
          `impossible de lire ${options.targets} : ${frenchDenoError(err)}`,
        ));
      }
      specs = parseTargets(body, options);
    } else {
      if (options.run === true) {
        throw new UsageError(
          tr("--run needs a command", "--run demande une commande"),
        );
      }
      specs = [{
        name: options.run === false
          ? `${options.host}:${options.port}`
          : options.run,
        host: options.host,
        port: options.port,
        command: options.run === false ? undefined : options.run,
      }];
    }
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    console.error(`${prefix()}${err.message}`);
    console.error(usage());
    return 2;
  }
  const opts = options;
  if (opts.targets === null) {
    const print = opts.json ? () => {} : (line: string) => console.log(line);
    const graded = await grade(specs[0], opts, print);
    if (opts.json) console.log(toJson([graded], opts));
    else if (graded.unreachable === null) console.log(summary(graded, opts));
    return exitCode(graded);
  }
  const all = await pooled(specs, opts.jobs, async (spec) => {
    const lines: string[] = [];
    const graded = await grade(spec, opts, (l) => lines.push(l));
    if (!opts.json) {
      console.log(`── ${spec.name} (${spec.command ?? graded.address})`);
      for (const line of lines) console.log(line);
      if (graded.unreachable === null) console.log(summary(graded, opts));
      console.log("");
    }
    return graded;
  });
  console.log(opts.json ? toJson(all, opts) : table(all, opts));
  const codes = all.map(exitCode);
  if (codes.every((c) => c === 3)) return 3;
  return codes.every((c) => c === 0) ? 0 : 1;
}

// ===========================================================================
// Plumbing: bounded socket helpers.

/** What a connection receives, read as it arrives (so nothing waits on an
 * unread socket), with waits bounded in time. */
class Lined {
  length = 0;
  ended = false;
  error: unknown = null;
  private chunks: Uint8Array[] = [];
  private wake: (() => void) | null = null;
  constructor(
    readonly conn: Deno.Conn,
    private readonly max = LINED_SMALL_BYTES,
  ) {
    this.loop();
  }

  private async loop(): Promise<void> {
    try {
      while (this.length < this.max) {
        const buf = new Uint8Array(16 * 1024);
        const n = await this.conn.read(buf);
        if (n === null) break;
        this.chunks.push(n < 1024 ? buf.slice(0, n) : buf.subarray(0, n));
        this.length += n;
        this.notify();
      }
      if (this.length >= this.max) {
        // A server that floods without reading: what came is plenty to
        // judge; reading on would only fill our memory. The connection
        // stays open (not "ended"): the server did not close it.
        this.notify();
        return;
      }
    } catch (err) {
      if (!(err instanceof Deno.errors.BadResource)) this.error = err;
    }
    this.ended = true;
    this.notify();
  }

  private notify(): void {
    const wake = this.wake;
    this.wake = null;
    wake?.();
  }

  /** Waits until `test()` holds, the stream ends, or
   * `ms` pass. */
  async waitFor(test: () => boolean, ms: number): Promise<void> {
    const end = Date.now() + ms;
    while (!this.ended && !test()) {
      const left = end - Date.now();
      if (left <= 0) return;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(() => {
          this.wake = null;
          resolve();
        }, left);
        this.wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
  }

  /** Waits until `n` bytes have arrived (or the end, or `ms`). */
  until(n: number, ms: number): Promise<void> {
    return this.waitFor(() => this.length >= n, ms);
  }

  /** Everything received so far. */
  peek(): Uint8Array {
    if (this.chunks.length !== 1) this.chunks = [concat(this.chunks)];
    return this.chunks[0];
  }

  /** Everything received so far (kept: `length` counts from the start). */
  take(): Uint8Array {
    return this.peek();
  }
}

class Timeout extends Error {
  constructor(readonly ms: number) {
    super(`timed out after ${ms} ms`);
  }
}

/** A connection the server's system did not complete in time: nobody
 * calls accept(), and the listen() backlog is full. */
class ConnectTimeout extends Timeout {
  constructor(ms: number) {
    super(ms);
    this.message = tr(
      `connection not accepted within ${
        formatCount(ms / 1000)
      } s (does the server call accept()? its listen() backlog is full)`,
      `connexion non acceptée en ${
        formatCount(ms / 1000)
      } s (le serveur appelle-t-il accept() ? sa file d'attente de listen() est pleine)`,
    );
  }
}

/** `promise`, or a Timeout error after `ms`. */
function bounded<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  return Promise.race([
    promise,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Timeout(ms)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

async function settlesWithin(
  p: Promise<unknown>,
  ms: number,
): Promise<boolean> {
  const settled = p.then(() => true, () => true);
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<boolean>((r) => {
    timer = setTimeout(() => r(false), ms);
  });
  try {
    return await Promise.race([settled, late]);
  } finally {
    clearTimeout(timer);
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function connectTo(
  t: { host: string; port: number },
  ms = 3_000,
): Promise<Deno.TcpConn> {
  const connecting = Deno.connect({ hostname: t.host, port: t.port });
  try {
    return await bounded(connecting, ms);
  } catch (err) {
    // A connection that completes after the deadline is closed, not leaked.
    connecting.then(closeQuietly, () => {});
    throw err instanceof Timeout ? new ConnectTimeout(ms) : err;
  }
}

async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  let done = 0;
  while (done < bytes.length) done += await conn.write(bytes.subarray(done));
}

/** Connects, sends `payload`, waits for `atLeast` bytes back, then resets
 * the connection (RST, SO_LINGER 0: a crashed client's end; Deno's own
 * close() sends a polite FIN). */
async function resetAfterEcho(
  t: Target,
  payload: Uint8Array,
  atLeast = payload.length,
): Promise<void> {
  const socket = net.connect({ host: t.host, port: t.port });
  socket.on("error", () => {});
  try {
    await bounded(
      new Promise<void>((resolve, reject) => {
        socket.once("error", reject);
        socket.once("connect", () => {
          let got = 0;
          socket.on("data", (chunk: Uint8Array) => {
            got += chunk.length;
            if (got >= atLeast) resolve();
          });
          socket.write(payload);
        });
      }),
      3_000,
    );
  } finally {
    const closed = new Promise((r) => socket.once("close", r));
    socket.resetAndDestroy();
    await bounded(closed, 3_000).catch(() => {});
  }
}

/** One datagram out, its reply back (3 tries of 1 s), or null. */
async function udpRoundTrip(
  t: Target,
  payload: Uint8Array,
): Promise<Uint8Array | null> {
  return (await udpExchange(t, payload))?.data ?? null;
}

/** One datagram out (3 tries of 1 s): its reply, the port it came from,
 * and how many more replies came within `grace` ms (counted only when the
 * datagram went out once: a retry may rightly get a second reply). */
async function udpExchange(
  t: Target,
  payload: Uint8Array,
  grace = 0,
): Promise<{ data: Uint8Array; port: number; more: number } | null> {
  const sock = Deno.listenDatagram({
    transport: "udp",
    hostname: t.host.includes(":") ? "::" : "0.0.0.0",
    port: 0,
  });
  try {
    const target = {
      transport: "udp" as const,
      hostname: t.host,
      port: t.port,
    };
    for (let attempt = 0; attempt < 3; attempt++) {
      await sock.send(payload, target);
      try {
        const [data, from] = await bounded(
          sock.receive(new Uint8Array(65_536)),
          1_000,
        );
        let more = 0;
        while (grace > 0 && attempt === 0 && more < 100) {
          try {
            await bounded(sock.receive(new Uint8Array(65_536)), grace);
            more++;
          } catch {
            break;
          }
        }
        return { data, port: (from as Deno.NetAddr).port, more };
      } catch (err) {
        if (!(err instanceof Timeout)) throw err;
      }
    }
    return null;
  } finally {
    closeQuietly(sock);
  }
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const utf8 = (s: string) => encoder.encode(s);
const text = (b: Uint8Array) => decoder.decode(b);

/** Bytes that are not all the same, so a lost or moved byte shows. */
export function patternBytes(length: number, seed = 1): Uint8Array {
  const out = new Uint8Array(length);
  let x = seed;
  for (let i = 0; i < length; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    out[i] = x >>> 24;
  }
  return out;
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

function concat(chunks: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.length;
  }
  return out;
}

// ==== COMMON BEGIN =========================================================
// What every script of the kit needs, byte for byte the same in each (a
// test fails if one copy drifts): the reader's language, the options every
// script takes, ports, addresses, plurals, error text, the run() guard.
// Each script defines PROGRAM (its name, the prefix of its lines).

/** The reader's language: French when the system's locale is French
 * (`navigator.language` follows LANG and needs no permission), English
 * otherwise. `--lang fr|en` overrides it (takeCommonArgs). */
let lang: "en" | "fr" = /^fr\b/i.test(navigator.language ?? "") ? "fr" : "en";

/** The text for the reader's language. French text carries its own
 * typography: a no-break space before `:` `;` `?` `!`. */
function say(en: string, fr: string): string {
  return lang === "fr" ? fr : en;
}

/** "tcp_echo: " or, in French, "tcp_echo : " (no-break space). */
function prefix(): string {
  return lang === "fr" ? `${PROGRAM}\u00a0: ` : `${PROGRAM}: `;
}

/** A mistake on the command line: one line, the usage, exit code 2. */
class UsageError extends Error {}

/** What every script accepts before its own options: a leading "--" (as
 * `deno task X -- args` passes it) is dropped, and `--lang fr|en` (or
 * `--lang=fr`) sets the language. Returns the other arguments. */
function takeCommonArgs(args: string[]): string[] {
  const rest = args[0] === "--" ? args.slice(1) : [...args];
  for (let i = 0; i < rest.length; i++) {
    const match = /^--lang(?:=(.*))?$/.exec(rest[i]);
    if (!match) continue;
    const value = match[1] ?? rest[i + 1];
    rest.splice(i, match[1] === undefined ? 2 : 1);
    if (value !== "fr" && value !== "en") {
      throw new UsageError(say(
        `Invalid language "${value ?? ""}": expected fr or en`,
        `Langue « ${value ?? ""} » invalide\u00a0: fr ou en attendu`,
      ));
    }
    lang = value;
    i--;
  }
  return rest;
}

/** A port is a whole number from 0 to 65535; "7777abc" or "1e3" is not. */
function parsePort(text: string): number {
  const port = /^\d{1,5}$/.test(text) ? Number(text) : NaN;
  if (!(port >= 0 && port <= 65535)) {
    throw new UsageError(say(
      `Invalid port "${text}": expected a number from 0 to 65535`,
      `Port « ${text} » invalide\u00a0: un nombre de 0 à 65535 attendu`,
    ));
  }
  return port;
}

/** A count as the reader writes it: 1048576, or in French 1 048 576. */
function formatCount(count: number): string {
  return lang === "fr" ? count.toLocaleString("fr-FR") : String(count);
}

/** "1 client", "2 clients"; in French 0 and 1 take the singular ("0 octet",
 * "1 octet", "2 octets"). The nouns are given in the singular. */
function plural(count: number, noun: string, nounFr = noun): string {
  return lang === "fr"
    ? `${formatCount(count)} ${nounFr}${Math.abs(count) >= 2 ? "s" : ""}`
    : `${count} ${noun}${count === 1 ? "" : "s"}`;
}

/** Operating-system errors a reader meets, in French (Deno's own text is
 * English: "Connection refused (os error 111)"). */
const OS_ERRORS_FR: Record<string, string> = {
  AddrInUse: "adresse déjà utilisée",
  AddrNotAvailable: "adresse indisponible sur cette machine",
  BrokenPipe: "tube rompu (le pair a fermé)",
  ConnectionAborted: "connexion abandonnée",
  ConnectionRefused: "connexion refusée",
  ConnectionReset: "connexion réinitialisée par le pair",
  NotConnected: "socket non connectée",
  NotFound: "introuvable",
  PermissionDenied: "permission refusée",
  TimedOut: "délai dépassé",
};

/** The error's message, in the reader's language where it is the OS's. */
function errorMessage(err: unknown): string {
  const text = err instanceof Error ? err.message : String(err);
  const french = err instanceof Error ? OS_ERRORS_FR[err.name] : undefined;
  if (lang !== "fr" || french === undefined) return text;
  const code = /\(os error (\d+)\)/.exec(text)?.[1];
  return code ? `${french} (erreur système ${code})` : french;
}

/** node:util's parseArgs explains a mistake in English, sometimes over
 * several lines: one line, in French for a French reader. */
// deno-fmt-ignore
const ARGS_ERRORS_FR: [RegExp, string][] = [
  [/^Unknown option '(.*)'$/, "Option « $1 » inconnue"],
  [/^Unexpected argument '(.*)'\. .*$/, "Argument « $1 » inattendu\u00a0: des options seulement"],
  [/^Option '(\S+) .*argument missing$/, "L'option « $1 » attend une valeur"],
  [/^Option '(\S+)' argument is ambiguous.*$/, "Valeur de « $1 » ambiguë\u00a0: écrivez $1=-XYZ pour une valeur qui commence par un tiret"],
  [/^Option '(\S+)' does not take an argument$/, "L'option « $1 » ne prend pas de valeur"],
];

/** parseArgs's error as one line in the reader's language. */
function describeArgsError(err: unknown): string {
  const text = errorMessage(err).replaceAll("\n", " ");
  const fr = ARGS_ERRORS_FR.find(([pattern]) => pattern.test(text));
  return fr ? say(text, text.replace(...fr)) : text;
}

/** "127.0.0.1:53422" or "[::1]:53422". An IPv4 client of a dual-stack
 * socket appears as "::ffff:127.0.0.1"; we show it as the IPv4 address it
 * is. */
function formatAddress(addr: Deno.Addr): string {
  if (addr.transport !== "tcp" && addr.transport !== "udp") {
    return addr.transport;
  }
  let host = addr.hostname;
  if (host.startsWith("::ffff:") && host.includes(".")) host = host.slice(7);
  return host.includes(":") ? `[${host}]:${addr.port}` : `${host}:${addr.port}`;
}

function closeQuietly(resource: { close(): void }): void {
  try {
    resource.close();
  } catch {
    // Already closed (by shutdown, or by the peer's reset): nothing to do.
  }
}

/** Runs main() and exits with its code. Every error a user can cause is
 * handled where it happens; anything else, even an error no one awaited,
 * still ends as one line on stderr and exit code 1, never a stack trace. */
async function run(main: (args: string[]) => Promise<number>): Promise<void> {
  const unexpected = (err: unknown) => {
    console.error(
      `${prefix()}${say("unexpected error", "erreur inattendue")}${
        say(": ", "\u00a0: ")
      }${errorMessage(err)}`,
    );
    Deno.exit(1);
  };
  globalThis.addEventListener("unhandledrejection", (event) => {
    event.preventDefault();
    unexpected(event.reason);
  });
  globalThis.addEventListener("error", (event) => {
    event.preventDefault();
    unexpected(event.error);
  });
  let code: number;
  try {
    code = await main(Deno.args);
  } catch (err) {
    return unexpected(err);
  }
  Deno.exit(code);
}

// ==== COMMON END ===========================================================

if (import.meta.main) await run(main);
