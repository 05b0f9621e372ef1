"""``python -m bench NAME [options]``: run one benchmark (see ``python -m bench --help``)."""

from __future__ import annotations

import sys

BENCHES = {
    "apdu": "bench.apdu",
    "bridge": "bench.bridge",
    "idle": "bench.idle",
    "mute": "bench.mute",
    "pkcs11": "bench.pkcs11",
    "portal": "bench.portal",
    "psc": "bench.psc",
    "token": "bench.token",
}


def main() -> None:
    if len(sys.argv) < 2 or sys.argv[1] not in BENCHES:
        print(f"usage: python -m bench {{{','.join(BENCHES)}}} [options]", file=sys.stderr)
        sys.exit(2)
    import importlib

    module = importlib.import_module(BENCHES[sys.argv[1]])
    module.main(sys.argv[2:])


if __name__ == "__main__":
    main()
