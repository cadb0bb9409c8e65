#!/usr/bin/env -S deno run -N
/**
 * # client.ts — line client for the echo and OK servers, over TCP or UDP
 *
 * Reads lines from the keyboard (with a `> ` prompt) or from a pipe, sends
 * each one to the server and prints the server's whole reply before it
 * reads the next line. The other end of every server here: tcp_echo.ts,
 * select_echo.ts, worker_echo.ts, udp_echo.ts (`--udp`), ok_server.ts
 * (`--port 12800`), a plain `nc -l 7777`.
 *
 * Concurrency model: one conversation, so one plain loop; a pump (Replies)
 * reads the socket all the time, so a reply never waits behind our sending.
 *
 * Sheets: TP5b "Socket Serveur" (seeds/000), §1.3 "Client Echo" (stops on
 * an empty line), and "Python – les sockets" (seeds/001), its client (`> `
 * prompt, stops after the reply to `fin`); `--no-newline` talks as it does.
 *
 * Sheet (Python)                               ↔ this file
 * `s.connect((host, port))`                    ↔ `conn = await Deno.connect({ hostname: options.host, port: options.port })`
 * `input("> ")` or `sys.stdin.readline()`      ↔ `showPrompt()` and `lines.next()` (LineReader)
 * `s.send(line)`; `send(msg.encode())` (001)   ↔ `await writeAll(conn, options.noNewline ? line : withNewline(line))`
 * `s.recv(1024)` until the reply is whole      ↔ `conn.read(buffer)` in Replies; `await replies.reply()`
 * `print(msg_recu.decode())` (sheet 001)       ↔ `printReply(buffer.subarray(0, n), this.oneRead)` in Replies
 * empty line → `s.close()` (sheet 000)         ↔ `if (line.length === 0)`
 * `while msg_a_envoyer != b"fin"` (sheet 001)  ↔ `if (isStopWord(line))` after the reply
 *
 * @run deno run -N client.ts
 * Try it: `deno run -N tcp_echo.ts` in one terminal, then this in a second
 * one and type a few lines; `printf 'a\nb\n' | deno run -N client.ts` pipes.
 * Or run it as a program: `chmod +x client.ts && ./client.ts`.
 *
 * Permissions: `-N` only; `--udp` also needs `--unstable-net` (deno.json
 * turns it on). The server's bytes go to stdout as they come, never decoded;
 * our own lines (prompt, errors) to stderr: `client.ts <in.txt >out.txt`
 * keeps only the replies. French: LANG=fr_FR.UTF-8 or `--lang fr`.
 */

import { lookup } from "node:dns/promises";
import { parseArgs } from "node:util";

// ---------------------------------------------------------------------------
// The lesson: the constants it needs, and the talk loop.

const PROGRAM = "client";
/** The name, not an address: it works whichever family the server took. */
const DEFAULT_HOST = "localhost";
/** The sheet's port (ok_server.ts listens on 12800: use --port 12800). */
const DEFAULT_PORT = 7777;
const BUFFER_SIZE = 64 * 1024; // read size, socket and stdin: not a limit
/** The sheet-001 word that ends the conversation, once answered. */
const STOP_WORD = "fin";
const NEWLINE = 0x0a;

/** Sheet 000 §1.3 and sheet 001's client: connect, then read a line, send
 * it, print the whole reply, until a stop rule says enough. */
