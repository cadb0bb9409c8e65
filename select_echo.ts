#!/usr/bin/env -S deno run -N
/**
 * # select_echo.ts — event-loop TCP echo server: many clients, one thread
 *
 * Sends back every byte each client sends, until that client closes. It
 * serves MANY clients at once from ONE thread: instead of waiting for one
 * client to leave, it waits for whichever socket has something to do. The
 * event-loop server, between tcp_echo.ts (one client at a time) and
 * worker_echo.ts (several threads). Deno's event loop (epoll, kqueue) IS
 * the sheet's `select()`: every pending accept() or read() below is a
 * socket handed to it, each resolved promise a socket come back readable.
 *
 * Sheet: TP5b "Socket Serveur" (seeds/000), §2.1 "Version select". Its
 * Python, line for line:
 *   s.listen(1)                     ↔  `BACKLOG = 511` (accept() is quick now)
 *   l = []                          ↔  `clients` (a Set, in the skeleton)
 *   select.select(l + [s], [], [])  ↔  Deno's event loop: every pending accept() and read()
 *   s.accept(); l.append(sc)        ↔  `conn = await listener.accept()`, `welcome(conn)`
 *   for sc in ready: sc.recv(1500)  ↔  `n = await conn.read(buffer)`
 *   sc.sendall(data)                ↔  `await writeAll(conn, buffer.subarray(0, n))`
 *   len 0: sc.close(); l.remove(sc) ↔  `if (n === null) break`, `forget(conn)`
 *   accept, then serve: no await    ↔  `serveClient(conn);`, THE line of acceptLoop()
 * Past ~128 busy clients Deno is no longer the sheet's select(): tokio, under
 * Deno, completes at most 128 reads per turn, so the same clients are served
 * again and again while the others starve (bench/RESULTS.md, "the knee").
 * echod.ts, the engineers' echo service, adds the fair turns that fix it.
 *
 * @run deno run -N select_echo.ts
 * Try it: `nc localhost 7777` in several terminals at once, `ss -tnp` in
 * another; every client is echoed at the same time. It speaks French where
 * the system does (LANG=fr_FR.UTF-8), or with `--lang fr`.
 * Siblings: tcp_echo.ts, worker_echo.ts, udp_echo.ts, client.ts,
 * ok_server.ts, check.ts; echod.ts is the engineers' echo service.
 *
 * Permissions: `-N` (network) only: it listens and talks to clients.
 *
 * Reading order: the lesson (acceptLoop, serveClient), main(), the command
 * line, the skeleton the TCP servers share, the helpers every script shares.
 */

import { parseArgs } from "node:util";

const PROGRAM = "select_echo";
/** How users run it; messages that say how to run it repeat it. */
const RUN_LINE = `deno run -N ${PROGRAM}.ts`;
/** The sheet's port (the real echo service is port 7, reserved to root). */
const DEFAULT_PORT = 7777;
/** All interfaces, IPv6 and IPv4: the sheet's `AF_INET6` on `("", 7777)`. */
const DEFAULT_HOST = "::";

// ===========================================================================
// The lesson: serve every client at once, from one thread
// ===========================================================================

// ---- SELECT LESSON BEGIN ---------------------------------------------------
/** Clients arriving together wait in this kernel queue until accept() takes
 * them; accept() is quick here, so a long queue only absorbs bursts (511 is
 * Deno's and Node's default). */
const BACKLOG = 511;
/** The sheet reads 1500 bytes at a time. Every client has its own buffer
 * now, and an idle client's waiting read holds it: 16 KiB keeps 10,000 idle
 * clients within 160 MiB, and reads large enough for bulk clients. */
const BUFFER_SIZE = 16 * 1024;

/** Clients served and bytes echoed, for the summary line. */
const stats = { clients: 0, bytes: 0 };

/** The sheet's select() loop, as far as the listening socket goes: each
 * time it is readable, accept the client and add it to the list. */
async function acceptLoop(listener: Deno.TcpListener): Promise<void> {
  for (;;) {
    let conn: Deno.TcpConn;
    try {
      conn = await listener.accept(); // the sheet's accept(): wait for a client
    } catch (err) {
      if (err instanceof Deno.errors.BadResource) return; // closed: shutdown
      await acceptFailed(err); // a vanished client, or no descriptor left
      continue;
    }
    // THE line that makes this server concurrent: we start serving this
    // client and, without waiting for it to leave, go back to accept() the
    // next one (Go's `go handle(c)`). Each client's loop then waits on its
    // own socket, and Deno's event loop resumes whichever socket is
    // readable: the sheet's select(), done for us. tcp_echo.ts awaits here.
    // serveClient() never rejects, so nobody needs to await it.
    serveClient(conn);
  }
}

