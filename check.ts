/**
 * # check.ts — tells a student what their own server does, sheet by sheet
 *
 * Connects to a server that is already running (yours, a student's, in any
 * language) and checks it against what its sheet asks, one line per check
 * (✔ or ✘ and a short reason), then a summary line. It never floods: every
 * check is bounded in count and in time, and it talks only to the host you
 * give (loopback by default).
 *
 * Concurrency model: a client, not a server; each check opens its own
 * connections (up to 1,100 at once for the last echo check) and waits for
 * them with a deadline.
 *
 * Sheets: TP5b "Socket Serveur" (seeds/000) §1.2, §1.4 and §2; "Python – les
 * sockets" (seeds/001), the OK/fin servers.
 *   `check.ts echo`     ↔ §1.2 echo server (and §2: threads or select())
 *   `check.ts udp-echo` ↔ §1.4 recvfrom()/sendto() loop
 *   `check.ts ok`       ↔ sheet 001's servers: `send(b"OK")`, `fin` stops it
 *
 * @run deno run -N check.ts
 * Try it: `deno run -N tcp_echo.ts` in one terminal, then
 * `deno run -N check.ts echo --port 7777` in another.
 * Siblings: tcp_echo.ts, select_echo.ts, worker_echo.ts, udp_echo.ts,
 * ok_server.ts, client.ts.
 *
 * Permissions: `-N` (network) only. `udp-echo` also needs `--unstable-net`
 * (Deno's UDP API is still marked unstable; this repository's deno.json
 * turns it on for you).
 */

import net from "node:net";

// ---------------------------------------------------------------------------
// The lesson: what is checked, and why, sheet by sheet.
//
// Each check is a small client doing one thing a real client does, with a
// deadline. A server passes when it behaves as its sheet says a working
// server must; a ✘ names what went wrong and, when it is a known limit of
// a sheet's design, which section of the sheet teaches the way past it.

/** One check: a name (English and French) and what it does. */
export interface Check {
  name: Text;
  run: (target: Target) => Promise<Result>;
}
export interface Result {
  pass: boolean;
  why: Text;
}
/** Every message exists in English and in French (`--lang fr`). */
export interface Text {
  en: string;
  fr: string;
}
export interface Target {
  host: string;
  port: number;
  /** ok: connections left open until the end, since the sheet's servers
   * do not survive a client that leaves without "fin" ("les déconnexions
   * fortuites ne sont pas gérées"); the first one is the line client's. */
  kept?: Deno.TcpConn[];
  /** ok: a second client was not answered while the first stayed. */
  oneClient?: boolean;
}

const pass = (en: string, fr: string): Result => ({
  pass: true,
  why: { en, fr },
});
const fail = (en: string, fr: string): Result => ({
  pass: false,
  why: { en, fr },
});

// -- Sheet 000 §1.2 and §2: the TCP echo server ------------------------------
//
// An echo server must send back every byte, unchanged, whatever the bytes
// are (TCP carries bytes, not text) and however TCP splits them (a 1 MiB
// message arrives in many recv() calls; the sheet's send() may send only
// part of a buffer, sendall() sends it all). A client that half-closes
// (shuts down its sending side) must still get everything back, then see
// the server close. The sequential server of §1.2 serves one client at a
// time: that is the very lesson of §2 (threads or select()), so the
// concurrency checks fail for it with that reason. select() cannot watch a
// descriptor numbered 1024 or more (FD_SETSIZE), so the sheet's select()
// server dies past about 1,020 clients: hence the 1,100-client check.

