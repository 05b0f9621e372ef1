"""cardkit speaks French to French users, English otherwise, through gettext: the doctor
(by the user's locale) and the portal's messages (French, the portals' users).

Messages are written in English in the code (the msgids); ``locale/fr/LC_MESSAGES/cardkit.po``
is the one catalogue of their French, compiled into the ``.mo`` next to it with
:func:`compile_po` (``python -m cardkit.i18n``); a test checks that the committed ``.mo``
matches the ``.po``.
"""

from __future__ import annotations

import ast
import functools
import gettext
import locale
import os
import struct
import sys
from pathlib import Path

LOCALE_DIR = Path(__file__).with_name("locale")
DOMAIN = "cardkit"


def detect_language() -> str:
    """ "fr" when the user's locale is French, else "en"."""
    for variable in ("LANGUAGE", "LC_ALL", "LC_MESSAGES", "LANG"):
        value = os.environ.get(variable)
        if value:
            return "fr" if value.lower().startswith("fr") else "en"
    try:
        current = locale.getlocale()[0] or ""
    except ValueError:
        current = ""
    return "fr" if current.lower().startswith("fr") else "en"


@functools.cache
def translator(language: str) -> gettext.NullTranslations:
    """Loaded once per language: the portal asks for it on every message."""
    if language == "en":
        return gettext.NullTranslations()
    return gettext.translation(DOMAIN, LOCALE_DIR, languages=[language], fallback=True)


def _unquote(text: str) -> str:
    return str(ast.literal_eval(text))


def parse_po(text: str) -> dict[str, str]:
    """msgid -> msgstr of a simple .po (no plurals, no contexts), header included."""
    entries: dict[str, str] = {}
    msgid: list[str] | None = None
    msgstr: list[str] | None = None
    current: list[str] | None = None

    def flush() -> None:
        if msgid is not None and msgstr is not None:
            entries["".join(msgid)] = "".join(msgstr)

    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("msgid "):
            flush()
            msgid, msgstr = [_unquote(line[6:])], None
            current = msgid
        elif line.startswith("msgstr "):
            msgstr = [_unquote(line[7:])]
            current = msgstr
        elif line.startswith('"') and current is not None:
            current.append(_unquote(line))
    flush()
    return entries


def compile_po(text: str) -> bytes:
    """The GNU .mo bytes of a .po: what msgfmt writes, without needing gettext's tools."""
    entries = sorted(parse_po(text).items())
    ids = [k.encode("utf-8") for k, _ in entries]
    strs = [v.encode("utf-8") for _, v in entries]
    count = len(entries)
    header = 7 * 4
    ids_table = header
    strs_table = ids_table + count * 8
    data = strs_table + count * 8
    out_ids, out_strs, blob = [], [], b""
    for value in ids:
        out_ids.append((len(value), data + len(blob)))
        blob += value + b"\0"
    for value in strs:
        out_strs.append((len(value), data + len(blob)))
        blob += value + b"\0"
    result = struct.pack("<7I", 0x950412DE, 0, count, ids_table, strs_table, 0, 0)
    for length, offset in out_ids + out_strs:
        result += struct.pack("<2I", length, offset)
    return result + blob


def po_path(language: str = "fr") -> Path:
    return LOCALE_DIR / language / "LC_MESSAGES" / f"{DOMAIN}.po"


def main() -> None:
    for po in LOCALE_DIR.glob(f"*/LC_MESSAGES/{DOMAIN}.po"):
        po.with_suffix(".mo").write_bytes(compile_po(po.read_text(encoding="utf-8")))
        print(f"compiled {po.with_suffix('.mo')}", file=sys.stderr)


if __name__ == "__main__":
    main()
