"""Counting a model's tokens with its own tiktoken encoding, word by word where that is exact.

Tokens are counted as litellm's token_counter counts them for the model as its provider names
it: "openai/gpt-4o-mini" is OpenAI's gpt-4o-mini, whose encoding is o200k_base. token_counter
chooses the encoding from the name it is given, and for a name with a provider prefix falls
back to cl100k_base (gpt-3.5's), which counts Portuguese ~20% and Russian ~90% longer than
o200k_base does: a prompt trimmed for tokens the model would never see. Where the model's
tokenizer is tiktoken, its encoding is kept per model (:class:`EncodingCount`) and called
directly, in chunks of :data:`CHUNK_CHARS` characters as token_counter encodes (its
TIKTOKEN_ENCODE_CHUNK_SIZE_CHARS): the same count, without token_counter's ~200 us of model
catalogue lookups a call (a prompt counts each recalled line it considers, 100+ for a long
history).

A long history's prompt recalls lines no prompt counted before, ~50 of them each time, and
then counts the whole prompt they are rendered in, so the encoding's work grows with the
history (~16 us a line of rare words). The words are mostly not new, though: a text is counted
as the sum of its words' counts, each remembered (:data:`WORDS_KEPT`), and that sum is the
encoding's own count. tiktoken splits text into pieces by a pattern and encodes each piece
alone. In the patterns of cl100k_base and o200k_base (:data:`SPLIT_BY_WORDS`: the encodings
token_counter counts chat models with) a space can only open a piece, never sit inside one or
end one, and a run of line breaks is a piece of its own, or ends one, unless whitespace or
(o200k) a slash follows it; nothing the patterns look ahead for tells a space from the end of
the text. (Not so in r50k's and p50k's, whose runs of whitespace look ahead past the breaks:
their texts are encoded whole.) So a text splits, without changing its pieces, before each
single space between two other characters and after each line break that a character other
than whitespace or a slash follows; each part's count does not depend on the others. A line
of single spaces (as the prompt writes a recalled line) is split word by word; a part with
other whitespace in it (an indented line of JSON) is counted whole, and remembered as a word
is when it is short.
"""

from __future__ import annotations

import itertools
from typing import Any

__all__ = ["CHUNK_CHARS", "LONGEST_KEPT", "SPLIT_BY_WORDS", "WORDS_KEPT", "EncodingCount"]

CHUNK_CHARS = 1024
SPLIT_BY_WORDS = frozenset({"cl100k_base", "o200k_base"})  # encodings whose pattern allows it
WORDS_KEPT = 100_000  # words whose counts are remembered; all forgotten when full
LONGEST_KEPT = 64  # characters: a longer word or part is encoded each time (~15 MB of Latin)


class EncodingCount:
    """Tokens of a text in one tiktoken encoding, as token_counter counts them."""

    def __init__(self, encoding: Any) -> None:
        self.encoding = encoding
        self._known: dict[str, int] = {}  # a word (with the space before it) or a part -> tokens
        self._count_chunk = self._chunk if encoding.name in SPLIT_BY_WORDS else self._whole

    def __call__(self, text: str) -> int:
        count = self._count_chunk
        if len(text) <= CHUNK_CHARS:
            return count(text)
        return sum(
            count(text[start : start + CHUNK_CHARS]) for start in range(0, len(text), CHUNK_CHARS)
        )

    def _whole(self, text: str) -> int:
        return len(self.encoding.encode_ordinary(text))

    def _chunk(self, text: str) -> int:
        """The parts between line breaks, each with its break, joined to the next part when
        that starts with whitespace or a slash (or is empty: a run of breaks)."""
        if "\n" not in text:
            return self._line(text)
        lines = text.split("\n")
        total, held = 0, ""
        for line, following in itertools.pairwise(lines):
            part = held + line + "\n"
            if not following or following[0].isspace() or following[0] == "/":
                held = part
            else:
                total, held = total + self._line(part), ""
        return total + self._line(held + lines[-1])

    def _line(self, part: str) -> int:
        """A part of single spaces word by word (its break, if any, with its last word); any
        other part whole."""
        body = part[:-1] if part.endswith("\n") else part
        words = body.split(" ")
        # isprintable: no whitespace but the ASCII space (nor control or format characters)
        if not body.isprintable() or "" in words:  # or spaces in a run, first or last
            return self._count(part)
        if len(part) > len(body):
            words[-1] += "\n"
        known, total = self._known, 0
        for place, word in enumerate(words):  # the hot loop of a long prompt: ~1,000 words
            piece = " " + word if place else word
            count = known.get(piece)
            total += self._count(piece) if count is None else count
        return total

    def _count(self, piece: str) -> int:
        """The tokens of ``piece``, remembered unless it is long."""
        known = self._known
        count = known.get(piece)
        if count is None:
            count = len(self.encoding.encode_ordinary(piece))
            if len(piece) <= LONGEST_KEPT:
                if len(known) >= WORDS_KEPT:
                    known.clear()
                known[piece] = count
        return count
