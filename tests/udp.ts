/**
 * UDP helpers for the tests of the UDP servers (udp_echo.ts, echod.ts):
 * sockets on loopback closed by `using`, one-datagram round trips with
 * bounded waits. (Moved here from udp_echo_test.ts's "candidates for
 * helpers.ts", so that echod_test.ts shares them.)
 */

import { closeQuietly, type Family, stillPending, WAIT_MS } from "./helpers.ts";

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
