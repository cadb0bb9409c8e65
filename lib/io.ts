/**
 * Byte-stream helpers shared by tests/ and bench/ (one copy of each).
 *
 * Not imported by any root script: those stay self-contained, one copied
 * file each. Only Deno built-ins and `node:` modules, so the benchmark and
 * the tests run offline.
 */
import { Buffer } from "node:buffer";

/** Resolve after `ms` milliseconds. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Write every byte: `write()` may be partial. */
export async function writeAll(
  conn: Deno.Conn,
  bytes: Uint8Array,
): Promise<void> {
  while (bytes.length > 0) {
    bytes = bytes.subarray(await conn.write(bytes));
  }
}

/** Fill `buf` completely, however the bytes are split; throws if the peer
 * closes first. Unbounded in time: callers that must not hang bound it. */
export async function readFull(
  conn: Deno.Conn,
  buf: Uint8Array,
): Promise<void> {
  let done = 0;
  while (done < buf.byteLength) {
    const n = await conn.read(buf.subarray(done));
    if (n === null) {
      throw new Error(`Stream ended after ${done} of ${buf.byteLength} bytes`);
    }
    done += n;
  }
}

/** Byte equality through node:buffer's native compare: a JavaScript loop
 * tops out near 1 GB/s (slow tests on 4 MiB arrays, and a load generator
 * that would be the bottleneck). */
export function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.byteLength !== b.byteLength) return false;
  return Buffer.compare(
    Buffer.from(a.buffer, a.byteOffset, a.byteLength),
    Buffer.from(b.buffer, b.byteOffset, b.byteLength),
  ) === 0;
}

/** Close, ignoring "already closed". */
export function closeQuietly(resource: { close(): void }): void {
  try {
    resource.close();
  } catch {
    // Already closed.
  }
}
