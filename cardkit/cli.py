"""The ``cardkit`` command. Thin: it opens things, calls the library, and prints.

Errors are mapped to messages and exit codes in one place (:func:`main`); ``--json`` output
is a stable contract documented in the README (keys are only ever added).
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import json
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import click
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import NameOID
from rich.console import Console
from rich.table import Table

from cardkit import __version__
from cardkit.apdu import ApduError
from cardkit.atr import Atr, AtrError, CardFamily, CardIdentity, identify
from cardkit.auth import (
    Challenge,
    MemoryNonceStore,
    RevocationPolicy,
    TokenRejected,
    Validator,
    ValidatorConfig,
    create_token,
    normalize_origin,
)
from cardkit.auth.challenge import check_nonce
from cardkit.auth.trust import load_trust
from cardkit.cps import CardType, CpsCard
from cardkit.cps.identity import fingerprint
from cardkit.errors import CardError, CardkitError, PinError, WrongPin
from cardkit.pkcs11 import Algorithm, KeyPair, Module, Token, find_module
from cardkit.transport import (
    NoCard,
    ReaderBackend,
    ReaderUnavailable,
    TransportError,
    pcsc_backend,
    select_reader,
)
from cardkit.transport.base import CardConnection, CardRemoved
from cardkit.vitale.nir import Nir, NirError, NirKeyMismatch
from cardkit.vitale.source import PcscVitaleSource

#: Exit codes, stable for scripts: 0 ok, 1 failure, 2 usage, then by cause.
EXIT_FAILURE = 1
EXIT_NO_READER = 3
EXIT_NO_CARD = 4
EXIT_CARD_ERROR = 5
EXIT_PIN = 6

_EXIT_CODES: list[tuple[type[Exception], int]] = [
    (ReaderUnavailable, EXIT_NO_READER),
    (PinError, EXIT_PIN),
    (NoCard, EXIT_NO_CARD),
    (CardRemoved, EXIT_NO_CARD),
    (ApduError, EXIT_CARD_ERROR),
    (TransportError, EXIT_CARD_ERROR),
    (CardError, EXIT_CARD_ERROR),
    (CardkitError, EXIT_FAILURE),
]


def exit_code_for(exc: CardkitError) -> int:
    return next(code for cls, code in _EXIT_CODES if isinstance(exc, cls))


class State:
    """What every command needs: the backend (injectable for tests) and output mode."""

    def __init__(self, backend_factory: Callable[[], ReaderBackend] = pcsc_backend) -> None:
        self._factory = backend_factory
        self._backend: ReaderBackend | None = None
        self.json = False
        self.console = Console()

    @property
    def backend(self) -> ReaderBackend:
        if self._backend is None:
            self._backend = self._factory()
        return self._backend


def _emit_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, ensure_ascii=False))


def _card_json(identity: CardIdentity) -> dict[str, Any]:
    return {
        "family": identity.family.value,
        "name": identity.name,
        "source": identity.source,
        "known": identity.known,
        "descriptions": list(identity.descriptions),
    }


def _atr_json(raw: bytes) -> dict[str, Any]:
    out: dict[str, Any] = {"hex": raw.hex().upper()}
    try:
        atr = Atr.parse(raw)
    except AtrError as exc:
        out.update(valid=False, error=str(exc))
        return out
    out.update(
        valid=True,
        error=None,
        convention=atr.convention,
        protocols=[f"T={p}" for p in atr.protocols],
        fi=atr.fi,
        di=atr.di,
        max_clock_mhz=atr.max_clock_mhz,
        extra_guard_time=atr.extra_guard_time,
        historical=atr.historical.hex().upper(),
        tck=None if atr.tck is None else f"{atr.tck:02X}",
    )
    return out


def _remember_json(ctx: click.Context, param: click.Parameter, value: bool) -> bool:
    state = ctx.find_object(State)
    if state is not None and value:
        state.json = True
    return value


json_option = click.option(
    "--json", "as_json", is_flag=True, callback=_remember_json, help="machine-readable output"
)
reader_option = click.option(
    "--reader", "-r", "reader", metavar="R", help="reader index, name, or part of its name"
)


class _Group(click.Group):
    """Maps cardkit errors to a message and an exit code, whoever invokes the command."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except CardkitError as exc:
            state = ctx.find_object(State)
            as_json = state.json if state is not None else False
            if as_json:
                _emit_json({"error": {"code": exc.code, "message": str(exc)}})
            else:
                click.echo(f"cardkit: {exc}", err=True)
            ctx.exit(exit_code_for(exc))


