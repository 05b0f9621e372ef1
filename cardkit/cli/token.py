"""``cardkit token``: login tokens made with the card as the agent makes them, and checked as
a portal checks them."""

from __future__ import annotations

import datetime as dt
import json
import sys
from pathlib import Path
from typing import Any

import click

from cardkit.auth import (
    Challenge,
    MemoryNonceStore,
    RevocationPolicy,
    TokenRejected,
    Validator,
    ValidatorConfig,
    normalize_origin,
    webeid,
)
from cardkit.auth.trust import load_trust
from cardkit.cli._base import (
    State,
    card_command,
    emit_json,
    json_option,
    pin_stdin_option,
    read_secret,
    reader_option,
)
from cardkit.cli._pkcs11 import algorithm_option, module_option, pkcs11_card
from cardkit.errors import ExitCode
from cardkit.identity import CardType


@click.group("token")
def token_group() -> None:
    """CPS login tokens: create one with the card, verify one as a portal would."""


@token_group.command("create")
@click.option("--origin", required=True, help="the portal's origin, https://host[:port]")
@click.option("--nonce", required=True, help="the portal's challenge (base64url, >= 32 bytes)")
@click.option(
    "--format",
    "wire_format",
    type=click.Choice(["cardkit:1", "web-eid:1.0"]),
    default="cardkit:1",
    show_default=True,
    help="cardkit's token, or Web eID's (its nonce is 44 to 128 base64 characters)",
)
@algorithm_option
@reader_option
@module_option
@pin_stdin_option
@click.pass_obj
@card_command
def token_create(  # noqa: PLR0917
    state: State,
    origin: str,
    nonce: str,
    wire_format: str,
    mechanism: str,
    reader: str | None,
    module_path: str | None,
    pin_stdin: bool,
) -> None:
    """Sign ORIGIN's challenge with the inserted card; prints the token (JSON)."""
    origin = normalize_origin(origin)  # refuse before the PIN is even asked
    webeid.check_login_nonce(nonce, wire_format)
    card = pkcs11_card(state, reader, module_path)
    pin = read_secret("PIN", pin_stdin)
    created = card.run(
        "login_token",
        pin=pin,
        origin=origin,
        nonce=nonce,
        algorithm=mechanism,
        wire_format=wire_format,
    )
    pin = ""
    click.echo(json.dumps(created, separators=(",", ":")))


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
