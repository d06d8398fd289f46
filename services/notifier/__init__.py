"""The notifier service. See docs/services/notifier.md."""