export const ECHO_CHECKS: Check[] = [
  {
    name: { en: "256 byte values", fr: "les 256 valeurs d'octet" },
    run: async (t) => {
      const bytes = new Uint8Array(512).map((_, i) => i % 256);
      return await echoExactly(t, bytes, 3_000);
    },
  },
  {
    name: { en: "UTF-8 accents", fr: "accents UTF-8" },
    run: async (t) =>
      await echoExactly(t, utf8("hého, àéèùç, ñ, 日本語, €, 🙂\n"), 3_000),
  },
  {
    name: { en: "1 MiB message", fr: "message de 1 Mio" },
    run: async (t) => await echoExactly(t, patternBytes(1 << 20), 15_000),
  },
  {
    name: { en: "half-close", fr: "demi-fermeture" },
    run: halfClose,
  },
  {
    name: { en: "second client", fr: "deuxième client" },
    run: secondClient,
  },
  {
    name: { en: "50 clients at once", fr: "50 clients à la fois" },
    run: (t) => manyClients(t, 50),
  },
  {
    name: {
      en: "client that stops reading",
      fr: "client qui ne lit plus",
    },
    run: stalledReader,
  },
  {
    name: { en: "1,100 clients at once", fr: "1 100 clients à la fois" },
    run: (t) => manyClients(t, 1_100),
  },
  {
    name: { en: "abrupt reset", fr: "réinitialisation brutale" },
    run: abruptReset,
  },
];

/** Names of the checks skipped when the server serves one client at a
 * time: they would only wait for their deadline and say the same thing. */
const NEEDS_CONCURRENCY = new Set([
  "client that stops reading",
  "50 clients at once",
  "1,100 clients at once",
]);

async function halfClose(t: Target): Promise<Result> {
  const payload = patternBytes(100_000, 7);
  const conn = await connectTo(t);
  try {
    const reading = readToEnd(conn, payload.length + 1);
    await bounded(writeAll(conn, payload), 5_000);
    await conn.closeWrite();
    const got = await bounded(reading, 5_000);
    if (got === null) {
      return fail(
        'the server did not close after the client\'s half-close (it must echo everything, then close when recv() returns b"")',
        'le serveur n\'a pas fermé après la demi-fermeture du client (il doit tout renvoyer, puis fermer quand recv() renvoie b"")',
      );
    }
    if (!sameBytes(got, payload)) return differs(got, payload);
    return pass(
      "everything echoed, then the server closed",
      "tout est renvoyé, puis le serveur ferme",
    );
  } finally {
    closeQuietly(conn);
  }
}

async function abruptReset(t: Target): Promise<Result> {
  await resetAfterEcho(t, utf8("about to crash\n"));
  const after = await echoExactly(t, utf8("still there?\n"), 3_000)
    .catch(() => fail("", ""));
  if (!after.pass) {
    return fail(
      "after a client reset its connection (RST), the server no longer echoes: catch ConnectionResetError for that client only",
      "après la réinitialisation (RST) d'un client, le serveur ne renvoie plus rien : interceptez ConnectionResetError pour ce client seulement",
    );
  }
  return pass(
    "a reset client does not stop the server",
    "un client réinitialisé n'arrête pas le serveur",
  );
}

const ONE_AT_A_TIME: Text = {
  en:
    "not served while the first client stays connected: one client at a time is the sequential server of §1.2; §2 serves several (threads or select())",
  fr:
    "pas servi tant que le premier client reste connecté : un client à la fois, c'est le serveur séquentiel du §1.2 ; le §2 en sert plusieurs (threads ou select())",
};

async function secondClient(t: Target): Promise<Result> {
  const first = await connectTo(t);
  let second: Deno.TcpConn | null = null;
  try {
    const one = utf8("first\n");
    await bounded(writeAll(first, one), 3_000);
    if (!sameBytes(await readExactly(first, one.length, 3_000), one)) {
      return fail(
        "the first client got no echo",
        "le premier client n'a pas eu d'écho",
      );
    }
    second = await connectTo(t);
    const two = utf8("second\n");
    await bounded(writeAll(second, two), 3_000);
    const got = await readExactly(second, two.length, 2_000);
    if (!sameBytes(got, two)) {
      return { pass: false, why: ONE_AT_A_TIME };
    }
    return pass(
      "served while the first one stays connected",
      "servi pendant que le premier reste connecté",
    );
  } finally {
    closeQuietly(first);
    if (second) closeQuietly(second);
  }
}

/** A client sends and never reads: once its buffers fill, a server that
 * writes to it with a blocking sendall() waits for it, and so does every
 * other client of a one-thread server. The check then reads everything
 * back, so that a server that waited is released, not broken. */