/** The sheet's work for one readable client socket, as a loop: read what it
 * sent, write it back, until it closes. Never rejects: nobody awaits it, and
 * in Deno an unhandled rejection ends the whole process. */
async function serveClient(conn: Deno.TcpConn): Promise<void> {
  const buffer = new Uint8Array(BUFFER_SIZE);
  const peer = welcome(conn);
  stats.clients++;
  let echoed = 0;
  let ending = SAID.left();
  try {
    // Deno leaves Nagle's algorithm on; with it, an echo split over two
    // reads waits up to 40 ms for the client's delayed ACK before its
    // second part leaves. An echo server wants every byte out at once.
    conn.setNoDelay(true);
    for (;;) {
      const n = await conn.read(buffer);
      // null: the client closed, or half-closed, its sending side (the
      // sheet's zero-length recv). Every byte it sent has been echoed by
      // now, so closing is safe.
      if (n === null) break;
      // Awaiting the write is what bounds memory: a client that sends but
      // never reads fills the kernel buffers, then this await waits, and we
      // stop reading from it. Nothing piles up in our process, and the
      // other clients go on: only this one is waiting.
      await writeAll(conn, buffer.subarray(0, n));
      echoed += n;
    }
  } catch (err) {
    ending = describeDisconnect(err, peer);
  } finally {
    forget(conn);
    closeQuietly(conn);
  }
  stats.bytes += echoed;
  log(`${peer} ${ending} ${TEXT.after(echoed)}`);
}
// ---- SELECT LESSON END -----------------------------------------------------

// ===========================================================================
// main: listen, serve until Ctrl-C, print a summary
// ===========================================================================

async function main(args: string[]): Promise<number> {
  const options = parseOptions(args);
  if (typeof options === "number") return options; // --help, or a mistake

  let listeners: Deno.TcpListener[];
  try {
    listeners = listen(options);
  } catch (err) {
    warn(describeListenError(err, options));
    return 1;
  }
  installShutdown(() => closeAll(listeners));
  announce(SAID.listening(describeListeners(listeners)));

  await Promise.all(listeners.map(acceptLoop));
  // The accept loops are over; wait for the clients' last lines.
  await clientsGone();

  announce(TEXT.stopped(shutdown.reason || SAID.closing()));
  return 0;
}

// ===========================================================================
// The command line, and this script's words in English and French
// ===========================================================================

type Options = CommonOptions;

/** This server's own options, besides --port, --host, --quiet, --help. */
const OPTIONS = {};

/** Returns the options, or the exit code when there is nothing to serve. */
export function parseOptions(args: string[]): Options | number {
  return readCommandLine(args, (common) => common);
}

/** This script's own words, in English and in French (see say()). */
// deno-fmt-ignore
const TEXT = {
  after: (bytes: number) => say(`after ${plural(bytes, "byte")} echoed`, `après ${echoedFr(bytes)}`),
  stopped: (reason: string) => say(
    `stopped by ${reason}: ${plural(stats.clients, "client")}, ${plural(stats.bytes, "byte")} echoed`,
    `arrêté par ${reason}\u00a0: ${plural(stats.clients, "client")}, ${echoedFr(stats.bytes)}`),
};

/** "0 octet renvoyé", "1 octet renvoyé", "2 octets renvoyés". */
const echoedFr = (bytes: number) =>
  `${plural(bytes, "octet")} renvoyé${bytes >= 2 ? "s" : ""}`;

function usage(): string {
  return say(
    `Usage: ${howToRun()} [options]

Event-loop TCP echo server: sends back every byte it receives, serving many
clients at once from one thread.

Options:
  --port N     port to listen on, 0 lets the system choose (default ${DEFAULT_PORT})
  --host H     address to listen on (default ${DEFAULT_HOST}: all interfaces,
               IPv4 and IPv6)
  --quiet      no line per client (the ready line and summary remain)
  --lang L     fr or en: the language of the messages (default: the system's)
  -h, --help   show this help and exit

Try it: nc localhost ${DEFAULT_PORT}`,
    `Utilisation\u00a0: ${howToRun()} [options]

Serveur d'écho TCP à boucle d'événements\u00a0: renvoie chaque octet reçu, à
de nombreux clients à la fois, depuis un seul thread.

Options\u00a0:
  --port N     port d'écoute, 0 laisse le système choisir (défaut ${DEFAULT_PORT})
  --host H     adresse d'écoute (défaut ${DEFAULT_HOST}\u00a0: toutes les interfaces,
               IPv4 et IPv6)
  --quiet      aucune ligne par client (restent la ligne d'accueil et le bilan)
  --lang L     fr ou en\u00a0: la langue des messages (défaut\u00a0: celle du système)
  -h, --help   affiche cette aide et quitte

Essayez\u00a0: nc localhost ${DEFAULT_PORT}`,
  );
}

