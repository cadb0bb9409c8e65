#!/usr/bin/env -S deno run -N
/**
 * # ok_server.ts — the "OK / fin" server: many clients, one thread
 *
 * Prints every message each client sends, with its sender, and answers `OK`
 * to each. ANY client can stop this server by sending `fin`: that is the
 * exercise, not something to leave open on a network. Like select_echo.ts it
 * serves many clients at once from ONE thread: Deno's event loop waits on
 * every socket, as the sheet's `select()` does. `--one-client` makes it the
 * sheet's first, sequential server instead.
 *
 * A message is a line ("\n" or "\r\n") however TCP cuts it, answered `OK\n`.
 * From a client that never sent a newline (the sheet's, which then waits),
 * what came before a 200 ms pause (UNFRAMED_PAUSE_MS) is one, answered `OK`.
 *
 * Sheet: "Python – les sockets" (seeds/001): its "Deuxième programme
 * serveur" (select); `--one-client` is its "Premier programme serveur":
 *   hote = ''; port = 12800         ↔  `DEFAULT_HOST = "::"`, `DEFAULT_PORT = 12800`
 *   connexion_principale.listen(5)  ↔  `BACKLOG = 128`
 *   select.select([…], [], [], 0.05) ↔  Deno's event loop: every pending accept() and read()
 *   connexion.accept(); append(…)   ↔  `conn = await listener.accept()`, then `serveClient(conn);`
 *   msg_recu = client.recv(1024)    ↔  `pending = conn.read(buffer)`, cut into messages
 *   msg_recu.decode() (crashes)     ↔  `decoder.decode(line)`: "�" for bad bytes
 *   print("Reçu {}".format(…))      ↔  `log(`, `printable(message)`
 *   client.send(b"OK")              ↔  `await writeAll(conn, encoder.encode(reply.repeat(replies)))`
 *   if msg_recu == "fin": … False   ↔  `message === STOP_MESSAGE`, `stopServer(`
 *   for client in …: client.close() ↔  `closeAll(listeners)`, at shutdown
 * The bugs the sheet admits are fixed: accents never crash it, an abrupt
 * disconnection removes that client only, messages never run together.
 *
 * @run deno run -N ok_server.ts
 * Try it: `deno run -N client.ts --port 12800` (or `nc localhost 12800`) in
 * two more terminals; type in both, then `fin` in one. The sheet's client.py
 * works too. In French: LANG=fr_FR.UTF-8, or `--lang fr`.
 * Permissions: `-N` (network) only: it listens and talks to clients.
 * Reading order: the lesson (acceptLoop, serveClient), main(), beyond the
 * sheet, the command line, the skeleton the TCP servers share.
 */

import { parseArgs } from "node:util";

const PROGRAM = "ok_server";
/** How users run it; messages that say how to run it repeat it. */
const RUN_LINE = `deno run -N ${PROGRAM}.ts`;
/** The sheet's port. Ports below 1024 are reserved to root. */
const DEFAULT_PORT = 12800;
/** All interfaces, IPv6 and IPv4 on one port. The sheet's `hote = ''` with
 * AF_INET is all IPv4 interfaces; "::" takes IPv6 clients as well. */
const DEFAULT_HOST = "::";

// ===========================================================================
// The lesson: answer every client at once, from one thread
// ===========================================================================

/** The sheet's `listen(5)` limits only the clients waiting for accept(),
 * but a burst of 50 would overflow 5 and retry their handshake a second
 * later. 128 is the classic SOMAXCONN. */
const BACKLOG = 128;
/** The sheet's `recv(1024)`, larger. One buffer PER CLIENT (an idle one
 * holds its own): 4 KiB cost a fast sender throughput, 64 KiB was no faster. */
const BUFFER_SIZE = 16 * 1024;
/** The message that stops the server, compared after its line ending is
 * removed: "fin" and "fin\r\n" stop it, "final" and "fine" do not. */
const STOP_MESSAGE = "fin";
/** The reply to a line is a line; to an unframed message, the sheet's
 * `b"OK"`, which its client reads with one recv(). */
const LINE_REPLY = "OK\n";
const UNFRAMED_REPLY = "OK";

