"""The Slack channel: Events API over HTTP or Socket Mode in, ``chat.postMessage`` out."""

from mnemobot.adapters.slack.channel import SlackChannel

__all__ = ["SlackChannel"]
