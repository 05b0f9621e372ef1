#!/usr/bin/env bash
# Runs pcscd inside a network namespace of its own ("cardkit", only loopback up).
#
# Why: the vpcd driver listens on TCP 0.0.0.0:35963-35964, and whoever connects there inserts a
# card. Inside the namespace those ports exist only on the namespace's loopback; PC/SC clients
# outside still reach pcscd through its filesystem UNIX socket. Mock cards enter the namespace
# (python -m mocks.vpcd does it for them). Must run as root.
#
# Usage: pcscd-netns.sh start|stop|status
set -euo pipefail

ns=${CARDKIT_NETNS:-cardkit}
rundir=${CARDKIT_RUN_DIR:-/run/cardkit}
sock=/run/pcscd/pcscd.comm

socket_answers() {
  python3 - "$sock" <<'PY' 2>/dev/null
import socket, sys
s = socket.socket(socket.AF_UNIX)
s.settimeout(1)
s.connect(sys.argv[1])
PY
}

ours() {  # pids of pcscd running inside our namespace
  local pid
  for pid in $(pgrep -x pcscd || true); do
    [ "$(ip netns identify "$pid" 2>/dev/null)" = "$ns" ] && echo "$pid"
  done
  return 0
}

foreign() {  # pids of pcscd running anywhere else
  local pid
  for pid in $(pgrep -x pcscd || true); do
    [ "$(ip netns identify "$pid" 2>/dev/null)" = "$ns" ] || echo "$pid"
  done
  return 0
}

stop_foreign() {
  if [ -d /run/systemd/system ] && command -v systemctl >/dev/null; then
    # Socket activation would start a new host-namespace pcscd at the first client.
    systemctl stop pcscd.socket pcscd.service 2>/dev/null || true
  fi
  local pids
  pids=$(foreign)
  if [ -n "$pids" ]; then
    echo "pcscd-netns: stopping pcscd outside namespace $ns (pid $pids)"
    kill $pids 2>/dev/null || true
    for _ in $(seq 50); do [ -z "$(foreign)" ] && break; sleep 0.1; done
    pids=$(foreign); [ -z "$pids" ] || kill -9 $pids 2>/dev/null || true
  fi
}

start() {
  if [ "$(id -u)" -ne 0 ]; then echo "pcscd-netns: must run as root" >&2; exit 2; fi
  mkdir -p "$rundir"
  if ! ip netns list | awk '{print $1}' | grep -qx "$ns"; then
    ip netns add "$ns"
  fi
  ip -n "$ns" link set lo up
  stop_foreign
  if [ -n "$(ours)" ] && socket_answers; then
    echo "pcscd-netns: pcscd already running in namespace $ns"
    return 0
  fi
  pids=$(ours); [ -z "$pids" ] || kill $pids 2>/dev/null || true
  echo "pcscd-netns: starting pcscd in namespace $ns (log: $rundir/pcscd.log)"
  setsid ip netns exec "$ns" pcscd --foreground --info >"$rundir/pcscd.log" 2>&1 </dev/null &
  for _ in $(seq 100); do
    if [ -n "$(ours)" ] && socket_answers; then return 0; fi
    sleep 0.1
  done
  echo "pcscd-netns: pcscd did not answer on $sock; see $rundir/pcscd.log" >&2
  tail -n 20 "$rundir/pcscd.log" >&2 || true
  exit 1
}

stop() {
  local pids
  pids=$(ours)
  [ -z "$pids" ] && return 0
  kill $pids 2>/dev/null || true
  for _ in $(seq 50); do [ -z "$(ours)" ] && return 0; sleep 0.1; done
  kill -9 $(ours) 2>/dev/null || true
}

status() {
  local pids
  pids=$(ours)
  if [ -n "$pids" ] && socket_answers; then
    echo "pcscd running in namespace $ns (pid $pids)"
  else
    echo "pcscd not running in namespace $ns"; exit 1
  fi
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) status ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
