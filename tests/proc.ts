/**
 * What tests of threaded servers read from Linux's /proc and do with ss(8):
 * how many listening sockets a process holds on a port, its CPU time, and
 * destroying its listeners as an administrator's `ss -K` does. (Moved here
 * from worker_echo_test.ts's "candidates for helpers.ts", so that
 * echod_test.ts shares them.)
 */

import assert from "node:assert/strict";
import { closeQuietly, runScript, text, within } from "./helpers.ts";

/** How many TCP sockets listen on `port` and belong to process `pid`
 * (Linux /proc): one per thread in the threaded servers. */
export function listenersOn(port: number, pid: number): number {
  const inodes = new Set<string>();
  for (const entry of Deno.readDirSync(`/proc/${pid}/fd`)) {
    try {
      const target = Deno.readLinkSync(`/proc/${pid}/fd/${entry.name}`);
      const inode = target.match(/^socket:\[(\d+)\]$/)?.[1];
      if (inode) inodes.add(inode);
    } catch {
      // Closed while we looked.
    }
  }
  let count = 0;
  for (const table of ["tcp", "tcp6"]) {
    const rows = Deno.readTextFileSync(`/proc/net/${table}`).split("\n");
    for (const row of rows.slice(1)) {
      const f = row.trim().split(/\s+/);
      if (f.length < 10) continue;
      const localPort = parseInt(f[1].split(":")[1], 16);
      if (f[3] === "0A" && localPort === port && inodes.has(f[9])) count++;
    }
  }
  return count;
}

/** Destroys the listening TCP sockets on `port` (SOCK_DESTROY, as an
 * administrator's `ss -K` does): accept() on them then fails with EINVAL.
 * The port must be one a test's own server holds. Returns how many it
 * destroyed: ss lists each. (On a reusePort group, Linux 6.18 destroys
 * every listener; earlier machines of ours saw only one thread die.) */
export async function destroyListeners(port: number): Promise<number> {
  assert.ok(Number.isInteger(port) && port > 1024, `bad port ${port}`);
  const out = await new Deno.Command("ss", {
    args: ["-K", "-t", "-l", "-n", `sport = :${port}`],
  }).output();
  assert.ok(out.success, text(out.stderr));
  return text(out.stdout).split("\n").filter((l) => l.startsWith("LISTEN"))
    .length;
}

/** Why destroyListeners() cannot work here (no ss, no CAP_NET_ADMIN, a
 * kernel without CONFIG_INET_DIAG_DESTROY), or "" when it can: tried on a
 * listener of our own. */
export async function destroyListenersMissing(): Promise<string> {
  if (Deno.build.os !== "linux") return "ss -K needs Linux";
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  try {
    await destroyListeners(listener.addr.port);
  } catch (err) {
    listener.close();
    return `ss -K fails: ${(err as Error).message.split("\n")[0]}`;
  }
  const accepted = listener.accept().then(
    (conn) => {
      conn.close();
      return "ss -K left the listener working";
    },
    (err) =>
      (err as { code?: string }).code === "EINVAL"
        ? ""
        : `accept failed with ${(err as Error).message}`,
  );
  const result = await within(accepted, "", 2000).catch(() =>
    "ss -K did not destroy the listener (CAP_NET_ADMIN? CONFIG_INET_DIAG_DESTROY?)"
  );
  closeQuietly(listener);
  await accepted;
  return result;
}

/** CPU time of a process, all its threads, in clock ticks (Linux /proc:
 * utime + stime, fields 14 and 15 of /proc/PID/stat). */
export function cpuTicks(pid: number): number {
  const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return Number(fields[11]) + Number(fields[12]); // fields 14, 15 (1-based)
}

/** A threaded server under LANG=fr_FR.UTF-8 whose listener is destroyed
 * (`ss -K`): the dying thread's lines, Deno's EINVAL included, in French.
 * `missing` is destroyListenersMissing(): the test is ignored with it. */
export function testDestroyedListenerInFrench(
  name: string,
  script: string,
  args: string[],
  missing: string,
  lines: RegExp[],
): void {
  Deno.test({
    name: missing ? `${name} (ignored: ${missing})` : name,
    ignore: missing !== "",
    async fn() {
      await using server = runScript(script, [...args, "--port", "0"], {
        env: { LANG: "fr_FR.UTF-8", LC_ALL: "fr_FR.UTF-8" },
      });
      const ready = /à l'écoute sur \S*:(\d+)/;
      const port = Number(
        (await server.stdout.waitFor(ready)).match(ready)![1],
      );
      await destroyListeners(port);
      for (const line of lines) await server.stderr.waitFor(line);
      assert.equal((await server.stop()).code, 0);
    },
  });
}