async function stalledReader(t: Target): Promise<Result> {
  const stalled = await connectTo(t);
  let sent = 0;
  try {
    const chunk = patternBytes(64 * 1024, 3);
    // Write until a write stays pending (buffers full), at most 32 MiB.
    let pending: Promise<unknown> | null = null;
    while (sent < STALL_MAX_BYTES) {
      const w = writeAll(stalled, chunk);
      if (await settlesWithin(w, 300)) {
        sent += chunk.length;
      } else {
        pending = w;
        sent += chunk.length;
        break;
      }
    }
    const other = await echoExactly(t, utf8("anyone there?\n"), 3_000);
    // Release the server: read back what it echoed to the stalled client.
    const draining = readExactly(stalled, sent, 10_000).catch(() => null);
    if (pending) await bounded(pending, 10_000).catch(() => {});
    await draining;
    if (!other.pass) {
      return fail(
        "another client was not served while one client did not read: the server blocks on that client's send",
        "un autre client n'a pas été servi pendant qu'un client ne lisait pas : le serveur reste bloqué sur l'envoi vers ce client",
      );
    }
    return pass(
      "the others are still served",
      "les autres sont toujours servis",
    );
  } finally {
    closeQuietly(stalled);
  }
}

/** `count` clients connect one after the other and stay connected; each
 * gets one echo as it arrives (so a short listen() backlog is no excuse),
 * then all of them, still connected, send again at once. */
async function manyClients(t: Target, count: number): Promise<Result> {
  const conns: Deno.TcpConn[] = [];
  let served = 0;
  try {
    const openBy = Date.now() + 20_000;
    while (conns.length < count && Date.now() < openBy) {
      const conn = await connectTo(t).catch(() => null);
      if (conn === null) break;
      conns.push(conn);
      if (!(await echoOn(conn, `client ${conns.length}\n`, 3_000))) break;
    }
    if (conns.length === count) {
      const again = await Promise.all(
        conns.map((conn, i) => echoOn(conn, `again ${i}\n`, 8_000)),
      );
      served = again.filter(Boolean).length;
    } else {
      served = conns.length - 1;
    }
  } finally {
    for (const conn of conns) closeQuietly(conn);
  }
  if (served === count) {
    return pass(
      `all ${count.toLocaleString("en")} served`,
      `les ${count.toLocaleString("fr")} sont servis`,
    );
  }
  const alive = await echoExactly(t, utf8("alive?\n"), 3_000)
    .catch(() => fail("", ""));
  const fdHint = count > 1024
    ? " (select() cannot watch a descriptor numbered 1024 or more, FD_SETSIZE: use selectors/poll/epoll or an event loop)"
    : "";
  const fdHintFr = count > 1024
    ? " (select() ne peut pas surveiller un descripteur numéroté 1024 ou plus, FD_SETSIZE : utilisez selectors/poll/epoll ou une boucle d'événements)"
    : "";
  return fail(
    `${served} of ${count} served${
      alive.pass ? "" : ", then the server stopped answering"
    }${fdHint}`,
    `${served} servis sur ${count}${
      alive.pass ? "" : ", puis le serveur ne répond plus"
    }${fdHintFr}`,
  );
}

/** Sends one line on `conn` and waits for exactly its echo. */
async function echoOn(
  conn: Deno.Conn,
  line: string,
  ms: number,
): Promise<boolean> {
  try {
    const bytes = utf8(line);
    await bounded(writeAll(conn, bytes), ms);
    return sameBytes(await readExactly(conn, bytes.length, ms), bytes);
  } catch {
    return false;
  }
}

// -- Sheet 000 §1.4: the UDP echo server ---------------------------------------
//
// A datagram is a whole message: it comes back whole or not at all. The
// empty datagram is a real datagram (recvfrom() returns b""); 1,472 bytes
// fill one Ethernet frame; 65,507 is the largest IPv4 UDP payload, so a
// server reading with recvfrom(1500) truncates it. Each reply goes to the
// address recvfrom() returned, so several senders each get their own.

