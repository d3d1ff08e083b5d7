"""HoSo Courier server: the chain of custody over HTTP."""

__version__ = "0.1.0"
