#!/usr/bin/env bash
# Set up (idempotent), start pcscd in its namespace and mock cards in the virtual readers,
# show what cardkit sees, start the mock portal on http://localhost:8000, then run the agent
# and its bridge in the foreground (Ctrl-C stops both). The cards keep running:
#   scripts/demo.sh stop      pulls them out and stops them
#   python -m mocks.vpcd ctl --slot N remove|insert     pulls out / puts back a card
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$here"
if [ "$(id -u)" -eq 0 ]; then SUDO=(); else SUDO=(sudo -E); fi
rundir=${CARDKIT_RUN_DIR:-/run/cardkit}

stop_cards() {
  local f
  for f in "$rundir"/demo-slot*.pid; do
    [ -e "$f" ] || continue
    "${SUDO[@]}" kill "$(cat "$f")" 2>/dev/null || true
    "${SUDO[@]}" rm -f "$f"
  done
}

if [ "${1:-}" = "stop" ]; then
  stop_cards
  echo "demo: mock cards stopped"
  exit 0
fi

bash scripts/setup.sh
stop_cards

start_card() {  # profile slot
  local log="$rundir/demo-slot$2.log"
  "${SUDO[@]}" bash -c "setsid '$here/.venv/bin/python' -m mocks.vpcd --profile '$1' --slot '$2' \
    >'$log' 2>&1 </dev/null & echo \$! > '$rundir/demo-slot$2.pid'"
  for _ in $(seq 100); do
    if grep -q "inserted in vpcd slot" "$log" 2>/dev/null; then return 0; fi
    if grep -q "^error" "$log" 2>/dev/null; then cat "$log" >&2; exit 1; fi
    sleep 0.1
  done
  echo "demo: the mock card $1 did not start; see $log" >&2
  exit 1
}

start_card cps-doctor 0     # the professional's card ...
start_card vitale-family 1  # ... and the patient's, as in a two-slot reader
sleep 0.5  # pcscd polls vpcd every ~400 ms

echo
echo "== cardkit readers"
.venv/bin/cardkit readers
echo
echo "== cardkit info"
.venv/bin/cardkit info --reader "Virtual PCD 00 00"
echo
echo "== cardkit vitale read"
.venv/bin/cardkit vitale read
port=${CARDKIT_PORT:-38470}
origin=https://portal.example
pinfile="$rundir/demo-pin"
"${SUDO[@]}" bash -c "umask 077; echo 1234 > '$pinfile'; chown $(id -u) '$pinfile'"
cat <<TXT

The mock CPS (cps-doctor, PIN 1234) sits in "Virtual PCD 00 00", the mock Vitale card
(vitale-family) in "Virtual PCD 00 01". The agent now starts with its bridge on
http://127.0.0.1:$port, allowing the origin $origin; for this demo its PIN provider
is scripted (it answers 1234 from $pinfile), which a real installation never uses.

Try, from another terminal:
  curl -s -H "Origin: $origin" http://127.0.0.1:$port/v1/status
  curl -s -H "Origin: $origin" -H "Content-Type: application/json" \\
       -d "{\"nonce\": \"\$(python3 -c 'import base64,secrets;print(base64.urlsafe_b64encode(secrets.token_bytes(32)).rstrip(b"=").decode())')\"}" \\
       http://127.0.0.1:$port/v1/auth
  curl -s -H "Origin: $origin" -H "Content-Type: application/json" -d '{}' \\
       http://127.0.0.1:$port/v1/vitale/read
  curl -s -H "Origin: https://evil.example" http://127.0.0.1:$port/v1/status   (refused)
  .venv/bin/cardkit vitale read        .venv/bin/cardkit pin status
  pkcs11-tool --module opensc-pkcs11.so -O    (stock OpenSC reads the mock CPS as a CPS3)
  .venv/bin/python -m mocks.vpcd ctl --slot 0 remove    (then: insert; sudo if not root)
Ctrl-C stops the agent and the portal; scripts/demo.sh stop stops the mock cards.

The mock portal: open http://localhost:8000/identification and click
"VOUS CONNECTER PAR CARTE CPS" (demo accounts: .venv/bin/cardkit portal accounts), or
"Se connecter avec Pro Santé Connect" (the mock PSC provider on http://127.0.0.1:8600:
CPS card, or e-CPS approved at http://127.0.0.1:8600/ecps/telephone/899700075122, code 1234).

TXT
portal_port=${CARDKIT_PORTAL_PORT:-8000}
psc_port=${CARDKIT_PSC_PORT:-8600}
portal_db="$(mktemp -d)/portal.db"
.venv/bin/cardkit psc run --port "$psc_port" --bridge-port "$port" \
  --client "portail:secret-portail:http://localhost:$portal_port/psc/retour" &
psc_pid=$!
.venv/bin/cardkit portal run --port "$portal_port" --bridge-port "$port" \
  --store "sqlite:$portal_db" --seed demo \
  --psc "http://127.0.0.1:$psc_port/auth/realms/esante-wallet" &
portal_pid=$!
trap 'kill "$portal_pid" "$psc_pid" 2>/dev/null || true' EXIT
echo "portal: http://localhost:$portal_port/identification"
export CARDKIT_TEST_MODE=1  # the scripted PIN provider is refused without it
.venv/bin/cardkit agent run --port "$port" --allow-origin "$origin" \
  --allow-origin "http://localhost:$portal_port" --allow-origin "http://127.0.0.1:$psc_port" \
  --pin-provider "scripted:$pinfile"
