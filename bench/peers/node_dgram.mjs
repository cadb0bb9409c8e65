// Node.js `dgram` UDP echo server (benchmark peer), dual-stack udp6.
// Usage: node node_dgram.mjs PORT   (0 = let the system choose)
import dgram from "node:dgram";

const port = Number(process.argv[2] ?? 7777);

const socket = dgram.createSocket({ type: "udp6", ipv6Only: false });
socket.on("message", (msg, rinfo) => {
  socket.send(msg, rinfo.port, rinfo.address);
});
socket.on("error", (err) => console.error(err.message));

process.on("SIGTERM", () => process.exit(0));

socket.bind({ port, address: "::" }, () => {
  process.stdout.write(`listening on ${socket.address().port}\n`);
});
