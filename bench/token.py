"""Portal-side validation throughput, against ``openssl verify`` once per token on the same
chain, in one run.

Two validator set-ups: revocation off (path validation cached per certificate after the first
token), and soft-fail revocation with OCSP answers from the TEST PKI's responder (cached by
their nextUpdate); each for ``cardkit:1`` tokens and for ``web-eid:1.0`` tokens of the same
card (``validate_web_eid``). Tokens are made beforehand (signed with the TEST keys), so only
validation is timed. ``openssl verify`` checks the chain alone, without the token's signature
or nonce: it is the cost of shelling out to the usual tool for the smallest part of the job.
"""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import functools
import json
import secrets
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding

from bench.stats import emit, interleave, ratio, report
from cardkit.auth import (
    Challenge,
    MemoryNonceStore,
    RevocationPolicy,
    Validator,
    ValidatorConfig,
    webeid,
)
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


def _validating_web_eid(validator: Validator, n: int) -> Callable[[], None]:
    """The same for ``web-eid:1.0`` tokens of the same card, through ``validate_web_eid``
    (Web eID's defaults), each with a Web eID nonce of its own."""
    key, cert = pki.card_credentials("cps-doctor", "auth")
    store = MemoryNonceStore()
    made = []
    for _ in range(n):
        nonce = base64.b64encode(secrets.token_bytes(32)).decode()
        store.issue(Challenge(nonce, dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)))
        sign = functools.partial(key.sign, padding=padding.PKCS1v15(), algorithm=hashes.SHA256())
        made.append((json.dumps(webeid.create_token(sign, cert, ORIGIN, nonce)), nonce))
    tokens = iter(made)

    def validate() -> None:
        token, nonce = next(tokens)
        validator.validate_web_eid(token, ORIGIN, nonce, store)

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
                "web_eid_revocation_off": _validating_web_eid(
                    validator(RevocationPolicy.OFF), n + warm
                ),
                "web_eid_ocsp_cached": _validating_web_eid(
                    validator(RevocationPolicy.SOFT_FAIL), n + warm
                ),
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
        "ratio_web_eid": ratio(validations["web_eid_revocation_off"], tool, 4),
        "ratio_web_eid_ocsp_cached": ratio(validations["web_eid_ocsp_cached"], tool, 4),
        "ratio_web_eid_over_cardkit": ratio(
            validations["web_eid_revocation_off"], validations["revocation_off"], 3
        ),
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
    for name in ("web_eid_revocation_off", "web_eid_ocsp_cached"):
        row = result[name]
        assert isinstance(row, dict)
        print(f"  {name:22}: median {row['median_us']:9.1f} us  {row['per_second']:8.1f}/s")
    print(f"  ratio (Web eID / openssl): {result['ratio_web_eid']}")
    print(f"  ratio (Web eID / cardkit:1): {result['ratio_web_eid_over_cardkit']}")
    emit(result)
