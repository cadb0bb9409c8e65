// The plain Deno echo that starves past ~128 busy connections (benchmark
// peer, "without the fairness fix"): one `for (;;) { read; write }` loop per
// connection. Every pending read is polled from one tokio task with a budget
// of 128 ready reads per poll, so the same ~128 clients are served turn after
// turn while the others wait.
// Usage: deno run -N bench/peers/deno_plain_echo.ts PORT   (0 = any port)
const port = Number(Deno.args[0] ?? 7777);
const listener = Deno.listen({ port, hostname: "::" });
console.log(`listening on ${listener.addr.port}`);
Deno.addSignalListener("SIGTERM", () => Deno.exit(0));

async function echo(conn: Deno.TcpConn) {
  conn.setNoDelay(true);
  const buf = new Uint8Array(65536);
  try {
    for (;;) {
      const n = await conn.read(buf);
      if (n === null) break;
      let done = 0;
      while (done < n) done += await conn.write(buf.subarray(done, n));
    }
  } catch {
    // a reset client: drop it
  } finally {
    try {
      conn.close();
    } catch { /* already closed */ }
  }
}

for await (const conn of listener) echo(conn);
