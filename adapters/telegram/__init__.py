"""The Telegram channel: one bot account on python-telegram-bot, polling or webhook."""

from mnemobot.adapters.telegram.channel import TelegramChannel

__all__ = ["TelegramChannel"]
