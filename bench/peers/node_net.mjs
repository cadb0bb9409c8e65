// Node.js `net` TCP echo server (benchmark peer).
// socket.pipe(socket) gives backpressure for free: reading pauses while the
// client does not read what we write back.
// Usage: node node_net.mjs PORT   (0 = let the system choose)
import net from "node:net";

const port = Number(process.argv[2] ?? 7777);

const server = net.createServer((socket) => {
  socket.setNoDelay(true);
  socket.on("error", () => socket.destroy()); // a reset must not kill us
  socket.pipe(socket);
});

process.on("SIGTERM", () => process.exit(0));

server.listen({ port, host: "::", ipv6Only: false, backlog: 511 }, () => {
  process.stdout.write(`listening on ${server.address().port}\n`);
});
