// The fair reference: Node's net echo server (libuv reads every ready socket).
import net from "node:net";
const server = net.createServer((s) => {
  s.on("error", () => {});
  s.pipe(s);
});
server.listen(
  Number(process.argv[2] ?? 0),
  "127.0.0.1",
  () => console.log(server.address().port),
);
