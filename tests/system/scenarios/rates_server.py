"""A local stand-in for the seed's exchange-rate API (tests have no network)."""

from __future__ import annotations

from typing import Any

from tests.fakes import FakeHTTPServer, RecordedRequest, Reply


class RatesServer(FakeHTTPServer):
    def __init__(self) -> None:
        super().__init__()
        self.brl = 5.0
        self.hits = 0

    @property
    def url(self) -> str:  # type: ignore[override]
        return super().url + "/latest"

    def route(self, path: str, headers: dict[str, str], params: dict[str, Any]) -> tuple[str, None]:
        return ("latest" if path == "/latest" else ""), None

    def handle(self, request: RecordedRequest) -> Reply:
        if request.api_method != "latest":
            return Reply(404, {"error": "not found"})
        self.hits += 1
        return Reply(200, {"base": "USD", "rates": {"BRL": self.brl, "EUR": 0.92}})
