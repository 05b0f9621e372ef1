"""Mock cards built from profiles (see :mod:`mocks.profiles`)."""

from __future__ import annotations

from mocks.cards.build import build_iso_card
from mocks.cards.cps import build_cps_card
from mocks.cards.hostile import HostileCard
from mocks.cards.iso7816 import DF, EF, Access, Iso7816Card, PinReference, Secret, SwError
from mocks.cards.mute import MuteCard
from mocks.profiles import Profile, ProfileError, load_profile

__all__ = [
    "DF",
    "EF",
    "Access",
    "Iso7816Card",
    "PinReference",
    "Secret",
    "SwError",
    "build_any_card",
    "build_card",
    "build_hostile_card",
    "build_iso_card",
    "build_mute_card",
]


def build_card(profile: Profile | str) -> Iso7816Card:
    """A fresh card (new counters, new files) from a profile or a profile name."""
    if isinstance(profile, str):
        profile = load_profile(profile)
    if profile.get("family") in ("hostile", "mute"):
        raise ProfileError(f"{profile.get('name')!r} misbehaves on purpose: use build_any_card")
    if profile.get("family") == "cps":
        return build_cps_card(profile)
    return build_iso_card(profile, Iso7816Card)


def build_hostile_card(profile: Profile | str, atr: bytes | None = None) -> HostileCard:
    """A card that answers badly on purpose (see :mod:`mocks.cards.hostile`); ``atr``
    overrides the profile's, to meet the Vitale path with the same behaviour."""
    if isinstance(profile, str):
        profile = load_profile(profile)
    return HostileCard(
        str(profile["name"]), atr or bytes.fromhex(profile["atr"]), str(profile["behaviour"])
    )


def build_mute_card(profile: Profile | str) -> MuteCard:
    """A card that stops answering (see :mod:`mocks.cards.mute`)."""
    if isinstance(profile, str):
        profile = load_profile(profile)
    return MuteCard(
        build_card(str(profile["base"])),
        str(profile["behaviour"]),
        int(profile["after"]),
        float(profile.get("delay", 0.0)),
    )


def build_any_card(name: str) -> Iso7816Card | HostileCard | MuteCard:
    """Any shipped profile, well-behaved or not (what ``python -m mocks.vpcd`` serves)."""
    profile = load_profile(name)
    if profile.get("family") == "hostile":
        return build_hostile_card(profile)
    if profile.get("family") == "mute":
        return build_mute_card(profile)
    return build_card(profile)
