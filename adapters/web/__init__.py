"""The web chat channel and the static pages (chat and inspector) it serves."""

from mnemobot.adapters.web.channel import WebChannel

__all__ = ["WebChannel"]
