#!/usr/bin/env -S deno run -N --allow-read=worker_echo.ts --unstable-net
/**
 * # worker_echo.ts — threaded TCP echo server: many clients, several threads
 *
 * Sends back every byte each client sends, until that client closes, on
 * SEVERAL threads (Web Workers): each thread is a whole select_echo.ts (one
 * event loop, many clients), and the kernel shares the arriving clients
 * among them. The threaded server, after tcp_echo.ts (one client at a time)
 * and select_echo.ts (one thread): it uses every CPU. Deno cannot hand a
 * socket to a Worker, so each thread ACCEPTS on its own listening socket,
 * all on one port: `reusePort` (SO_REUSEPORT) lets Linux spread the clients
 * over them. The threads share nothing, so nothing needs a lock. Elsewhere
 * (macOS, Windows) the server says so and serves with one thread.
 *
 * Sheet: TP5b "Socket Serveur" (seeds/000), §2.2 "version thread". Its
 * Python, line for line:
 *   def handle(sc): recv/send loop  ↔  `serveClient(conn)`, in each thread
 *   threading.Thread(None, handle…) ↔  `new Worker(import.meta.url, …)`: THE line
 *   t.start()                       ↔  `worker.postMessage({ type: "serve", …`
 *   (sc,): its socket, to the thread ↔  `reusePort: true`: each thread listens itself
 *   sc, addr = s.accept()           ↔  `conn = await listener.accept()`, in each thread
 *   the thread ends with its client ↔  a thread serves many clients: `serveClient(conn);`
 * Two halves in one file: "the main thread" starts the threads, replaces
 * one that dies (with a back-off) and stops them on Ctrl-C; "each thread"
 * runs select_echo.ts's lesson code, fenced and checked identical. The last
 * line of the file decides which half runs.
 *
 * @run deno run -N --allow-read=worker_echo.ts --unstable-net worker_echo.ts
 * Try it: `nc localhost 7777` in several terminals; each line "[2]
 * 127.0.0.1:53422 connected" names the thread. `top -H` shows the threads.
 * In French: LANG=fr_FR.UTF-8, or `--lang fr`. Siblings: tcp_echo.ts,
 * select_echo.ts, udp_echo.ts, client.ts, ok_server.ts, check.ts, echod.ts.
 *
 * Permissions: `-N` (network). `--allow-read=worker_echo.ts`: each thread
 * runs this file, which Deno reads again (relative to the current folder:
 * run it from its folder). `--unstable-net`: `reusePort` needs it.
 *
 * Reading order: the main thread, each thread, main(), beyond the sheet
 * (sharing the port, the flags), the command line, the skeleton.
 */

import { parseArgs } from "node:util";

const PROGRAM = "worker_echo";
/** How users run it; messages that say how to run it repeat it. */
const RUN_LINE =
  `deno run -N --allow-read=${PROGRAM}.ts --unstable-net ${PROGRAM}.ts`;
/** The sheet's port (the real echo service is port 7, reserved to root). */
const DEFAULT_PORT = 7777;
/** All interfaces, IPv6 and IPv4 on one port, like the sheet's `AF_INET6`
 * socket bound to `("", 7777)`. */
const DEFAULT_HOST = "::";

// ===========================================================================
// The lesson, first half: the main thread
// ===========================================================================
// It serves no client: it starts the threads (this same file), replaces
// one that dies, and on Ctrl-C stops them all and adds up their counts.

/** Everything the main thread keeps. (The threads' own state, in the second
 * half, is module-level as in select_echo.ts: each thread has its copy.) */
const pool = {
  threads: new Map<number, Worker>(), // the live ones, by number
  order: null as ServeOrder | null, // what each is told to serve
  restartWaits: new Map<number, number>(), // last wait before replacing
  stopping: false, // after Ctrl-C: threads that end are not replaced
  lastThreadGone: undefined as (() => void) | undefined, // wakes main()
  served: { clients: 0, bytes: 0 }, // summed as each thread ends
};

