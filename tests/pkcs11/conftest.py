"""SoftHSM2 tokens provisioned like the mock cards (one directory per test session)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from cardkit.pkcs11 import Module
from mocks.softhsm import SoftHsm, softhsm_module
from tests.conftest import missing_component

PROFILES = ("cps-doctor", "cpe-transport")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/pkcs11/" in str(item.path).replace(os.sep, "/"):
            item.add_marker(pytest.mark.pkcs11)


@pytest.fixture(scope="session")
def softhsm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SoftHsm]:
    if softhsm_module() is None or shutil.which("softhsm2-util") is None:
        missing_component("SoftHSM2 is not installed (run scripts/setup.sh)")
    if shutil.which("pkcs11-tool") is None:
        missing_component("pkcs11-tool (OpenSC) is not installed")
    hsm = SoftHsm.create(Path(tmp_path_factory.mktemp("softhsm")))
    for profile in PROFILES:
        hsm.provision(profile)
    hsm.provision("cps-nurse", label="plain", cps_labels=False)
    previous = os.environ.get("SOFTHSM2_CONF")
    os.environ.update(hsm.environ())  # read by SoftHSM2 when the module initialises
    yield hsm
    if previous is None:
        os.environ.pop("SOFTHSM2_CONF", None)
    else:
        os.environ["SOFTHSM2_CONF"] = previous


@pytest.fixture(scope="session")
def module(softhsm: SoftHsm) -> Module:
    return Module.load(softhsm.module)