export const UDP_CHECKS: Check[] = [
  {
    name: { en: "exact echo", fr: "écho exact" },
    run: (t) => udpEcho(t, new Uint8Array(256).map((_, i) => i)),
  },
  {
    name: { en: "empty datagram", fr: "datagramme vide" },
    run: (t) => udpEcho(t, new Uint8Array(0)),
  },
  {
    name: { en: "1,472 bytes", fr: "1 472 octets" },
    run: (t) => udpEcho(t, patternBytes(1_472)),
  },
  {
    name: { en: "65,507 bytes", fr: "65 507 octets" },
    run: (t) => udpEcho(t, patternBytes(65_507)),
  },
  {
    name: { en: "several senders", fr: "plusieurs expéditeurs" },
    run: udpSenders,
  },
];

async function udpEcho(t: Target, payload: Uint8Array): Promise<Result> {
  const got = await udpRoundTrip(t, payload);
  if (got === null) {
    return fail(
      "no reply within 1 s (3 tries)",
      "pas de réponse en 1 s (3 essais)",
    );
  }
  if (!sameBytes(got, payload)) return differs(got, payload);
  return pass(
    `${payload.length} bytes back, exactly`,
    `${payload.length} octets renvoyés à l'identique`,
  );
}

async function udpSenders(t: Target): Promise<Result> {
  const replies = await Promise.all(
    Array.from(
      { length: UDP_SENDERS },
      (_, i) => udpRoundTrip(t, utf8(`sender ${i}`)),
    ),
  );
  const right =
    replies.filter((r, i) => r !== null && text(r) === `sender ${i}`).length;
  if (right === UDP_SENDERS) {
    return pass(
      `each of ${UDP_SENDERS} got its own reply`,
      `chacun des ${UDP_SENDERS} a reçu sa réponse`,
    );
  }
  return fail(
    `${right} of ${UDP_SENDERS} got their own reply: answer to the address recvfrom() returned`,
    `${right} sur ${UDP_SENDERS} ont reçu leur réponse : répondez à l'adresse renvoyée par recvfrom()`,
  );
}

// -- Sheet 001: the OK server ------------------------------------------------
//
// The sheet's server answers `OK` to each message and stops on `fin`. Its
// client sends `msg.encode()` with no newline and waits for the answer; a
// line client (nc, client.ts) ends each message with a newline. A good
// server answers both (an answer is `OK`, with or without a newline). The
// sheet warns that decode() "may raise" on accents: Latin-1 bytes must not
// stop the server. One client that vanishes must not stop the others.

export const OK_CHECKS: Check[] = [
  {
    name: { en: "line client", fr: "client ligne par ligne" },
    run: (t) => okConversation(t, ["bonjour\n", "encore\n", "merci\n"], true),
  },
  {
    name: {
      en: "unframed client (the sheet's)",
      fr: "client sans fin de ligne (celui de la fiche)",
    },
    run: (t) => okConversation(t, ["bonjour", "encore", "merci"]),
  },
  {
    name: { en: "accents and Latin-1 bytes", fr: "accents et octets Latin-1" },
    run: (t) =>
      okConversation(t, [
        "café, ñ, 日本\n",
        new Uint8Array([0x63, 0x61, 0x66, 0xe9, 0x0a]),
        "encore\n",
      ]),
  },
  {
    name: { en: "abrupt disconnect", fr: "déconnexion brutale" },
    run: okAbrupt,
  },
];

export const FIN_CHECK: Check = {
  name: { en: "fin stops the server", fr: "fin arrête le serveur" },
  run: okFin,
};

async function okConversation(
  t: Target,
  messages: (string | Uint8Array)[],
  reuseFirst = false,
): Promise<Result> {
  const conn = reuseFirst && t.kept?.length ? t.kept[0] : await connectTo(t);
  if (t.kept && !t.kept.includes(conn)) t.kept.push(conn);
  try {
    for (const [i, m] of messages.entries()) {
      if (!(await askOk(conn, typeof m === "string" ? utf8(m) : m))) {
        return fail(
          `no OK for message ${i + 1} of ${messages.length} within 2 s`,
          `pas de OK pour le message ${i + 1} sur ${messages.length} en 2 s`,
        );
      }
    }
    return pass(
      `OK to each of ${messages.length} messages`,
      `OK à chacun des ${messages.length} messages`,
    );
  } finally {
    if (!t.kept) closeQuietly(conn);
  }
}

