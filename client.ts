#!/usr/bin/env -S deno run -N
/**
 * # client.ts — line client for the echo and OK servers, over TCP or UDP
 *
 * Reads lines from the keyboard (with a `> ` prompt) or from a pipe, sends
 * each one to the server and prints the server's whole reply before it
 * reads the next line. It is the other end of every server here: the echo
 * servers (tcp_echo.ts, select_echo.ts, worker_echo.ts, udp_echo.ts with
 * `--udp`), ok_server.ts (`--port 12800`) and a plain `nc -l 7777`.
 *
 * Concurrency model: one conversation, so one plain loop: read a line, send
 * it, wait for the reply. The socket is read all the time meanwhile (the
 * Replies pump), so a reply is never stuck behind our own sending.
 *
 * Sheets: TP5b "Socket Serveur" (seeds/000), §1.3 "Client Echo" (stops on
 * an empty line) and "Python – les sockets" (seeds/001), its client (`> `
 * prompt, stops after the reply to `fin`). With `--no-newline` it talks
 * like sheet 001's own client, to sheet 001's own servers: each line is sent
 * without its newline (`send(msg.encode())`) and its answer is one read
 * (`recv(1024)`), so a reply with no newline (`b"OK"`) needs no wait.
 *
 * Sheet (Python)                                  ↔ this file
 * `s = socket(AF_INET, SOCK_STREAM)` + `s.connect((host, port))`
 *                                                 ↔ `conn = await Deno.connect({ hostname, port })`
 * `line = sys.stdin.readline()` / `input("> ")`   ↔ `line = await lines.next()` (LineReader; the `> ` prompt)
 * `s.send(line)`                                  ↔ `await writeAll(conn, withNewline(line))`
 * `s.recv(1024)` until the reply is whole         ↔ `conn.read()` in Replies; `await replies.reply()`
 * empty line → `s.close()` (sheet 000)            ↔ `if (line.length === 0) return stopped("empty line")`
 * `while msg_a_envoyer != b"fin"` (sheet 001)     ↔ `if (isStopWord(line))` after the reply (STOP_WORD)
 * `send(msg.encode())`, no newline (sheet 001)    ↔ `--no-newline`: the line alone, one read per answer
 *
 * @run deno run -N client.ts
 * Try it: `deno run -N tcp_echo.ts` in one terminal, then this in a second
 * one and type a few lines; `printf 'a\nb\n' | deno run -N client.ts` pipes.
 * Or run it as a program: `chmod +x client.ts && ./client.ts`.
 * Siblings: tcp_echo.ts, select_echo.ts, worker_echo.ts, udp_echo.ts,
 * ok_server.ts.
 *
 * Permissions: `-N` (network) only: it connects to the server. `--udp` also
 * needs `--unstable-net` (Deno's UDP API is still unstable), which the
 * deno.json of this project turns on for every script next to it.
 *
 * What counts as "the whole reply": the client cannot know how long a reply
 * will be, and TCP may deliver it in any number of pieces. Every server here
 * answers a line with a line (the echo of it, or `OK\n`), so a reply is
 * complete when the bytes received since the line was sent end with a
 * newline. A server whose replies have no newline (the sheet's own Python
 * server sends `b"OK"`, a person typing into `nc -l` without Enter) would
 * make us wait for ever, so such a reply also ends after REPLY_QUIET_MS of
 * silence. Before its first byte, a reply is awaited as long as it takes: a
 * sequential server busy with another client is slow, not gone.
 * With `--no-newline`, as in sheet 001's client, the first read is the
 * answer: a reply that TCP splits in two shows its rest after the next line,
 * exactly as the sheet's `recv(1024)` would. Over UDP, `--no-newline` sends
 * the line alone in its datagram (a datagram is its own frame) and the
 * answer is one datagram, as always over UDP.
 *
 * Output: stdout carries the server's bytes exactly as they arrive, never
 * decoded (a reply that is not valid UTF-8 passes through unchanged; the
 * terminal shows what it can). Everything else (the prompt, "connected",
 * why it stopped, errors) goes to stderr, each line starting with
 * "client: ", so `client.ts < in.txt > out.txt` keeps only the replies.
 *
 * Exit codes: 0 when it stopped by one of the sheets' rules (empty line,
 * reply to `fin`, end of input); 1 when the server could not be reached,
 * closed or reset the connection, or (UDP) never answered, or a line was
 * too large for one datagram; 2 for a mistake in the options.
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
/** Read size for the socket and for stdin. A reply is printed as it
 * arrives, so this bounds nothing but the size of one step. */
