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
import time
from pathlib import Path

from bench.stats import emit, summary
from cardkit.auth import RevocationPolicy, Validator, ValidatorConfig
from mocks import pki
from mocks.revocation import RevocationServer
from mocks.tokens import ORIGIN, issue


def _validations(validator: Validator, n: int) -> list[int]:
    key, cert = pki.card_credentials("cps-doctor", "auth")
    tokens = [issue(key, cert) for _ in range(n + 5)]
    for t in tokens[:5]:  # warm the caches
        validator.validate(t.token, ORIGIN, t.nonce, t.store)
    samples = []
    for t in tokens[5:]:
        t0 = time.perf_counter_ns()
        validator.validate(t.token, ORIGIN, t.nonce, t.store)
        samples.append(time.perf_counter_ns() - t0)
    return samples


def run(n: int, openssl_runs: int) -> dict[str, object]:
    anchors, intermediates = pki.trust_anchors(), pki.intermediates()
    off = _validations(
        Validator(ValidatorConfig(anchors, intermediates, revocation=RevocationPolicy.OFF)), n
    )
    with RevocationServer() as server:
        ocsp = _validations(
            Validator(
                ValidatorConfig(anchors, intermediates, revocation=RevocationPolicy.SOFT_FAIL)
            ),
            n,
        )
        fetched = server.ocsp_requests + server.crl_requests
    tool: list[int] = []
    with tempfile.TemporaryDirectory() as tmp:
        leaf = Path(tmp) / "leaf.pem"
        leaf.write_bytes((pki.PKI_DIR / "cards/cps-doctor/auth.crt.pem").read_bytes())
        chain = Path(tmp) / "inter.pem"
        chain.write_bytes((pki.PKI_DIR / "ca/personnes.crt.pem").read_bytes())
        for _ in range(openssl_runs):
            t0 = time.perf_counter_ns()
            subprocess.run(
                [
                    "openssl",
                    "verify",
                    "-CAfile",
                    str(pki.PKI_DIR / "ca/root.crt.pem"),
                    "-untrusted",
                    str(chain),
                    str(leaf),
                ],
                check=True,
                capture_output=True,
            )
            tool.append(time.perf_counter_ns() - t0)
    s_off, s_ocsp, s_tool = summary(off), summary(ocsp), summary(tool)
    return {
        "bench": "token",
        "n": n,
        "revocation_off": {**s_off, "per_second": round(1e6 / s_off["median_us"], 1)},
        "ocsp_cached": {
            **s_ocsp,
            "per_second": round(1e6 / s_ocsp["median_us"], 1),
            "responder_requests": fetched,
        },
        "openssl_verify_process": s_tool,
        "ratio": round(s_off["median_us"] / s_tool["median_us"], 4),
        "ratio_ocsp_cached": round(s_ocsp["median_us"] / s_tool["median_us"], 4),
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
