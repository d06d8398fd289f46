"""The identity service. See docs/services/identity.md."""