const BUFFER_SIZE = 64 * 1024;
/** The sheet-001 word that ends the conversation, once answered. */
const STOP_WORD = "fin";

/** Sheet 000 §1.3 and sheet 001's client: connect, then read a line, send
 * it, print the whole reply, until a stop rule says enough. */
async function talkTcp(
  options: Options,
  lines: LineReader,
  interactive: boolean,
): Promise<number> {
  let conn: Deno.TcpConn;
  try {
    conn = await Deno.connect({ hostname: options.host, port: options.port });
  } catch (err) {
    warn(describeConnectError(err, options));
    return 1;
  }
  try {
    // Nagle's algorithm would hold back the last piece of a long line until
    // the server acknowledges the previous one: a line should leave at once.
    conn.setNoDelay(true);
    const replies = new Replies(conn);
    warn(
      `connected to ${formatAddress(conn.remoteAddr)}` +
        (interactive ? " (an empty line or Ctrl-D quits)" : ""),
    );
    showPrompt(interactive);
    for (;;) {
      // Wait for the next line, or for the server to leave meanwhile: a
      // person at the prompt learns at once that the server is gone.
      const line = await Promise.race([lines.next(), replies.over]);
      if (line === undefined || replies.gone) {
        warn(replies.gone);
        return 1;
      }
      if (line === null) return stopped("end of input");
      // Sheet 000: an empty line ends the conversation; it is not sent
      // (with --no-newline too: sending no bytes sends nothing, and the
      // sheet's client would then wait for ever for an answer).
      if (line.length === 0) return stopped("empty line");

      // --no-newline sends the line as sheet 001's `send(msg.encode())`
      // does; otherwise the newline is the message's frame.
      replies.expectReply();
      try {
        await writeAll(conn, options.noNewline ? line : withNewline(line));
      } catch (err) {
        // The reader usually knows best why (a close seen before our
        // write's reset): give it a moment to say so, then one line.
        await Promise.race([replies.over, sleep(100)]);
        warn(replies.gone || describeDisconnect(err));
        return 1;
      }
      // THE line that makes this a request/reply client: nothing more is
      // read from stdin until the whole reply has been printed.
      const end = await replies.reply(options.noNewline);
      if (end === "gone") {
        warn(replies.gone);
        return 1;
      }
      // Sheet 001: after the server has answered "fin", we stop too.
      if (isStopWord(line)) return stopped(`reply to ${STOP_WORD}`);
      showPrompt(interactive, !replies.endsLine);
    }
  } finally {
    closeQuietly(conn);
  }
}

/** The normal ends, all exit 0. */
function stopped(reason: string): number {
  warn(`stopped: ${reason}`);
  return 0;
}

/** The bytes to send for a line: the line and its newline. */
export function withNewline(line: Uint8Array): Uint8Array {
  return concat([line, Uint8Array.of(NEWLINE)]);
}

/** Sheet 001's stop rule: the line is exactly `fin` ("fin " or "Fin" is
 * just another message). */
export function isStopWord(line: Uint8Array): boolean {
  return new TextDecoder().decode(line) === STOP_WORD;
}

// ---------------------------------------------------------------------------
// main