/** Clients served and messages received, for the summary line. */
const stats = { clients: 0, messages: 0 };

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
    if (oneClient) return serveOnlyClient(conn); // beyond: --one-client
    // THE line that lets one thread answer everybody: serveClient() returns
    // at its first `await`, and we are back in accept() while that client's
    // loop waits on its own socket; the event loop wakes whichever socket
    // has bytes: the sheet's select(). tcp_echo.ts (and --one-client) await
    // here. serveClient() never rejects: unawaited, it cannot crash us.
    serveClient(conn);
  }
}

/** The sheet's work for one client: recv(), print each message, send OK;
 * until it leaves, sends "fin" or a line over --max-line. Never rejects:
 * in Deno an unhandled rejection ends the whole process. */
async function serveClient(conn: Deno.TcpConn): Promise<void> {
  const peer = welcome(conn);
  stats.clients++;
  const buffer = new Uint8Array(BUFFER_SIZE);
  const read = pausingReader(conn, buffer);
  const splitter = new MessageSplitter(maxLine);
  let received = 0;
  let ending = SAID.left();
  let sentFin = false;
  try {
    // Deno leaves Nagle's algorithm on; with it, an OK written while the
    // previous one is not yet acknowledged waits up to 40 ms for the
    // client's delayed ACK. Replies should leave at once.
    conn.setNoDelay(true);
    for (;;) {
      // The sheet's recv(): bytes, or null when the client closed its side,
      // or (beyond the sheet) a pause that ends an unframed message.
      const n = await read(splitter.waitingForPause ? UNFRAMED_PAUSE_MS : 0);
      const { messages, tooLong } = n === PAUSED
        ? splitter.pause()
        : n === null
        ? splitter.end()
        : splitter.push(buffer.subarray(0, n));
      let replies = 0;
      for (const message of messages) {
        log(`${peer}${say(": ", "\u00a0: ")}${printable(message)}`);
        stats.messages++;
        received++;
        replies++;
        // Stop at "fin": messages after it in the same read get no OK.
        if (message === STOP_MESSAGE) {
          sentFin = true;
          break;
        }
      }
      // One write carries the OKs of every message of this read. Awaiting
      // it is what bounds memory: a client that sends but never reads fills
      // the kernel buffers, then this await waits and we stop reading from
      // that client. Only its own loop waits: the others go on.
      if (replies > 0) {
        const reply = splitter.lineClient ? LINE_REPLY : UNFRAMED_REPLY;
        await writeAll(conn, encoder.encode(reply.repeat(replies)));
      }
      if (sentFin) {
        ending = TEXT.sentFin();
        break;
      }
      if (tooLong) {
        ending = await refuseLongLine(conn, () => read(0)); // beyond: limit
        break;
      }
      if (n === null) break;
    }
  } catch (err) {
    ending = describeDisconnect(err, peer);
  } finally {
    forget(conn);
    closeQuietly(conn);
  }
  log(`${peer} ${ending} ${TEXT.after(received)}`);
  // Once its OK was handed to the kernel (or the client vanished first):
  // the whole server stops, as on the sheet.
  if (sentFin) stopServer(TEXT.finFrom(peer));
}

const encoder = new TextEncoder();

// ===========================================================================
// main: listen, serve until "fin" or Ctrl-C, print a summary
// ===========================================================================

async function main(args: string[]): Promise<number> {
  const options = parseOptions(args);
  if (typeof options === "number") return options; // --help, or a mistake
  ({ maxLine, oneClient } = options);

  let listeners: Deno.TcpListener[];
  try {
    listeners = listen(options);
  } catch (err) {
    warn(describeListenError(err, options));
    return 1;
  }
  installShutdown(() => {
    closeAll(listeners);
    for (const conn of unserved) closeQuietly(conn);
  });
  announce(SAID.listening(describeListeners(listeners)));

  await Promise.all(listeners.map(acceptLoop));
  // The accept loops are over; wait for the clients' last lines.
  await clientsGone();

  announce(TEXT.stopped(shutdown.reason || SAID.closing()));
  return 0;
}

// ===========================================================================
// Beyond the sheet: messages (lines, or before a pause), printed safely
// ===========================================================================