@click.group(cls=_Group)
@click.version_option(__version__, prog_name="cardkit")
@click.pass_context
def cli(ctx: click.Context) -> None:
    """French health smart cards (CPS, CPE, Vitale) from the command line."""
    if ctx.obj is None:
        ctx.obj = State()


@cli.command()
@json_option
@click.pass_obj
def readers(state: State, as_json: bool) -> None:
    """List readers, whether they hold a card, and which card."""
    found = state.backend.states()
    rows: list[dict[str, Any]] = []
    for index, (name, reader) in enumerate(found.items()):
        identity = identify(reader.atr) if reader.atr else None
        rows.append(
            {
                "index": index,
                "name": name,
                "card_present": reader.card_present,
                "atr": reader.atr.hex().upper() if reader.atr else None,
                "card": _card_json(identity) if identity else None,
            }
        )
    if as_json:
        _emit_json({"readers": rows})
        return
    if not rows:
        state.console.print("No reader found.")
        return
    table = Table(title="Readers")
    for column in ("#", "Reader", "Card", "ATR"):
        table.add_column(column)
    for row in rows:
        card = row["card"]["name"] if row["card"] else "-"
        atr = bytes.fromhex(row["atr"]).hex(" ").upper() if row["atr"] else "-"
        table.add_row(str(row["index"]), row["name"], card, atr)
    state.console.print(table)


@cli.command()
@reader_option
@json_option
@click.pass_obj
def info(state: State, reader: str | None, as_json: bool) -> None:
    """Details of the card in a reader: ATR fields and identification."""
    name = select_reader(state.backend, reader)
    connection = state.backend.connect(name)
    try:
        raw = connection.atr
        protocol = connection.protocol
    finally:
        connection.disconnect()
    identity = identify(raw)
    data: dict[str, Any] = {
        "reader": name,
        "protocol": protocol,
        "atr": _atr_json(raw),
        "card": _card_json(identity),
    }
    if identity.family is CardFamily.CPS:
        data["cps"] = _cps_details(state.backend, name)
    if as_json:
        _emit_json(data)
        return
    table = Table(show_header=False, title=f"Card in {name}")
    table.add_column("field", style="bold")
    table.add_column("value")
    table.add_row("Card", identity.name)
    if identity.source:
        table.add_row("Identified by", identity.source)
    table.add_row("ATR", raw.hex(" ").upper())
    atr = data["atr"]
    if atr["valid"]:
        table.add_row("Protocols", ", ".join(atr["protocols"]) + f" (active {protocol})")
        table.add_row("Convention", atr["convention"])
        table.add_row("Historical bytes", bytes.fromhex(atr["historical"]).hex(" ").upper())
    else:
        table.add_row("ATR problem", atr["error"])
    cps = data.get("cps")
    if cps is not None and "error" in cps:
        table.add_row("Card data", f"unreadable: {cps['error']['message']}")
    elif cps is not None:
        who = cps["identity"]
        table.add_row("Card type", CardType(who["card_type"]).label)
        table.add_row("Serial", cps["serial"])
        holder = " ".join(x for x in (who["given_name"], who["surname"]) if x)
        table.add_row("Holder", holder or who["structure"] or "-")
        if who["structure"] and holder:
            table.add_row("Structure", who["structure"])
        table.add_row("Profession", who["profession"] or "-")
        table.add_row(who["identifier_type"], who["identifier"])
        pin = cps["pin"]
        table.add_row("PIN", "blocked" if pin["blocked"] else f"{pin['tries_left']} tries left")
        for usage, cert in cps["certificates"].items():
            if cert:
                table.add_row(
                    f"Certificate ({usage})",
                    f"{cert['subject']}\nissuer {cert['issuer']}\n"
                    f"valid {cert['not_before'][:10]} to {cert['not_after'][:10]}",
                )
    state.console.print(table)