// The pure pieces, for tests in-process (exporting adds no import).
export { describeDisconnect, formatAddress, parsePort, plural, UsageError };

// ==== SKELETON BEGIN =======================================================
// What every TCP server of the kit needs around its lesson, word for word
// the same in the four (a test checks) so that `diff tcp_echo.ts
// select_echo.ts` shows only the lesson. What differs comes from PROGRAM,
// RUN_LINE, DEFAULT_PORT, DEFAULT_HOST, BACKLOG, OPTIONS and usage().

/** The skeleton's own words, in English and in French (see say()). */
// deno-fmt-ignore
const SAID = {
  listening: (where: string) => say(`listening on ${where}`, `à l'écoute sur ${where}`),
  bothFamilies: () => say("(IPv4 and IPv6)", "(IPv4 et IPv6)"),
  and: () => say(" and ", " et "),
  connected: (peer: string) => say(`${peer} connected`, `${peer} connecté`),
  left: () => say("left", "est parti"),
  reset: () => say("reset the connection", "a réinitialisé la connexion"),
  stoppedReading: () => say("stopped reading and left", "a cessé de lire et est parti"),
  closedAtShutdown: () => say("was closed at shutdown", "a été fermé à l'arrêt"),
  failed: () => say("failed", "a échoué"),
  closing: () => say("closing", "la fermeture"),
  noPermission: () => say("Network permission missing: run it as: ",
    "Permission réseau manquante\u00a0: lancez-le ainsi\u00a0: "),
  cannotListen: (where: string) => say(`Cannot listen on ${where}: `, `Impossible d'écouter sur ${where}\u00a0: `),
  addrInUse: () => say("address already in use; stop the other server (see: ss -tlnp) or choose another --port",
    "adresse déjà utilisée\u00a0; arrêtez l'autre serveur (voir\u00a0: ss -tlnp) ou choisissez un autre --port"),
  privileged: () => say(`permission denied; ports below 1024 need root, choose --port ${DEFAULT_PORT}`,
    `permission refusée\u00a0; les ports sous 1024 sont réservés à root, choisissez --port ${DEFAULT_PORT}`),
  noSuchAddress: () => say("this machine has no such address; check --host",
    "cette machine n'a pas cette adresse\u00a0; vérifiez --host"),
  osText: (why: string) => say(why, why.replace(/^failed to lookup address information: .*/, "hôte inconnu\u00a0; vérifiez --host")
    .replace(/^Too many open files \(os error (\d+)\)$/, "trop de fichiers ouverts (erreur système $1)")
    .replace(/^Invalid argument \(os error (\d+)\)$/, "argument invalide (erreur système $1)")),
  cannotAccept: (why: string) => say(`cannot accept clients: ${why}`, `impossible d'accepter des clients\u00a0: ${SAID.osText(why)}`),
  retrying: () => say("; retrying", "\u00a0; nouvel essai"),
  acceptingAgain: () => say("accepting clients again", "les clients sont de nouveau acceptés"),
  stillBusy: (reason: string) => say(`still busy ${SHUTDOWN_GRACE_MS} ms after ${reason}; exiting`,
    `encore occupé ${formatCount(SHUTDOWN_GRACE_MS)} ms après ${reason}\u00a0; fin du programme`),
};

// ---- Command line and output ---------------------------------------------

/** The options every server takes; each script adds its own (OPTIONS). */
type CommonOptions = { host: string; port: number; quiet: boolean };

/** Reads the common options and the script's own, which `build` turns into
 * its Options (or throws UsageError). Returns an exit code instead after
 * --help (0, usage on stdout) or a mistake (2, a line and usage on stderr). */