async function talkTcp(options: Options): Promise<number> {
  let conn: Deno.TcpConn;
  try {
    conn = await Deno.connect({ hostname: options.host, port: options.port });
  } catch (err) {
    return failed(describeConnectError(err, options));
  }
  try {
    // Nagle's algorithm would hold back the last piece of a long line until
    // the server acknowledges the previous one: a line should leave at once.
    conn.setNoDelay(true);
    const replies = new Replies(conn, options.noNewline);
    const lines = new LineReader();
    warn(MSG.connected(formatAddress(conn.remoteAddr)));
    for (;;) {
      showPrompt();
      // The next line, or the server leaving meanwhile: a person at the
      // prompt learns at once that the server is gone.
      const line = await Promise.race([lines.next(), replies.over]);
      if (line === undefined || replies.gone) return failed(replies.gone);
      if (line === null) return stopped(MSG.endOfInput());
      // Sheet 000: an empty line ends the conversation; it is not sent.
      if (line.length === 0) return stopped(MSG.emptyLine());

      // --no-newline sends the line as sheet 001's `send(msg.encode())`
      // does; otherwise the newline is the message's frame.
      replies.expectReply();
      try {
        await writeAll(conn, options.noNewline ? line : withNewline(line));
      } catch (err) {
        // The reader usually knows best why: a moment for it to say so.
        await within(replies.over, 100);
        return failed(replies.gone || describeDisconnect(err));
      }
      // THE line that makes this a request/reply client: nothing more is
      // read from stdin until the whole reply has been printed.
      if (await replies.reply() === "gone") return failed(replies.gone);
      // Sheet 001: after the server has answered "fin", we stop too.
      if (isStopWord(line)) return stopped(MSG.replyToFin());
    }
  } finally {
    closeQuietly(conn);
  }
}

export function withNewline(line: Uint8Array): Uint8Array {
  return concat([line, Uint8Array.of(NEWLINE)]);
}

/** Sheet 001's stop rule: the line is exactly `fin` ("fin " or "Fin" is
 * just another message). */
export function isStopWord(line: Uint8Array): boolean {
  return new TextDecoder().decode(line) === STOP_WORD;
}

/** Prints a reply's bytes on stdout exactly as received. With `oneRead`
 * (--no-newline: each read is one answer) it ends its own line, as sheet
 * 001's `print()` does: a newline is added to an answer that has none. */
async function printReply(bytes: Uint8Array, oneRead: boolean) {
  const ownLine = oneRead && bytes.at(-1) !== NEWLINE;
  await writeAll(Deno.stdout, ownLine ? withNewline(bytes) : bytes);
  lineOpen = !ownLine && bytes.at(-1) !== NEWLINE && Deno.stdout.isTerminal();
}

// ---------------------------------------------------------------------------
// main. Exit codes: 0 once a sheet's rule (or the end of input) stopped it;
// 1 when the server was not reached, went away or (UDP) never answered, or
// a line did not fit in a datagram; 2 for a mistake in the options.

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
  return options.udp ? await talkUdp(options) : await talkTcp(options);
}

function stopped(reason: string): number {
  warn(MSG.stopped(reason));
  return 0;
}

function failed(reason: string): number {
  warn(reason);
  return 1;
}

// ===========================================================================
// Beyond the sheet
// ===========================================================================

// ---------------------------------------------------------------------------
// Reply assembly: a reply ends with a newline, or with silence
//
// TCP may deliver a reply in any number of pieces. Every server here answers
// a line with a line, so a reply is whole once the bytes received since the
// line was sent end with a newline, or (sheet 001's server sends `b"OK"`)
// after REPLY_QUIET_MS of silence; with `--no-newline`, the first read is
// the answer. Before its first byte, a reply is awaited as long as it takes:
// a sequential server busy with another client is slow, not gone.

/** A reply without a final newline is complete after this much silence:
 * long enough not to cut an echo arriving in pieces, short for a person. */
const REPLY_QUIET_MS = 1000;
/** No byte of a reply after this long: the hint, once. */
const HINT_MS = 3000;

export type ReplyEnd = "line" | "quiet" | "read" | "gone"; // how a reply ended

/** Reads the connection all the time, printing each byte as it comes: a
 * client sending a whole 1 MiB line before reading would deadlock with an
 * echo server (both blocked on full buffers); a server leaving is noticed
 * at once, even while the user types. */