/** How long a client that never sent a newline stays silent for what it
 * sent to be a message. The sheet's client sends a message, then waits for
 * `OK`; the pieces TCP splits a message into arrive microseconds apart. */
const UNFRAMED_PAUSE_MS = 200;

const PAUSED = "paused"; // what a read brings when the pause came first

/** `read(pauseMs)` resolves with the byte count, null at end of input, or
 * PAUSED when pauseMs > 0 went by with no bytes. A read that loses to the
 * pause stays pending for the next call: no byte is lost. */
function pausingReader(conn: Deno.TcpConn, buffer: Uint8Array) {
  let pending: Promise<number | null> | null = null;
  return async (pauseMs: number) => {
    if (pending === null) {
      pending = conn.read(buffer); // the sheet's recv()
      // Closed after "fin" while this read waits, it fails with nobody to
      // await it; unhandled, that rejection would end the process.
      pending.catch(() => {});
    }
    const result = await (pauseMs > 0 ? orPause(pending, pauseMs) : pending);
    if (result !== PAUSED) pending = null;
    return result;
  };
}

/** `promise`, or PAUSED if it is still pending after `ms`. */
function orPause<T>(promise: Promise<T>, ms: number) {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const pause = new Promise<typeof PAUSED>((resolve) => {
    timer = setTimeout(() => resolve(PAUSED), ms);
  });
  return Promise.race([promise, pause]).finally(() => clearTimeout(timer));
}

/** Messages completed by some input, and whether a line went too long. */
export type Split = { messages: string[]; tooLong: boolean };

/** Cuts one client's byte stream into messages, however TCP splits it.
 * Until the client's first newline, a pause also ends a message. It holds
 * at most maxLine + 1 bytes of an unfinished line (memory stays bounded),
 * and decodes whole messages: "\n" is never inside a UTF-8 character, so a
 * character split across reads is whole again by the end of its line. */
export class MessageSplitter {
  #pieces: Uint8Array[] = [];
  #length = 0;
  #maxLine: number;
  #lineClient = false;

  constructor(maxLine: number) {
    this.#maxLine = maxLine;
  }

  /** True once the client has ended a message with a newline: from then on
   * only newlines end its messages, and its replies are lines. */
  get lineClient(): boolean {
    return this.#lineClient;
  }

  /** True when a pause would end a message: the client never sent a
   * newline and bytes of an unfinished message are held. */
  get waitingForPause(): boolean {
    return !this.#lineClient && this.#length > 0;
  }

