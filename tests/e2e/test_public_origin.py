"""The portal as practices reach it: over HTTPS from an address Chromium counts as public,
with the agent on the practice PC's loopback. Chromium then applies Local Network Access: a
public page reaches loopback only with the person's permission. Refused, the page says in
French how to allow it and nothing reaches the agent; granted, CPS login and "Lire carte
Vitale" work.

The portal runs on 127.0.0.1 under the name ``portal.test`` (a host-resolver rule), with a
TEST certificate this module makes (pinned with ``--ignore-certificate-errors-spki-list``,
so the page is a secure context with no error bypassed), and
``--ip-address-space-overrides`` makes Chromium treat its address as public.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from mocks.harness import (
    CHROMIUM,
    CHROMIUM_ARGS,
    AgentProcess,
    CardProcess,
    PortalServer,
    free_port,
    start_portal,
)
from tests.conftest import missing_component
from tests.e2e.test_portal import shot

HOST = "portal.test"


def make_certificate(directory: Path) -> tuple[Path, Path, str]:
    """(certificate, key, the base64 SHA-256 of its public key): a self-signed TLS server
    certificate for :data:`HOST`, valid for a day."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"{HOST} (TEST)")])
    now = dt.datetime.now(dt.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(HOST)]), critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "portal.pem", directory / "portal.key"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    spki = certificate.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return cert_path, key_path, base64.b64encode(hashlib.sha256(spki).digest()).decode()


@pytest.fixture
def public_portal(
    tmp_path: Path, agent: Callable[..., AgentProcess]
) -> Iterator[tuple[PortalServer, AgentProcess, Any]]:
    """(the portal on https://portal.test:PORT, the agent allowing it, a Chromium that
    counts the portal's address as public)."""
    if not Path(CHROMIUM).exists() and shutil.which("chromium") is None:
        missing_component("Chromium is not installed (run scripts/setup.sh)")
    from playwright.sync_api import sync_playwright

    port = free_port()
    origin = f"https://{HOST}:{port}"
    certificate, key, spki = make_certificate(tmp_path)
    running = agent(origins=(origin,))
    site = start_portal(
        port, running.port, tmp_path / "portal.db", origin=origin, tls=(certificate, key)
    )
    flags = [
        *CHROMIUM_ARGS,
        f"--host-resolver-rules=MAP {HOST} 127.0.0.1",
        f"--ignore-certificate-errors-spki-list={spki}",
        f"--ip-address-space-overrides=127.0.0.1:{port}=public",
    ]
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=flags)
        try:
            yield site, running, chromium
        finally:
            chromium.close()
            site.stop()


def reached_agent(running: AgentProcess, origin: str) -> list[dict[str, object]]:
    """What the agent heard from ``origin``: served requests and refusals alike."""
    return [line for line in running.audit_lines() if line.get("origin") == origin]


def test_local_network_access_refused(
    public_portal: tuple[PortalServer, AgentProcess, Any],
    card_process: Callable[[str], CardProcess],
    tmp_path: Path,
) -> None:
    card_process("cps-doctor")
    site, running, chromium = public_portal
    context = chromium.new_context(viewport={"width": 1100, "height": 800})
    page = context.new_page()
    page.goto(site.origin + "/identification")
    assert page.evaluate("window.isSecureContext")
    cdp = context.new_cdp_session(page)
    cdp.send(  # what the person's "Block" in Chrome's prompt records
        "Browser.setPermission",
        {
            "permission": {"name": "local-network-access"},
            "setting": "denied",
            "origin": site.origin,
        },
    )
    page.click("#cps-login")
    page.wait_for_selector("#cps-error:not(.hidden)", timeout=15000)
    text = page.inner_text("#cps-error")
    assert "Votre navigateur bloque l'accès au lecteur de cartes pour ce site" in text
    assert "Paramètres du site" in text
    shot(page, tmp_path, "portal-public-origin-refused")
    assert reached_agent(running, site.origin) == []
    context.close()


def test_local_network_access_granted(
    public_portal: tuple[PortalServer, AgentProcess, Any],
    card_process: Callable[[str], CardProcess],
) -> None:
    card_process("cps-doctor")
    card_process("vitale-family")
    site, running, chromium = public_portal
    context = chromium.new_context()
    context.grant_permissions(["local-network-access"], origin=site.origin)
    page = context.new_page()
    page.goto(site.origin + "/identification")
    page.click("#cps-login")
    page.wait_for_url(site.origin + "/accueil", timeout=30000)
    assert "CLAIRE LEFEBVRE" in page.inner_text("h1")
    page.goto(site.origin + "/patient")
    page.click("#read-vitale")
    page.wait_for_selector(".beneficiary", timeout=15000)
    assert len(page.locator(".beneficiary").all_inner_texts()) == 4
    assert {line["event"] for line in reached_agent(running, site.origin)} >= {
        "auth",
        "vitale_read",
    }
    context.close()