/** Starts thread number n; resolves once it listens, or cannot. */
function startThread(n: number): Promise<Start> {
  // THE line that makes this server threaded, the sheet's `threading.Thread(
  // None, handle, None, (sc,))`: a Web Worker is a thread with its own
  // JavaScript engine and event loop, running this same file on another
  // CPU; threads share no memory, only messages. It cannot be handed a
  // socket, so it starts once, not per client: it accepts its own clients.
  const worker = new Worker(import.meta.url, {
    type: "module",
    name: `${PROGRAM} thread ${n}`,
  });
  pool.threads.set(n, worker);
  const startedAt = Date.now();
  let listening = false;
  return new Promise((resolve) => {
    const gone = (message: string) => {
      forgetThread(n, worker);
      if (listening) replaceThread(n, message, startedAt);
      else resolve({ type: "died", message });
    };
    worker.onmessage = ({ data: report }: MessageEvent<Report>) => {
      switch (report.type) {
        case "listening":
          listening = true;
          return resolve(report);
        case "cannot-listen":
          forgetThread(n, worker);
          return resolve(report);
        case "died":
          addCounts(report.stats);
          return gone(report.message);
        case "stopped":
          addCounts(report.stats);
          return forgetThread(n, worker);
      }
    };
    // An error the thread could not report itself (it failed to load, say).
    // Without preventDefault(), it would end the whole process.
    worker.onerror = (event) => {
      event.preventDefault();
      gone(event.message);
    };
    worker.postMessage({ type: "serve", thread: n, lang, ...pool.order! });
  });
}

/** Starts every thread. Returns a line saying why the server cannot
 * listen, or "" once it does. */
async function startThreads(count: number): Promise<string> {
  // Thread 1 alone first: if it cannot listen, none can, and it says why.
  const first = await startThread(1);
  if (first.type === "cannot-listen") return first.message;
  if (first.type === "died") return `[1] ${TEXT.died(first.message)}`;
  const others: Promise<Start>[] = [];
  for (let n = 2; n <= count && !pool.stopping; n++) {
    others.push(startThread(n));
  }
  let portShared = true;
  for (const [i, start] of (await Promise.all(others)).entries()) {
    if (start.type === "listening") continue;
    if (start.type === "cannot-listen" && start.addrInUse) {
      // reusePort did not let a second socket listen on the port: not
      // Linux. Go on with the thread that listens, not replaced.
      portShared = false;
    } else {
      replaceThread(i + 2, start.message, Date.now());
    }
  }
  if (!portShared) warn(TEXT.portNotShared(pool.threads.size));
  return "";
}

/** Starts another thread number n in place of the dead one, which started
 * at `startedAt`, after the wait restartDelay() gives. */
function replaceThread(n: number, why: string, startedAt: number): void {
  if (pool.stopping) return;
  const wait = restartDelay(Date.now() - startedAt, pool.restartWaits.get(n));
  pool.restartWaits.set(n, wait);
  warn(`[${n}] ${TEXT.died(why)}${TEXT.restarting(wait)}`);
  setTimeout(async () => {
    if (pool.stopping) return;
    const restartedAt = Date.now();
    const start = await startThread(n);
    if (start.type === "listening") warn(`[${n}] ${TEXT.newThread()}`);
    else replaceThread(n, start.message, restartedAt);
  }, wait);
}

/** A thread that dies is replaced after this wait, doubled each time its
 * replacement dies young (before RESTART_STABLE_MS) up to the maximum, so a
 * fault that kills every new thread at once cannot spin the CPU. */
export const RESTART_DELAY_MIN_MS = 100;
export const RESTART_DELAY_MAX_MS = 30_000;
export const RESTART_STABLE_MS = 10_000;

/** The wait before replacing a thread that lived `livedMs`, when the last
 * wait for its number was `lastWaitMs` (undefined: none yet). */
export function restartDelay(livedMs: number, lastWaitMs?: number): number {
  if (livedMs >= RESTART_STABLE_MS || lastWaitMs === undefined) {
    return RESTART_DELAY_MIN_MS;
  }
  return Math.min(lastWaitMs * 2, RESTART_DELAY_MAX_MS);
}

/** On Ctrl-C: tells every thread to stop (and report its counts). */
function stopThreads(): void {
  pool.stopping = true;
  for (const worker of pool.threads.values()) {
    worker.postMessage({ type: "stop" });
  }
  if (pool.threads.size === 0) pool.lastThreadGone?.();
}

function threadsStopped(): Promise<void> {
  if (pool.stopping && pool.threads.size === 0) return Promise.resolve();
  return new Promise((resolve) => pool.lastThreadGone = resolve);
}

