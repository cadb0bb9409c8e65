/**
 * UDP helpers for the tests of the UDP servers (udp_echo.ts, echod.ts):
 * sockets on loopback closed by `using`, one-datagram round trips with
 * bounded waits. (Moved here from udp_echo_test.ts's "candidates for
 * helpers.ts", so that echod_test.ts shares them.)
 */

import assert from "node:assert/strict";
import {
  awkwardBytes,
  closeQuietly,
  escapeRegExp,
  type Family,
  firstDifference,
  IPV4,
  isLinux,
  patternBytes,
  sameBytes,
  startServer,
  stillPending,
  testBothFamilies,
  text,
  utf8,
  WAIT_MS,
  within,
} from "./helpers.ts";

/** A UDP socket on the family's loopback address, port 0 unless given,
 * closed by `using` (Deno's DatagramConn is not Disposable). */
export function udpSocket(
  family: Family,
  port = 0,
): Deno.DatagramConn & Disposable {
  return bindUdp(family.host, port);
}

export function bindUdp(
  hostname: string,
  port: number,
): Deno.DatagramConn & Disposable {
  const socket = Deno.listenDatagram({ hostname, port, transport: "udp" });
  return Object.assign(socket, {
    [Symbol.dispose]: () => closeQuietly(socket),
  });
}

export function serverAddr(family: Family, port: number): Deno.NetAddr {
  return { transport: "udp", hostname: family.host, port };
}

export function localPort(socket: Deno.DatagramConn): number {
  return (socket.addr as Deno.NetAddr).port;
}

/** Receives one datagram into a buffer bigger than any (so a cut reply
 * shows as a short one); a copy, since Deno returns a view of the buffer. */
export async function receiveOne(
  socket: Deno.DatagramConn,
): Promise<[Uint8Array, Deno.NetAddr]> {
  try {
    const [data, from] = await socket.receive(new Uint8Array(65536 + 1));
    return [data.slice(), from as Deno.NetAddr];
  } catch (err) {
    // Closed at the end of a test that showed no reply came.
    if (err instanceof Deno.errors.Interrupted) return new Promise(() => {});
    throw err;
  }
}

/** Sends `payload` and waits for one reply, sending again up to `tries`
 * times (datagrams may be lost under load); each wait is bounded. On
 * failure, closes the socket so no receive stays pending. */
export async function udpRoundTrip(
  socket: Deno.DatagramConn,
  family: Family,
  port: number,
  payload: Uint8Array,
  tries = 1,
): Promise<[Uint8Array, Deno.NetAddr]> {
  const reply = receiveOne(socket);
  const waitMs = tries === 1 ? WAIT_MS : 1000;
  for (let i = 0; i < tries; i++) {
    await socket.send(payload, serverAddr(family, port));
    if (!(await stillPending(reply, waitMs))) return await reply;
  }
  closeQuietly(socket);
  throw new Error(`No echo after ${tries} tries of ${waitMs} ms`);
}

// ---------------------------------------------------------------------------
// The UDP contract of every UDP echo server (udp_echo, echod): whole
// datagrams to their exact sender, the loop guard, floods and vanished
// peers. Each server's test file registers them with its own names.

/** The largest UDP payload: 65535 minus the IP (IPv4 only) and UDP headers. */
const MAX_PAYLOAD = { IPv4: 65507, IPv6: 65527 } as const;
/** Long enough that a missing echo would have arrived on loopback. */
export const NO_ECHO_MS = 500;
export const GUARD_LOW =
  "source port below 1024 (loop guard; --allow-any-port lifts it)";
export const GUARD_OWN =
  "source port is this server's own (loop guard; --allow-any-port lifts it)";

/** Which UDP server, and how its tests are named. */
export interface UdpServer {
  script: string;
  /** Put before every test's name: "" in a lesson's own file, "echod: ". */
  title: string;
  /** What its summary says before the datagram counts when no TCP client
   * came: "" (udp_echo) or "0 clients, 0 bytes echoed, " (echod). */
  tcpCounts: string;
  /** What follows the address in its ready line with --host 127.0.0.1. */
  readyTail: string;
  /** A source port below 1024 for its loop-guard tests (one per test file,
   * so that files running at once do not share it). */
  lowPort: number;
  /** "loop" or "loops": what a vanished sender does not stop. */
  loop: string;
}

function programOf(server: UdpServer): string {
  return server.script.replace(/\.ts$/, "");
}

/** The summary line after SIGINT with these datagram counts. */
export function udpSummary(server: UdpServer, counts: string): RegExp {
  return new RegExp(
    `^${programOf(server)}: stopped by SIGINT: ${server.tcpCounts}${counts}$`,
    "m",
  );
}

/** Why a test cannot bind `port` (below 1024), or "" when it can. */
export function lowPortMissing(port: number): string {
  try {
    udpSocket(IPV4, port).close();
    return "";
  } catch (err) {
    return err instanceof Deno.errors.PermissionDenied
      ? `binding port ${port} needs root (or CAP_NET_BIND_SERVICE)`
      : `cannot bind port ${port}: ${(err as Error).message}`;
  }
}

