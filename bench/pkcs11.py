"""cardkit's PKCS#11 signature vs raw PyKCS11 ``C_Sign`` on the same session, and vs one
``pkcs11-tool --sign`` process per signature (what a script calling the tool would pay).

Default: the real path, OpenSC's module with its default configuration reading a mock CPS
through pcscd, as its IAS-ECC "CPx" driver reads a CPS3 (MSE SET + INTERNAL AUTHENTICATE; the
card is served by a separate process: PyKCS11 keeps the GIL inside the module). ``--softhsm``
measures against SoftHSM2 instead, where the token is fast enough for cardkit's own overhead
to show. The baseline is the mechanism the card signs with, CKM_RSA_PKCS over a DigestInfo
computed beforehand.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

import PyKCS11

from bench.stats import emit, interleave, ratio, report
from cardkit.algorithms import sha256_digest_info
from cardkit.cps.pkcs11 import find_authentication_key
from cardkit.pkcs11 import Algorithm, Module, search_list
from cardkit.transport.pcsc import PcscBackend

DATA = b"https://portal.example" + bytes(32)


def _mock_card(stack: ExitStack) -> str:
    """A mock CPS in a free vpcd slot, served by its own process; returns the reader."""
    from mocks.harness import HarnessError, start_card_process

    backend = PcscBackend()
    try:
        card = start_card_process(
            backend, "cps-doctor", Path(stack.enter_context(tempfile.TemporaryDirectory()))
        )
    except HarnessError as exc:
        raise SystemExit(str(exc)) from None
    stack.callback(card.stop)
    backend.close()
    return card.reader


def run(n: int, tool_runs: int, softhsm: bool) -> dict[str, object]:
    with ExitStack() as stack:
        if softhsm:
            from mocks.softhsm import SoftHsm

            hsm = SoftHsm.create(Path(stack.enter_context(tempfile.TemporaryDirectory())))
            hsm.provision("cps-doctor")
            os.environ.update(hsm.environ())
            module_path = hsm.module
            module = Module.load(module_path)
            slot = next(s for s in module.slots() if s.token_label == "cps-doctor").slot
            tool_slot = ["--token-label", "cps-doctor"]
            env = {**os.environ}
        else:
            if "OPENSC_CONF" in os.environ:
                raise SystemExit("unset OPENSC_CONF: this measures OpenSC as installed")
            reader = _mock_card(stack)
            module_path = Path(next(c.path for c in search_list() if c.kind == "opensc"))
            module = Module.load(module_path)
            slot = module.slot_for(reader).slot
            tool_slot = ["--slot-description", reader]
            env = {**os.environ}
        token = stack.enter_context(module.open(slot))
        token.login("1234")
        pair = find_authentication_key(token)
        key_id = pair.cka_id.hex()
        mechanism = PyKCS11.Mechanism(PyKCS11.CKM_RSA_PKCS)
        digest_info = sha256_digest_info(DATA)

        def cardkit_call() -> None:
            token.sign(pair, DATA, Algorithm.RS256)

        def raw_call() -> None:
            token.session.sign(pair.private_key, digest_info, mechanism)

        def raw_bytes_call() -> None:
            # What any caller pays to use the signature: PyKCS11 returns a SWIG vector whose
            # conversion to bytes walks it element by element (~80 us for 256 bytes).
            bytes(token.session.sign(pair.private_key, digest_info, mechanism))

        samples = interleave(
            {"cardkit": cardkit_call, "pykcs11": raw_call, "pykcs11_with_bytes": raw_bytes_call},
            n,
            warm_up=3,
        )
        clock = time.perf_counter_ns
        message = Path(stack.enter_context(tempfile.TemporaryDirectory())) / "msg"
        message.write_bytes(digest_info)
        tool: list[int] = []
        for _ in range(tool_runs):
            t0 = clock()
            subprocess.run(
                [
                    "pkcs11-tool",
                    "--module",
                    str(module_path),
                    *tool_slot,
                    "--login",
                    "--pin",
                    "1234",
                    "--sign",
                    "-m",
                    "RSA-PKCS",
                    "--id",
                    key_id,
                    "-i",
                    str(message),
                    "-o",
                    str(message.with_suffix(".sig")),
                ],
                env=env,
                check=True,
                capture_output=True,
            )
            tool.append(clock() - t0)
    ours = samples["cardkit"]
    return {
        "bench": "pkcs11",
        "token": "softhsm2" if softhsm else "opensc+mock-cps",
        "n": n,
        **report({**samples, "pkcs11_tool_process": tool}),
        "ratio": ratio(ours, samples["pykcs11"]),
        "ratio_vs_pykcs11_with_bytes": ratio(ours, samples["pykcs11_with_bytes"]),
        "ratio_vs_pkcs11_tool": ratio(ours, tool, 4),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench pkcs11", description=__doc__)
    parser.add_argument("--n", type=int, default=100, help="signatures per side")
    parser.add_argument("--tool-runs", type=int, default=10, help="pkcs11-tool processes")
    parser.add_argument("--softhsm", action="store_true", help="SoftHSM2 instead of OpenSC+mock")
    args = parser.parse_args(argv)
    result = run(args.n, args.tool_runs, args.softhsm)
    ck, raw, tl = result["cardkit"], result["pykcs11"], result["pkcs11_tool_process"]
    assert isinstance(ck, dict) and isinstance(raw, dict) and isinstance(tl, dict)
    rb = result["pykcs11_with_bytes"]
    assert isinstance(rb, dict)
    print(f"RS256 signatures on {result['token']}, {args.n} per side")
    rows = [
        ("cardkit Token.sign", ck),
        ("PyKCS11 C_Sign, same session", raw),
        ("PyKCS11 C_Sign + bytes()", rb),
        ("pkcs11-tool, one process each", tl),
    ]
    for label, row in rows:
        print(f"  {label:31}: median {row['median_us']:10.1f} us  p99 {row['p99_us']:10.1f} us")
    print(f"  ratio cardkit / C_Sign         : {result['ratio']}")
    print(f"  ratio cardkit / C_Sign+bytes() : {result['ratio_vs_pykcs11_with_bytes']}")
    print(f"  ratio cardkit / pkcs11-tool    : {result['ratio_vs_pkcs11_tool']}")
    emit(result)
