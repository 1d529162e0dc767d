"""Recall: search everything remembered about a person, in the database's own full-text index.

Episodes, facts (with their earlier values) and the person's own transcript across every bot
and channel, ranked by relevance, never by recency alone, and never crossing people. The same
search feeds the prompt (:mod:`mnemobot.runtime.llm.prompt`), ``ctx.user.recall``, BASIC
``RECALL``, ``mnemobot memory search`` and the admin API.
"""

from typing import TYPE_CHECKING

from mnemobot.runtime._exports import lazy_exports

if TYPE_CHECKING:
    from mnemobot.runtime.recall.query import search_terms
    from mnemobot.runtime.recall.search import Recall, Recalled, RecallKind, RecallSet

__all__ = ["Recall", "RecallKind", "RecallSet", "Recalled", "search_terms"]

__getattr__ = lazy_exports(
    __name__,
    {
        "search_terms": "query",
        "Recall": "search",
        "RecallKind": "search",
        "RecallSet": "search",
        "Recalled": "search",
    },
)