async function main(args: string[]): Promise<number> {
  let options: Options | null;
  try {
    options = parseOptions(args);
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    warn(err.message);
    console.error(USAGE);
    return 2;
  }
  if (options === null) {
    console.log(USAGE);
    return 0;
  }
  // A person at a terminal gets a prompt; a pipe gets none, and otherwise
  // the very same behaviour.
  const interactive = Deno.stdin.isTerminal();
  const lines = new LineReader();
  return options.udp
    ? await talkUdp(options, lines, interactive)
    : await talkTcp(options, lines, interactive);
}

// ===========================================================================
// Beyond the sheet
// ===========================================================================

// ---------------------------------------------------------------------------
// Reply assembly: a reply ends with a newline, or with silence

/** A reply that does not end with a newline is complete after this much
 * silence once it has started. Long enough that a long echo arriving in
 * pieces on a busy machine is not cut, short enough for a person. */
const REPLY_QUIET_MS = 1000;

/** How a wait for a reply ended. */
export type ReplyEnd = "line" | "quiet" | "read" | "gone";

/** Reads the connection all the time, from connect to exit, and writes
 * every byte to stdout as soon as it arrives. Reading and sending at once
 * matters: a client that sent a whole 1 MiB line before reading anything
 * would deadlock with an echo server, both sides blocked on full buffers.
 * Reading all the time also notices a server that goes away while the
 * user is still typing. */
class Replies {
  /** Bytes received since the last line was sent. */
  received = 0;
  /** Why the connection is over ("" while it is open). */
  gone = "";
  /** Resolves once the connection is over. */
  readonly over: Promise<void>;
  #lastByte = -1;
  #wakers = new Set<() => void>();

  constructor(conn: Deno.TcpConn) {
    this.over = this.#pump(conn);
  }

