"""A profile's ISO 7816-4 part (files, PINs, PUKs, data objects) as a card object: what every
mock card is built on (the CPS adds its IAS-ECC objects, :mod:`mocks.cards.cps`)."""

from __future__ import annotations

from typing import Any, TypeVar

from mocks.cards.iso7816 import DF, EF, Access, Iso7816Card, PinReference, Secret
from mocks.profiles import Profile, ProfileError, value


def _node(spec: dict[str, Any]) -> EF | DF:
    fid = int(spec["fid"], 16)
    name = spec.get("name", "")
    if "children" in spec or "aid" in spec:
        df = DF(fid, name, bytes.fromhex(spec["aid"]) if "aid" in spec else None)
        df.data_objects = _objects(spec)
        for child in spec.get("children", []):
            df.add(_node(child))
        return df
    sfi = int(spec["sfi"], 16) if "sfi" in spec else None
    read = Access.parse(spec.get("read"))
    if "records" in spec:
        return EF(fid, name, sfi, records=[value(r) for r in spec["records"]], read=read)
    return EF(fid, name, sfi, data=bytearray(value(spec.get("data", {"hex": ""}))), read=read)


def _objects(spec: dict[str, Any]) -> dict[int, tuple[bytes, Access]]:
    return {
        int(tag, 16): (value(obj["value"]), Access.parse(obj.get("read")))
        for tag, obj in spec.get("data_objects", {}).items()
    }


def _secret(spec: dict[str, Any], default_name: str) -> Secret:
    raw = value(spec["value"])
    tries = int(spec.get("tries", 3))
    return Secret(
        name=spec.get("name", default_name),
        value=raw,
        max_tries=tries,
        tries_left=int(spec.get("tries_left", tries)),
        min_length=int(spec.get("min_length", len(raw))),
        max_length=int(spec.get("max_length", len(raw))),
    )


CardT = TypeVar("CardT", bound=Iso7816Card)


def build_iso_card(profile: Profile, cls: type[CardT]) -> CardT:
    """The ISO 7816-4 part of a profile (files, PINs, data objects) as a ``cls`` card."""
    try:
        mf = _node(profile["filesystem"])
        if not isinstance(mf, DF) or mf.fid != 0x3F00:
            raise ProfileError("the file system must start at the MF, 3F00")
        pins: list[PinReference] = []
        for spec in profile.get("pins", []):
            pin = _secret(spec, "PIN")
            puk = _secret(spec["puk"], "PUK") if "puk" in spec else None
            pins.append(PinReference(int(spec.get("ref", "01"), 16), pin, puk))
            if puk is not None and "ref" in spec["puk"]:
                pins.append(PinReference(int(spec["puk"]["ref"], 16), puk))
        objects = _objects(profile)
        return cls(
            bytes.fromhex(profile["atr"]),
            mf,
            name=profile["name"],
            pins=pins,
            data_objects=objects,
            exact_le=bool(profile.get("exact_le", False)),
        )
    except (KeyError, TypeError, ValueError) as exc:
        if isinstance(exc, ProfileError):
            raise
        raise ProfileError(f"profile {profile.get('name')!r} is not valid: {exc!r}") from exc
