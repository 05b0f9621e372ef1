"""Vitale cards (the patient's card) and the NIR."""

from cardkit.vitale.nir import Nir, NirError

__all__ = ["Nir", "NirError"]