_NAME_OVERRIDES = {NameOID.GIVEN_NAME: "GN", NameOID.SURNAME: "SN", NameOID.TITLE: "title"}


def _cert_json(cert: x509.Certificate | None) -> dict[str, Any] | None:
    if cert is None:
        return None
    return {
        "subject": cert.subject.rfc4514_string(_NAME_OVERRIDES),
        "issuer": cert.issuer.rfc4514_string(_NAME_OVERRIDES),
        "serial": f"{cert.serial_number:X}",
        "not_before": cert.not_valid_before_utc.isoformat(),
        "not_after": cert.not_valid_after_utc.isoformat(),
        "sha256": fingerprint(cert),
    }


def _cps_details(backend: ReaderBackend, reader: str) -> dict[str, Any]:
    """Identity, serial, PIN tries and certificates; an error is reported, not raised, since
    the ATR part of ``info`` is still worth showing."""
    connection = backend.connect(reader)
    try:
        card = CpsCard(connection)
        certs = card.certificates()
        return {
            "identity": card.identity().to_dict(),
            "serial": card.serial(),
            "pin": card.pin_status().to_dict(),
            "certificates": {
                "authentication": _cert_json(certs.authentication),
                "signature": _cert_json(certs.signature),
            },
        }
    except CardkitError as exc:
        return {"error": {"code": exc.code, "message": str(exc)}}
    finally:
        connection.disconnect()


def _read_secret(what: str, from_stdin: bool, *, confirm: bool = False) -> str:
    """A PIN or PUK: one line of standard input with ``--pin-stdin``, else a hidden TTY
    prompt. Never a command-line argument (it would show in ``ps`` and shell history)."""
    if from_stdin:
        line = sys.stdin.readline()
        if not line:
            raise click.UsageError(f"--pin-stdin: no line for the {what} on standard input")
        return line.rstrip("\r\n")
    if not sys.stdin.isatty():
        raise click.UsageError(f"no terminal to ask the {what}: use --pin-stdin")
    return str(click.prompt(what, hide_input=True, confirmation_prompt=confirm))


pin_stdin_option = click.option(
    "--pin-stdin", is_flag=True, help="read PIN/PUK lines from standard input instead of a prompt"
)


def _open_cps(state: State, reader: str | None) -> tuple[CardConnection, CpsCard]:
    name = select_reader(state.backend, reader)
    connection = state.backend.connect(name)
    try:
        return connection, CpsCard(connection)
    except BaseException:
        connection.disconnect()
        raise


@cli.group()
def pin() -> None:
    """PIN of a CPS/CPE: tries left, change, unblock with the PUK."""


@pin.command("status")
@reader_option
@json_option
@click.pass_obj
def pin_status(state: State, reader: str | None, as_json: bool) -> None:
    """Tries left, read without presenting the PIN (no try is spent)."""
    connection, card = _open_cps(state, reader)
    try:
        status = card.pin_status()
    finally:
        connection.disconnect()
    if as_json:
        _emit_json(status.to_dict())
    elif status.blocked:
        click.echo("PIN blocked: unblock it with the PUK (cardkit pin unblock)")
    elif status.verified:
        click.echo("PIN verified in this session")
    else:
        click.echo(f"PIN: {status.tries_left} tries left")


@pin.command("change")
@reader_option
@pin_stdin_option
@json_option
@click.pass_obj
def pin_change(state: State, reader: str | None, pin_stdin: bool, as_json: bool) -> None:
    """Change the PIN (old PIN, then new PIN)."""
    old = _read_secret("current PIN", pin_stdin)
    new = _read_secret("new PIN", pin_stdin, confirm=True)
    connection, card = _open_cps(state, reader)
    try:
        card.change_pin(old, new)
    finally:
        connection.disconnect()
    _emit_json({"changed": True}) if as_json else click.echo("PIN changed")