function forgetThread(n: number, worker: Worker): void {
  worker.terminate(); // already ended, or about to: make sure
  if (pool.threads.get(n) === worker) pool.threads.delete(n);
  if (pool.stopping && pool.threads.size === 0) pool.lastThreadGone?.();
}

function addCounts(counts: Counts): void {
  pool.served.clients += counts.clients;
  pool.served.bytes += counts.bytes;
}

// ---------------------------------------------------------------------------
// What the two halves tell each other (messages are their only link)

/** Clients served and bytes echoed; each thread keeps its own. */
type Counts = { clients: number; bytes: number };

/** What every thread serves: the options, the main thread's addresses. */
type ServeOrder = { options: Options; addresses: Deno.NetAddr[] };

/** The main thread's orders to a thread (with the reader's language). */
type Order =
  | { type: "serve"; thread: number; lang: "en" | "fr" } & ServeOrder
  | { type: "stop" };

/** A thread's reports to the main thread. */
type Report =
  | { type: "listening" }
  | { type: "cannot-listen"; message: string; addrInUse: boolean }
  | { type: "died"; message: string; stats: Counts }
  | { type: "stopped"; stats: Counts };

/** How a thread's start ended. */
type Start =
  | { type: "listening" }
  | { type: "cannot-listen"; message: string; addrInUse: boolean }
  | { type: "died"; message: string };

// ===========================================================================
// The lesson, second half: each thread
// ===========================================================================
// Runs in a Worker, once per thread, as select_echo.ts runs alone: its own
// listening sockets on the shared port, its own clients and event loop, its
// own copy of the module-level bindings (stats, clients).

/** The parts of a worker's global scope used here (Deno's types describe
 * the main thread's). */
interface ThreadScope {
  postMessage(report: Report): void;
  onmessage: ((event: MessageEvent<Order>) => void) | null;
  close(): void;
}

/** A thread's life: on "serve", listen on the shared port and serve clients
 * as select_echo.ts does; on "stop", close everything, report the counts
 * and end. */
function runThread(): void {
  const scope = globalThis as unknown as ThreadScope;
  // An error nothing caught would end this thread with a stack trace: report
  // it in one line, with the counts so far, and end. The main thread starts
  // another; the other threads never notice. (An accept loop throws only
  // when its listener is broken for good: see acceptFailed.)
  const die = (reason: unknown) => {
    scope.postMessage({ type: "died", message: errorMessage(reason), stats });
    scope.close();
  };
  globalThis.addEventListener("error", (event) => {
    event.preventDefault();
    die(event.error ?? event.message);
  });
  globalThis.addEventListener("unhandledrejection", (event) => {
    event.preventDefault();
    die(event.reason);
  });

  let listeners: Deno.TcpListener[] = [];
  scope.onmessage = async ({ data: order }) => {
    if (order.type === "stop") return closeAll(listeners); // Ctrl-C
    const { options } = order;
    // This thread's settings, as select_echo.ts's main() sets its own.
    lang = order.lang;
    quiet = options.quiet;
    // Every line this thread prints names it: "[2] " after the program's
    // name (console.log writes whole lines: threads' lines never mix).
    for (const stream of ["log", "error"] as const) {
      const print = console[stream];
      console[stream] = (line: string) =>
        print(line.replace(prefix(), `${prefix()}[${order.thread}] `));
    }
    try {
      listeners = listenShared(order.addresses); // beyond the sheet
    } catch (err) {
      const where = { ...options, port: order.addresses[0].port };
      scope.postMessage({
        type: "cannot-listen",
        message: describeListenError(err, where),
        addrInUse: err instanceof Deno.errors.AddrInUse,
      });
      scope.close();
      return;
    }
    scope.postMessage({ type: "listening" });

    await Promise.all(listeners.map(acceptLoop));
    // The accept loops are over; wait for the clients' last lines.
    await clientsGone();
    scope.postMessage({ type: "stopped", stats });
    scope.close();
  };
}

// select_echo.ts's lesson, word for word (a test checks), in each thread.
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
// main: check, start the threads, serve until Ctrl-C, print a summary
// ===========================================================================

