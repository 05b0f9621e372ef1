"""cardkit doctor against broken setups built in-process: each yields the right status and
remedy; no check ever presents a PIN or spends a try."""

from __future__ import annotations

import datetime as dt
import json
import os
import socket
import time
import zipfile
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from agent.installation import LocalAgent
from cardkit.cli import State, cli
from cardkit.doctor import Context, Status, diagnose
from cardkit.doctor.bundle import write_bundle
from cardkit.doctor.model import Report
from cardkit.doctor.render import render_html
from cardkit.errors import ExitCode
from cardkit.i18n import compile_po, po_path
from cardkit.transport import ReaderUnavailable
from cardkit.transport.inprocess import InProcessBackend
from mocks.cards import build_card
from mocks.profiles import list_profiles, load_profile

CPS_PROFILES = [n for n in list_profiles() if load_profile(n).get("family") == "cps"]


def run(backend: Any, tmp_path: Path, **options: Any) -> Report:
    options.setdefault("agent", LocalAgent(runtime=tmp_path / "no-agent", home=tmp_path))
    options.setdefault("port", _closed_port())
    return diagnose(Context(backend_factory=lambda: backend, **options))


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])  # closed again on return: nothing listens there


def by_check(report: Report, prefix: str) -> list[Any]:
    return [f for f in report.findings if f.check.startswith(prefix)]


def one(report: Report, check: str) -> Any:
    (finding,) = by_check(report, check)
    return finding


def test_pcsc_service_stopped(tmp_path: Path) -> None:
    class Down(InProcessBackend):
        def states(self) -> Any:
            raise ReaderUnavailable("establishing a PC/SC context: Service not available")

    report = run(Down(), tmp_path)
    service = one(report, "pcsc.service")
    assert service.status is Status.ERROR and "pcscd" in service.remedy
    assert one(report, "pcsc.readers").status is Status.SKIPPED
    assert report.exit_code == 2


def test_no_reader(tmp_path: Path) -> None:
    finding = one(run(InProcessBackend(), tmp_path), "pcsc.readers")
    assert finding.status is Status.ERROR and "CCID" in finding.remedy


def test_reader_without_card_and_unknown_card(tmp_path: Path) -> None:
    backend = InProcessBackend()
    backend.add_reader("Lecteur A 00 00")
    backend.insert("Lecteur B", build_card("unknown-card"))
    report = run(backend, tmp_path)
    empty = one(report, "pcsc.reader:Lecteur A")
    assert empty.status is Status.WARNING and empty.evidence["card_present"] is False
    unknown = one(report, "cards.card:Lecteur B")
    assert unknown.status is Status.WARNING and unknown.evidence["atr"]


def test_blocked_pin_says_puk(tmp_path: Path) -> None:
    backend = InProcessBackend()
    backend.insert("Lecteur", build_card("cps-pin-blocked"))
    card = one(run(backend, tmp_path), "cards.card:Lecteur")
    assert card.status is Status.ERROR and "PUK" in card.remedy
    assert card.evidence["pin_blocked"] is True


def test_expired_and_soon_expiring_certificates(tmp_path: Path) -> None:
    backend = InProcessBackend()
    backend.insert("Lecteur", build_card("cps-expired"))
    expired = one(run(backend, tmp_path), "certs.auth:Lecteur")
    assert expired.status is Status.ERROR and expired.evidence["reason"] == "certificate_expired"

    backend = InProcessBackend()
    backend.insert("Lecteur", build_card("cps-doctor"))
    healthy = one(run(backend, tmp_path), "certs.auth:Lecteur")
    assert healthy.status is Status.OK
    not_after = dt.datetime.fromisoformat(healthy.evidence["not_after"])
    soon = one(run(backend, tmp_path, now=not_after - dt.timedelta(days=10)), "certs.auth:")
    assert soon.status is Status.WARNING and soon.evidence["days_left"] == 10


