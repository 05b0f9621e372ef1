from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cardkit.vitale.nir import (
    Nir,
    NirCharacterError,
    NirDepartmentError,
    NirError,
    NirKeyMismatch,
    NirLengthError,
    NirMonthError,
    NirSexError,
    check,
    compute_key,
)


class TestValid:
    @pytest.mark.parametrize(
        ("text", "key"),
        [
            ("2 69 05 49 588 157", "80"),  # the amelipro guide's example, 13 characters
            ("2 69 05 49 588 157 80", "80"),
            ("269054958815780", "80"),
            ("2 95 10 99 126 111 93", "93"),  # born abroad (99 + country)
            ("253072B07300470", "70"),  # Corsica 2B -> 18
            ("253072A07300443", "43"),  # Corsica 2A -> 19
            ("253072a07300443", "43"),  # lower case accepted
            ("1 84 12 976 12 345 19", "19"),  # Mayotte: 3-digit department
        ],
    )
    def test_examples(self, text: str, key: str) -> None:
        nir = Nir.parse(text)
        assert nir.key == key and nir.is_valid

    def test_fields(self) -> None:
        nir = Nir.parse("2 69 05 49 588 157 80")
        assert (nir.sex, nir.birth_year, nir.birth_month) == ("2", "69", "05")
        assert (nir.department, nir.commune, nir.order) == ("49", "588", "157")
        assert not nir.provisional and not nir.born_abroad and nir.caisse is None

    def test_overseas_department(self) -> None:
        nir = Nir.parse("1 84 12 976 12 345 19")
        assert (nir.department, nir.commune, nir.order) == ("976", "12", "345")

    def test_abroad(self) -> None:
        nir = Nir.parse("2 95 10 99 126 111 93")
        assert nir.born_abroad and nir.commune == "126"

    def test_corsica(self) -> None:
        assert Nir.parse("253072B07300470").department == "2B"
        assert compute_key("253072A073004") == "43"

    def test_output(self) -> None:
        nir = Nir.parse("269054958815780")
        assert nir.formatted() == "2 69 05 49 588 157 80"
        assert nir.masked() == "2 69 05 ** *** *** **"
        assert nir.number == "269054958815780" and str(nir) == nir.masked()
        assert "588" not in repr(nir)  # tracebacks and debug logs get the masked form

    def test_lenient_special_months_and_sexes(self) -> None:
        for month in ("20", "42", "50", "99"):
            body = f"1 69 {month} 49 588 157"
            assert Nir.parse(body).birth_month == month
            with pytest.raises(NirMonthError):
                Nir.parse(body, strict=True)
        for sex in ("3", "4"):
            assert Nir.parse(f"{sex} 69 05 49 588 157").sex == sex
            with pytest.raises(NirSexError):
                Nir.parse(f"{sex} 69 05 49 588 157", strict=True)

    def test_provisional_number(self) -> None:
        body = "7 1 123 12345678"
        nir = Nir.parse(body)
        assert nir.provisional and nir.caisse == "123" and nir.order == "12345678"
        assert nir.birth_month is None and nir.department is None and nir.commune is None
        assert Nir.parse(nir.number) == nir
        with pytest.raises(NirSexError):
            Nir.parse(body, strict=True)
        with pytest.raises(NirSexError, match="NNP"):
            Nir.parse("7 3 123 12345678")


class TestInvalid:
    @pytest.mark.parametrize(
        ("text", "error", "why"),
        [
            ("2 69 05 49 588 15", NirLengthError, "got 12"),
            ("2 69 05 49 588 157 8", NirLengthError, "got 14"),
            ("", NirLengthError, "got 0"),
            ("2 69 05 49 588 15X 80", NirCharacterError, "digits"),
            ("2 69 05 2C 588 157", NirCharacterError, "digits"),
            ("2 69 05 49 5A8 157", NirCharacterError, "2A or 2B"),
            ("2 69 05 49 588 157 8A", NirCharacterError, "key"),
            ("5 69 05 49 588 157", NirSexError, "first character 5"),
            ("0 69 05 49 588 157", NirSexError, "first character 0"),
            ("2 69 00 49 588 157", NirMonthError, "month 00"),
            ("2 69 13 49 588 157", NirMonthError, "month 13"),
            ("2 69 45 49 588 157", NirMonthError, "month 45"),
            ("2 69 05 00 588 157", NirDepartmentError, "00"),
            ("7 1 123 1234567A", NirCharacterError, "2A or 2B"),
        ],
    )
    def test_rules(self, text: str, error: type[NirError], why: str) -> None:
        with pytest.raises(error, match=why):
            Nir.parse(text)

    def test_key_mismatch_says_expected(self) -> None:
        with pytest.raises(NirKeyMismatch) as info:
            Nir.parse("2 69 05 49 588 157 81")
        assert (info.value.given, info.value.expected) == ("81", "80")
        assert "expected key 80" in str(info.value)
        assert info.value.code == "nir_key"

    def test_check_helper(self) -> None:
        assert check("269054958815780") is None
        assert isinstance(check("269054958815781"), NirKeyMismatch)


# --- properties -------------------------------------------------------------------------


@st.composite
def valid_nirs(draw: st.DrawFn) -> Nir:
    sex = draw(st.sampled_from("12"))
    year = draw(st.integers(0, 99))
    month = draw(st.integers(1, 12))
    department = draw(st.sampled_from(["01", "2A", "2B", "49", "75", "95", "99", "971", "976"]))
    rest = draw(st.text("0123456789", min_size=6, max_size=6))
    body = f"{sex}{year:02d}{month:02d}{department}{rest}"[:13]  # a 3-digit department
    # leaves a 2-digit commune
    return Nir.parse(body, strict=True)


@given(valid_nirs(), st.sampled_from([" ", "", "  "]))
def test_formatted_roundtrip(nir: Nir, separator: str) -> None:
    assert Nir.parse(nir.formatted()) == nir
    assert Nir.parse(nir.formatted().replace(" ", separator)) == nir
    assert Nir.parse(nir.number) == nir


@given(valid_nirs(), st.data())
def test_any_single_digit_change_is_detected(nir: Nir, data: st.DataObject) -> None:
    text = nir.number
    positions = [i for i, c in enumerate(text) if c.isdigit()]
    i = data.draw(st.sampled_from(positions))
    replacement = data.draw(st.sampled_from([d for d in "0123456789" if d != text[i]]))
    altered = text[:i] + replacement + text[i + 1 :]
    with pytest.raises(NirError):
        Nir.parse(altered)


@given(st.text(max_size=20))
def test_anything_else_raises_only_nir_errors(text: str) -> None:
    try:
        nir = Nir.parse(text)
    except NirError:
        return
    assert nir.is_valid
