#!/usr/bin/env -S deno run -N --unstable-net
/**
 * # udp_echo.ts — UDP echo server: every datagram back to its sender
 *
 * Sends every datagram it receives back, whole, to the address and port it
 * came from, and logs one line per datagram (sender, bytes). UDP has no
 * connections: no accept(), no client that arrives or leaves, only
 * datagrams, each carrying its sender's address; so one socket and one loop
 * serve every peer, one datagram at a time (the kernel queues the others).
 *
 * Sheet: TP5b "Socket Serveur" (seeds/000), §1.4 "Pour aller plus loin :
 * version UDP" (AF_INET6 + SOCK_DGRAM, bind, a recvfrom/sendto loop).
 *
 * Sheet (Python)                               ↔ this file
 * `socket(AF_INET6, SOCK_DGRAM)` + `bind(("", 7777))`
 *                                              ↔ `Deno.listenDatagram({ hostname: host, port, transport: "udp" })`
 * `data, addr = s.recvfrom(65535)`             ↔ `[datagram, peer] = await socket.receive(buffer)`
 * `s.sendto(data, addr)`                       ↔ `await socket.send(datagram, peer)`
 * `while True:`                                ↔ `for (;;)` in `echoLoop`
 * `print(addr)` (the client port changes)      ↔ `log(MSG.echoed(datagram.length, peer))`
 *
 * @run deno run -N --unstable-net udp_echo.ts
 * Try it: `nc -u localhost 7777` in a second terminal, `ss -uanp` in a
 * third; start nc several times and watch the client port change in the
 * log. Or run it as a program: `chmod +x udp_echo.ts && ./udp_echo.ts`.
 * Siblings: tcp_echo.ts, client.ts (with `--udp`); echod.ts is the
 * engineers' echo service (rate-limited logs, several receive loops).
 *
 * Permissions: `-N` (network) only. `--unstable-net` is not one: Deno's UDP
 * API is still unstable and exists only with that flag (this project's
 * deno.json turns it on). French with LANG=fr_FR.UTF-8 or `--lang fr`.
 */

import { parseArgs } from "node:util";

// ---------------------------------------------------------------------------
// The lesson: the constants it needs, and the receive/echo loop.

const PROGRAM = "udp_echo";
/** The sheet's port (the real echo service's, 7, is reserved to root). */
const DEFAULT_PORT = 7777;
/** All interfaces, IPv6 and IPv4 on one port, like the sheet's `AF_INET6`
 * socket bound to `("", 7777)`. */
const DEFAULT_HOST = "::";
/** Bigger than any datagram: the largest UDP payload is 65527 bytes over
 * IPv6 (65535 minus the 8-byte UDP header; 65507 over IPv4). A datagram
 * larger than the buffer is cut without a word, and so is one over 65507
 * bytes when receive() is given no buffer of ours. */
const BUFFER_SIZE = 65536;

/** The sheet's `while True: recvfrom; sendto`, until the socket is closed.
 * (`for await (const [data, peer] of socket)` would end for good on the
 * first error, and reads into a 65507-byte buffer of its own.) */
async function echoLoop(socket: Deno.DatagramConn): Promise<void> {
  const buffer = new Uint8Array(BUFFER_SIZE);
  const ownPort = (socket.addr as Deno.NetAddr).port;
  for (;;) {
    let datagram: Uint8Array;
    let peer: Deno.Addr;
    try {
      // datagram is a view into buffer, echoed before the next receive().
      [datagram, peer] = await socket.receive(buffer);
    } catch (err) {
      if (isClosed(err)) return; // closed: shutdown
      await receiveFailed(err);
      continue;
    }
    // THE line that makes this loop answer one datagram at a time: it waits
    // for this echo to be sent before calling receive() again. Meanwhile
    // the kernel queues the next datagrams in the socket's receive buffer;
    // when that is full, it drops them, which UDP allows.
    await echoDatagram(socket, datagram, peer as Deno.NetAddr, ownPort);
  }
}

/** `dropped`: datagrams received but not echoed (loop guard, failed send). */
const stats = { datagrams: 0, bytes: 0, dropped: 0 };

/** Sends one datagram back to its sender, unless the loop guard refuses it.
 * A failed send loses this datagram only: UDP promises nothing. */
