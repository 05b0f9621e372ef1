"""The cards in the readers: which card, and for a CPS/CPE its holder and PIN tries (read
without presenting a PIN); the authentication certificate each carries is left for the
certificate check."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from cryptography import x509

from cardkit.atr import CardFamily, identify
from cardkit.cps.card import PinStatus, open_cps
from cardkit.doctor.checks.base import Context, Facts, Out
from cardkit.doctor.model import Finding, Status
from cardkit.errors import CardkitError
from cardkit.identity import Identity
from cardkit.transport import ReaderTimeout
from cardkit.transport.deadline import guarded


def check_cards(ctx: Context, facts: Facts, out: Out) -> Iterator[Finding]:
    _ = ctx.gettext
    for name, state in (facts.readers or {}).items():
        if not state.card_present or not state.atr:
            continue
        identity = identify(state.atr)
        atr = state.atr.hex(" ").upper()
        card = out.item(f"card:{name}")
        title = _("Card in {name}").format(name=name)
        if identity.family is CardFamily.VITALE:
            yield card(
                Status.OK,
                title,
                _("Vitale card ({generation}).").format(generation=identity.name),
                reader=name,
                atr=atr,
                card=identity.name,
            )
        elif identity.family is not CardFamily.CPS:
            yield card(
                Status.WARNING,
                title,
                _("Not a CPS, CPE or Vitale card: {name}.").format(name=identity.name),
                _("Use the professional's CPS/CPE card, or the patient's Vitale card."),
                reader=name,
                atr=atr,
                card=identity.name,
            )
        else:
            yield _cps_card(ctx, facts, card, name, {"atr": atr, "card": identity.name})


def _cps_card(ctx: Context, facts: Facts, card: Out, name: str, seen: dict[str, Any]) -> Finding:
    _ = ctx.gettext
    title = _("Card in {name}").format(name=name)

    def read() -> tuple[PinStatus, x509.Certificate, Identity]:
        with open_cps(ctx.backend, name) as cps:
            status = cps.pin_status()  # an empty VERIFY: no try is spent
            certificate = cps.certificates().authentication
            return status, certificate, cps.identity(certificate)

    seconds = min(ctx.card_timeout, ctx.timeout / 2)
    try:
        status, certificate, who = guarded(read, seconds)
    except ReaderTimeout as exc:
        facts.mute.append(name)
        return card(
            Status.ERROR,
            title,
            _("The card stopped answering: no answer within {seconds:g} s.").format(
                seconds=seconds
            ),
            _(
                "Take the card out and insert it again; if it persists, clean the chip or "
                "try another reader."
            ),
            reader=name,
            error=exc.code,
            **seen,
        )
    except CardkitError as exc:
        return card(
            Status.ERROR,
            title,
            _("The card does not answer as a CPS/CPE should: {error}").format(error=exc),
            _("Clean the chip, try another reader; if it persists, the card is faulty."),
            reader=name,
            error=exc.code,
            **seen,
        )
    facts.certificates[name] = certificate
    holder = " ".join(x for x in (who.given_name, who.surname) if x) or who.structure or "?"
    evidence: dict[str, Any] = {
        "reader": name,
        **seen,
        "card_type": who.card_type.value,
        "holder": holder,
        "surname": who.surname,
        "given_name": who.given_name,
        "identifier_type": who.identifier_type.value,
        "identifier": who.identifier,
        "pin_tries_left": status.tries_left,
        "pin_blocked": status.blocked,
    }
    text = _("{card_type} of {holder} ({id_type} {identifier}).").format(
        card_type=who.card_type.value,
        holder=holder,
        id_type=who.identifier_type.value,
        identifier=who.identifier,
    )
    if status.blocked:
        return card(
            Status.ERROR,
            title,
            text + " " + _("The PIN is blocked."),
            _("Unblock it with the PUK from the card's letter: cardkit pin unblock."),
            **evidence,
        )
    if status.tries_left == 1:
        return card(
            Status.WARNING,
            title,
            text + " " + _("One PIN try left: the next mistake blocks the card."),
            _("Make sure of the PIN before the next login (the PUK unblocks a blocked card)."),
            **evidence,
        )
    return card(
        Status.OK,
        title,
        text + " " + _("PIN: {tries} tries left.").format(tries=status.tries_left),
        **evidence,
    )
