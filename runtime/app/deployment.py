"""``mnemobot run``: every configured channel, the webhook server and the janitor, in one loop.

Everything is checked before anything starts (one clear line per problem: a missing token
variable, an unknown bot, a duplicate channel name, a port in use). Shutdown on SIGINT or
SIGTERM stops intake first, lets turns in flight finish, and leaves anything stored but not
answered to be answered at the next start.

Several ``mnemobot run`` workers may share one PostgreSQL: each runs a reclaimer that
finishes what a dead worker left (see :mod:`runtime.recovery`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from mnemobot.adapters.channel import Channel
from mnemobot.adapters.server import build_app, check_port_free, serve
from mnemobot.runtime.errors import ConfigError
from mnemobot.runtime.llm.client import LiteLLM
from mnemobot.runtime.pipeline.recovery import Reclaimer
from mnemobot.runtime.pipeline.runtime import Runtime
from mnemobot.runtime.recall.embedding import LiteLLMEmbedder
from mnemobot.runtime.settings import ChannelSettings, Settings

__all__ = ["build_channels", "page_urls", "run_deployment", "warm_up"]

logger = logging.getLogger(__name__)


def _factory(kind: str) -> Callable[[ChannelSettings, Runtime], Channel]:
    if kind == "telegram":
        from mnemobot.adapters.telegram.channel import TelegramChannel

        return TelegramChannel.from_settings
    if kind == "slack":
        from mnemobot.adapters.slack.channel import SlackChannel

        return SlackChannel.from_settings
    if kind == "web":
        from mnemobot.adapters.web.channel import WebChannel

        return WebChannel.from_settings
    raise ConfigError(f"unknown channel kind {kind!r} (known: telegram, slack, web)")


def build_channels(runtime: Runtime) -> list[Channel]:
    """Every ``[[channels]]`` entry, checked and bound to its entry bot."""
    channels: list[Channel] = []
    seen: set[str] = set()
    for settings in runtime.settings.channels:
        if settings.name in seen:
            raise ConfigError(f"channel name {settings.name!r} is used twice; names must be unique")
        seen.add(settings.name)
        try:
            runtime.bots.get(settings.bot)
        except ConfigError as exc:
            raise ConfigError(f"channel {settings.name!r}: {exc}") from None
        channel = _factory(settings.kind)(settings, runtime)
        runtime.bind_channel(channel.name, bot=settings.bot)
        channels.append(channel)
    return channels


def page_urls(settings: Settings, channels: list[Channel]) -> list[str]:
    """The start-up lines naming the browser pages served: home, web chat, inspector."""
    from mnemobot.adapters.admin.auth import admin_tokens

    base = f"http://{settings.server.host}:{settings.server.port}"
    lines = [f"home page: {base}/"]
    if any(channel.kind == "web" for channel in channels):
        lines.append(f"web chat: {base}/chat/")
    if admin_tokens():
        lines.append(f"memory inspector: {base}/admin/")
    return lines


def warm_up(runtime: Runtime) -> None:
    """Import litellm before listening, when anything will call it.

    The import costs seconds of CPU; done lazily by the first turn (a chat model's answer, or
    the query embedding of a deployment whose code-only bots have no chat model), it would
    stall the event loop, and every webhook waiting on it, for that long.
    """
    if isinstance(runtime.llm, LiteLLM):
        runtime.llm.warm_up()
    if isinstance(runtime.recall.embedder, LiteLLMEmbedder):
        runtime.recall.embedder.warm_up()  # litellm is imported once: its key is checked


async def run_deployment(runtime: Runtime, channels: list[Channel], stop: asyncio.Event) -> None:
    """Run until ``stop`` is set."""
    from mnemobot.adapters.admin.api import admin_routes, metrics_routes
    from mnemobot.adapters.web.pages import inspector_routes

    settings = runtime.settings
    routes = [route for channel in channels for route in channel.routes()]
    admin = admin_routes(runtime)  # a weak token stops start-up here, before anything runs
    routes += [*admin, *inspector_routes()] if admin else []
    routes += metrics_routes(runtime.metrics)
    host, port = settings.server.host, settings.server.port
    check_port_free(host, port)
    started: list[Channel] = []
    try:
        for channel in channels:
            await channel.delivery.recover()
            await channel.start()
            started.append(channel)
            logger.info(
                "%s (%s) -> bot %s", channel.name, channel.kind, runtime.channel_bot(channel.name)
            )
    except BaseException:
        for channel in started:  # e.g. a second poller for one token: stop cleanly, then say so
            await channel.stop()
        raise
    workers = settings.workers
    reclaimer = Reclaimer(
        runtime.delivery_services,
        {
            # a web channel answers as one instance per bot (web:<bot>); others as themselves
            instance: channel.delivery
            for channel in channels
            for instance in (getattr(channel, "instances", {}).values() or [channel.name])
        },
        reclaim_after=workers.reclaim_after,
        send_lease=workers.send_lease,
    )
    tasks = [
        asyncio.create_task(reclaimer.run(workers.reclaim_interval, stop), name="reclaimer"),
        asyncio.create_task(runtime.janitor.run(settings.janitor.interval, stop), name="janitor"),
        asyncio.create_task(
            runtime.episode_worker.run(settings.janitor.interval, stop), name="episode-worker"
        ),
        asyncio.create_task(
            serve(build_app(routes, bots=runtime.bots.names()), host, port, stop), name="server"
        ),
    ]
    try:
        await stop.wait()
    finally:
        for channel in channels:
            await channel.stop()
        for channel in channels:
            await channel.delivery.drain()
        await asyncio.gather(*tasks, return_exceptions=True)
