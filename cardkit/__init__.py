"""cardkit: French health smart cards (CPS, CPE, Vitale) for web portals."""

__version__ = "0.1.0"