  async #pump(conn: Deno.TcpConn): Promise<void> {
    const buffer = new Uint8Array(BUFFER_SIZE);
    for (;;) {
      let n: number | null;
      try {
        n = await conn.read(buffer);
      } catch (err) {
        this.gone = describeDisconnect(err);
        break;
      }
      if (n === null) {
        this.gone = "the server closed the connection";
        break;
      }
      try {
        // Awaiting stdout before reading more keeps memory bounded when
        // stdout is slower than the network.
        await writeAll(Deno.stdout, buffer.subarray(0, n));
      } catch (err) {
        this.gone = `cannot print the reply: ${errorMessage(err)}`;
        break;
      }
      this.received += n;
      this.#lastByte = buffer[n - 1];
      this.#wake();
    }
    this.#wake();
  }

  /** Forget what came before: a new line is about to be sent. */
  expectReply(): void {
    this.received = 0;
    this.#lastByte = -1;
  }

  /** True when the last byte printed was a newline. */
  get endsLine(): boolean {
    return this.#lastByte === NEWLINE;
  }

  /** Waits until the reply is complete: it ends with a newline ("line"), or
   * it started and then REPLY_QUIET_MS passed without a byte ("quiet"), or
   * the connection is over ("gone"). With `oneRead` (--no-newline), the
   * first bytes that arrive are the whole reply ("read"), as one
   * `recv(1024)` is in sheet 001's client. */
  async reply(oneRead = false): Promise<ReplyEnd> {
    for (;;) {
      const end = replyEnd(
        this.received,
        this.#lastByte,
        this.gone !== "",
        oneRead,
      );
      if (end !== null) return end;
      const before = this.received;
      const changed = await this.#change(before > 0 ? REPLY_QUIET_MS : null);
      if (!changed && this.received === before) return "quiet";
    }
  }

  /** Resolves true at the next byte or end, false after `ms` (never, when
   * null) without either. */
  #change(ms: number | null): Promise<boolean> {
    return new Promise((resolve) => {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const wake = () => {
        clearTimeout(timer);
        this.#wakers.delete(wake);
        resolve(true);
      };
      this.#wakers.add(wake);
      if (ms !== null) {
        timer = setTimeout(() => {
          this.#wakers.delete(wake);
          resolve(false);
        }, ms);
      }
    });
  }

  #wake(): void {
    for (const wake of [...this.#wakers]) wake();
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
  if (gone) return "gone";
  return null;
}

/** One line saying how the server went away. */
export function describeDisconnect(err: unknown): string {
  if (err instanceof Deno.errors.ConnectionReset) {
    return "the server reset the connection";
  }
  if (err instanceof Deno.errors.BrokenPipe) {
    return "the server closed the connection";
  }
  return `the connection failed: ${errorMessage(err)}`;
}

// ---------------------------------------------------------------------------
// Lines as bytes: the sheet's readline(), without decoding

/** Reads stdin line by line with Deno.stdin.read(), which behaves the same
 * piped and on a terminal (`prompt()` returns null when piped, and
 * node:readline loses piped lines). A line is returned without its "\n" or
 * "\r\n"; a last line without a newline still counts. Lines are bytes: what
 * was typed is sent as it is, whatever its encoding. */
export class LineReader {
  #source: { read(p: Uint8Array): Promise<number | null> };
  #buffer = new Uint8Array(BUFFER_SIZE);
  /** Pieces of the line being read. */
  #pieces: Uint8Array[] = [];
  /** Bytes read after the last complete line. */
  #rest: Uint8Array = new Uint8Array(0);
  #ended = false;

  /** Reads from `source`: stdin unless a test gives another. */
  constructor(
    source: { read(p: Uint8Array): Promise<number | null> } = Deno.stdin,
  ) {
    this.#source = source;
  }

  /** The next line, or null at the end of input. */
  async next(): Promise<Uint8Array | null> {
    for (;;) {
      const split = splitLine(this.#rest);
      if (split !== null) {
        const [head, rest] = split;
        const line = concat([...this.#pieces, head]);
        this.#pieces = [];
        this.#rest = rest;
        return line.at(-1) === RETURN ? line.subarray(0, -1) : line;
      }
      if (this.#rest.length > 0) this.#pieces.push(this.#rest);
      this.#rest = new Uint8Array(0);
      if (this.#ended) {
        if (this.#pieces.length === 0) return null;
        const line = concat(this.#pieces);
        this.#pieces = [];
        return line;
      }
      const n = await this.#source.read(this.#buffer);
      if (n === null) this.#ended = true;
      else this.#rest = this.#buffer.slice(0, n); // a copy: buffer is reused
    }
  }
}

/** The bytes before the first newline and those after it; null when there
 * is no newline yet. A "\r" before the newline is the reader's to drop,
 * since it may end a piece read earlier. */
export function splitLine(
  bytes: Uint8Array,
): [Uint8Array, Uint8Array] | null {
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

/** UDP: datagrams can be lost, so a line is sent again when no reply came
 * within UDP_TIMEOUT_MS, UDP_TRIES times in all before giving up. */
const UDP_TIMEOUT_MS = 1000;
const UDP_TRIES = 3;
/** UDP: the largest payload of one datagram: 65535 minus the 8-byte UDP
 * header, minus the 20-byte IPv4 header; IPv6 does not count its 40-byte
 * header in the 65535. A larger line cannot be sent whole, so it is refused
 * rather than cut. */
const UDP_MAX_PAYLOAD_IPV4 = 65507;
const UDP_MAX_PAYLOAD_IPV6 = 65527;

/** Receives datagrams with a time limit. Deno cannot cancel a receive(), so
 * one that timed out is kept and awaited again next time instead of
 * starting a second one. */
class DatagramReceiver {
  #socket: Deno.DatagramConn;
  /** Big enough for any UDP payload: a smaller buffer would silently cut a
   * datagram short. */
  #buffer = new Uint8Array(65536);
  #pending: Promise<[Uint8Array, Deno.Addr]> | null = null;

  constructor(socket: Deno.DatagramConn) {
    this.#socket = socket;
  }

  /** The next datagram from `from`, or null after `ms` without one. */
  async receiveFrom(
    from: Deno.NetAddr,
    ms: number,
  ): Promise<Uint8Array | null> {
    const deadline = Date.now() + ms;
    for (;;) {
      const left = deadline - Date.now();
      if (left <= 0) return null;
      if (this.#pending === null) {
        this.#pending = this.#socket.receive(this.#buffer);
        // Marked as handled: closing the socket at exit rejects it.
        this.#pending.catch(() => {});
      }
      let timer: ReturnType<typeof setTimeout> | undefined;
      const timeout = new Promise<null>((resolve) => {
        timer = setTimeout(() => resolve(null), left);
      });
      const got = await Promise.race([this.#pending, timeout]);
      clearTimeout(timer);
      if (got === null) return null;
      this.#pending = null;
      const [data, addr] = got;
      // Anyone may send to our port; only the server's datagrams count.
      if (formatAddress(addr) === formatAddress(from)) return data.slice();
    }
  }
}

async function talkUdp(
  options: Options,
  lines: LineReader,
  interactive: boolean,
): Promise<number> {
  if (typeof Deno.listenDatagram !== "function") {
    warn(udpNeedsUnstable());
    return 1;
  }
  // Resolve the name ourselves: the socket must be of the server's family,
  // and replies are recognised by the server's address.
  let server: Deno.NetAddr;
  let socket: Deno.DatagramConn;
  try {
    const { address, family } = await lookup(options.host);
    server = { transport: "udp", hostname: address, port: options.port };
    socket = Deno.listenDatagram({
      transport: "udp",
      hostname: family === 6 ? "::" : "0.0.0.0",
      port: 0,
    });
  } catch (err) {
    warn(describeConnectError(err, options));
    return 1;
  }
  const maxPayload = server.hostname.includes(":")
    ? UDP_MAX_PAYLOAD_IPV6
    : UDP_MAX_PAYLOAD_IPV4;
  const receiver = new DatagramReceiver(socket);
  let refused = 0;
  try {
    warn(
      `sending to ${formatAddress(server)} over UDP` +
        (interactive ? " (an empty line or Ctrl-D quits)" : ""),
    );
    showPrompt(interactive);
    for (;;) {
      const line = await lines.next();
      if (line === null) {
        stopped("end of input");
        break;
      }
      if (line.length === 0) {
        stopped("empty line");
        break;
      }
      // A datagram is its own frame: --no-newline just leaves the newline
      // out, and the answer is one datagram either way.
      const datagram = options.noNewline ? line : withNewline(line);
      if (datagram.length > maxPayload) {
        warn(
          `line of ${datagram.length} bytes${
            options.noNewline ? "" : " (newline included)"
          } not sent: one UDP datagram carries at most ${maxPayload} bytes`,
        );
        refused++;
        showPrompt(interactive);
        continue;
      }
      const reply = await exchange(socket, receiver, server, datagram);
      if (reply === null) return 1;
      await writeAll(Deno.stdout, reply);
      if (isStopWord(line)) {
        stopped(`reply to ${STOP_WORD}`);
        break;
      }
      showPrompt(interactive, reply.at(-1) !== NEWLINE);
    }
    if (refused > 0) {
      warn(`${refused} line(s) too large for a datagram were not sent`);
      return 1;
    }
    return 0;
  } catch (err) {
    warn(`cannot print the reply: ${errorMessage(err)}`);
    return 1;
  } finally {
    closeQuietly(socket);
  }
}

/** Sends one datagram and waits for the reply, sending it again when none
 * comes in time: UDP does not resend lost datagrams, the application must.
 * Returns null, having said why, when no reply ever came. */
async function exchange(
  socket: Deno.DatagramConn,
  receiver: DatagramReceiver,
  server: Deno.NetAddr,
  datagram: Uint8Array,
): Promise<Uint8Array | null> {
  for (let attempt = 1; attempt <= UDP_TRIES; attempt++) {
    try {
      await socket.send(datagram, server);
    } catch (err) {
      warn(`cannot send to ${formatAddress(server)}: ${errorMessage(err)}`);
      return null;
    }
    const reply = await receiver.receiveFrom(server, UDP_TIMEOUT_MS);
    if (reply !== null) return reply;
    if (attempt < UDP_TRIES) {
      warn(
        `no reply within ${UDP_TIMEOUT_MS} ms; sending again (try ${
          attempt + 1
        } of ${UDP_TRIES})`,
      );
    }
  }
  // An unconnected UDP socket is never told that nobody listens (PLATFORM):
  // silence is all we get.
  warn(
    `no reply from ${
      formatAddress(server)
    } after ${UDP_TRIES} tries; is the UDP server running?`,
  );
  return null;
}

// ---------------------------------------------------------------------------
// The prompt, for a person at a terminal

/** The `> ` prompt of sheet 001, and the newline that keeps it at the start
 * of a line: only for a person at a terminal, and on stderr too. */
function showPrompt(interactive: boolean, afterUnfinishedLine = false): void {
  if (!interactive) return;
  Deno.stderr.writeSync(encoder.encode(afterUnfinishedLine ? "\n> " : "> "));
}

// ===========================================================================
// Plumbing: options, output, errors
// ===========================================================================

/** How users run it; messages that say how to run it repeat it. */
const RUN_LINE = `deno run -N ${PROGRAM}.ts`;
/** The same for `--udp`, whose API exists only with --unstable-net. */
const UDP_RUN_LINE = `deno run -N --unstable-net ${PROGRAM}.ts --udp`;

/** How to start this program, for messages that say how: the `deno run`
 * line, or inside a binary made by `deno compile`, the binary's own name. */
export function howToRun(): string {
  if (!Deno.build.standalone) return RUN_LINE;
  const path = Deno.execPath();
  return path.slice(
    Math.max(path.lastIndexOf("/"), path.lastIndexOf("\\")) + 1,
  );
}

/** The one line for `--udp` without --unstable-net. A compiled binary's
 * flags were fixed when it was compiled: it must be compiled again. */
function udpNeedsUnstable(): string {
  return Deno.build.standalone
    ? `--udp needs the --unstable-net flag, which ${howToRun()} was compiled without: deno compile -N --unstable-net ${PROGRAM}.ts`
    : `--udp needs the --unstable-net flag: run it as: ${UDP_RUN_LINE}`;
}

const USAGE = `Usage: ${howToRun()} [options]

Line client: sends each line typed (or piped) to the server and prints the
whole reply. Stops on an empty line, after the reply to "${STOP_WORD}", or at the
end of input.

Options:
  --host H     server to talk to (default ${DEFAULT_HOST})
  --port N     its port (default ${DEFAULT_PORT}; ok_server.ts: 12800)
  --udp        talk to a UDP server (udp_echo.ts), one datagram per line;
               needs --unstable-net
  --no-newline talk like sheet 001's client, to its Python servers: send
               each line without its newline, take one read as the answer
               (a reply split in two shows its rest after the next line)
  -h, --help   show this help and exit

Try it: deno run -N tcp_echo.ts, then in a second terminal: ${howToRun()}`;

export interface Options {
  host: string;
  port: number;
  udp: boolean;
  /** Sheet 001's framing: no newline sent, one read per answer. */
  noNewline: boolean;
}

/** A mistake on the command line: reported with the usage, exit code 2. */
export class UsageError extends Error {}

/** Parses the command line; returns null when help was asked for. */
export function parseOptions(args: string[]): Options | null {
  let parsed;
  try {
    parsed = parseArgs({
      args,
      strict: true,
      allowPositionals: false,
      options: {
        port: { type: "string", default: String(DEFAULT_PORT) },
        host: { type: "string", default: DEFAULT_HOST },
        udp: { type: "boolean", default: false },
        "no-newline": { type: "boolean", default: false },
        help: { type: "boolean", short: "h", default: false },
      },
    });
  } catch (err) {
    // parseArgs names the option and explains, sometimes over several
    // lines ("--port -5": did you mean --port=-5?): keep them, on one.
    throw new UsageError(errorMessage(err).replaceAll("\n", " "));
  }
  const { values } = parsed;
  if (values.help) return null;
  return {
    host: values.host,
    port: parsePort(values.port),
    udp: values.udp,
    noNewline: values["no-newline"],
  };
}

/** A port is a whole number from 0 to 65535; "7777abc" or "1e3" is not. */
export function parsePort(text: string): number {
  const port = /^\d{1,5}$/.test(text) ? Number(text) : NaN;
  if (!(port >= 0 && port <= 65535)) {
    throw new UsageError(
      `Invalid port "${text}": expected a number from 0 to 65535`,
    );
  }
  return port;
}

// ---------------------------------------------------------------------------
// Output: the server's bytes on stdout; our own lines on stderr, prefixed by
// the program's name.

const encoder = new TextEncoder();
const NEWLINE = 0x0a;
const RETURN = 0x0d;

/** Our own lines (connected, stopped, problems): stderr, never mixed with
 * the replies on stdout. */
function warn(line: string): void {
  console.error(`${PROGRAM}: ${line}`);
}

export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** "127.0.0.1:7777" or "[::1]:7777". An IPv4 peer of a dual-stack socket
 * appears as "::ffff:127.0.0.1"; we show it as the IPv4 address it is. */
export function formatAddress(addr: Deno.Addr): string {
  if (addr.transport !== "tcp" && addr.transport !== "udp") {
    return addr.transport;
  }
  let host = addr.hostname;
  if (host.startsWith("::ffff:") && host.includes(".")) host = host.slice(7);
  return host.includes(":") ? `[${host}]:${addr.port}` : `${host}:${addr.port}`;
}

/** write() may take only part of the bytes; loop until all are written. */
async function writeAll(
  writer: { write(p: Uint8Array): Promise<number> },
  bytes: Uint8Array,
): Promise<void> {
  while (bytes.length > 0) {
    const n = await writer.write(bytes);
    bytes = bytes.subarray(n);
  }
}

function closeQuietly(resource: { close(): void }): void {
  try {
    resource.close();
  } catch {
    // Already closed (by the server's reset, or by us): nothing to do.
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

// ---------------------------------------------------------------------------
// Errors: one line saying what to do

/** "localhost:7777" or "[::1]:7777", as the user named the server. */
function describeTarget(options: Options): string {
  const { host, port } = options;
  return host.includes(":") ? `[${host}]:${port}` : `${host}:${port}`;
}

/** Turns a failure to reach the server into one line saying what to do. */
export function describeConnectError(err: unknown, options: Options): string {
  const where = describeTarget(options);
  // node:dns (used for UDP) reports its errors as codes: EPERM is Deno's
  // missing permission, ENOTFOUND an unknown name.
  const code = (err as { code?: unknown }).code;
  if (err instanceof Deno.errors.NotCapable || code === "EPERM") {
    return `Network permission missing: run it as: ${howToRun()}`;
  }
  // The connection was made, and the server reset it before Deno had
  // finished setting it up: it is not a failure to connect.
  if (err instanceof Deno.errors.ConnectionReset) {
    return `Connected to ${where}, then the server reset the connection at once`;
  }
  if (err instanceof Deno.errors.ConnectionRefused) {
    return `Cannot connect to ${where}: connection refused; is the server running?`;
  }
  if (
    code === "ENOTFOUND" || /failed to lookup address/.test(errorMessage(err))
  ) {
    return `Cannot connect to ${where}: no such host; check --host`;
  }
  return `Cannot connect to ${where}: ${errorMessage(err)}`;
}

// Last, so that every constant above is initialised before main() runs.

if (import.meta.main) {
  Deno.exit(await main(Deno.args));
}