def test_pkcs11_module_missing_or_broken(tmp_path: Path) -> None:
    report = run(InProcessBackend(), tmp_path, module=str(tmp_path / "absent.so"))
    missing = one(report, "pkcs11.configured")
    assert missing.status is Status.ERROR and "pkcs11_module" in missing.remedy
    broken = tmp_path / "broken.so"
    broken.write_bytes(b"\x7fELF\x01\x01\x01" + bytes(64))  # a 32-bit ELF header
    report = run(InProcessBackend(), tmp_path, module=str(broken))
    failed = one(report, "pkcs11.module:configured")
    assert failed.status is Status.ERROR and failed.evidence["stage"] == "load"
    assert "32/64" in failed.remedy  # the loader's "wrong ELF class", explained


def test_agent_stopped_and_port_taken(tmp_path: Path) -> None:
    stopped = one(run(InProcessBackend(), tmp_path), "agent.running")
    assert stopped.status is Status.ERROR and "install-service" in stopped.remedy
    squatter = socket.socket()
    squatter.bind(("127.0.0.1", 0))
    squatter.listen(1)
    try:
        taken = one(run(InProcessBackend(), tmp_path, port=squatter.getsockname()[1]), "agent.")
    finally:
        squatter.close()
    assert taken.status is Status.ERROR
    assert f"pid {os.getpid()}" in (taken.evidence["owner"] or "")  # names the squatter
    missing = one(run(InProcessBackend(), tmp_path, agent=None), "agent.running")
    assert "not installed" in missing.finding and "cardkit[agent]" in missing.remedy


@pytest.mark.timeout(30)
def test_a_hung_reader_costs_its_timeout(tmp_path: Path) -> None:
    class Hung(InProcessBackend):
        def states(self) -> Any:
            time.sleep(3600)

    started = time.monotonic()
    report = run(Hung(), tmp_path, timeout=0.5)
    elapsed = time.monotonic() - started
    hung = one(report, "pcsc.service")
    assert hung.status is Status.ERROR and hung.evidence == {"timeout_s": 0.5}
    assert elapsed < 20  # bounded: not a benchmark, a guard against waiting forever


@pytest.mark.parametrize("profile", CPS_PROFILES)
@pytest.mark.parametrize("tries", [3, 1])
def test_no_pin_is_ever_presented(tmp_path: Path, profile: str, tries: int) -> None:
    card = build_card(profile)
    for reference in card.pins.values():
        if reference.pin.tries_left:
            reference.pin.tries_left = tries
    before = {ref: r.pin.tries_left for ref, r in card.pins.items()}
    sent: list[bytes] = []
    execute = card.execute

    def spy(apdu: bytes) -> bytes:
        sent.append(apdu)
        return execute(apdu)

    card.execute = spy  # type: ignore[method-assign]
    backend = InProcessBackend()
    backend.insert("Lecteur", card)
    run(backend, tmp_path)
    assert sent, "the doctor did read the card"
    verify_with_data = [a for a in sent if a[1] in (0x20, 0x24, 0x2C) and len(a) > 5]
    assert verify_with_data == []  # only empty VERIFYs (tries left), never a PIN
    assert {ref: r.pin.tries_left for ref, r in card.pins.items()} == before


def test_outputs_json_html_exit_codes_and_french(tmp_path: Path) -> None:
    backend = InProcessBackend()
    backend.insert("Lecteur", build_card("cps-pin-blocked"))
    result = CliRunner().invoke(
        cli,
        ["doctor", "--json", "--lang", "fr", "--html", str(tmp_path / "r.html")],
        obj=State(lambda: backend),
        env={"XDG_RUNTIME_DIR": str(tmp_path)},
    )
    assert result.exit_code == 2
    data = json.loads(result.stdout)
    assert data["schema"] == "cardkit-doctor/1" and data["exit_code"] == 2
    assert set(data["summary"]) == {"ok", "warning", "error", "skipped"}
    first = data["findings"][0]
    assert set(first) == {
        "check",
        "group",
        "status",
        "title",
        "finding",
        "remedy",
        "evidence",
        "duration_ms",
    }
    card = next(f for f in data["findings"] if f["check"] == "cards.card:Lecteur")
    assert card["finding"].endswith("Le code PIN est bloqué.")  # French text, English keys
    page = (tmp_path / "r.html").read_text(encoding="utf-8")
    assert '<html lang="fr">' in page and "Le code PIN est bloqué" in page
    assert "http" not in page.split("<body>")[0]  # no external asset in the head


