"""The documents service. See docs/services/documents.md."""