async function echoDatagram(
  socket: Deno.DatagramConn,
  datagram: Uint8Array,
  peer: Deno.NetAddr,
  ownPort: number,
): Promise<void> {
  const refusal = loopGuard(peer.port, ownPort, allowAnyPort);
  if (refusal) return dropped(MSG.dropped(formatAddress(peer), refusal));
  try {
    // To the exact address and port it came from: the sheet's sendto(data,
    // addr). An IPv4 peer of the dual-stack socket is "::ffff:a.b.c.d".
    await socket.send(datagram, peer);
  } catch (err) {
    if (isClosed(err)) return dropped(""); // shutdown, mid-send: no line
    const why = MSG.cannotSend(errorMessage(err));
    return dropped(MSG.dropped(formatAddress(peer), why));
  }
  stats.datagrams++;
  stats.bytes += datagram.length;
  log(MSG.echoed(datagram.length, peer));
}

// ---------------------------------------------------------------------------
// The loop guard: no reflection, no ping-pong
//
// An echo server answers anyone, even a forged sender: a datagram "from"
// another UDP service (DNS on 53, another echo on 7 or on our port) makes
// the two answer each other for ever, or turns us into a reflector aimed at
// it. So, as OpenBSD's inetd and xinetd do, a datagram from a source port
// below 1024 or from our own port is dropped, with a line. Clients' ports
// are far above (Linux picks them from 32768 up).

const FIRST_UNPRIVILEGED_PORT = 1024;
let allowAnyPort = false;

/** Why the loop guard refuses a datagram from this source port, or "". */
export function loopGuard(port: number, ownPort: number, allowAny = false) {
  if (allowAny) return "";
  if (port < FIRST_UNPRIVILEGED_PORT) return MSG.guardLow();
  return port === ownPort ? MSG.guardOwn() : "";
}

function dropped(line: string): void {
  stats.dropped++;
  if (line && !quiet) console.error(`${prefix()}${line}`);
}

// ---------------------------------------------------------------------------

async function main(args: string[]): Promise<number> {
  let options: Options | null;
  try {
    options = parseOptions(takeCommonArgs(args));
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    console.error(`${prefix()}${err.message}\n${usage()}`);
    return 2;
  }
  if (options === null) {
    console.log(usage());
    return 0;
  }
  ({ quiet, allowAnyPort } = options);
  // Without --unstable-net, Deno.listenDatagram simply does not exist (and
  // `deno check` does not notice): say what to do instead of a TypeError.
  if (typeof Deno.listenDatagram !== "function") {
    console.error(`${prefix()}${MSG.missingUnstableNet()}`);
    return 1;
  }
  let listeners: Deno.DatagramConn[];
  try {
    if (!netPermission()) throw new Deno.errors.NotCapable();
    listeners = listen(options);
  } catch (err) {
    console.error(`${prefix()}${describeListenError(err, options)}`);
    return 1;
  }
  const shutdown = installShutdown(listeners);
  announce(MSG.listening(listeners));

  await Promise.all(listeners.map(echoLoop)); // one loop per socket

  announce(MSG.stopped(shutdown.signal, stats));
  return 0;
}

// ===========================================================================
// The plumbing: options, output, listening, shutdown.
// ===========================================================================

/** After a failed receive(), this long a pause before the next: a lasting
 * error must not spin the CPU. */
const RECEIVE_RETRY_MS = 1000;

/** Says why receive() failed, then pauses. Not for ConnectionReset: on
 * Windows an echo sent to a closed port comes back as ICMP "port
 * unreachable", failing the next receive(): a peer vanished, nothing to say. */
async function receiveFailed(err: unknown): Promise<void> {
  if (err instanceof Deno.errors.ConnectionReset) return;
  console.error(`${prefix()}${MSG.cannotReceive(errorMessage(err))}`);
  await new Promise((resolve) => setTimeout(resolve, RECEIVE_RETRY_MS));
}

/** How to start this program: the `deno run` line, or inside a binary made
 * by `deno compile`, the binary's own name. */
function howToRun(): string {
  if (!Deno.build.standalone) return `deno run -N --unstable-net ${PROGRAM}.ts`;
  return Deno.execPath().replace(/^.*[\\/]/, "");
}

export type Options = NonNullable<ReturnType<typeof parseOptions>>;

/** Parses the command line (after takeCommonArgs); null for --help. */
export function parseOptions(args: string[]) {
  let values;
  try {
    ({ values } = parseArgs({
      args,
      options: {
        port: { type: "string", default: String(DEFAULT_PORT) },
        host: { type: "string", default: DEFAULT_HOST },
        quiet: { type: "boolean", default: false },
        "allow-any-port": { type: "boolean", default: false },
        help: { type: "boolean", short: "h", default: false },
      },
    }));
  } catch (err) {
    throw new UsageError(describeArgsError(err));
  }
  if (values.help) return null;
  const { host, quiet } = values;
  const port = parsePort(values.port);
  return { host, port, quiet, allowAnyPort: values["allow-any-port"] };
}

let quiet = false;

