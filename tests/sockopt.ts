/**
 * Reads socket options of another process's sockets, straight from the
 * kernel: pidfd_getfd(2) duplicates the server's descriptors into this test
 * process, then getsockopt(2) asks about them. Linux ≥ 5.6 only, through
 * Deno's FFI (`--allow-ffi`). This is how a test can see TCP_NODELAY, which
 * has no visible effect a test could time reliably.
 */

import assert from "node:assert/strict";
import { connect, echoRoundTrip, IPV4, startServer, utf8 } from "./helpers.ts";

const SYS_PIDFD_OPEN = 434;
const SYS_PIDFD_GETFD = 438;
const SOL_SOCKET = 1;
const SO_TYPE = 3;
const SO_ACCEPTCONN = 30;
const SOCK_STREAM = 1;
const IPPROTO_TCP = 6;
const TCP_NODELAY = 1;

type Libc = Deno.DynamicLibrary<{
  syscall: { parameters: ["i64", "i64", "i64", "i64"]; result: "i64" };
  getsockopt: {
    parameters: ["i32", "i32", "i32", "buffer", "buffer"];
    result: "i32";
  };
  close: { parameters: ["i32"]; result: "i32" };
}>;

function openLibc(): Libc {
  return Deno.dlopen("libc.so.6", {
    syscall: { parameters: ["i64", "i64", "i64", "i64"], result: "i64" },
    getsockopt: {
      parameters: ["i32", "i32", "i32", "buffer", "buffer"],
      result: "i32",
    },
    close: { parameters: ["i32"], result: "i32" },
  });
}

function intOption(libc: Libc, fd: number, level: number, name: number) {
  const value = new Int32Array(1);
  const length = new Uint32Array([4]);
  const rc = libc.symbols.getsockopt(
    fd,
    level,
    name,
    new Uint8Array(value.buffer),
    new Uint8Array(length.buffer),
  );
  return rc === 0 ? value[0] : null;
}

/** Why this machine cannot run the probe, or "" when it can. */
export function sockoptProbeMissing(): string {
  if (Deno.build.os !== "linux") return "pidfd_getfd needs Linux";
  try {
    const libc = openLibc();
    const pidfd = Number(
      libc.symbols.syscall(BigInt(SYS_PIDFD_OPEN), BigInt(Deno.pid), 0n, 0n),
    );
    libc.close();
    return pidfd >= 0 ? "" : "pidfd_open failed (kernel older than 5.3?)";
  } catch (err) {
    return `no FFI access to libc (${(err as Error).message})`;
  }
}

/** TCP_NODELAY of every connected TCP socket held by process `pid`
 * (listening sockets left out). */
export function nodelayOfConnections(pid: number): number[] {
  const libc = openLibc();
  try {
    const pidfd = Number(
      libc.symbols.syscall(BigInt(SYS_PIDFD_OPEN), BigInt(pid), 0n, 0n),
    );
    if (pidfd < 0) throw new Error(`pidfd_open(${pid}) failed`);
    const results: number[] = [];
    for (const entry of Deno.readDirSync(`/proc/${pid}/fd`)) {
      let link = "";
      try {
        link = Deno.readLinkSync(`/proc/${pid}/fd/${entry.name}`);
      } catch {
        continue; // closed meanwhile
      }
      if (!link.startsWith("socket:")) continue;
      const fd = Number(
        libc.symbols.syscall(
          BigInt(SYS_PIDFD_GETFD),
          BigInt(pidfd),
          BigInt(entry.name),
          0n,
        ),
      );
      if (fd < 0) throw new Error("pidfd_getfd failed (ptrace permission?)");
      try {
        if (intOption(libc, fd, SOL_SOCKET, SO_TYPE) !== SOCK_STREAM) continue;
        if (intOption(libc, fd, SOL_SOCKET, SO_ACCEPTCONN) !== 0) continue;
        const nodelay = intOption(libc, fd, IPPROTO_TCP, TCP_NODELAY);
        if (nodelay !== null) results.push(nodelay);
      } finally {
        libc.symbols.close(fd);
      }
    }
    libc.symbols.close(pidfd);
    return results;
  } finally {
    libc.close();
  }
}

/** Registers the test every TCP server shares: after `clients` clients
 * have each done one `exchange`, every connected socket the server holds
 * has TCP_NODELAY set. Where the probe cannot run, the test is listed as
 * ignored with the reason in its name. */
export function testNoDelay(
  script: string,
  options: {
    clients: number;
    args?: string[];
    exchange?: (conn: Deno.TcpConn) => Promise<void>;
  },
): void {
  const name = script.replace(/\.ts$/, "");
  const missing = sockoptProbeMissing();
  const title =
    `${name}: TCP_NODELAY is set on every accepted connection (read from the kernel)`;
  const exchange = options.exchange ?? (async (conn: Deno.TcpConn) => {
    assert.deepEqual(await echoRoundTrip(conn, utf8("n")), utf8("n"));
  });
  Deno.test({
    name: missing ? `${title} (ignored: ${missing})` : title,
    ignore: missing !== "",
    async fn() {
      await using server = await startServer(script, options.args ?? []);
      const conns = await Promise.all(
        Array.from(
          { length: options.clients },
          () => connect(IPV4, server.port),
        ),
      );
      try {
        for (const conn of conns) await exchange(conn);
        assert.deepEqual(
          nodelayOfConnections(server.pid),
          conns.map(() => 1),
        );
      } finally {
        for (const conn of conns) conn.close();
      }
    },
  });
}
