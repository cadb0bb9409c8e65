/**
 * budget_starvation.ts — the plainest Deno TCP echo server: one read/write
 * loop per connection. Driven by pingpong_driver.c (a fair C epoll driver),
 * some connections starve past ~128 busy connections.
 *
 *   deno run -N bench/repro/budget_starvation.ts [PORT]   (prints its port)
 *   bash bench/repro/run_starvation.sh   (runs this server and Node's net
 *                                         echo side by side; see README.md)
 */
const listener = Deno.listen({
  hostname: "127.0.0.1",
  port: Number(Deno.args[0] ?? 0),
});
console.log((listener.addr as Deno.NetAddr).port);

async function echo(conn: Deno.Conn): Promise<void> {
  const buffer = new Uint8Array(4096);
  try {
    for (;;) {
      const n = await conn.read(buffer);
      if (n === null) break;
      let done = 0;
      while (done < n) done += await conn.write(buffer.subarray(done, n));
    }
  } catch {
    // a reset client: drop it
  } finally {
    try {
      conn.close();
    } catch { /* closed */ }
  }
}

for await (const conn of listener) echo(conn);
