"""Portal-side validation throughput, against ``openssl verify`` once per token on the same
chain, in one run.

Two validator set-ups: revocation off (path validation cached per certificate after the first
token), and soft-fail revocation with OCSP answers from the TEST PKI's responder (cached by
their nextUpdate). Tokens are made beforehand (signed with the TEST keys), so only validation
is timed. ``openssl verify`` checks the chain alone, without the token's signature or nonce:
it is the cost of shelling out to the usual tool for the smallest part of the job.
"""

from __future__ import annotations

import argparse
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path

from bench.stats import emit, interleave, ratio, report
from cardkit.auth import RevocationPolicy, Validator, ValidatorConfig
from mocks import pki
from mocks.revocation import RevocationServer
from mocks.tokens import ORIGIN, issue


def _validating(validator: Validator, n: int) -> Callable[[], None]:
    """One validation per call, each of a token of its own (made beforehand)."""
    key, cert = pki.card_credentials("cps-doctor", "auth")
    tokens = iter([issue(key, cert) for _ in range(n)])

    def validate() -> None:
        t = next(tokens)
        validator.validate(t.token, ORIGIN, t.nonce, t.store)

    return validate


def run(n: int, openssl_runs: int) -> dict[str, object]:
    anchors, intermediates = pki.trust_anchors(), pki.intermediates()

    def validator(policy: RevocationPolicy) -> Validator:
        return Validator(ValidatorConfig(anchors, intermediates, revocation=policy))

    warm = 5  # the path validation and OCSP caches
    with RevocationServer() as server:
        validations = interleave(
            {
                "revocation_off": _validating(validator(RevocationPolicy.OFF), n + warm),
                "ocsp_cached": _validating(validator(RevocationPolicy.SOFT_FAIL), n + warm),
            },
            n,
            warm,
        )
        fetched = server.ocsp_requests + server.crl_requests
    with tempfile.TemporaryDirectory() as tmp:
        leaf = Path(tmp) / "leaf.pem"
        leaf.write_bytes((pki.PKI_DIR / "cards/cps-doctor/auth.crt.pem").read_bytes())
        chain = Path(tmp) / "inter.pem"
        chain.write_bytes((pki.PKI_DIR / "ca/personnes.crt.pem").read_bytes())
        command = ["openssl", "verify", "-CAfile", str(pki.PKI_DIR / "ca/root.crt.pem")]
        command += ["-untrusted", str(chain), str(leaf)]
        tool = interleave(
            {"openssl": lambda: subprocess.run(command, check=True, capture_output=True)},
            openssl_runs,
        )["openssl"]
    summaries = report({**validations, "openssl_verify_process": tool})
    for name in validations:
        summaries[name]["per_second"] = round(1e6 / summaries[name]["median_us"], 1)
    summaries["ocsp_cached"]["responder_requests"] = fetched
    return {
        "bench": "token",
        "n": n,
        **summaries,
        "ratio": ratio(validations["revocation_off"], tool, 4),
        "ratio_ocsp_cached": ratio(validations["ocsp_cached"], tool, 4),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench token", description=__doc__)
    parser.add_argument("--n", type=int, default=300, help="tokens validated per set-up")
    parser.add_argument("--openssl-runs", type=int, default=30)
    args = parser.parse_args(argv)
    result = run(args.n, args.openssl_runs)
    off, ocsp, tool = (
        result["revocation_off"],
        result["ocsp_cached"],
        result["openssl_verify_process"],
    )
    assert isinstance(off, dict) and isinstance(ocsp, dict) and isinstance(tool, dict)
    print(f"token validation, {args.n} tokens per set-up")
    print(
        f"  revocation off        : median {off['median_us']:9.1f} us  {off['per_second']:8.1f}/s"
    )
    print(
        f"  OCSP, cached answers  : median {ocsp['median_us']:9.1f} us  {ocsp['per_second']:8.1f}/s"
        f"  ({ocsp['responder_requests']} responder requests in all)"
    )
    print(f"  openssl verify process: median {tool['median_us']:9.1f} us")
    print(f"  ratio (off / openssl) : {result['ratio']}")
    print(f"  ratio (OCSP / openssl): {result['ratio_ocsp_cached']}")
    emit(result)