  /** The lines completed by `bytes`. */
  push(bytes: Uint8Array): Split {
    const messages: string[] = [];
    let start = 0;
    for (;;) {
      const newline = bytes.indexOf(LF, start);
      if (newline < 0) break;
      this.#lineClient = true;
      const message = this.#finish(bytes.subarray(start, newline));
      if (message === null) return { messages, tooLong: true };
      messages.push(message);
      start = newline + 1;
    }
    if (start < bytes.length) {
      // A copy: `bytes` is the read buffer, which the next read overwrites.
      this.#pieces.push(bytes.slice(start));
      this.#length += bytes.length - start;
    }
    return { messages, tooLong: this.#length > this.#maxLine + 1 };
  }

  /** The client paused: an unframed client's held bytes are a message. */
  pause(): Split {
    return this.waitingForPause ? this.end() : { messages: [], tooLong: false };
  }

  /** At end of input: the unfinished last line, if any, is a message. */
  end(): Split {
    if (this.#length === 0) return { messages: [], tooLong: false };
    const message = this.#finish(new Uint8Array(0));
    return message === null
      ? { messages: [], tooLong: true }
      : { messages: [message], tooLong: false };
  }

  /** Joins the held pieces and `tail` into one message, drops a final
   * "\r", decodes it; null when it is longer than the limit. */
  #finish(tail: Uint8Array): string | null {
    let line = tail;
    if (this.#length > 0) {
      line = new Uint8Array(this.#length + tail.length);
      let at = 0;
      for (const piece of [...this.#pieces, tail]) {
        line.set(piece, at);
        at += piece.length;
      }
      this.#pieces = [];
      this.#length = 0;
    }
    if (line.at(-1) === CR) line = line.subarray(0, -1);
    return line.length > this.#maxLine ? null : decoder.decode(line);
  }
}

const LF = 0x0a; // "\n"
const CR = 0x0d; // "\r"

/** fatal: false turns invalid bytes (Latin-1 "é" is E9, invalid in UTF-8)
 * into "�" instead of throwing, as the sheet's `decode()` does. */
const decoder = new TextDecoder("utf-8", { fatal: false });

/** A message as one safe line for a terminal: control characters but tab
 * as \xNN (an ESC sequence or a lone "\r" could recolour the terminal or
 * hide earlier lines); the rest, accents included, as sent. */
export function printable(message: string): string {
  return message.replace(
    /\p{Cc}/gu,
    (c) =>
      c === "\t" ? c : `\\x${c.charCodeAt(0).toString(16).padStart(2, "0")}`,
  );
}

// ===========================================================================
// Beyond the sheet: a line limit (--max-line), one client only (--one-client)
// ===========================================================================

/** Default longest message, in bytes, line ending not counted: far beyond
 * a typed line, small enough to hold for thousands of clients. */
const DEFAULT_MAX_LINE = 64 * 1024;
/** A bound that could be lifted without limit would bound nothing. */
const MAX_MAX_LINE = 16 * 1024 * 1024;
let maxLine = DEFAULT_MAX_LINE; // set from --max-line by main()

const LINGER_MS = 2000;

/** A line too long: say so, send our FIN, then read and throw away what the
 * client still sends (`read` gives it) until it closes or LINGER_MS pass:
 * closing with unread input sends a reset, which can destroy our error line
 * before it is read (Apache's "lingering close"). Returns how it ended. */
async function refuseLongLine(
  conn: Deno.TcpConn,
  read: () => Promise<unknown>,
): Promise<string> {
  const error = `ERROR line too long (max ${maxLine} bytes)\n`;
  await writeAll(conn, encoder.encode(error));
  await conn.closeWrite();
  const timer = setTimeout(() => closeQuietly(conn), LINGER_MS);
  try {
    while ((await read()) !== null) continue; // what it sends, discarded
  } catch {
    // Closed by the timer or at shutdown, or reset by the client: done.
  } finally {
    clearTimeout(timer);
  }
  return TEXT.tooLong();
}

/** The sheet's first server accepts once, talks with that client until
 * `fin`, and ends. Here the accept loop stops after its first client and
 * serves it alone, awaited; the others wait in the backlog, unserved. */
async function serveOnlyClient(conn: Deno.TcpConn): Promise<void> {
  if (onlyClientTaken) {
    // Only where two listeners serve (IPv4 beside an IPv6-only "::"): it
    // waits as if in the backlog, unserved, until shutdown closes it.
    unserved.push(conn);
    return;
  }
  onlyClientTaken = true;
  const peer = formatAddress(conn.remoteAddr);
  await serveClient(conn);
  stopServer(TEXT.leaving(peer)); // after "fin", already stopping: no effect
}

let oneClient = false; // set from --one-client by main()
let onlyClientTaken = false;
const unserved: Deno.TcpConn[] = []; // accepted, never served

// ===========================================================================
// The command line, and this script's words in English and French
// ===========================================================================

type Options = CommonOptions & { maxLine: number; oneClient: boolean };

/** This server's own options, besides --port, --host, --quiet, --help. */
const OPTIONS = {
  "max-line": { type: "string", default: String(DEFAULT_MAX_LINE) },
  "one-client": { type: "boolean", default: false },
} as const;

/** This script's own words, in English and in French (see say()). */
// deno-fmt-ignore
const TEXT = {
  after: (messages: number) => `${say("after", "après")} ${plural(messages, "message")}`,
  sentFin: () => say(`sent "${STOP_MESSAGE}"`, `a envoyé « ${STOP_MESSAGE} »`),
  finFrom: (peer: string) => say(`"${STOP_MESSAGE}" from ${peer}`, `« ${STOP_MESSAGE} » de ${peer}`),
  leaving: (peer: string) => say(`${peer} leaving`, `le départ de ${peer}`),
  tooLong: () => say(`sent a line longer than ${maxLine} bytes and was closed`,
    `a envoyé une ligne de plus de ${formatCount(maxLine)} octets et a été fermé`),
  stopped: (reason: string) => say(`stopped by ${reason}: `, `arrêté par ${reason}\u00a0: `) +
    `${plural(stats.clients, "client")}, ${plural(stats.messages, "message")}`,
  badMaxLine: (text: string) => say(`Invalid --max-line "${text}": expected a number of bytes from 1 to ${MAX_MAX_LINE}`,
    `--max-line « ${text} » invalide\u00a0: un nombre d'octets de 1 à ${formatCount(MAX_MAX_LINE)} attendu`),
};

function usage(): string {
  return say(
    `Usage: ${howToRun()} [options]

The "OK / fin" server of sheet 001: serves many clients at once from one
thread, prints each message with its sender and answers OK to it. The
message "fin" from ANY client stops the server (that is the exercise).

A message is a line ("\\n" or "\\r\\n"), answered "OK\\n". From a client that
has not yet sent a newline (the sheet's client.py), what it sends before a
${UNFRAMED_PAUSE_MS} ms pause is a message, answered "OK" with no newline.

Options:
  --port N       port to listen on, 0 lets the system choose (default ${DEFAULT_PORT})
  --host H       address to listen on (default ${DEFAULT_HOST}: all interfaces,
                 IPv4 and IPv6)
  --max-line N   longest message in bytes; a client sending a longer line
                 gets an error line and is closed (default ${DEFAULT_MAX_LINE})
  --one-client   the sheet's first server: serve the first client only (the
                 others wait, unserved) and stop when it sends "fin" or leaves
  --quiet        no line per client or message (the ready line and summary
                 remain)
  --lang L       fr or en: the language of the messages (default: the system's)
  -h, --help     show this help and exit

Try it: deno run -N client.ts --port ${DEFAULT_PORT}  (or: nc localhost ${DEFAULT_PORT})`,
    `Utilisation\u00a0: ${howToRun()} [options]

Le serveur « OK / fin » de la fiche 001\u00a0: sert de nombreux clients à la fois
depuis un thread, affiche chaque message avec son expéditeur et répond OK. Le
message « fin » de N'IMPORTE QUEL client arrête le serveur (c'est l'exercice).

Un message est une ligne ("\\n" ou "\\r\\n"), qui reçoit "OK\\n". D'un client sans
saut de ligne encore (le client.py de la fiche), ce qu'il envoie avant une pause
de ${UNFRAMED_PAUSE_MS} ms est un message, qui reçoit "OK" sans saut de ligne.

Options\u00a0:
  --port N       port d'écoute, 0 laisse le système choisir (défaut ${DEFAULT_PORT})
  --host H       adresse d'écoute (défaut ${DEFAULT_HOST}\u00a0: toutes les interfaces,
                 IPv4 et IPv6)
  --max-line N   message le plus long, en octets\u00a0; un client qui envoie une ligne
                 plus longue reçoit une ligne d'erreur et est fermé (défaut ${
      formatCount(DEFAULT_MAX_LINE)
    })
  --one-client   le premier serveur de la fiche\u00a0: sert le premier client seul (les
                 autres attendent) et s'arrête quand il envoie « fin » ou part
  --quiet        aucune ligne par client ni message (restent l'accueil et le bilan)
  --lang L       fr ou en\u00a0: la langue des messages (défaut\u00a0: celle du système)
  -h, --help     affiche cette aide et quitte

Essayez\u00a0: deno run -N client.ts --port ${DEFAULT_PORT}  (ou\u00a0: nc localhost ${DEFAULT_PORT})`,
  );
}

/** Returns the options, or the exit code when there is nothing to serve. */
export function parseOptions(args: string[]): Options | number {
  return readCommandLine(args, (common, values) => ({
    ...common,
    maxLine: parseMaxLine(String(values["max-line"])),
    oneClient: values["one-client"] === true,
  }));
}

/** A line limit is a whole number of bytes from 1 to MAX_MAX_LINE. */
export function parseMaxLine(text: string): number {
  const bytes = /^\d{1,9}$/.test(text) ? Number(text) : NaN;
  if (!(bytes >= 1 && bytes <= MAX_MAX_LINE)) {
    throw new UsageError(TEXT.badMaxLine(text));
  }
  return bytes;
}

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