function readCommandLine<T>(
  args: string[],
  build: (common: CommonOptions, values: Record<string, unknown>) => T,
): T | number {
  try {
    let values: Record<string, unknown>;
    try {
      values = parseArgs({
        args: takeCommonArgs(args), // a leading "--", and --lang
        options: {
          port: { type: "string", default: String(DEFAULT_PORT) },
          host: { type: "string", default: DEFAULT_HOST },
          quiet: { type: "boolean", default: false },
          help: { type: "boolean", short: "h", default: false },
          ...OPTIONS,
        },
      }).values;
    } catch (err) {
      throw new UsageError(describeArgsError(err)); // one line, translated
    }
    if (values.help === true) {
      console.log(usage());
      return 0;
    }
    quiet = values.quiet === true;
    const port = parsePort(String(values.port));
    return build({ host: String(values.host), port, quiet }, values);
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    warn(err.message);
    console.error(usage());
    return 2;
  }
}

/** How to run it: the `deno run` line, or a `deno compile` binary's name. */
const howToRun = () =>
  Deno.build.standalone ? Deno.execPath().split(/[\\/]/).pop()! : RUN_LINE;

/** One line per event, prefixed by the program's name: log() per client
 * (unless --quiet), announce() the ready line and summary, warn() problems
 * (on stderr). */
let quiet = false;
const log = (line: string) => quiet || announce(line);
const announce = (line: string) => console.log(`${prefix()}${line}`);
const warn = (line: string) => console.error(`${prefix()}${line}`);

// ---- Listening -----------------------------------------------------------

/** The sheet's socket(), bind() and listen(). With the default host, one
 * socket on "::" takes IPv4 and IPv6 (Linux and macOS are dual-stack).
 * Where "::" is IPv6-only (Windows, bindv6only=1), a second socket on
 * 0.0.0.0 serves IPv4 on the same port; without IPv6, 0.0.0.0 alone. */
function listen({ host, port }: CommonOptions): Deno.TcpListener[] {
  let first: Deno.TcpListener;
  try {
    first = Deno.listen({ hostname: host, port, tcpBacklog: BACKLOG });
  } catch (err) {
    const noIPv6 = err instanceof Deno.errors.AddrNotAvailable ||
      /address family not supported/i.test(errorMessage(err));
    if (host !== DEFAULT_HOST || !noIPv6) throw err;
    return [Deno.listen({ hostname: "0.0.0.0", port, tcpBacklog: BACKLOG })];
  }
  if (host !== DEFAULT_HOST) return [first];
  const probe = { hostname: "0.0.0.0", port: first.addr.port };
  // Without -N, Deno asks the user at each new address: never about this
  // probe. Without the permission, trust the dual-stack default.
  const net = { name: "net", host: `0.0.0.0:${probe.port}` } as const;
  if (Deno.permissions.querySync(net).state !== "granted") return [first];
  try {
    // On a dual-stack system "::" already holds the IPv4 port too, so this
    // fails with AddrInUse, which is the answer we hope for.
    return [first, Deno.listen({ ...probe, tcpBacklog: BACKLOG })];
  } catch (err) {
    if (err instanceof Deno.errors.AddrInUse) return [first];
    first.close();
    throw err;
  }
}

/** A failure to listen as one line telling the user what to do. */
function describeListenError(err: unknown, { host, port }: CommonOptions) {
  if (err instanceof Deno.errors.NotCapable) {
    return `${SAID.noPermission()}${howToRun()}`;
  }
  const why = err instanceof Deno.errors.AddrInUse
    ? SAID.addrInUse()
    : err instanceof Deno.errors.PermissionDenied
    ? SAID.privileged()
    : err instanceof Deno.errors.AddrNotAvailable
    ? SAID.noSuchAddress()
    : SAID.osText(errorMessage(err));
  const where = `${host.includes(":") ? `[${host}]` : host}:${port}`;
  return `${SAID.cannotListen(where)}${why}`;
}

/** The ready line's address part: "[::]:7777 (IPv4 and IPv6)" when one
 * dual-stack socket serves both families. */
function describeListeners(listeners: Deno.TcpListener[]): string {
  const all = listeners.map((l) => formatAddress(l.addr)).join(SAID.and());
  const dual = listeners.length === 1 && listeners[0].addr.hostname === "::";
  return dual ? `${all} ${SAID.bothFamilies()}` : all;
}

// ---- Accepting without dying ---------------------------------------------

/** accept() fails while the server is healthy: a client resets before we
 * accept it, or no file descriptor is left (EMFILE); so `for await (const
 * conn of listener)`, which ends at the first error, is no server loop. On
 * each failure: skip a vanished client, else wait, doubling the wait up to
 * 1 s, so that a full descriptor table does not spin the CPU. */
