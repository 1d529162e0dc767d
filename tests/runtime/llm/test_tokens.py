"""Token counts word by word: the encoding's own count, whatever the words."""

from __future__ import annotations

import random

import pytest
import tiktoken

from mnemobot.runtime.llm import tokens
from mnemobot.runtime.llm.client import LiteLLM
from mnemobot.runtime.llm.tokens import EncodingCount
from mnemobot.runtime.settings import LLMSettings

# words a tokenizer's pattern treats apart: contractions, digit runs, punctuation runs, marks,
# scripts without spaces, emoji, special-token text, capitals inside a word
WORDS = [
    "it's", "I'LL", "they'd", "don't", "'s", "12345", "3.14159", "$12.50", "1,000,000", "!!!",
    "...", "?", "(see", "below)", "São", "Paulo's", "naïve", "e\u0301te\u0301", "Привет,",
    "мир!", "日本語のテキスト", "中文", "🙂", "👩‍👩‍👧", "<|endoftext|>", "McDonald'S",
    "camelCaseWord", "https://example.com/a?b=1", "user:", "—", "“quoted”", "x", "ı", "ÀÉÎ",
    "\u00ad", "\u200b", "1a2b3c", "__init__", "a/b/c", "#tag", "@name", "%", "'", "'''",
]  # fmt: skip


@pytest.mark.parametrize("model", ["openai/gpt-4o-mini", "anthropic/claude-3-haiku-20240307"])
def test_a_line_counted_word_by_word_is_counted_as_the_encoding_counts_it(model: str) -> None:
    """o200k_base and cl100k_base: single-spaced lines of every kind of word, counted cold and
    again from the remembered words, equal token_counter's count of the whole line."""
    llm = LiteLLM(LLMSettings(default=model))
    llm.warm_up()
    named = model.split("/", 1)[1]
    draw = random.Random(13)
    lines = [" ".join(draw.choices(WORDS, k=draw.randint(1, 40))) for _ in range(300)]

    for line in lines + lines:
        assert llm.count_tokens(line) == llm._litellm.token_counter(model=named, text=line), line


SPACES = [" ", " ", " ", "\n", "\n", "\r", "\t", "\u00a0", "\u2028", "\x1c", "/"]


@pytest.mark.parametrize("model", ["openai/gpt-4o-mini", "anthropic/claude-3-haiku-20240307"])
def test_any_text_is_counted_as_the_encoding_counts_it(model: str) -> None:
    """Texts of every kind of word and whitespace (line breaks, runs, indents, tabs, a line
    that opens with a slash), short and over a chunk, counted cold and again from what is
    remembered: token_counter's count of the whole text."""
    llm = LiteLLM(LLMSettings(default=model))
    llm.warm_up()
    named = model.split("/", 1)[1]
    draw = random.Random(17)
    texts = []
    for _ in range(200):
        size = draw.randint(1, 800)  # whitespace runs of any mix: a space after a break...
        texts.append(
            "".join(draw.choice((SPACES, WORDS)[draw.random() < 0.6]) for _ in range(size))
        )

    for text in texts + texts:
        assert llm.count_tokens(text) == llm._litellm.token_counter(model=named, text=text), text


@pytest.mark.parametrize(
    "text", ["two  spaces", " leading", "trailing ", "new\nline", "tab\there", "no\u00a0break", ""]
)
def test_other_whitespace_is_counted_as_the_encoding_counts_it(text: str) -> None:
    llm = LiteLLM(LLMSettings(default="openai/gpt-4o-mini"))
    llm.warm_up()
    assert llm.count_tokens(text) == llm._litellm.token_counter(model="gpt-4o-mini", text=text)


def test_the_words_remembered_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    """A server that runs for months meets new words for ever: it keeps at most WORDS_KEPT,
    none longer than LONGEST_KEPT, and counts the same after forgetting them."""
    monkeypatch.setattr(tokens, "WORDS_KEPT", 50)
    llm = LiteLLM(LLMSettings(default="openai/gpt-4o-mini"))
    llm.warm_up()
    counted = llm._encoding("openai/gpt-4o-mini")
    assert counted is not None
    line = " ".join(f"word{n}" for n in range(120))
    first = llm.count_tokens(line)

    assert len(counted._known) <= 50
    assert llm.count_tokens(line) == first == len(counted.encoding.encode_ordinary(line))

    counted._known.clear()
    long_word = "x" * (tokens.LONGEST_KEPT + 1)  # a long part is counted, not kept
    assert llm.count_tokens(f"a {long_word}") == len(
        counted.encoding.encode_ordinary(f"a {long_word}")
    )
    assert set(counted._known) == {"a"}


def test_an_encoding_whose_pattern_looks_past_line_breaks_is_counted_whole() -> None:
    """r50k's and p50k's pattern: a run of breaks followed by a word is split into single
    breaks, which a part ending in the run would encode as one piece."""
    ranks = {bytes([byte]): byte for byte in range(256)} | {b"\n\n": 256}
    pattern = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""
    gpt2 = tiktoken.Encoding("p50k-like", pat_str=pattern, mergeable_ranks=ranks, special_tokens={})
    counted = EncodingCount(gpt2)

    for text in ["A\n\nB", "user: hi there.\n\nbot: ok", "a b  c\n\n\nd"]:
        assert counted(text) == len(gpt2.encode_ordinary(text)), text
