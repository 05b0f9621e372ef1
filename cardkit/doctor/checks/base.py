"""What every check is made of: the settings it reads (:class:`Context`), the facts checks
leave for later ones (:class:`Facts`), how a check is declared (:class:`Check`: its id, its
group, the facts it needs and provides) and how it words its findings (:class:`Out`).

Rules every check keeps:
- it never presents a PIN and never spends a try (PIN status is an empty VERIFY);
- it reads no personal data it does not show (no Vitale contents, no NIR);
- it runs with a timeout (see :mod:`cardkit.doctor.checks.runner`): a hung reader or module
  costs that, no more.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography import x509

from cardkit.doctor.installation import AgentInstallation
from cardkit.doctor.model import Finding, Status
from cardkit.i18n import translator
from cardkit.transport import ReaderBackend
from cardkit.transport.base import ReaderState
from cardkit.transport.deadline import card_timeout

#: Seconds one check may take before it is reported as hung.
CHECK_TIMEOUT = 10.0


@dataclass
class Context:
    """What the checks may look at: settings only, everything injectable for tests."""

    backend_factory: Callable[[], ReaderBackend]
    language: str = "en"
    origin: str | None = None
    trust: str = "test"
    trust_dir: Path | None = None
    online: bool = False
    clock_url: str | None = None
    module: str | None = None
    #: The agent installed for this user (None: not installed).
    agent: AgentInstallation | None = None
    port: int | None = None  # where to look for the bridge when no agent says (default port)
    now: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))
    timeout: float = CHECK_TIMEOUT
    #: Seconds a card may take to answer one command (the doctor uses at most half a
    #: check's time, so that a mute card is reported as such, not as a hung check).
    card_timeout: float = field(default_factory=card_timeout)
    gettext: Callable[[str], str] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.gettext = translator(self.language).gettext
        self._backend: ReaderBackend | None = None

    @property
    def backend(self) -> ReaderBackend:
        if self._backend is None:
            self._backend = self.backend_factory()
        return self._backend


@dataclass(frozen=True)
class RunningAgent:
    port: int
    origins: tuple[str, ...]


@dataclass
class Facts:
    """What checks leave for later ones; each field is provided by one check (its
    ``provides``), and a check reading one declares it in its ``needs``."""

    #: pcsc.service: the readers and their state; None when the PC/SC service does not answer.
    readers: dict[str, ReaderState] | None = None
    #: cards: the authentication certificate each CPS/CPE carries, by reader.
    certificates: dict[str, x509.Certificate] = field(default_factory=dict)
    #: cards: the readers whose card stopped answering (anything that talks to it would wait).
    mute: list[str] = field(default_factory=list)
    #: agent: the running agent that answered (None: none did).
    agent: RunningAgent | None = None


class Out:
    """A check's findings, built with its id and group: ``out(status, title, text)``, or
    ``out.item("reader:NAME")(...)`` for one of several things it looks at (id
    ``pcsc.reader:NAME`` for the check ``pcsc.readers``)."""

    def __init__(self, check: str, group: str) -> None:
        self.check = check
        self.group = group

    def __call__(
        self, status: Status, title: str, finding: str, remedy: str = "", **evidence: Any
    ) -> Finding:
        return Finding(self.check, self.group, status, title, finding, remedy, evidence)

    def item(self, name: str) -> Out:
        return Out(f"{self.check.split('.', 1)[0]}.{name}", self.group)


CheckFunction = Callable[[Context, Facts, Out], Iterator[Finding]]


@dataclass(frozen=True)
class Check:
    id: str
    group: str
    run: CheckFunction
    needs: tuple[str, ...] = ()
    provides: tuple[str, ...] = ()