async function main(args: string[]): Promise<number> {
  const options = parseOptions(args);
  if (typeof options === "number") return options; // --help, or a mistake
  const missing = missingFlag(); // beyond the sheet: what threads need
  if (missing) {
    warn(missing);
    return 1;
  }

  let listeners: Deno.TcpListener[];
  try {
    listeners = listen(options);
  } catch (err) {
    warn(describeListenError(err, options));
    return 1;
  }
  // The main thread listened only to choose the address(es) and learn the
  // real port (--port 0), with the skeleton's messages: the threads take it.
  const where = describeListeners(listeners);
  pool.order = { options, addresses: listeners.map((l) => l.addr) };
  for (const listener of listeners) listener.close();

  installShutdown(stopThreads);
  const failure = await startThreads(options.threads);
  if (failure) {
    warn(failure);
    return 1;
  }
  announce(`${SAID.listening(where)}, ${plural(pool.threads.size, "thread")}`);

  // The threads serve until a signal stops them; wait for their counts.
  await threadsStopped();

  announce(TEXT.stopped(shutdown.reason || SAID.closing(), pool.served));
  return 0;
}

// ===========================================================================
// Beyond the sheet: sharing the port, and what the threads need to start
// ===========================================================================

/** A thread's own listening sockets, on the main thread's addresses.
 * `reusePort` (SO_REUSEPORT) lets every thread listen on one port; Linux
 * gives each new client to one of them, by a hash of the client's address
 * and port. Elsewhere the second thread's listen() fails with AddrInUse,
 * and startThreads() goes on with one thread. */
function listenShared(addresses: Deno.NetAddr[]): Deno.TcpListener[] {
  const listeners: Deno.TcpListener[] = [];
  try {
    for (const { hostname, port } of addresses) {
      listeners.push(
        Deno.listen({ hostname, port, tcpBacklog: BACKLOG, reusePort: true }),
      );
    }
  } catch (err) {
    for (const listener of listeners) listener.close();
    throw err;
  }
  return listeners;
}

/** One line saying what the threads lack to start (a flag, a permission)
 * and how to run it, or "" when nothing is missing. */
function missingFlag(): string {
  // Without --unstable-net, Deno answers `reusePort` by ending the whole
  // process (exit code 70). Deno.listenDatagram exists only with that same
  // flag: test for it first, and say what to do.
  if (typeof Deno.listenDatagram !== "function") {
    return `${TEXT.needsUnstable()}${howToRun()}`;
  }
  if (!canReadSelf()) return `${TEXT.needsRead()}${howToRun()}`;
  return netPermission() ? "" : `${SAID.noPermission()}${howToRun()}`;
}

/** Without -N, Deno would ask at each new address: the main thread's port
 * 0, then each thread's real port. Ask once, for the whole network: one
 * prompt, then a working server or the one-line message. */
function netPermission(): boolean {
  const net = { name: "net" } as const;
  if (Deno.permissions.querySync(net).state === "granted") return true;
  return Deno.permissions.requestSync(net).state === "granted";
}

/** Each thread runs this file, which Deno reads again for it: without read
 * permission on it, every thread would die at birth. */
function canReadSelf(): boolean {
  // A `deno compile` binary's threads run the copy embedded at compile time
  // (`--include worker_echo.ts`): reading it needs no permission.
  const path = import.meta.filename; // undefined when loaded from a URL
  if (Deno.build.standalone || path === undefined) return true;
  return Deno.permissions.querySync({ name: "read", path }).state ===
    "granted";
}

// ===========================================================================
// The command line, and this script's words in English and French
// ===========================================================================

type Options = CommonOptions & { threads: number };

/** --threads default: one per CPU; more only take turns, fewer leave CPUs
 * idle under load. */
const DEFAULT_THREADS = navigator.hardwareConcurrency;
/** Each thread is a whole JavaScript engine, megabytes before its first
 * client: a typo such as --threads 80000 must not start that many. */
const MAX_THREADS = 256;

/** This server's own options, besides --port, --host, --quiet, --help. */
const OPTIONS = {
  threads: { type: "string", default: String(DEFAULT_THREADS) },
} as const;

/** Returns the options, or the exit code when there is nothing to serve. */
export function parseOptions(args: string[]): Options | number {
  return readCommandLine(args, (common, values) => ({
    ...common,
    threads: parseThreads(String(values.threads)),
  }));
}

