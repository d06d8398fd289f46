"""Every event model and topic name of the portal, one module per owning service.

This package is the only code services share besides the kernel: a service imports its own
events and the events it consumes from here, never from another service. The JSON Schemas,
examples and AsyncAPI document under ``schemas/`` are generated from these models
(``python -m services.kernel.schemas write``) and a test fails when they drift.
"""

from __future__ import annotations

import importlib

# One module per owning service; importing a module registers its event types.
MODULES = ("identity", "household", "documents", "enrolment", "notifier", "insights")


def load_all() -> None:
    """Imports every contracts module, so that every event type is registered."""
    for name in MODULES:
        importlib.import_module(f"{__name__}.{name}")