async function acceptFailed(err: unknown): Promise<void> {
  if (
    err instanceof Deno.errors.NotConnected ||
    err instanceof Deno.errors.ConnectionReset ||
    err instanceof Deno.errors.ConnectionAborted
  ) return; // it left the backlog before we met it
  // A listener destroyed (`ss -K`) fails with EINVAL for ever: no retry.
  if ((err as { code?: string }).code === "EINVAL") {
    throw new Error(SAID.cannotAccept(errorMessage(err)));
  }
  acceptRetryMs = Math.min(Math.max(acceptRetryMs * 2, 10), 1000);
  if (acceptRetryMs === 10) {
    warn(`${SAID.cannotAccept(errorMessage(err))}${SAID.retrying()}`);
  }
  await new Promise((resolve) => setTimeout(resolve, acceptRetryMs));
}

let acceptRetryMs = 0; // the wait between failed accepts; 0 while they work

// ---- The clients ---------------------------------------------------------

/** The clients being served (the sheet's list); shutdown closes them. */
const clients = new Set<Deno.TcpConn>();
let lastClientGone: (() => void) | undefined;

/** A client arrives: list it and say so. Returns how to name it in logs. */
function welcome(conn: Deno.TcpConn): string {
  if (acceptRetryMs > 0) {
    acceptRetryMs = 0;
    warn(SAID.acceptingAgain());
  }
  const peer = formatAddress(conn.remoteAddr);
  clients.add(conn);
  log(SAID.connected(peer));
  return peer;
}

/** A client leaves the list; the last one wakes main() if it waits. */
function forget(conn: Deno.TcpConn): void {
  clients.delete(conn);
  if (clients.size === 0) lastClientGone?.();
}

/** Resolves once every client has been forgotten and has logged its line
 * (which serveClient does right after forget(), in the same step). */
function clientsGone(): Promise<void> {
  if (clients.size === 0) return Promise.resolve();
  return new Promise((resolve) => lastClientGone = resolve);
}

/** write() may take only part of the bytes; loop until all are sent. */
async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  while (bytes.length > 0) {
    const n = await conn.write(bytes);
    bytes = bytes.subarray(n);
  }
}

/** A short word for the expected ways to go; others get a line on stderr. */
function describeDisconnect(err: unknown, peer: string): string {
  const errors = Deno.errors;
  if (err instanceof errors.ConnectionReset) return SAID.reset();
  if (err instanceof errors.BrokenPipe) return SAID.stoppedReading();
  if (err instanceof errors.BadResource || err instanceof errors.Interrupted) {
    return SAID.closedAtShutdown();
  }
  warn(`${peer}${say(": ", "\u00a0: ")}${errorMessage(err)}`);
  return SAID.failed();
}

// ---- Shutdown ------------------------------------------------------------

/** Why the server stops ("" while it serves), and what closes it. */
const shutdown = { reason: "", close: () => {} };
/** Clients are closed at once; this long after, the process exits anyway. */
const SHUTDOWN_GRACE_MS = 2000;

/** Makes Ctrl-C and SIGTERM call stopServer(); `close` closes what keeps
 * the server running. Installed before the ready line: a parent that
 * signals as soon as it reads that line must find the handler. */
function installShutdown(close: () => void): void {
  shutdown.close = close;
  Deno.addSignalListener("SIGINT", () => stopServer("SIGINT"));
  // Windows has no SIGTERM; Ctrl-C is its only signal there.
  if (Deno.build.os !== "windows") {
    Deno.addSignalListener("SIGTERM", () => stopServer("SIGTERM"));
  }
}

/** Stops the server, once: main() then prints the summary with `reason`. */
function stopServer(reason: string): void {
  if (shutdown.reason) return; // a second Ctrl-C changes nothing
  shutdown.reason = reason;
  shutdown.close();
  // Whatever still holds the process (a retry timer) must not keep it.
  Deno.unrefTimer(setTimeout(() => {
    warn(SAID.stillBusy(reason));
    Deno.exit(0);
  }, SHUTDOWN_GRACE_MS));
}

/** Closes the listeners and clients: the accept loops and reads end. */
function closeAll(listeners: Deno.TcpListener[]): void {
  for (const listener of listeners) closeQuietly(listener);
  for (const conn of clients) closeQuietly(conn);
}

// ==== SKELETON END =========================================================

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