/** From one thread (select_echo.ts with extra steps) to MAX_THREADS. */
export function parseThreads(text: string): number {
  const threads = /^\d{1,9}$/.test(text) ? Number(text) : NaN;
  if (!(threads >= 1 && threads <= MAX_THREADS)) {
    throw new UsageError(say(
      `Invalid --threads "${text}": expected a whole number from 1 to ${MAX_THREADS}`,
      `--threads « ${text} » invalide\u00a0: un nombre entier de 1 à ${MAX_THREADS} attendu`,
    ));
  }
  return threads;
}

/** This script's own words, in English and in French (see say()). */
// deno-fmt-ignore
const TEXT = {
  after: (bytes: number) => say(`after ${plural(bytes, "byte")} echoed`, `après ${echoedFr(bytes)}`),
  stopped: (reason: string, served: Counts) => say(
    `stopped by ${reason}: ${plural(served.clients, "client")}, ${plural(served.bytes, "byte")} echoed`,
    `arrêté par ${reason}\u00a0: ${plural(served.clients, "client")}, ${echoedFr(served.bytes)}`),
  died: (why: string) => say(`thread died: ${why}`, `le thread est mort\u00a0: ${why}`),
  restarting: (ms: number) => say(`; starting another in ${ms} ms`, `\u00a0; un autre démarre dans ${formatCount(ms)} ms`),
  newThread: () => say("new thread listening", "nouveau thread à l'écoute"),
  portNotShared: (threads: number) => say(
    `this system lets only one socket listen on a port (reusePort shares it on Linux only): serving with ${plural(threads, "thread")}`,
    `ce système ne laisse qu'une socket écouter sur un port (reusePort ne le partage que sous Linux)\u00a0: service avec ${plural(threads, "thread")}`),
  needsUnstable: () => say("Threads sharing a port need the --unstable-net flag: run it as: ",
    "Des threads qui partagent un port demandent l'option --unstable-net\u00a0: lancez-le ainsi\u00a0: "),
  needsRead: () => say(`Read permission missing (each thread reads ${PROGRAM}.ts again): run it from its folder as: `,
    `Permission de lecture manquante (chaque thread relit ${PROGRAM}.ts)\u00a0: lancez-le depuis son dossier ainsi\u00a0: `),
};

/** "0 octet renvoyé", "1 octet renvoyé", "2 octets renvoyés". */
const echoedFr = (bytes: number) =>
  `${plural(bytes, "octet")} renvoyé${bytes >= 2 ? "s" : ""}`;

function usage(): string {
  return say(
    `Usage: ${howToRun()} [options]

Threaded TCP echo server: sends back every byte it receives, serving many
clients at once on several threads that share the port.

Options:
  --port N     port to listen on, 0 lets the system choose (default ${DEFAULT_PORT})
  --host H     address to listen on (default ${DEFAULT_HOST}: all interfaces,
               IPv4 and IPv6)
  --threads N  threads accepting and serving clients (default ${DEFAULT_THREADS}:
               one per CPU; ${MAX_THREADS} at most)
  --quiet      no line per client (the ready line and summary remain)
  --lang L     fr or en: the language of the messages (default: the system's)
  -h, --help   show this help and exit

Try it: nc localhost ${DEFAULT_PORT}`,
    `Utilisation\u00a0: ${howToRun()} [options]

Serveur d'écho TCP multithread\u00a0: renvoie chaque octet reçu, à de nombreux
clients à la fois, sur plusieurs threads qui partagent le port.

Options\u00a0:
  --port N     port d'écoute, 0 laisse le système choisir (défaut ${DEFAULT_PORT})
  --host H     adresse d'écoute (défaut ${DEFAULT_HOST}\u00a0: toutes les interfaces,
               IPv4 et IPv6)
  --threads N  threads qui acceptent et servent les clients (défaut ${DEFAULT_THREADS}\u00a0:
               un par processeur\u00a0; ${MAX_THREADS} au plus)
  --quiet      aucune ligne par client (restent la ligne d'accueil et le bilan)
  --lang L     fr ou en\u00a0: la langue des messages (défaut\u00a0: celle du système)
  -h, --help   affiche cette aide et quitte

Essayez\u00a0: nc localhost ${DEFAULT_PORT}`,
  );
}

// Pieces the in-process tests use (exporting adds no import).
export { plural, UsageError };

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

// Which half runs: a thread (this file, loaded by the main thread's
// `new Worker(…)`), or the main thread. import.meta.main is true in a
// worker too, so the worker test comes first.
if ("WorkerGlobalScope" in globalThis) runThread();
else if (import.meta.main) await run(main);