async function okAbrupt(t: Target): Promise<Result> {
  const stays = await connectTo(t);
  t.kept?.push(stays);
  try {
    if (!(await askOk(stays, utf8("je reste\n")))) {
      t.oneClient = true;
      return fail(
        "a new client got no OK while an earlier one stays connected (one client at a time)",
        "un nouveau client n'a pas de OK tant qu'un client précédent reste connecté (un client à la fois)",
      );
    }
    const other = await okConversation(t, ["et moi ?\n"]);
    if (!other.pass) {
      t.oneClient = true;
      return fail(
        "a second client is not answered while the first stays connected (one client at a time)",
        "un deuxième client n'a pas de réponse tant que le premier reste connecté (un client à la fois)",
      );
    }
    await resetAfterEcho(t, utf8("je plante\n"), 2);
    if (!(await askOk(stays, utf8("toujours là ?\n")))) {
      return fail(
        "after a client reset its connection, the others get no OK",
        "après la réinitialisation d'un client, les autres n'ont plus de OK",
      );
    }
    return pass(
      "the others are still answered",
      "les autres ont toujours leur OK",
    );
  } finally {
    closeQuietly(stays);
  }
}

/** "fin" as the sheet's client sends it, with no newline. A one-client
 * server (the sheet's first server) listens to its first client only, so
 * "fin" goes there, followed by end of stream so that a server reading
 * lines sees it whole; any other server gets it from a new client. */