/** A registrar of tests that bind `port` (below 1024): over both families,
 * or ignored with the reason when the port cannot be bound. */
export function lowPortTester(
  port: number,
): (name: string, fn: (family: Family) => Promise<void>) => void {
  const missing = lowPortMissing(port);
  return (name, fn) => {
    if (!missing) return testBothFamilies(name, fn);
    Deno.test({ name: `${name} (ignored: ${missing})`, ignore: true, fn() {} });
  };
}

/** Whole datagrams, to their exact sender: two in flight at once, an empty
 * and a 1-byte one, the largest the family allows. */
export function testUdpEchoesWhole(server: UdpServer): void {
  const { script, title } = server;

  testBothFamilies(
    `${title}each datagram goes back whole, from the server's port, to its exact sender`,
    async (family) => {
      await using running = await startServer(script);
      using a = udpSocket(family);
      using b = udpSocket(family);
      const forA = awkwardBytes();
      const forB = patternBytes(1000, 5);
      const replyA = receiveOne(a);
      const replyB = receiveOne(b);
      // Both are in flight at once: each reply must find its own sender.
      await a.send(forA, serverAddr(family, running.port));
      await b.send(forB, serverAddr(family, running.port));
      const [echoA, fromA] = await within(replyA, "the echo to A");
      const [echoB, fromB] = await within(replyB, "the echo to B");
      assert.deepEqual(echoA, forA);
      assert.deepEqual(echoB, forB);
      for (const from of [fromA, fromB]) {
        assert.equal(from.hostname, family.host);
        assert.equal(from.port, running.port);
      }
    },
  );

  testBothFamilies(
    `${title}an empty datagram and a 1-byte datagram are echoed`,
    async (family) => {
      await using running = await startServer(script);
      using socket = udpSocket(family);
      for (const payload of [new Uint8Array(0), Uint8Array.of(0)]) {
        const [echo] = await udpRoundTrip(
          socket,
          family,
          running.port,
          payload,
        );
        assert.deepEqual(echo, payload);
      }
      const done = await running.stop();
      assert.match(
        done.stdout,
        udpSummary(server, "2 datagrams, 1 byte echoed, 0 dropped"),
      );
    },
  );

  testBothFamilies(
    `${title}the largest datagram the family allows comes back whole (IPv4 65507, IPv6 65527 bytes)`,
    async (family) => {
      await using running = await startServer(script);
      using socket = udpSocket(family);
      const payload = patternBytes(MAX_PAYLOAD[family.name], 11);
      const [echo] = await udpRoundTrip(socket, family, running.port, payload);
      assert.ok(sameBytes(echo, payload), firstDifference(echo, payload));
      const done = await running.stop();
      assert.match(
        done.stdout,
        udpSummary(
          server,
          `1 datagram, ${payload.length} bytes echoed, 0 dropped`,
        ),
      );
    },
  );
}

/** The loop guard: a datagram from a source port below 1024 is dropped,
 * logged and counted (--allow-any-port lifts it; --quiet still counts), and
 * so is one from the server's own port on another address. */
export function testUdpLoopGuard(server: UdpServer): void {
  const { script, title, lowPort } = server;
  const program = programOf(server);
  const testLowPort = lowPortTester(lowPort);

  testLowPort(
    `${title}a datagram from a source port below 1024 is dropped, logged and counted`,
    async (family) => {
      await using running = await startServer(script);
      using low = udpSocket(family, lowPort);
      await low.send(utf8("loop?"), serverAddr(family, running.port));
      const shown = family.name === "IPv4"
        ? `127.0.0.1:${lowPort}`
        : `[::1]:${lowPort}`;
      await running.stderr.waitFor(
        new RegExp(
          `^${program}: dropped a datagram from ${escapeRegExp(shown)}: ${
            escapeRegExp(GUARD_LOW)
          }$`,
        ),
      );
      assert.ok(await stillPending(receiveOne(low), NO_ECHO_MS), "echoed");
      // A normal client is still served.
      using normal = udpSocket(family);
      const [echo] = await udpRoundTrip(
        normal,
        family,
        running.port,
        utf8("ok"),
      );
      assert.equal(text(echo), "ok");
      const done = await running.stop();
      assert.equal(done.code, 0);
      assert.match(
        done.stdout,
        udpSummary(server, "1 datagram, 2 bytes echoed, 1 dropped"),
      );
    },
  );

  testLowPort(
    `${title}--allow-any-port lifts the guard: a source port below 1024 is echoed`,
    async (family) => {
      await using running = await startServer(script, ["--allow-any-port"]);
      using low = udpSocket(family, lowPort);
      const [echo] = await udpRoundTrip(low, family, running.port, utf8("lab"));
      assert.equal(text(echo), "lab");
      assert.equal(running.stderr.text, "");
    },
  );

  testLowPort(
    `${title}--quiet: dropped datagrams are still counted, without a line`,
    async (family) => {
      await using running = await startServer(script, ["--quiet"]);
      using low = udpSocket(family, lowPort);
      await low.send(utf8("x"), serverAddr(family, running.port));
      using normal = udpSocket(family);
      await udpRoundTrip(normal, family, running.port, utf8("y"));
      const done = await running.stop();
      assert.match(
        done.stdout,
        udpSummary(server, "1 datagram, 1 byte echoed, 1 dropped"),
      );
      assert.equal(done.stderr, "");
    },
  );

  // The server's own port on another address: on Linux every 127.x.y.z is
  // loopback, so a socket on 127.0.0.2 can share the port of a server bound
  // to 127.0.0.1, as a second echo server on another host would.
  Deno.test({
    name: isLinux
      ? `${title}a datagram from the server's own port (another echo server) is dropped [IPv4]`
      : `${title}a datagram from the server's own port is dropped [IPv4] (ignored: needs Linux's 127.0.0.0/8 loopback)`,
    ignore: !isLinux,
    async fn() {
      await using running = await startServer(script, [
        "--host",
        "127.0.0.1",
      ]);
      assert.equal(
        running.readyLine,
        `${program}: listening on 127.0.0.1:${running.port}${server.readyTail}`,
      );
      using twin = bindUdp("127.0.0.2", running.port);
      await twin.send(utf8("ping-pong?"), serverAddr(IPV4, running.port));
      await running.stderr.waitFor(
        new RegExp(
          `^${program}: dropped a datagram from 127\\.0\\.0\\.2:${running.port}: ${
            escapeRegExp(GUARD_OWN)
          }$`,
        ),
      );
      assert.ok(await stillPending(receiveOne(twin), NO_ECHO_MS), "echoed");
      const done = await running.stop();
      assert.match(
        done.stdout,
        udpSummary(server, "0 datagrams, 0 bytes echoed, 1 dropped"),
      );
    },
  });
}