/** Per-datagram lines, silenced by --quiet. */
function log(line: string): void {
  if (!quiet) console.log(`${prefix()}${line}`);
}

/** Lines that always appear: the ready line and the summary. */
function announce(line: string): void {
  console.log(`${prefix()}${line}`);
}

/** Opens the listening socket(s). With the default host, one socket on "::"
 * receives IPv4 and IPv6 (Linux and macOS are dual-stack by default). Where
 * "::" is IPv6-only (Windows, or Linux with net.ipv6.bindv6only=1), a second
 * socket on 0.0.0.0 serves IPv4 on the same port; where IPv6 is missing
 * altogether, 0.0.0.0 alone serves. */
function listen({ host, port }: Options): Deno.DatagramConn[] {
  const on = (hostname: string, port: number) =>
    Deno.listenDatagram({ hostname, port, transport: "udp" });
  let first: Deno.DatagramConn;
  try {
    first = Deno.listenDatagram({ hostname: host, port, transport: "udp" });
  } catch (err) {
    const noIPv6 = err instanceof Deno.errors.AddrNotAvailable ||
      /address family not supported/i.test(String(err));
    if (host !== DEFAULT_HOST || !noIPv6) throw err;
    return [on("0.0.0.0", port)];
  }
  if (host !== DEFAULT_HOST) return [first];
  try {
    // On a dual-stack system "::" already holds the IPv4 port too, so this
    // fails with AddrInUse, which is the answer we hope for.
    return [first, on("0.0.0.0", (first.addr as Deno.NetAddr).port)];
  } catch (err) {
    if (err instanceof Deno.errors.AddrInUse) return [first];
    first.close();
    throw err;
  }
}

/** Started without -N, Deno asks at each new address: the socket's own,
 * the probe's, then every peer's at the first echo to it. Ask once, for the
 * network as a whole: one prompt, and whatever the answer, a working server
 * or the one-line message. With -N this asks nothing. */
function netPermission(): boolean {
  const net = { name: "net" } as const;
  if (Deno.permissions.querySync(net).state === "granted") return true;
  return Deno.permissions.requestSync(net).state === "granted";
}

/** Turns a failure to listen into one line telling the user what to do. */
function describeListenError(err: unknown, { host, port }: Options): string {
  if (err instanceof Deno.errors.NotCapable) return MSG.noPermission();
  const where = `${host.includes(":") ? `[${host}]` : host}:${port}`;
  const why = err instanceof Deno.errors.AddrInUse
    ? MSG.addrInUse()
    : err instanceof Deno.errors.PermissionDenied
    ? MSG.lowPort()
    : err instanceof Deno.errors.AddrNotAvailable
    ? MSG.noSuchAddr()
    : MSG.orUnknownHost(errorMessage(err));
  return MSG.cannotListen(where, why);
}

/** The socket was closed under us: that is how shutdown ends the loop (a
 * pending receive() then fails with Interrupted). */
function isClosed(err: unknown): boolean {
  return err instanceof Deno.errors.BadResource ||
    err instanceof Deno.errors.Interrupted;
}

/** On Ctrl-C (SIGINT) or SIGTERM: close the sockets, so the receive loops
 * end; main() then prints the summary. Installed before the ready line: a
 * parent that signals as soon as it reads that line finds it in place. */
function installShutdown(listeners: Deno.DatagramConn[]): { signal: string } {
  const state = { signal: "" };
  const stop = (signal: string) => {
    if (state.signal) return; // a second Ctrl-C changes nothing
    state.signal = signal;
    for (const listener of listeners) closeQuietly(listener);
  };
  Deno.addSignalListener("SIGINT", () => stop("SIGINT"));
  // Windows has no SIGTERM; Ctrl-C is its only signal here.
  if (Deno.build.os !== "windows") {
    Deno.addSignalListener("SIGTERM", () => stop("SIGTERM"));
  }
  return state;
}

// ===========================================================================
// Messages: every line this program prints, in English and in French.
// ===========================================================================

