"""The Vitale application on in-process mock cards."""

from __future__ import annotations

import json
import logging

import pytest
from click.testing import CliRunner

from cardkit.atr import CardFamily
from cardkit.cli import State, cli
from cardkit.errors import ExitCode
from cardkit.transport import CardRemoved, NoCard, ReaderUnavailable
from cardkit.transport.inprocess import InProcessBackend
from cardkit.transport.readers import readers_holding
from cardkit.vitale.card import (
    NotAVitaleCard,
    VitaleCard,
    VitaleDataError,
    VitaleNirInvalid,
    parse_card,
)
from cardkit.vitale.source import PcscVitaleSource
from mocks.cards import build_card
from tests.unit.fakes import ScriptedConnection


def backend_with(*profiles: str) -> InProcessBackend:
    backend = InProcessBackend()
    for slot, name in enumerate(profiles):
        backend.insert(f"Virtual PCD 00 0{slot}", build_card(name))
    return backend


def read(profile: str) -> object:
    backend = backend_with(profile)
    return VitaleCard(backend.connect("Virtual PCD 00 00")).read()


def test_family() -> None:
    backend = backend_with("cps-doctor", "vitale-family")
    data = PcscVitaleSource(backend).read()
    assert data.card == "Vitale 2" and data.valid_from == "20220301"
    people = [(b.surname, b.first_name, b.birth_date, b.insured) for b in data.beneficiaries]
    assert people == [
        ("DUPONT", "MARIE", "19690514", True),
        ("DUPONT", "JEAN", "19671103", False),
        ("DUPONT", "LUCIE", "20050322", False),
        ("DUPONT", "HUGO", "20090817", False),
    ]
    assert data.insured.nir.number == "269054958815780"
    lucie = data.beneficiaries[2]
    assert lucie.nir.department == "2A" and lucie.nir.is_valid
    assert data.insured.insurance is not None and data.insured.insurance.caisse == "491"
    assert data.beneficiaries[1].insurance is None  # absent optional tags
    assert data.insured.nationality == "FR"
    assert data.insured.birth_date_iso is not None and data.insured.birth_date_iso.year == 1969


def test_single_overseas() -> None:
    (person,) = PcscVitaleSource(backend_with("vitale-single")).read().beneficiaries
    assert person.insured and person.nir.department == "976"


def test_bad_key_is_refused_without_the_number() -> None:
    with pytest.raises(VitaleNirInvalid) as info:
        PcscVitaleSource(backend_with("vitale-bad-key")).read()
    assert "expected key" in str(info.value)
    assert "2780269123045" not in str(info.value)


def test_truncated_file_is_refused() -> None:
    with pytest.raises(VitaleDataError, match="damaged or truncated"):
        PcscVitaleSource(backend_with("vitale-truncated")).read()


def test_not_a_vitale_card() -> None:
    backend = backend_with("cps-doctor")
    with pytest.raises(NotAVitaleCard):
        VitaleCard(backend.connect("Virtual PCD 00 00"))
    with pytest.raises(NoCard):
        PcscVitaleSource(backend).read()


def test_two_vitale_cards_need_a_choice() -> None:
    backend = backend_with("vitale-single", "vitale-family")
    assert readers_holding(backend, CardFamily.VITALE) == ["Virtual PCD 00 00", "Virtual PCD 00 01"]
    with pytest.raises(ReaderUnavailable, match="several"):
        PcscVitaleSource(backend).read()
    assert len(PcscVitaleSource(backend).read("Virtual PCD 00 01").beneficiaries) == 4


def test_removed_mid_read() -> None:
    backend = InProcessBackend()
    card = build_card("vitale-family")
    original = card.execute
    seen = 0

    def pull_on_third(apdu: bytes) -> bytes:
        nonlocal seen
        seen += 1
        if seen == 3:  # after the people file, during the application's selection
            backend.remove("r")
        return original(apdu)

    card.execute = pull_on_third  # type: ignore[method-assign]
    backend.insert("r", card)
    with pytest.raises(CardRemoved):
        VitaleCard(backend.connect("r")).read()


def test_long_files_are_read_by_offset() -> None:
    """A people file over 256 bytes: first chunk by SFI, the rest by offset."""
    card = build_card("vitale-family")
    people_ef = card.mf.child(0x2002)
    nir_df = card.mf.child(0x1000)
    assert people_ef is not None and nir_df is not None
    people = bytes(people_ef.data or b"") * 8  # type: ignore[union-attr]
    nirs_ef = nir_df.children[0]  # type: ignore[union-attr]
    base = bytes(nirs_ef.data or b"")  # type: ignore[union-attr]
    person_nirs, card_template = base[: base.index(b"\x66")], base[base.index(b"\x66") :]
    people_ef.data = bytearray(people)  # type: ignore[union-attr]
    nirs_ef.data = bytearray(person_nirs * 8 + card_template)  # type: ignore[union-attr]
    assert len(people) > 512
    backend = InProcessBackend()
    backend.insert("r", card)
    assert len(VitaleCard(backend.connect("r")).read().beneficiaries) == 32


