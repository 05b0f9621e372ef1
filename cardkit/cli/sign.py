"""``cardkit sign``: a file signed with the card's authentication key, through PKCS#11."""

from __future__ import annotations

import base64
from typing import Any

import click
from cryptography import x509

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
from cardkit.identity import fingerprint


@click.command()
@click.argument("file", type=click.File("rb"))
@algorithm_option
@reader_option
@module_option
@click.option("--out", type=click.File("wb"), help="write the raw signature here")
@pin_stdin_option
@json_option
@click.pass_obj
@card_command
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
    card = pkcs11_card(state, reader, module_path)
    pin = read_secret("PIN", pin_stdin)
    signed = card.run("sign_data", pin=pin, data=data, algorithm=mechanism)
    pin = ""
    signature: bytes = signed["signature"]
    if out is not None:
        out.write(signature)
    result = {
        "algorithm": mechanism,
        "signature": base64.b64encode(signature).decode(),
        "certificate_sha256": fingerprint(x509.load_der_x509_certificate(signed["certificate"])),
        "module": card.module,
    }
    if as_json:
        emit_json(result)
    elif out is None:
        click.echo(result["signature"])
