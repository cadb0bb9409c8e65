// idle_floor.ts — what Deno itself costs per idle TCP connection.
//
//   deno run -N bench/repro/idle_floor.ts read   # the plainest echo loop
//   deno run -N bench/repro/idle_floor.ts hold   # one echo, then no read
//
// Prints "listening on PORT". Each connection gets a 128-byte buffer cut
// from one shared slab (as echod.ts does), so buffers cost nothing here.
// `read`: a read()/write() loop per connection, so an idle one keeps one
// read pending inside Deno. `hold`: echoes the first message, then keeps
// the connection open with no read pending. Measure the RSS per connection
// with `deno task bench`'s idle scenario, or by hand:
// `deno run -A --unstable-net bench/load.ts --scenario tcp-idle --port PORT
// --conns 10000 --size 8 --server-pid PID` (ulimit -n 20000 on both sides).
// The difference between the two is the price of one pending read; `hold`
// is the price of Deno's TcpConn and its resource.
const mode = Deno.args[0] ?? "read";
if (mode !== "read" && mode !== "hold") {
  console.error("usage: idle_floor.ts read|hold");
  Deno.exit(2);
}
const SIZE = 128;
const PER_SLAB = 256;
let slab = new ArrayBuffer(0);
let used = PER_SLAB;

function smallBuffer(): Uint8Array {
  if (used === PER_SLAB) {
    slab = new ArrayBuffer(SIZE * PER_SLAB);
    used = 0;
  }
  return new Uint8Array(slab, SIZE * used++, SIZE);
}

const held: Deno.TcpConn[] = [];

async function serve(conn: Deno.TcpConn): Promise<void> {
  const buffer = smallBuffer();
  try {
    for (;;) {
      const n = await conn.read(buffer);
      if (n === null) break;
      let done = 0;
      while (done < n) done += await conn.write(buffer.subarray(done, n));
      if (mode === "hold") {
        held.push(conn); // open, and no read pending any more
        return;
      }
    }
  } catch { /* the client went away */ }
  try {
    conn.close();
  } catch { /* closed already */ }
}

const listener = Deno.listen({ port: Number(Deno.args[1] ?? 0) });
console.log(`listening on ${listener.addr.port}`);
Deno.addSignalListener("SIGTERM", () => Deno.exit(0));
for (;;) {
  try {
    serve(await listener.accept());
  } catch (err) {
    if (err instanceof Deno.errors.BadResource) break;
  }
}
