"""``cardkit sign`` and ``cardkit token``: the card's authentication key through PKCS#11, and
login tokens made and checked as the agent and a portal do."""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click

from cardkit.algorithms import Algorithm
from cardkit.auth import (
    Challenge,
    MemoryNonceStore,
    RevocationPolicy,
    TokenRejected,
    Validator,
    ValidatorConfig,
    normalize_origin,
)
from cardkit.auth.card_login import create_login_token
from cardkit.auth.challenge import check_nonce
from cardkit.auth.trust import load_trust
from cardkit.cli._base import (
    State,
    emit_json,
    json_option,
    pin_stdin_option,
    read_secret,
    reader_option,
)
from cardkit.cps.card import open_cps, with_tries_left
from cardkit.cps.pkcs11 import authentication_key
from cardkit.errors import CardkitError, ExitCode, WrongPin
from cardkit.identity import CardType, fingerprint
from cardkit.pkcs11 import KeyPair, Module, Token, find_module
from cardkit.transport.readers import explain_failure, resolve_reader

algorithm_option = click.option(
    "--mechanism",
    type=click.Choice([a.value for a in Algorithm]),
    default="RS256",
    show_default=True,
)
module_option = click.option("--module", "module_path", help="PKCS#11 module (default: discovery)")


@contextlib.contextmanager
def _pkcs11_card(
    state: State, reader: str | None, module_path: str | None
) -> Iterator[tuple[str, Module, Any]]:
    """(reader, module, the certificate the card's own face carries): the certificate guides
    the PKCS#11 key lookup; a wrong PIN is reported with the tries the card says are left."""
    name = resolve_reader(state.backend, reader)
    with open_cps(state.backend, name) as card:
        expected = card.certificates().authentication
    module = Module.load(Path(find_module(module_path).path))
    try:
        yield name, module, expected
    except WrongPin as exc:
        raise with_tries_left(exc, state.backend, name) from None
    except CardkitError as exc:
        raise explain_failure(exc, state.backend, name) from exc


@click.command()
@click.argument("file", type=click.File("rb"))
@algorithm_option
@reader_option
@module_option
@click.option("--out", type=click.File("wb"), help="write the raw signature here")
@pin_stdin_option
@json_option
@click.pass_obj
def sign(  # noqa: PLR0917 - click passes options positionally
    state: State,
    file: Any,
    mechanism: str,
    reader: str | None,
    module_path: str | None,
    out: Any,
    pin_stdin: bool,
    as_json: bool,
) -> None:
    """Sign FILE with the card's authentication key, through PKCS#11."""
    data = file.read()
    with _pkcs11_card(state, reader, module_path) as (name, module, expected):
        pin = read_secret("PIN", pin_stdin)
        pair: KeyPair
        token: Token
        with authentication_key(module, name, pin, expected) as (token, pair):
            signature = token.sign(pair, data, Algorithm(mechanism))
    if out is not None:
        out.write(signature)
    result = {
        "algorithm": mechanism,
        "signature": base64.b64encode(signature).decode(),
        "certificate_sha256": fingerprint(pair.certificate),
        "module": str(module.path),
    }
    if as_json:
        emit_json(result)
    elif out is None:
        click.echo(result["signature"])


@click.group("token")
def token_group() -> None:
    """CPS login tokens: create one with the card, verify one as a portal would."""


@token_group.command("create")
@click.option("--origin", required=True, help="the portal's origin, https://host[:port]")
@click.option("--nonce", required=True, help="the portal's challenge (base64url, >= 32 bytes)")
@algorithm_option
@reader_option
@module_option
@pin_stdin_option
@click.pass_obj
def token_create(  # noqa: PLR0917
    state: State,
    origin: str,
    nonce: str,
    mechanism: str,
    reader: str | None,
    module_path: str | None,
    pin_stdin: bool,
) -> None:
    """Sign ORIGIN's challenge with the inserted card; prints the token (JSON)."""
    origin = normalize_origin(origin)  # refuse before the PIN is even asked
    check_nonce(nonce)
    with _pkcs11_card(state, reader, module_path) as (name, module, expected):
        pin = read_secret("PIN", pin_stdin)
        created = create_login_token(
            module, name, pin, origin, nonce, Algorithm(mechanism), expected
        )
    click.echo(created.to_json())


@token_group.command("verify")
@click.argument("file", type=click.File("rb"))
@click.option("--origin", required=True)
@click.option("--nonce", required=True, help="the challenge the portal issued")
@click.option(
    "--trust", type=click.Choice(["test", "production"]), default="test", show_default=True
)
@click.option("--trust-dir", type=click.Path(file_okay=False, path_type=Path))
@click.option(
    "--revocation",
    type=click.Choice([p.value for p in RevocationPolicy]),
    default="hard-fail",
    show_default=True,
    help="hard-fail: a certificate whose status cannot be fetched is rejected",
)
@json_option
def token_verify(  # noqa: PLR0917
    file: Any,
    origin: str,
    nonce: str,
    trust: str,
    trust_dir: Path | None,
    revocation: str,
    as_json: bool,
) -> None:
    """Validate a token as a portal would (treating NONCE as the challenge it issued).
    Exit 0 accepted, 1 rejected."""
    roots, intermediates = load_trust(trust, trust_dir)
    validator = Validator(
        ValidatorConfig(roots, intermediates, revocation=RevocationPolicy(revocation))
    )
    store = MemoryNonceStore()
    store.issue(Challenge(nonce, dt.datetime.now(dt.UTC) + dt.timedelta(minutes=5)))
    try:
        who = validator.validate(file.read(), origin, nonce, store)
    except TokenRejected as exc:
        if as_json:
            emit_json({"valid": False, "reason": exc.reason, "detail": exc.detail})
        else:
            click.echo(f"rejected: {exc}")
        sys.exit(ExitCode.FAILURE)
    if as_json:
        emit_json({"valid": True, "professional": who.to_dict()})
        return
    click.echo(
        f"valid: {CardType(who.card_type).label} {who.identifier_type.value} {who.identifier}"
        f", {who.display_name}, {who.profession or '-'}"
    )
