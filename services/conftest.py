"""Unit tests do no I/O: the apps they build record metrics and spans but export no span."""

import os

os.environ.setdefault("ECP_OTLP_ENDPOINT", "")