class Replies {
  gone = ""; // why the connection is over ("" while it is open)
  readonly over: Promise<void>; // resolves once the connection is over
  #received = 0; // bytes since the last line was sent
  #lastByte = -1;
  #hinted = false;
  #changed = Promise.withResolvers<true>(); // resolved, renewed at each read

  constructor(conn: Deno.TcpConn, readonly oneRead: boolean) {
    this.over = this.#pump(conn);
  }

  async #pump(conn: Deno.TcpConn): Promise<void> {
    const buffer = new Uint8Array(BUFFER_SIZE);
    while (!this.gone) {
      let n: number | null = null;
      try {
        n = await conn.read(buffer);
        if (n === null) this.gone = MSG.serverClosed();
      } catch (err) {
        this.gone = describeDisconnect(err);
      }
      if (n !== null) {
        // Awaiting stdout before reading more bounds memory when stdout is
        // slower than the network.
        await printReply(buffer.subarray(0, n), this.oneRead).catch((err) => {
          this.gone = MSG.cannotPrint(errorMessage(err));
          // We stop reading: a line still being sent would wait forever
          // for an echo server that waits for us. Closing ends that send.
          closeQuietly(conn);
        });
        this.#received += n;
        this.#lastByte = buffer[n - 1];
      }
      this.#changed.resolve(true);
      this.#changed = Promise.withResolvers<true>();
    }
  }

  /** Forget what came before: a new line is about to be sent. */
  expectReply(): void {
    this.#received = 0;
    this.#lastByte = -1;
  }

  /** Waits until replyEnd() says the reply ended, or for REPLY_QUIET_MS of
   * silence after its start ("quiet"). That silence, or no reply in HINT_MS,
   * gets the hint (once) that the server may expect no newline. */
  async reply(): Promise<ReplyEnd> {
    for (;;) {
      const gone = this.gone !== "";
      const end = replyEnd(this.#received, this.#lastByte, gone, this.oneRead);
      if (end !== null) return end;
      const before = this.#received;
      const wait = before > 0 ? REPLY_QUIET_MS : this.oneRead ? null : HINT_MS;
      const changed = await within(this.#changed.promise, wait);
      if (changed || this.#received !== before) continue;
      const hint = before > 0 ? MSG.hintUnframed() : MSG.hintSilent();
      if (!this.#hinted) warn(hint);
      this.#hinted = true;
      if (before > 0) return "quiet";
      await this.#changed.promise;
    }
  }
}

/** The rule of Replies.reply(), pure: how the reply ended so far, or null
 * while it goes on (then only silence can end it). */
export function replyEnd(
  received: number,
  lastByte: number,
  gone: boolean,
  oneRead: boolean,
): ReplyEnd | null {
  if (oneRead && received > 0) return "read";
  // Checked before `gone`: a server that answers and then closes
  // (ok_server.ts after "fin") still gave its whole reply.
  if (received > 0 && lastByte === NEWLINE) return "line";
  return gone ? "gone" : null;
}

/** One line saying how the server went away. */
export function describeDisconnect(err: unknown): string {
  if (err instanceof Deno.errors.ConnectionReset) return MSG.serverReset();
  if (err instanceof Deno.errors.BrokenPipe) return MSG.serverClosed();
  return MSG.connectionFailed(errorMessage(err));
}

// ---------------------------------------------------------------------------
// Lines as bytes: the sheet's readline(), without decoding

/** Reads stdin line by line with Deno.stdin.read(), the same piped and on
 * a terminal (`prompt()` gives null piped; node:readline loses piped lines).
 * A line comes without its "\n" or "\r\n"; an unended last line counts. */
export class LineReader {
  #buffer = new Uint8Array(BUFFER_SIZE);
  #pending: Uint8Array = new Uint8Array(0); // read, not yet a line
  #ended = false;

  constructor(readonly source: Pick<typeof Deno.stdin, "read"> = Deno.stdin) {}

  /** The next line, or null at the end of input. */
  async next(): Promise<Uint8Array | null> {
    const pieces: Uint8Array[] = []; // of a line longer than one read
    for (;;) {
      const split = splitLine(this.#pending);
      if (split !== null) {
        this.#pending = split[1];
        const line = concat([...pieces, split[0]]);
        return line.at(-1) === 0x0d ? line.subarray(0, -1) : line; // "\r"
      }
      pieces.push(this.#pending);
      this.#pending = new Uint8Array(0);
      if (this.#ended) {
        const last = concat(pieces);
        return last.length > 0 ? last : null;
      }
      const n = await this.source.read(this.#buffer);
      if (n === null) this.#ended = true;
      else this.#pending = this.#buffer.slice(0, n); // a copy: buffer is reused
    }
  }
}

/** The bytes before the first newline and those after it; null when there
 * is no newline yet. */
export function splitLine(bytes: Uint8Array): [Uint8Array, Uint8Array] | null {
  const at = bytes.indexOf(NEWLINE);
  return at < 0 ? null : [bytes.subarray(0, at), bytes.subarray(at + 1)];
}

export function concat(chunks: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(chunks.reduce((sum, c) => sum + c.length, 0));
  let at = 0;
  for (const chunk of chunks) {
    out.set(chunk, at);
    at += chunk.length;
  }
  return out;
}

// ---------------------------------------------------------------------------
// UDP: one datagram per line, with a timeout and retries

/** Datagrams get lost: a line is sent again after UDP_TIMEOUT_MS without a
 * reply, UDP_TRIES times in all. */
const UDP_TIMEOUT_MS = 1000;
const UDP_TRIES = 3;
/** The largest payload of one datagram: 65535 minus the 8-byte UDP header
 * (and over IPv4 its 20-byte header). A larger line is refused, not cut. */
const UDP_MAX_PAYLOAD = { 4: 65507, 6: 65527 };

async function talkUdp(options: Options): Promise<number> {
  if (typeof Deno.listenDatagram !== "function") {
    return failed(MSG.udpNeedsUnstable());
  }
  // Without -N, Deno would ask three times (the lookup, our socket, the
  // server's address): ask once, for the network. With -N, nothing.
  if (Deno.permissions.requestSync({ name: "net" }).state !== "granted") {
    return failed(MSG.noPermission());
  }
  // Resolve the name ourselves: the socket must be of the server's family,
  // and replies are recognised by the server's address.
  let server: Deno.NetAddr;
  let socket: Deno.DatagramConn;
  let maxPayload: number;
  try {
    const { address, family } = await lookup(options.host);
    server = { transport: "udp", hostname: address, port: options.port };
    const hostname = family === 6 ? "::" : "0.0.0.0";
    socket = Deno.listenDatagram({ transport: "udp", hostname, port: 0 });
    maxPayload = UDP_MAX_PAYLOAD[family === 6 ? 6 : 4];
  } catch (err) {
    return failed(describeConnectError(err, options));
  }
  const exchange = udpExchange(socket, server);
  const lines = new LineReader();
  let refused = 0;
  const end = (reason: string) =>
    stopped(reason) + (refused > 0 ? failed(MSG.refused(refused)) : 0);
  try {
    warn(MSG.sendingUdp(formatAddress(server)));
    for (;;) {
      showPrompt();
      const line = await lines.next();
      if (line === null) return end(MSG.endOfInput());
      if (line.length === 0) return end(MSG.emptyLine());
      // A datagram is its own frame: --no-newline just leaves the newline
      // out, and the answer is one datagram either way.
      const datagram = options.noNewline ? line : withNewline(line);
      if (datagram.length > maxPayload) {
        warn(MSG.tooLarge(datagram.length, options.noNewline, maxPayload));
        refused++;
        continue;
      }
      const reply = await exchange(datagram);
      if (reply === null) return 1;
      await printReply(reply, options.noNewline);
      if (isStopWord(line)) return end(MSG.replyToFin());
    }
  } catch (err) {
    return failed(MSG.cannotPrint(errorMessage(err)));
  } finally {
    closeQuietly(socket);
  }
}

/** Returns exchange(datagram): sends it and waits for the server's reply,
 * sending it again when none comes in time (UDP does not resend, the
 * application must); null, having said why, when none ever came. */
function udpExchange(socket: Deno.DatagramConn, server: Deno.NetAddr) {
  // Big enough for any UDP payload: a smaller one cuts datagrams silently.
  const buffer = new Uint8Array(65536);
  // Deno cannot cancel a receive(): one that timed out is awaited next time.
  let pending: Promise<[Uint8Array, Deno.Addr]> | null = null;
  return async (datagram: Uint8Array): Promise<Uint8Array | null> => {
    for (let attempt = 1; attempt <= UDP_TRIES; attempt++) {
      try {
        await socket.send(datagram, server);
      } catch (err) {
        warn(MSG.cannotSend(formatAddress(server), errorMessage(err)));
        return null;
      }
      const deadline = Date.now() + UDP_TIMEOUT_MS;
      while (Date.now() < deadline) {
        pending ??= socket.receive(buffer);
        pending.catch(() => {}); // closing the socket at exit rejects it
        const got = await within(pending, deadline - Date.now());
        if (got === null) break;
        pending = null;
        // Anyone may send to our port; only the server's datagrams count.
        if (formatAddress(got[1]) === formatAddress(server)) return got[0];
      }
      if (attempt < UDP_TRIES) warn(MSG.sendingAgain(attempt + 1));
    }
    // An unconnected UDP socket is never told that nobody listens.
    warn(MSG.noUdpReply(formatAddress(server)));
    return null;
  };
}

// ===========================================================================
// Plumbing: options, output, errors
// ===========================================================================

/** How to start this program: the `deno run` line, or inside a binary made
 * by `deno compile`, the binary's own name. */
export function howToRun(): string {
  if (!Deno.build.standalone) return `deno run -N ${PROGRAM}.ts`;
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
        udp: { type: "boolean", default: false },
        "no-newline": { type: "boolean", default: false },
        help: { type: "boolean", short: "h", default: false },
      },
    }));
  } catch (err) {
    throw new UsageError(describeArgsError(err));
  }
  if (values.help) return null;
  const { udp, "no-newline": noNewline } = values;
  const host = values.host.replace(/^\[(.*)\]$/, "$1"); // "[::1]" is ::1
  const port = parsePort(values.port);
  if (port === 0) throw new UsageError(MSG.portZero()); // names no server
  return { host, port, udp, noNewline };
}

/** A person at a terminal gets prompts; a pipe, all the rest the same. */
const interactive = Deno.stdin.isTerminal();
/** The terminal's cursor follows a reply that did not end its line. */
let lineOpen = false;

/** Our own lines, on stderr: never mixed with the replies on stdout. */
function warn(line: string): void {
  const newline = lineOpen && Deno.stderr.isTerminal() ? "\n" : "";
  lineOpen = false;
  console.error(`${newline}${prefix()}${line}`);
}

/** The `> ` prompt of sheet 001 (on stderr), for a person at a terminal. */
function showPrompt(): void {
  if (!interactive) return;
  Deno.stderr.writeSync(new TextEncoder().encode(lineOpen ? "\n> " : "> "));
  lineOpen = false;
}

/** write() may take only part of the bytes; loop until all are written. */
async function writeAll(to: Pick<Deno.Conn, "write">, bytes: Uint8Array) {
  while (bytes.length > 0) bytes = bytes.subarray(await to.write(bytes));
}

/** The promise's value, or null once `ms` have passed (no limit if null). */
async function within<T>(p: Promise<T>, ms: number | null): Promise<T | null> {
  if (ms === null) return await p;
  const timeout = Promise.withResolvers<null>();
  const timer = setTimeout(timeout.resolve, ms, null);
  try {
    return await Promise.race([p, timeout.promise]);
  } finally {
    clearTimeout(timer);
  }
}

/** Turns a failure to reach the server into one line saying what to do. */
export function describeConnectError(err: unknown, options: Options): string {
  const { host, port } = options;
  const where = host.includes(":") ? `[${host}]:${port}` : `${host}:${port}`;
  // node:dns (for UDP) has codes: EPERM, missing permission; ENOTFOUND.
  const code = (err as { code?: unknown }).code;
  if (err instanceof Deno.errors.NotCapable || code === "EPERM") {
    return MSG.noPermission();
  }
  // The server reset the connection while Deno set it up: it connected.
  if (err instanceof Deno.errors.ConnectionReset) return MSG.resetAtOnce(where);
  const why = err instanceof Deno.errors.ConnectionRefused
    ? MSG.refusedConnection()
    : code === "ENOTFOUND" || /failed to lookup address/.test(String(err))
    ? MSG.noSuchHost()
    : errorMessage(err);
  return MSG.cannotConnect(where, why);
}

// ===========================================================================
// Messages: every line this program prints, in English and in French.
// ===========================================================================

// deno-fmt-ignore
const MSG = {
  quits: () => interactive ? say(" (an empty line or Ctrl-D quits)", " (une ligne vide ou Ctrl-D pour finir)") : "",
  connected: (to: string) => say(`connected to ${to}`, `connecté à ${to}`) + MSG.quits(),
  sendingUdp: (to: string) => say(`sending to ${to} over UDP`, `envoi vers ${to} en UDP`) + MSG.quits(),
  stopped: (why: string) => say(`stopped: ${why}`, `arrêt\u00a0: ${why}`),
  endOfInput: () => say("end of input", "fin de l'entrée"),
  portZero: () => say(`Invalid port "0": the server's port is needed, from 1 to 65535`,
    `Port « 0 » invalide\u00a0: il faut le port du serveur, de 1 à 65535`),
  emptyLine: () => say("empty line", "ligne vide"),
  replyToFin: () => say(`reply to ${STOP_WORD}`, `réponse à « ${STOP_WORD} »`),
  serverClosed: () => say("the server closed the connection", "le serveur a fermé la connexion"),
  serverReset: () => say("the server reset the connection", "le serveur a réinitialisé la connexion"),
  connectionFailed: (why: string) => say(`the connection failed: ${why}`, `la connexion a échoué\u00a0: ${why}`),
  cannotPrint: (why: string) => say(`cannot print the reply: ${why}`, `impossible d'afficher la réponse\u00a0: ${why}`),
  hintSilent: () => say(`no reply after ${HINT_MS / 1000} s: the server may be busy with another client, or expect messages without a newline, as sheet 001's servers do (then use --no-newline)`,
    `pas de réponse après ${HINT_MS / 1000} s\u00a0: le serveur est peut-être occupé avec un autre client, ou attend des messages sans saut de ligne, comme ceux de la fiche 001 (utilisez alors --no-newline)`),
  hintUnframed: () => say("the reply has no newline: if the server expects messages without one, as sheet 001's servers do, use --no-newline",
    "la réponse n'a pas de saut de ligne\u00a0: si le serveur attend des messages sans saut de ligne, comme ceux de la fiche 001, utilisez --no-newline"),
  tooLarge: (bytes: number, noNewline: boolean, max: number) => say(`line of ${plural(bytes, "byte")}${noNewline ? "" : " (newline included)"} not sent: one UDP datagram carries at most ${plural(max, "byte")}`,
    `ligne de ${plural(bytes, "octet")}${noNewline ? "" : " (saut de ligne compris)"} non envoyée\u00a0: un datagramme UDP porte au plus ${plural(max, "octet")}`),
  refused: (count: number) => say(`${count} line(s) too large for a datagram were not sent`,
    `lignes trop longues pour un datagramme, non envoyées\u00a0: ${formatCount(count)}`),
  sendingAgain: (attempt: number) => say(`no reply within ${UDP_TIMEOUT_MS} ms; sending again (try ${attempt} of ${UDP_TRIES})`,
    `pas de réponse en ${formatCount(UDP_TIMEOUT_MS)} ms\u00a0; nouvel envoi (essai ${attempt} sur ${UDP_TRIES})`),
  noUdpReply: (from: string) => say(`no reply from ${from} after ${UDP_TRIES} tries; is the UDP server running?`,
    `pas de réponse de ${from} après ${UDP_TRIES} essais\u00a0; le serveur UDP tourne-t-il\u00a0?`),
  cannotSend: (to: string, why: string) => say(`cannot send to ${to}: ${why}`, `envoi vers ${to} impossible\u00a0: ${why}`),
  udpNeedsUnstable: () => say(`--udp needs the --unstable-net flag: run it as: deno run -N --unstable-net ${PROGRAM}.ts --udp`,
    `--udp demande l'option --unstable-net\u00a0; lancez-le ainsi\u00a0: deno run -N --unstable-net ${PROGRAM}.ts --udp`),
  noPermission: () => say(`Network permission missing: run it as: ${howToRun()}`,
    `Permission réseau manquante\u00a0; lancez-le ainsi\u00a0: ${howToRun()}`),
  resetAtOnce: (where: string) => say(`Connected to ${where}, then the server reset the connection at once`,
    `Connecté à ${where}, puis le serveur a aussitôt réinitialisé la connexion`),
  cannotConnect: (where: string, why: string) => say(`Cannot connect to ${where}: ${why}`, `Connexion à ${where} impossible\u00a0: ${why}`),
  refusedConnection: () => say("connection refused; is the server running?", "connexion refusée\u00a0; le serveur tourne-t-il\u00a0?"),
  noSuchHost: () => say("no such host; check --host", "hôte inconnu\u00a0; vérifiez --host"),
};

function usage(): string {
  return say(
    `Usage: ${howToRun()} [options]

Sends each line typed (or piped) to the server and prints its whole reply.
Stops on an empty line, after the reply to "${STOP_WORD}", or at the end of input.

Options:
  --host H      server to talk to (default ${DEFAULT_HOST})
  --port N      its port (default ${DEFAULT_PORT}; ok_server.ts: 12800)
  --udp         talk to a UDP server, one datagram per line
  --no-newline  talk as sheet 001's client does, to its Python servers: send
                each line without its newline, print one read as the answer,
                on its own line (else stdout holds the server's bytes exactly)
  --lang L      fr or en (default: the system's language)
  -h, --help    show this help and exit

Try it: deno run -N tcp_echo.ts, then in a second terminal: ${howToRun()}`,
    `Utilisation\u00a0: ${howToRun()} [options]

Envoie au serveur chaque ligne tapée (ou reçue d'un tube) et affiche toute sa
réponse. S'arrête sur une ligne vide, après la réponse à « ${STOP_WORD} », ou à la
fin de l'entrée.

Options\u00a0:
  --host H      le serveur (défaut ${DEFAULT_HOST})
  --port N      son port (défaut ${DEFAULT_PORT}\u00a0; ok_server.ts\u00a0: 12800)
  --udp         parler à un serveur UDP, un datagramme par ligne
  --no-newline  parler comme le client de la fiche 001 à ses serveurs Python\u00a0:
                chaque ligne envoyée sans son saut de ligne, une lecture prise
                pour réponse, affichée sur sa ligne (sinon la sortie standard
                contient exactement les octets du serveur)
  --lang L      fr ou en (défaut\u00a0: la langue du système)
  -h, --help    afficher cette aide et quitter

Essayez\u00a0: deno run -N tcp_echo.ts, puis dans un second terminal\u00a0: ${howToRun()}`,
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
