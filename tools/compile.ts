/**
 * # tools/compile.ts — one single binary per root script, into bin/
 *
 * `deno task compile [--target TRIPLE]` runs `deno compile` for every script
 * with the permissions of its deno.json task baked in, so `./bin/tcp_echo`
 * runs on a machine without Deno. worker_echo.ts reloads its own file to
 * start its threads, so the file is embedded with `--include`.
 *
 * `deno compile` needs Deno's `denort` runtime, which it downloads from
 * dl.deno.land. Offline, this tool stops with one line that says what to
 * provide: DENORT_BIN=<path to denort>, or the zip in Deno's cache.
 */

import { parseArgs } from "node:util";

export const SCRIPTS = [
  "tcp_echo.ts",
  "udp_echo.ts",
  "select_echo.ts",
  "worker_echo.ts",
  "ok_server.ts",
  "client.ts",
  "check.ts",
  "echod.ts",
];

const ROOT = new URL("../", import.meta.url);
const USAGE =
  "usage: deno task compile [--target TRIPLE]  (e.g. x86_64-unknown-linux-gnu, aarch64-apple-darwin, x86_64-pc-windows-msvc)";

/** The run flags of a script's deno.json task, plus what compile needs. */
export function compileFlags(
  script: string,
  tasks: Record<string, string>,
): string[] {
  const words = (tasks[script.replace(/\.ts$/, "")] ?? "").split(/\s+/);
  const at = words.indexOf(script);
  if (words[0] !== "deno" || words[1] !== "run" || at < 0) {
    throw new Error(`deno.json has no task "deno run … ${script}"`);
  }
  // deno.json's "unstable": ["net"] does not travel into a binary.
  const flags = words.slice(2, at).filter((w) => w !== "--unstable-net");
  flags.push("--unstable-net");
  if (script === "worker_echo.ts") flags.push("--include", script);
  if (script === "echod.ts") flags.push("--include", script);
  return flags;
}

function hostTarget(): string {
  return Deno.build.target;
}

/** Where `deno compile` looks for a downloaded denort zip. */
export function cachedZip(
  denoDir: string,
  version: string,
  target: string,
): string {
  return `${denoDir}/dl/release/v${version}/denort-${target}.zip`;
}

function denoDir(): string {
  const out = new Deno.Command(Deno.execPath(), {
    args: ["info", "--json"],
    stdout: "piped",
    stderr: "null",
  }).outputSync();
  try {
    return JSON.parse(new TextDecoder().decode(out.stdout)).denoDir ?? "";
  } catch {
    return "";
  }
}

/** One line for a failed compile; names what to provide when denort is missing. */
export function explainFailure(stderr: string, zip: string): string {
  if (
    /base binary|denort|dl\.deno\.land|dns error|error sending request/i.test(
      stderr,
    )
  ) {
    // The guide in the reader's language (navigator.language needs no permission).
    const guide = /^fr\b/i.test(navigator.language ?? "")
      ? "docs/guide-fr.md"
      : "docs/guide-en.md";
    return `compile: cannot get Deno's denort runtime (no download from dl.deno.land); set DENORT_BIN=/path/to/denort or put ${zip} in place (see ${guide} §5)`;
  }
  // The child runs with NO_COLOR=1: its lines carry no colour codes.
  const lines = stderr.split("\n").map((l) => l.trim()).filter(Boolean);
  return `compile: ${
    lines.find((l) => /^error/i.test(l)) ?? lines[0] ?? "failed"
  }`;
}

async function main(args: string[]): Promise<number> {
  let target = hostTarget();
  try {
    const { values } = parseArgs({
      args,
      options: {
        target: { type: "string" },
        help: { type: "boolean", short: "h" },
      },
      strict: true,
    });
    if (values.help) {
      console.log(USAGE);
      return 0;
    }
    if (values.target) target = values.target;
  } catch (err) {
    console.error(
      `compile: ${err instanceof Error ? err.message.split("\n")[0] : err}`,
    );
    console.error(USAGE);
    return 2;
  }
  const tasks =
    JSON.parse(await Deno.readTextFile(new URL("deno.json", ROOT))).tasks;
  const zip = cachedZip(denoDir() || "$DENO_DIR", Deno.version.deno, target);
  const exe = target.includes("windows") ? ".exe" : "";
  await Deno.mkdir(new URL("bin/", ROOT), { recursive: true });
  for (const script of SCRIPTS) {
    const name = script.replace(/\.ts$/, "");
    const out = await new Deno.Command(Deno.execPath(), {
      args: [
        "compile",
        ...compileFlags(script, tasks),
        "--target",
        target,
        "--output",
        `bin/${name}${exe}`,
        script,
      ],
      cwd: new URL(".", ROOT),
      env: { DENO_NO_UPDATE_CHECK: "1", NO_COLOR: "1", RUST_BACKTRACE: "0" },
      stdout: "null",
      stderr: "piped",
    }).output();
    if (!out.success) {
      console.error(explainFailure(new TextDecoder().decode(out.stderr), zip));
      return 1;
    }
    console.log(`compile: bin/${name}${exe}`);
  }
  return 0;
}

if (import.meta.main) Deno.exit(await main(Deno.args));