def test_healthy_exit_zero_text(tmp_path: Path) -> None:
    report = Report([], dt.datetime.now(dt.UTC), 1, "fr")
    assert report.exit_code == int(ExitCode.OK)
    assert "Tout est en ordre" in render_html(report)


def test_bundle_removes_names_and_nirs(tmp_path: Path) -> None:
    backend = InProcessBackend()
    backend.insert("Lecteur", build_card("cps-doctor"))
    report = run(backend, tmp_path)
    audit = tmp_path / "audit.jsonl"
    audit.write_text(
        '{"event":"vitale_read","nirs_masked":["2 69 05 ** *** *** **"],'
        '"note":"269054958815780 LEFEBVRE","pin":"1234"}\n',
        encoding="utf-8",
    )
    target = tmp_path / "ticket.zip"
    members = write_bundle(report, target, audit)
    assert {"report.json", "report.html", "agent-audit.jsonl"} <= set(members)
    with zipfile.ZipFile(target) as archive:
        text = "".join(archive.read(m).decode() for m in archive.namelist())
    holder = one(report, "cards.card:").evidence["holder"]
    assert holder and "LEFEBVRE" in holder
    assert holder not in text and "LEFEBVRE" not in text and "[nom]" in text
    assert "269054958815780" not in text and "[NIR]" in text
    assert '"1234"' not in text


def test_committed_translations_are_compiled() -> None:
    po = po_path("fr")
    assert po.with_suffix(".mo").read_bytes() == compile_po(po.read_text(encoding="utf-8"))


def test_fix_allows_the_origin_in_the_agent_config(tmp_path: Path) -> None:
    import tomllib

    from cardkit.doctor.fixes import available_fixes
    from cardkit.doctor.model import Finding

    config = tmp_path / "config" / "cardkit" / "agent.toml"
    config.parent.mkdir(parents=True)
    config.write_text('port = 40000\nallowed_origins = ["https://a.example"]\n')
    agent = LocalAgent(config=config)
    ctx = Context(backend_factory=InProcessBackend, origin="https://b.example", agent=agent)
    report = Report(
        [Finding("agent.origin", "agent", Status.ERROR, "Portal", "refused")],
        dt.datetime.now(dt.UTC),
        1,
        "en",
    )
    (fix,) = available_fixes(report, ctx)
    assert "https://b.example" in fix.question
    assert "added" in fix.apply()
    data = tomllib.loads(config.read_text())
    assert data == {"port": 40000, "allowed_origins": ["https://a.example", "https://b.example"]}
    assert "already" in fix.apply()  # idempotent


def test_listeners_beyond_loopback_are_seen() -> None:
    from cardkit.doctor.checks.agent import _non_loopback_listeners

    for host, expected in (("0.0.0.0", ["0.0.0.0"]), ("127.0.0.1", [])):
        listener = socket.socket()
        listener.bind((host, 0))
        listener.listen(1)
        try:
            assert _non_loopback_listeners(listener.getsockname()[1]) == expected
        finally:
            listener.close()


def test_the_runner_orders_checks_by_what_they_need(tmp_path: Path) -> None:
    """Declared in any order, a check runs after the one providing what it needs; a need
    nobody provides, or a fact written by a check that does not declare it, is refused."""
    import random

    from cardkit.doctor.checks import CHECKS, Check, ordered, run_one
    from cardkit.doctor.checks.base import Facts

    shuffled = list(CHECKS)
    random.Random(7).shuffle(shuffled)
    placed = [c.id for c in ordered(shuffled)]
    for check in CHECKS:
        for need in check.needs:
            provider = next(c.id for c in CHECKS if need in c.provides)
            assert placed.index(provider) < placed.index(check.id)
    assert [c.id for c in ordered(CHECKS)] == [c.id for c in CHECKS]  # declared order kept
    lonely = Check("x", "environment", lambda ctx, facts, out: iter(()), needs=("nothing",))
    with pytest.raises(ValueError, match="no check provides"):
        ordered([*CHECKS, lonely])

    def sneaky(ctx: Context, facts: Facts, out: Any) -> Any:
        facts.readers = {}
        return iter(())

    ctx = Context(backend_factory=InProcessBackend)
    with pytest.raises(RuntimeError, match="does not provide"):
        run_one(ctx, Facts(), Check("y", "environment", sneaky))