async function okFin(t: Target): Promise<Result> {
  const conn = t.oneClient && t.kept?.length ? t.kept[0] : await connectTo(t);
  try {
    await bounded(writeAll(conn, utf8("fin")), 2_000);
    if (t.oneClient) await conn.closeWrite().catch(() => {});
    await readSome(conn, 1_000).catch(() => null);
  } finally {
    for (const c of t.kept ?? []) closeQuietly(c);
    if (t.kept) t.kept.length = 0;
    closeQuietly(conn);
  }
  const stopBy = Date.now() + 3_000;
  while (Date.now() < stopBy) {
    try {
      closeQuietly(await connectTo(t, 1_000));
    } catch {
      return pass("the server stopped", "le serveur s'est arrêté");
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return fail(
    "still accepting connections 3 s after fin",
    "accepte encore des connexions 3 s après fin",
  );
}

// ---------------------------------------------------------------------------

async function main(args: string[]): Promise<number> {
  let options: Options | null;
  try {
    options = parseOptions(args);
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    console.error(`${PROGRAM}: ${err.message}`);
    console.error(USAGE);
    return 2;
  }
  if (options === null) {
    console.log(USAGE);
    return 0;
  }
  const { lang } = options;
  const target: Target = { host: options.host, port: options.port };

  let checks: Check[];
  if (options.kind === "udp-echo") {
    if (typeof Deno.listenDatagram !== "function") {
      console.error(say(lang, MISSING_UNSTABLE_NET));
      return 2;
    }
    // UDP has no connection to refuse: a first datagram tells whether
    // anything answers at all.
    if (await udpRoundTrip(target, utf8("hello?")) === null) {
      console.log(say(lang, serverDown(target, "udp")));
      return 1;
    }
    checks = UDP_CHECKS;
  } else {
    try {
      const probe = await connectTo(target);
      if (options.kind === "ok") target.kept = [probe];
      else closeQuietly(probe);
    } catch (err) {
      console.log(say(lang, serverDown(target, "tcp", err)));
      return 1;
    }
    checks = options.kind === "echo"
      ? ECHO_CHECKS
      : options.fin
      ? [...OK_CHECKS, FIN_CHECK]
      : OK_CHECKS;
  }

  const results: Result[] = [];
  let sequential = false;
  for (const check of checks) {
    let result: Result;
    if (sequential && NEEDS_CONCURRENCY.has(check.name.en)) {
      result = fail(
        "skipped: the server serves one client at a time (see the second-client check)",
        "non testé : le serveur sert un client à la fois (voir le deuxième client)",
      );
    } else {
      result = await runCheck(check, target);
    }
    if (result.why === ONE_AT_A_TIME) sequential = true;
    results.push(result);
    console.log(formatLine(check, result, lang));
  }
  for (const conn of target.kept ?? []) closeQuietly(conn);
  console.log(summary(results, lang));
  return results.every((r) => r.pass) ? 0 : 1;
}

// ===========================================================================
// Plumbing: options, messages, bounded socket helpers.

const PROGRAM = "check";
const DEFAULT_PORTS = { echo: 7777, "udp-echo": 7777, ok: 12800 } as const;
const DEFAULT_HOST = "127.0.0.1";
/** Most a stalled-reader check sends before concluding buffers are full. */
const STALL_MAX_BYTES = 32 * 1024 * 1024;
const UDP_SENDERS = 5;

export const USAGE = `Usage: deno run -N check.ts KIND [options]
KIND:
  echo       TCP echo server (sheet 000 §1.2 and §2); default port 7777
  udp-echo   UDP echo server (sheet 000 §1.4); default port 7777
             (needs --unstable-net: deno run -N --unstable-net check.ts udp-echo)
  ok         OK/fin server (sheet 001); default port 12800
Options:
  --port N     the server's port
  --host H     the server's address (default ${DEFAULT_HOST})
  --lang fr    messages in French (default en)
  --no-fin     ok: do not send fin (the server keeps running)
  -h, --help   this help
Exit status: 0 when every check passes, 1 when one fails, 2 on misuse.`;

export interface Options {
  kind: "echo" | "udp-echo" | "ok";
  host: string;
  port: number;
  lang: "en" | "fr";
  fin: boolean;
}

export class UsageError extends Error {}

/** Parses the command line; null means --help. */
export function parseOptions(args: string[]): Options | null {
  let kind: Options["kind"] | null = null;
  let host = DEFAULT_HOST;
  let port: number | null = null;
  let lang: Options["lang"] = "en";
  let fin = true;
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    const [flag, inline] = arg.startsWith("--") && arg.includes("=")
      ? [arg.slice(0, arg.indexOf("=")), arg.slice(arg.indexOf("=") + 1)]
      : [arg, undefined];
    const value = (): string => {
      const v = inline ?? args[++i];
      if (v === undefined || v === "") {
        throw new UsageError(`option ${flag} needs a value`);
      }
      return v;
    };
    switch (flag) {
      case "-h":
      case "--help":
        return null;
      case "--port": {
        const v = value();
        if (!/^\d+$/.test(v) || Number(v) < 1 || Number(v) > 65535) {
          throw new UsageError(
            `--port must be a whole number from 1 to 65535, not "${v}"`,
          );
        }
        port = Number(v);
        break;
      }
      case "--host":
        host = value();
        break;
      case "--lang": {
        const v = value();
        if (v !== "en" && v !== "fr") {
          throw new UsageError(`--lang must be en or fr, not "${v}"`);
        }
        lang = v;
        break;
      }
      case "--no-fin":
        fin = false;
        break;
      default:
        if (flag.startsWith("-")) {
          throw new UsageError(`unknown option ${flag}`);
        }
        if (kind !== null) {
          throw new UsageError(`one KIND only, not "${kind}" and "${arg}"`);
        }
        if (arg !== "echo" && arg !== "udp-echo" && arg !== "ok") {
          throw new UsageError(
            `KIND must be echo, udp-echo or ok, not "${arg}"`,
          );
        }
        kind = arg;
    }
  }
  if (kind === null) {
    throw new UsageError("which kind of server? echo, udp-echo or ok");
  }
  if (!fin && kind !== "ok") {
    throw new UsageError("--no-fin applies to ok only");
  }
  if (host.startsWith("[") && host.endsWith("]")) host = host.slice(1, -1);
  return { kind, host, port: port ?? DEFAULT_PORTS[kind], lang, fin };
}

export function say(lang: "en" | "fr", message: Text): string {
  return message[lang];
}

/** `✔ name: reason` or `✘ name: reason`. */
export function formatLine(
  check: Check,
  result: Result,
  lang: "en" | "fr",
): string {
  return `${result.pass ? "✔" : "✘"} ${check.name[lang]}: ${result.why[lang]}`;
}

export function summary(results: Result[], lang: "en" | "fr"): string {
  const passed = results.filter((r) => r.pass).length;
  return lang === "fr"
    ? `${passed} vérifications réussies sur ${results.length}`
    : `${passed} of ${results.length} checks passed`;
}

const MISSING_UNSTABLE_NET: Text = {
  en:
    `${PROGRAM}: UDP needs the --unstable-net flag: run it as: deno run -N --unstable-net check.ts udp-echo …`,
  fr:
    `${PROGRAM} : UDP demande l'option --unstable-net : lancez deno run -N --unstable-net check.ts udp-echo …`,
};

export function serverDown(
  t: Target,
  transport: "tcp" | "udp",
  err?: unknown,
): Text {
  const where = `${t.host.includes(":") ? `[${t.host}]` : t.host}:${t.port}`;
  if (transport === "udp") {
    return {
      en:
        `✘ no UDP reply from ${where} within 1 s (3 tries): is the server running on that port?`,
      fr:
        `✘ pas de réponse UDP de ${where} en 1 s (3 essais) : le serveur tourne-t-il sur ce port ?`,
    };
  }
  const reason = err instanceof Deno.errors.ConnectionRefused
    ? { en: "connection refused", fr: "connexion refusée" }
    : { en: errorText(err), fr: errorText(err) };
  return {
    en:
      `✘ cannot connect to ${where} (${reason.en}): is the server running on that port?`,
    fr:
      `✘ impossible de se connecter à ${where} (${reason.fr}) : le serveur tourne-t-il sur ce port ?`,
  };
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message.split("\n")[0] : String(err);
}

/** Runs one check; an unexpected error (refused, reset, timeout) is its ✘. */
async function runCheck(check: Check, t: Target): Promise<Result> {
  try {
    return await check.run(t);
  } catch (err) {
    if (
      err instanceof Deno.errors.ConnectionRefused ||
      (err as { code?: string })?.code === "ECONNREFUSED"
    ) {
      return fail(
        "connection refused: the server is no longer running",
        "connexion refusée : le serveur ne tourne plus",
      );
    }
    if (err instanceof Timeout) {
      return fail(
        `no answer within ${err.ms} ms`,
        `pas de réponse en ${err.ms} ms`,
      );
    }
    const m = errorText(err);
    return fail(m, m);
  }
}

class Timeout extends Error {
  constructor(readonly ms: number) {
    super(`timed out after ${ms} ms`);
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

async function connectTo(t: Target, ms = 3_000): Promise<Deno.TcpConn> {
  const connecting = Deno.connect({ hostname: t.host, port: t.port });
  try {
    return await bounded(connecting, ms);
  } catch (err) {
    // A connection that completes after the deadline is closed, not leaked.
    connecting.then(closeQuietly, () => {});
    throw err;
  }
}

async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  let done = 0;
  while (done < bytes.length) done += await conn.write(bytes.subarray(done));
}

/** Reads exactly `length` bytes (fewer if the server closes), within `ms`. */
async function readExactly(
  conn: Deno.Conn,
  length: number,
  ms: number,
): Promise<Uint8Array> {
  const out = new Uint8Array(length);
  let got = 0;
  const work = (async () => {
    while (got < length) {
      const n = await conn.read(out.subarray(got));
      if (n === null) break;
      got += n;
    }
  })();
  try {
    await bounded(work, ms);
  } catch (err) {
    if (!(err instanceof Timeout)) throw err;
  }
  return out.subarray(0, got);
}

/** Reads until the server closes; null if more than `max` bytes come. */
async function readToEnd(
  conn: Deno.Conn,
  max: number,
): Promise<Uint8Array | null> {
  const chunks: Uint8Array[] = [];
  let total = 0;
  const buf = new Uint8Array(64 * 1024);
  while (true) {
    const n = await conn.read(buf);
    if (n === null) break;
    total += n;
    if (total > max) return null;
    chunks.push(buf.slice(0, n));
  }
  return concat(chunks);
}

async function readSome(
  conn: Deno.Conn,
  ms: number,
): Promise<Uint8Array | null> {
  const buf = new Uint8Array(4096);
  const n = await bounded(conn.read(buf), ms);
  return n === null ? null : buf.subarray(0, n);
}

/** Sends one message and waits up to 2 s for one answer `OK` (a trailing
 * newline or CRLF allowed, as from our server; none, as from the sheet's). */
async function askOk(conn: Deno.Conn, message: Uint8Array): Promise<boolean> {
  await bounded(writeAll(conn, message), 2_000);
  return isOkAnswer(await readAnswer(conn, 2_000));
}

/** Reads what arrives within `ms`, stopping as soon as it is a whole
 * answer. No read is left pending on success: a pending read would swallow
 * the next answer. */
async function readAnswer(conn: Deno.Conn, ms: number): Promise<string> {
  let answer = "";
  const until = Date.now() + ms;
  const buf = new Uint8Array(1024);
  while (Date.now() < until && answer.length < 16) {
    let n: number | null;
    try {
      n = await bounded(conn.read(buf), Math.max(1, until - Date.now()));
    } catch {
      break;
    }
    if (n === null) break;
    answer += text(buf.subarray(0, n));
    if (answer.endsWith("OK") || answer.endsWith("OK\n")) break;
  }
  return answer;
}

/** True for one answer "OK", "OK\n" or "OK\r\n". The newline may also
 * come first: from a server that answers "OK\n" in two pieces, it can be
 * read along with the next answer. */
export function isOkAnswer(answer: string): boolean {
  return /^(\r?\n)?OK(\r?\n)?$/.test(answer);
}

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

async function echoExactly(
  t: Target,
  payload: Uint8Array,
  ms: number,
): Promise<Result> {
  const conn = await connectTo(t);
  try {
    const reading = readExactly(conn, payload.length, ms);
    const writing = bounded(writeAll(conn, payload), ms).catch(() => {});
    const got = await reading;
    await writing;
    if (!sameBytes(got, payload)) return differs(got, payload);
    return pass(
      `${payload.length} bytes back, exactly`,
      `${payload.length} octets renvoyés à l'identique`,
    );
  } finally {
    closeQuietly(conn);
  }
}

async function udpRoundTrip(
  t: Target,
  payload: Uint8Array,
): Promise<Uint8Array | null> {
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
      const deadline = Date.now() + 1_000;
      while (Date.now() < deadline) {
        try {
          const [data] = await bounded(
            sock.receive(new Uint8Array(65_536)),
            deadline - Date.now(),
          );
          return data;
        } catch (err) {
          if (err instanceof Timeout) break;
          throw err;
        }
      }
    }
    return null;
  } finally {
    closeQuietly(sock);
  }
}

/** What differs between what came back and what was sent, in a few words. */
export function describeDifference(got: Uint8Array, sent: Uint8Array): Text {
  if (got.length < sent.length) {
    return {
      en: `got ${got.length} of ${sent.length} bytes back`,
      fr: `${got.length} octets reçus sur ${sent.length}`,
    };
  }
  let i = 0;
  while (i < sent.length && got[i] === sent[i]) i++;
  if (i < sent.length) {
    return {
      en: `byte ${i} differs: sent ${sent[i]}, got ${got[i]}`,
      fr: `l'octet ${i} diffère : envoyé ${sent[i]}, reçu ${got[i]}`,
    };
  }
  return {
    en: `${got.length - sent.length} bytes too many`,
    fr: `${got.length - sent.length} octets de trop`,
  };
}

function differs(got: Uint8Array, sent: Uint8Array): Result {
  return { pass: false, why: describeDifference(got, sent) };
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

export function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
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

function closeQuietly(resource: { close(): void }): void {
  try {
    resource.close();
  } catch {
    // already closed
  }
}

// main() runs last, once every constant above is defined.
if (import.meta.main) {
  Deno.exit(await main(Deno.args));
}