@pin.command("unblock")
@reader_option
@pin_stdin_option
@json_option
@click.pass_obj
def pin_unblock(state: State, reader: str | None, pin_stdin: bool, as_json: bool) -> None:
    """Unblock the PIN with the PUK (PUK, then the new PIN)."""
    puk = _read_secret("PUK", pin_stdin)
    new = _read_secret("new PIN", pin_stdin, confirm=True)
    connection, card = _open_cps(state, reader)
    try:
        card.unblock_pin(puk, new)
    finally:
        connection.disconnect()
    _emit_json({"unblocked": True}) if as_json else click.echo("PIN unblocked and changed")


@cli.command()
@reader_option
@click.option("--pem", "fmt", flag_value="pem", help="print the certificates as PEM")
@click.option("--der", "fmt", flag_value="der", help="write one certificate as DER to stdout")
@click.option(
    "--which",
    type=click.Choice(["authentication", "signature"]),
    default=None,
    help="only this certificate (--der defaults to authentication)",
)
@json_option
@click.pass_obj
def certs(
    state: State, reader: str | None, fmt: str | None, which: str | None, as_json: bool
) -> None:
    """The card's certificates: summary, PEM or DER."""
    connection, card = _open_cps(state, reader)
    try:
        found = card.certificates()
    finally:
        connection.disconnect()
    chosen = {"authentication": found.authentication, "signature": found.signature}
    if which:
        chosen = {which: chosen[which]}
    if fmt == "der":
        cert = chosen.get(which or "authentication")
        if cert is None:
            raise click.UsageError("the card has no such certificate")
        if sys.stdout.isatty():
            raise click.UsageError("--der writes binary: redirect standard output to a file")
        sys.stdout.buffer.write(cert.public_bytes(serialization.Encoding.DER))
        return
    if fmt == "pem":
        for cert in chosen.values():
            if cert is not None:
                click.echo(cert.public_bytes(serialization.Encoding.PEM).decode(), nl=False)
        return
    summary = {usage: _cert_json(cert) for usage, cert in chosen.items()}
    if as_json:
        _emit_json(summary)
        return
    for usage, info_ in summary.items():
        if info_:
            click.echo(f"{usage}: {info_['subject']}")
            click.echo(f"  issuer  {info_['issuer']}")
            click.echo(f"  valid   {info_['not_before']} .. {info_['not_after']}")
            click.echo(f"  sha256  {info_['sha256']}")


@contextlib.contextmanager
def _card_key(
    state: State, reader: str | None, module_path: str | None, pin_stdin: bool
) -> Iterator[tuple[Token, KeyPair, str]]:
    """The inserted card's authentication key through PKCS#11, logged in: (token, key pair,
    module path). The certificate read from the card's own face guides the key lookup, and a
    wrong PIN is reported with the tries the card says are left."""
    name = select_reader(state.backend, reader)
    connection, card = _open_cps(state, name)
    try:
        expected = card.certificates().authentication
    finally:
        connection.disconnect()
    candidate = find_module(module_path)
    module = Module.load(Path(candidate.path))
    token = module.open(module.slot_for_reader(name).slot)
    try:
        try:
            token.login(_read_secret("PIN", pin_stdin))
        except WrongPin as exc:
            if exc.tries_left is not None:
                raise
            # PKCS#11 does not say how many tries are left; the card does, at no cost.
            connection, card = _open_cps(state, name)
            try:
                left = card.pin_status().tries_left
            finally:
                connection.disconnect()
            raise WrongPin(f"wrong PIN, {left} tries left", left) from None
        yield token, token.find_authentication_key(expected), str(candidate.path)
    finally:
        token.close()


algorithm_option = click.option(
    "--mechanism",
    type=click.Choice([a.value for a in Algorithm]),
    default="RS256",
    show_default=True,
)
module_option = click.option("--module", "module_path", help="PKCS#11 module (default: discovery)")


@cli.command()
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
    with _card_key(state, reader, module_path, pin_stdin) as (token, pair, module):
        signature = token.sign(pair, data, Algorithm(mechanism))
    if out is not None:
        out.write(signature)
    result = {
        "algorithm": mechanism,
        "signature": base64.b64encode(signature).decode(),
        "certificate_sha256": fingerprint(pair.certificate),
        "module": module,
    }
    if as_json:
        _emit_json(result)
    elif out is None:
        click.echo(result["signature"])


