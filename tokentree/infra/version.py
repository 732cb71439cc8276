"""The package version, in one place below every layer (records and run metadata carry it)."""

__version__ = "0.1.0"
