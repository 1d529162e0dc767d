"""Metrics: one registry per runtime, the helpers the wiring calls, and ``GET /metrics``."""

from __future__ import annotations

import httpx
from prometheus_client import REGISTRY

from mnemobot.adapters.admin.api import METRICS_TOKEN_ENV, metrics_routes
from mnemobot.adapters.server import build_app
from mnemobot.runtime.llm.client import Usage
from mnemobot.runtime.ops.metrics import CONTENT_TYPE, Metrics

NAMES = (
    "mnemobot_messages_received_total",
    "mnemobot_messages_sent_total",
    "mnemobot_turn_seconds_bucket",
    "mnemobot_llm_seconds_bucket",
    "mnemobot_llm_tokens_total",
    "mnemobot_llm_calls_total",
    "mnemobot_dedupe_hits_total",
    "mnemobot_lock_wait_seconds_bucket",
    "mnemobot_errors_total",
    "mnemobot_janitor_rows_total",
    "mnemobot_janitor_runs_total",
    "mnemobot_episode_jobs_total",
)


def busy_metrics() -> Metrics:
    metrics = Metrics()
    metrics.message_received("console:sales-bot", "sales-bot")
    metrics.replies_committed("console:sales-bot", {"sales-bot": 1, "support-bot": 2})
    metrics.turn_finished("sales-bot", 0.02)
    metrics.turn_finished("sales-bot", 3.0, outcome="failed")
    metrics.dedupe_hit("sales-telegram")
    with metrics.timing_lock():
        pass
    metrics.lock_waited(0.2)
    metrics.error(ValueError("boom"))
    usage = Usage("sales-bot", None, "answer", "openai/gpt-4o-mini", 120, 30, 0.0, 850, True)
    metrics.llm_call(usage)
    metrics.llm_call(Usage("sales-bot", None, "episode", "openai/gpt-4o-mini", 0, 0, 0, 40, False))
    metrics.janitor_swept({"sessions_ended": 2, "link_codes": 0, "episodes": 1})
    metrics.janitor_failed(RuntimeError("db down"))
    metrics.episode_jobs_ran({"claimed": 3, "done": 2, "skipped": 1, "failed": 0})
    return metrics


def value(metrics: Metrics, name: str, **labels: str) -> float | None:
    return metrics.registry.get_sample_value(name, labels)


def test_the_helpers_count_what_the_wiring_reports():
    metrics = busy_metrics()

    assert (
        value(
            metrics,
            "mnemobot_messages_received_total",
            channel="console:sales-bot",
            bot="sales-bot",
        )
        == 1
    )
    assert (
        value(
            metrics, "mnemobot_messages_sent_total", channel="console:sales-bot", bot="support-bot"
        )
        == 2
    )
    assert value(metrics, "mnemobot_turn_seconds_count", bot="sales-bot", outcome="ok") == 1
    assert value(metrics, "mnemobot_turn_seconds_count", bot="sales-bot", outcome="failed") == 1
    assert value(metrics, "mnemobot_dedupe_hits_total", channel="sales-telegram") == 1
    assert value(metrics, "mnemobot_lock_wait_seconds_count") == 2
    assert value(metrics, "mnemobot_errors_total", kind="ValueError", where="turn") == 1
    assert value(metrics, "mnemobot_errors_total", kind="LLMCallFailed", where="llm") == 1
    assert value(metrics, "mnemobot_errors_total", kind="RuntimeError", where="janitor") == 1
    model = "openai/gpt-4o-mini"
    assert (
        value(metrics, "mnemobot_llm_tokens_total", model=model, purpose="answer", kind="prompt")
        == 120
    )
    assert (
        value(
            metrics, "mnemobot_llm_tokens_total", model=model, purpose="answer", kind="completion"
        )
        == 30
    )
    assert value(metrics, "mnemobot_llm_seconds_sum", model=model, purpose="answer") == 0.85
    assert (
        value(metrics, "mnemobot_llm_calls_total", model=model, purpose="episode", ok="false") == 1
    )
    assert value(metrics, "mnemobot_janitor_rows_total", kind="sessions_ended") == 2
    assert value(metrics, "mnemobot_janitor_rows_total", kind="link_codes") is None
    assert value(metrics, "mnemobot_janitor_runs_total", outcome="failed") == 1
    assert value(metrics, "mnemobot_episode_jobs_total", outcome="done") == 2
    assert value(metrics, "mnemobot_episode_jobs_total", outcome="claimed") is None


def test_each_runtime_has_its_own_registry_and_the_global_one_is_untouched():
    first, second = busy_metrics(), Metrics()

    assert value(second, "mnemobot_dedupe_hits_total", channel="sales-telegram") is None
    assert value(first, "mnemobot_dedupe_hits_total", channel="sales-telegram") == 1
    assert (
        REGISTRY.get_sample_value("mnemobot_dedupe_hits_total", {"channel": "sales-telegram"})
        is None
    )


async def test_metrics_route_serves_prometheus_text_openly_or_with_its_token():
    metrics = busy_metrics()
    app = build_app(metrics_routes(metrics, environ={}), bots=[])
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://m") as c:
        answer = await c.get("/metrics")
    assert answer.status_code == 200
    assert answer.headers["content-type"] == CONTENT_TYPE
    for name in NAMES:
        assert f"\n{name}{{" in answer.text or answer.text.startswith(name), name
    assert "# HELP mnemobot_turn_seconds Time to handle one message" in answer.text

    token = "metrics-token-0123456789"
    guarded = build_app(metrics_routes(metrics, environ={METRICS_TOKEN_ENV: token}), bots=[])
    transport = httpx.ASGITransport(app=guarded)
    async with httpx.AsyncClient(transport=transport, base_url="http://m") as c:
        assert (await c.get("/metrics")).status_code == 401
        ok = await c.get("/metrics", headers={"Authorization": f"Bearer {token}"})
    assert ok.status_code == 200 and "mnemobot_errors_total" in ok.text
