"""SGT: example data in, trained models out, behind a JSON HTTP API."""

__version__ = "0.1.0"