/** A flood of datagrams from several sockets leaves the server alive and
 * answering; `more` checks anything else still works (echod: TCP). */
export interface UdpFlood {
  what: string;
  args: string[];
  perSender: number;
  more?: (family: Family, port: number) => Promise<void>;
}

/** Floods and vanished peers: a flood from several sockets, senders gone
 * before their echo (ICMP port unreachable). */
export function testUdpFloodsAndVanishedPeers(
  server: UdpServer,
  flood: UdpFlood,
): void {
  const { script, title } = server;

  testBothFamilies(
    `${title}a flood ${flood.what}`,
    async (family) => {
      await using running = await startServer(script, flood.args);
      const senders = Array.from({ length: 4 }, () => udpSocket(family));
      const to = serverAddr(family, running.port);
      try {
        const datagram = patternBytes(64);
        await Promise.all(senders.map(async (socket) => {
          for (let i = 0; i < flood.perSender; i++) {
            await socket.send(datagram, to);
          }
        }));
      } finally {
        for (const socket of senders) socket.close();
      }
      using socket = udpSocket(family);
      const payload = utf8("still there?");
      const [echo] = await udpRoundTrip(
        socket,
        family,
        running.port,
        payload,
        10,
      );
      assert.deepEqual(echo, payload);
      await flood.more?.(family, running.port);
      const done = await running.stop();
      assert.equal(done.code, 0);
      const [, echoed] = done.stdout.match(/[:,] (\d+) datagrams?, /)!;
      assert.ok(Number(echoed) > 1, done.stdout);
      assert.equal(done.stderr, "");
    },
  );

  testBothFamilies(
    `${title}a sender gone before its echo does not stop the ${server.loop}`,
    async (family) => {
      await using running = await startServer(script);
      const to = serverAddr(family, running.port);
      for (let i = 0; i < 20; i++) {
        const gone = udpSocket(family);
        await gone.send(utf8("gone"), to);
        gone.close(); // its echo meets a closed port: ICMP port unreachable
      }
      using socket = udpSocket(family);
      const [echo] = await udpRoundTrip(
        socket,
        family,
        running.port,
        utf8("next"),
      );
      assert.equal(text(echo), "next");
      const done = await running.stop();
      assert.match(
        done.stdout,
        udpSummary(server, "21 datagrams, 84 bytes echoed, 0 dropped"),
      );
      assert.equal(done.stderr, "");
    },
  );
}

/** A server's pure loopGuard(sourcePort, serverPort, allowAnyPort?): the
 * reason to drop, or "" to echo. */
export function testLoopGuardFunction(
  name: string,
  loopGuard: (from: number, own: number, allowAnyPort?: boolean) => string,
): void {
  Deno.test(`${name}: below 1024 and the server's own port are refused`, () => {
    assert.equal(loopGuard(40000, 7777), "");
    assert.equal(loopGuard(1024, 7777), "");
    assert.equal(loopGuard(1023, 7777), GUARD_LOW);
    assert.equal(loopGuard(53, 7777), GUARD_LOW);
    assert.equal(loopGuard(7777, 7777), GUARD_OWN);
    assert.equal(loopGuard(53, 7777, true), "");
    assert.equal(loopGuard(7777, 7777, true), "");
  });
}
