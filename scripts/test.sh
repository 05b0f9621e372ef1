#!/usr/bin/env bash
# Set up (idempotent) and run the whole test suite: lint, type check, and pytest with every
# marker (in-process, PC/SC through pcscd+vpcd, third-party tools). Extra arguments go to
# pytest, e.g. scripts/test.sh -k monitor.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$here"

bash scripts/setup.sh

echo "== ruff"
.venv/bin/ruff check cardkit agent mocks bench tests scripts
.venv/bin/ruff format --check cardkit agent mocks bench tests scripts
echo "== mypy"
.venv/bin/mypy
echo "== portal-only install: pip install cardkit, no extras, validates a token"
bare="$(mktemp -d)"
trap 'rm -rf "$bare"' EXIT
"${PYTHON:-python3}" -m venv "$bare/venv"
"$bare/venv/bin/python" -m pip install -q "$here"
.venv/bin/python scripts/portal_install_check.py make "$bare/login"
(cd "$bare" && "$bare/venv/bin/python" "$here/scripts/portal_install_check.py" validate "$bare/login")
echo "== pytest"
if [ "$(id -u)" -eq 0 ]; then RUN=(); else RUN=(sudo -E); fi
# Mock cards enter pcscd's network namespace, which needs root. pytest exits 5 when no test
# ran: tests are expected here, so that is a failure like any other non-zero code.
"${RUN[@]}" .venv/bin/python -m pytest -p no:cacheprovider "$@"
