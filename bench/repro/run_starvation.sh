#!/usr/bin/env bash
# run_starvation.sh — one command for the TCP reproduction (see README.md):
#
#   bench/repro/run_starvation.sh              (counts 100 128 160 256 500 2000)
#   COUNTS="100 500" ROUNDS=2 bench/repro/run_starvation.sh
#
# Compiles pingpong_driver.c (gcc) into bench/.cache/, then for each count
# starts budget_starvation.ts (deno run -N) and node_echo.mjs in turn on a
# port of the system's choosing, runs the driver against it with
# TOTAL = connections x 200 messages, stops that server, and prints one
# table. With taskset and 2+ cores, the server runs on CPU 0 and the driver
# on CPU 1. Needs deno, node and gcc. Loopback only; every step is bounded.
set -u
here=$(cd "$(dirname "$0")" && pwd)
cache="$here/../.cache"
driver="$cache/repro_pingpong_driver"
counts=${COUNTS:-"100 128 160 256 500 2000"}
rounds=${ROUNDS:-1}

mkdir -p "$cache" &&
  gcc -O2 -o "$driver" "$here/pingpong_driver.c" || exit 1

server_on=() driver_on=()
if command -v taskset >/dev/null && [ "$(nproc)" -ge 2 ]; then
  server_on=(taskset -c 0) driver_on=(taskset -c 1)
fi

# Each connection costs a descriptor in the driver and one in the server.
most=0
for n in $counts; do [ "$n" -gt "$most" ] && most=$n; done
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt $((most + 100)) ]; then
  ulimit -n $((most + 100)) 2>/dev/null ||
    echo "note: ulimit -n is $(ulimit -n) (hard limit $(ulimit -Hn)); larger counts are skipped" >&2
fi

server_pid=""
stop_server() {
  # Only the server this script started, by the PID it got from $!.
  case "$server_pid" in '' | *[!0-9]*) return ;; esac
  [ "$server_pid" -gt 1024 ] || return
  kill -KILL "$server_pid" 2>/dev/null
  wait "$server_pid" 2>/dev/null
  server_pid=""
}
portfile=$(mktemp)
trap 'stop_server; rm -f "$portfile"' EXIT
trap 'exit 130' INT TERM

# Starts server $1 (deno or node); sets server_pid and port.
start_server() {
  : >"$portfile"
  case "$1" in
  deno) "${server_on[@]}" deno run -N "$here/budget_starvation.ts" >"$portfile" & ;;
  node) "${server_on[@]}" node "$here/node_echo.mjs" >"$portfile" & ;;
  esac
  server_pid=$!
  port=""
  for _ in $(seq 100); do # its first line is its port; at most 10 s
    port=$(head -n 1 "$portfile")
    [ -n "$port" ] && break
    sleep 0.1
  done
  case "$port" in '' | *[!0-9]*)
    echo "$1 server printed no port" >&2
    return 1
    ;;
  esac
}

echo "$(date -u +%F), $(grep -m 1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) cores, $(deno --version | head -n 1), node $(node --version), pinned: ${server_on[*]:-no}"
echo
echo "| round | connections | server | busiest | slowest | busiest/slowest | msg/s | driver CPU |"
echo "| ----: | ----------: | ------ | ------: | ------: | --------------: | ----: | ---------: |"
for round in $(seq "$rounds"); do
  for n in $counts; do
    for name in deno node; do
      if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt $((n + 100)) ]; then
        echo "| $round | $n | $name | skipped: needs ulimit -n $((n + 100)) | | | | |"
        continue
      fi
      if start_server "$name"; then
        line=$(timeout 90 "${driver_on[@]}" "$driver" "$port" "$n" $((n * 200)) 2>&1)
        # connections N  messages M  busiest B  slowest S  busiest/slowest R  msg/s X  driver CPU P%
        read -r -a f <<<"$line"
        if [ "${f[0]:-}" = connections ] && [ "${#f[@]}" -ge 15 ]; then
          echo "| $round | $n | $name | ${f[5]} | ${f[7]} | ${f[9]} | ${f[11]} | ${f[14]} |"
        else
          echo "| $round | $n | $name | failed: $line | | | | |"
        fi
      fi
      stop_server
    done
  done
done