def test_exact_apdus() -> None:
    """The command sequence practice software uses, byte for byte."""
    people = bytes.fromhex("650e 8006") + b"MARTIN" + bytes.fromhex("8104") + b"PAUL"
    nirs = bytes.fromhex("6511 930f") + b"269054958815780"
    conn = ScriptedConnection(
        [
            ("00a4000c023f00", "9000"),
            ("00b0820000", people.hex() + "9000"),
            ("00a4040c0bd250000002564954414c45", "9000"),
            ("00b0820000", nirs.hex() + "6282"),
        ],
        atr=bytes.fromhex("3B7513000047 09EA9000".replace(" ", "")),
    )
    data = VitaleCard(conn).read()
    assert conn.done() and conn.transactions == 1
    assert data.insured.first_name == "PAUL" and data.insured.birth_date is None
    assert data.valid_from is None


@pytest.mark.parametrize(
    ("people", "nirs", "why"),
    [
        ("", "", "nobody"),
        ("6503 800158", "", "1 people but 0"),
        ("6503 810158", "6511 930f" + b"269054958815780".hex(), "no surname"),
        ("6503 800158", "6503 900146", "no NIR"),
        ("6503 800158", "6503 930158", "invalid"),
        ("6504 8003 58", "6511 930f" + b"269054958815780".hex(), "damaged"),
    ],
)
def test_inconsistent_cards(people: str, nirs: str, why: str) -> None:
    with pytest.raises(VitaleDataError, match=why):
        parse_card("Vitale 2", bytes.fromhex(people), bytes.fromhex(nirs))


# --- CLI ----------------------------------------------------------------------------------


def run(backend: InProcessBackend, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args), obj=State(lambda: backend))
    return result.exit_code, result.output


def test_cli_read_masks_by_default() -> None:
    backend = backend_with("cps-doctor", "vitale-family")
    code, out = run(backend, "vitale", "read", "--json")
    assert code == 0
    data = json.loads(out)
    first = data["beneficiaries"][0]
    assert first["nir"] is None and first["nir_masked"] == "2 69 05 ** *** *** **"
    assert "588" not in out
    code, out = run(backend, "vitale", "read", "--json", "--show-nir")
    assert json.loads(out)["beneficiaries"][0]["nir"] == "269054958815780"
    code, out = run(backend, "vitale", "read")
    assert code == 0 and "DUPONT" in out and "14/05/1969" in out and "*** ***" in out


def test_cli_read_errors() -> None:
    code, out = run(backend_with("cps-doctor"), "vitale", "read", "--json")
    assert code == ExitCode.NO_CARD and json.loads(out)["error"]["code"] == "card_absent"
    code, out = run(backend_with("vitale-truncated"), "vitale", "read", "--json")
    assert code == ExitCode.CARD_ERROR and json.loads(out)["error"]["code"] == "vitale_data"
    code, out = run(backend_with("vitale-bad-key"), "vitale", "read", "--reader", "0")
    assert code == ExitCode.CARD_ERROR and "invalid" in out


def test_cli_nir_check() -> None:
    backend = InProcessBackend()
    code, out = run(backend, "nir", "check", "2", "69", "05", "49", "588", "157", "80")
    assert code == 0 and "valid: 2 69 05 49 588 157 80" in out
    code, out = run(backend, "nir", "check", "269054958815781", "--json")
    data = json.loads(out)
    assert code == 1 and data["valid"] is False
    assert data["error"] == {
        "code": "nir_key",
        "message": "key 81 does not match the number (expected key 80)",
        "expected_key": "80",
    }
    code, out = run(backend, "nir", "check", "--strict", "3690549588157")
    assert code == 1 and "1 or 2" in out
    code, out = run(backend, "nir", "check", "--json", "7 1 123 12345678")
    data = json.loads(out)
    assert code == 0 and data["provisional"] is True and data["caisse"] == "123"


def test_no_full_nir_in_logs(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG):
        data = PcscVitaleSource(backend_with("vitale-family")).read()
        logging.getLogger("test").info("read %s", data.insured.nir)
        logging.getLogger("test").info("read %r", data.insured)
    assert "DEBUG" in caplog.text  # APDU traces were on
    for person in data.beneficiaries:
        assert person.nir.body not in caplog.text
        assert person.nir.body.encode().hex(" ").upper() not in caplog.text  # nor in hex