// deno-fmt-ignore
const MSG = {
  listening(listeners: Deno.DatagramConn[]): string {
    // "[::]:7777 (IPv4 and IPv6)" when one dual-stack socket serves both.
    const where = listeners.map((l) => formatAddress(l.addr)).join(say(" and ", " et "));
    const both = (listeners[0].addr as Deno.NetAddr).hostname === "::" && !listeners[1];
    const dual = both ? say(" (IPv4 and IPv6)", " (IPv4 et IPv6)") : "";
    return say(`listening on ${where}${dual}`, `à l'écoute sur ${where}${dual}`);
  },
  bytes: (count: number) => plural(count, "byte", "octet"),
  echoed: (count: number, peer: Deno.Addr) => say(
    `echoed ${MSG.bytes(count)} to ${formatAddress(peer)}`,
    `écho de ${MSG.bytes(count)} vers ${formatAddress(peer)}`),
  dropped: (from: string, why: string) => say(
    `dropped a datagram from ${from}: ${why}`,
    `datagramme de ${from} écarté\u00a0: ${why}`),
  guardLow: () => say(
    `source port below ${FIRST_UNPRIVILEGED_PORT} (loop guard; --allow-any-port lifts it)`,
    `port source inférieur à ${FIRST_UNPRIVILEGED_PORT} (garde anti-boucle\u00a0; --allow-any-port la lève)`),
  guardOwn: () => say(
    "source port is this server's own (loop guard; --allow-any-port lifts it)",
    "port source égal à celui de ce serveur (garde anti-boucle\u00a0; --allow-any-port la lève)"),
  cannotSend: (why: string) => say(`cannot send the echo: ${why}`, `écho impossible\u00a0: ${why}`),
  cannotReceive: (why: string) => say(
    `cannot receive datagrams: ${why}; retrying`,
    `réception impossible\u00a0: ${why}\u00a0; nouvel essai`),
  stopped: (signal: string, { datagrams, bytes, dropped }: typeof stats) => say(
    `stopped by ${signal}: ${plural(datagrams, "datagram")}, ${MSG.bytes(bytes)} echoed, ${dropped} dropped`,
    `arrêté par ${signal}\u00a0: ${plural(datagrams, "datagramme")} et ${MSG.bytes(bytes)} renvoyés, ${plural(dropped, "écarté")}`),
  missingUnstableNet: () => say(
    `UDP needs the --unstable-net flag: run it as: deno run -N --unstable-net ${PROGRAM}.ts`,
    `UDP demande l'option --unstable-net\u00a0; lancez-le ainsi\u00a0: deno run -N --unstable-net ${PROGRAM}.ts`),
  noPermission: () => say(
    `Network permission missing: run it as: ${howToRun()}`,
    `Permission réseau manquante\u00a0; lancez-le ainsi\u00a0: ${howToRun()}`),
  cannotListen: (where: string, why: string) => say(
    `Cannot listen on ${where}: ${why}`,
    `Impossible d'écouter sur ${where}\u00a0: ${why}`),
  addrInUse: () => say(
    "address already in use; stop the other server (see: ss -ulnp) or choose another --port",
    "adresse déjà utilisée\u00a0; arrêtez l'autre serveur (voir\u00a0: ss -ulnp) ou choisissez un autre --port"),
  lowPort: () => say(
    `permission denied; ports below 1024 need root, choose --port ${DEFAULT_PORT}`,
    `permission refusée\u00a0; les ports sous 1024 sont réservés à root, choisissez --port ${DEFAULT_PORT}`),
  noSuchAddr: () => say(
    "this machine has no such address; check --host",
    "cette machine n'a pas cette adresse\u00a0; vérifiez --host"),
  orUnknownHost: (why: string) => /^failed to lookup address/.test(why) ? say(why, "hôte inconnu\u00a0; vérifiez --host") : why,
};

function usage(): string {
  return say(
    `Usage: ${howToRun()} [options]

UDP echo server: sends every datagram back, whole, to where it came from.

Options:
  --port N     port to listen on, 0 lets the system choose (default ${DEFAULT_PORT})
  --host H     address to listen on (default ${DEFAULT_HOST}: IPv4 and IPv6)
  --quiet      no line per datagram (the ready line and summary remain)
  --allow-any-port  no loop guard: also echo datagrams from source ports
               below ${FIRST_UNPRIVILEGED_PORT} (system services) and from this server's own port
  --lang L     fr or en (default: the system's language)
  -h, --help   show this help and exit

Try it: nc -u localhost ${DEFAULT_PORT}`,
    `Utilisation\u00a0: ${howToRun()} [options]

Serveur d'écho UDP\u00a0: renvoie chaque datagramme, entier, d'où il vient.

Options\u00a0:
  --port N     port d'écoute, 0 laisse le système choisir (défaut ${DEFAULT_PORT})
  --host H     adresse d'écoute (défaut ${DEFAULT_HOST}\u00a0: IPv4 et IPv6)
  --quiet      aucune ligne par datagramme (restent l'écoute et le bilan)
  --allow-any-port  sans garde anti-boucle\u00a0: renvoyer aussi les datagrammes
               des ports sous ${FIRST_UNPRIVILEGED_PORT} (services système) et du port du serveur
  --lang L     fr ou en (défaut\u00a0: la langue du système)
  -h, --help   afficher cette aide et quitter

Essayez\u00a0: nc -u localhost ${DEFAULT_PORT}`,
  );
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