@cli.group("token")
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
    with _card_key(state, reader, module_path, pin_stdin) as (token, pair, _):
        created = create_token(
            lambda data: token.sign(pair, data, Algorithm(mechanism)),
            pair.certificate,
            origin,
            nonce,
            mechanism,
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
    default="soft-fail",
    show_default=True,
)
@json_option
@click.pass_obj
def token_verify(  # noqa: PLR0917
    state: State,
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
            _emit_json({"valid": False, "reason": exc.reason, "detail": exc.detail})
        else:
            click.echo(f"rejected: {exc}")
        sys.exit(EXIT_FAILURE)
    if as_json:
        _emit_json({"valid": True, "professional": who.to_dict()})
        return
    name = who.display_name
    click.echo(
        f"valid: {CardType(who.card_type).label} {who.identifier_type.value} {who.identifier}"
        f", {name}, {who.profession or '-'}"
    )


@cli.group()
def nir() -> None:
    """NIR (social security number) tools."""


@nir.command("check")
@click.argument("number", nargs=-1, required=True)
@click.option("--strict", is_flag=True, help="CNAM rules for certified numbers only")
@json_option
@click.pass_obj
def nir_check(state: State, number: tuple[str, ...], strict: bool, as_json: bool) -> None:
    """Check a NIR (13 or 15 characters, spaces allowed). Exit 0 if valid, 1 if not."""
    text = " ".join(number)
    try:
        parsed = Nir.parse(text, strict=strict)
    except NirError as exc:
        if as_json:
            error: dict[str, Any] = {"code": exc.code, "message": str(exc)}
            if isinstance(exc, NirKeyMismatch):
                error["expected_key"] = exc.expected
            _emit_json({"valid": False, "error": error})
        else:
            click.echo(f"invalid: {exc}")
        sys.exit(EXIT_FAILURE)
    fields = {
        "sex": parsed.sex,
        "birth_year": parsed.birth_year,
        "birth_month": parsed.birth_month,
        "department": parsed.department,
        "commune": parsed.commune,
        "order": parsed.order,
        "key": parsed.key,
        "provisional": parsed.provisional,
        "caisse": parsed.caisse,
    }
    if as_json:
        _emit_json({"valid": True, "nir": parsed.number, "formatted": parsed.formatted(), **fields})
        return
    kind = " (provisional number, NNP)" if parsed.provisional else ""
    click.echo(f"valid: {parsed.formatted()}{kind}")


@cli.group()
def vitale() -> None:
    """Vitale card (the patient's card)."""


def _french_date(text: str | None) -> str:
    """DD/MM/YYYY as the card's users read it; "lunar" dates (day 00, 30/02...) stay as
    they are on the card."""
    if text and len(text) == 8 and text.isdigit():
        return f"{text[6:]}/{text[4:6]}/{text[:4]}"
    return text or "-"


@vitale.command("read")
@reader_option
@click.option("--show-nir", is_flag=True, help="print full NIRs (masked by default)")
@json_option
@click.pass_obj
def vitale_read(state: State, reader: str | None, show_nir: bool, as_json: bool) -> None:
    """The people on the card: insured person first, then beneficiaries."""
    source = PcscVitaleSource(state.backend)
    name = select_reader(state.backend, reader) if reader is not None else None
    data = source.read(name)
    if as_json:
        _emit_json(data.to_dict(show_nir=show_nir))
        return
    title = data.card + (f", valid from {data.valid_from}" if data.valid_from else "")
    table = Table(title=title)
    for column in ("", "Nom", "Prénom", "Né(e) le", "NIR", "Régime / caisse"):
        table.add_column(column, no_wrap=column in ("NIR", "Né(e) le"))
    for person in data.beneficiaries:
        insurance = person.insurance
        table.add_row(
            "assuré(e)" if person.insured else "ayant droit",
            person.surname,
            person.first_name,
            _french_date(person.birth_date),
            person.nir.formatted() if show_nir else person.nir.masked(),
            f"{insurance.scheme or '-'} / {insurance.caisse or '-'}" if insurance else "-",
        )
    state.console.print(table)


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``cardkit`` console script."""
    cli.main(args=sys.argv[1:] if argv is None else argv, prog_name="cardkit", obj=State())
