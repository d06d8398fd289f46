"""The web pages for families and agents. See docs/services/web.md."""
