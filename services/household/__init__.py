"""The household service. See docs/services/household.md."""
