"""Turn lark's parse exceptions into one readable DialogSyntaxError.

Bot authors see this message when their bot refuses to load, so it says what was found, what
would have fitted (in BASIC words, not grammar terminal names), which block is still open,
and shows the line with a caret. Nothing of lark's own text or traceback leaks through.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Any

from lark import Token
from lark.exceptions import UnexpectedCharacters, UnexpectedInput, UnexpectedToken
from lark.lexer import PatternStr, TerminalDef

from mnemobot.runtime.dialogs.errors import DialogSyntaxError

__all__ = ["excerpt", "from_lark", "terminal_names"]

_REGEX_NAMES = {
    "NAME": "a name",
    "NUMBER": "a number",
    "STRING": "a string",
    "CMP_OP": "a comparison",
    "_NL": "end of line",
    "$END": "end of file",
}
# What closes each kind of open construct, for "still open" hints.
_OPENERS = {
    "IF": ("IF", "END IF"),
    "FOR": ("FOR", "NEXT"),
    "WHILE": ("WHILE", "WEND"),
    "__ANON_0": ("map #{", "}"),
    "LPAR": ("parenthesis (", ")"),
    "LSQB": ("list [", "]"),
}
_CLOSERS = {"END", "ENDIF", "NEXT", "WEND", "ELSE", "ELSEIF"}
_KEYWORD_HINT = "a statement such as TALK, HEAR, SET, IF, FOR EACH, WHILE"
_FIRST_WORD = re.compile(r"\s*([A-Za-z_][A-Za-z0-9_]*)")


def terminal_names(terminals: Iterable[TerminalDef]) -> dict[str, str]:
    """Map lark terminal names to what an author would type: ``LPAR`` -> ``"("``."""
    names: dict[str, str] = dict(_REGEX_NAMES)
    for terminal in terminals:
        if terminal.name in names:
            continue
        pattern = terminal.pattern
        if isinstance(pattern, PatternStr):
            text = pattern.value.upper() if "i" in pattern.flags else pattern.value
            names[terminal.name] = f'"{text}"'
        else:
            names[terminal.name] = terminal.name.lower()
    return names


def excerpt(source_lines: Sequence[str], line: int, column: int) -> str:
    """The offending line, indented, with a caret under the column (tabs kept aligned)."""
    if not 1 <= line <= len(source_lines):
        return ""
    text = source_lines[line - 1].rstrip("\r\n")
    pad = "".join(ch if ch == "\t" else " " for ch in text[: max(column - 1, 0)])
    return f"    {text}\n    {pad}^"


def _describe(token: Token) -> str:
    if token.type == "$END":
        return "end of file"
    if token.type == "_NL":
        return "end of line"
    if token.type == "STRING":
        return f"string {token.value}"
    if token.type == "NUMBER":
        return f"number {token.value}"
    if token.type == "NAME":
        return f'name "{token.value}"'
    return f'"{token.value}"'


_OPERATORS = {"AMP", "AND", "CMP_OP", "DOT", "EQ", "LSQB", "MINUS", "MOD", "OR", "PLUS", "SLASH"}
_OPERATORS |= {"STAR"}
_EXPRESSION_STARTS = {"NUMBER", "STRING", "NAME", "LPAR", "LSQB", "MINUS", "PLUS", "__ANON_0"}
_EXPRESSION_STARTS |= {"TRUE", "FALSE", "NOT", "GET", "USER"}
_STATEMENT_STARTS = {"TALK", "HEAR", "PRINT", "SET", "SET_BOT_MEMORY", "GET_BOT_MEMORY"}
_STATEMENT_STARTS |= {"TRANSFER", "EXIT", "IF", "FOR", "WHILE"}


def _expected(expected: Iterable[str], names: dict[str, str]) -> str:
    """What would have fitted, with big families summarised in words."""
    remaining = set(expected)
    words: list[str] = []
    if {"TALK", "HEAR"} <= remaining:
        words.append("a statement")
        remaining -= _STATEMENT_STARTS | {"NAME"}
    if {"NUMBER", "STRING"} <= remaining:
        words.append("an expression")
        remaining -= _EXPRESSION_STARTS
    if len(remaining & _OPERATORS) >= 3:
        words.append("an operator")
        remaining -= _OPERATORS
    shown = sorted({names.get(name, name) for name in remaining})
    if len(shown) > 10:
        shown = [*shown[:10], "..."]
    return ", ".join(words + shown)


def _accepted(exc: UnexpectedToken) -> set[str]:
    """The terminals that really fit here. LALR's own ``expected`` merges lookaheads of
    similar states and lists words that could never follow; the interactive parser knows."""
    parser: Any = exc.interactive_parser
    try:
        return set(parser.accepts())
    except Exception:  # pragma: no cover - fall back to the coarser set
        return set(exc.expected)


def _open_construct(stack: Sequence[object]) -> tuple[str, str, int] | None:
    """The innermost construct still open on the parser's stack: (what, closer, line)."""
    previous: object = None
    candidates: list[tuple[str, str, int]] = []
    for item in stack:
        if isinstance(item, Token) and item.type in _OPENERS:
            # ELSE IF opens nothing new; the IF of END IF closes (a typo after it, END IFF,
            # leaves that IF on the stack: it is not the one to name)
            is_continuation = (
                item.type == "IF"
                and isinstance(previous, Token)
                and previous.type in ("ELSE", "END")
            )
            if not is_continuation:
                what, closer = _OPENERS[item.type]
                candidates.append((what, closer, item.line or 0))
        previous = item
    return candidates[-1] if candidates else None


def _just_after_first_word(line_text: str, first_word: str, column: int, words: int = 0) -> bool:
    """Whether ``column`` is the first word of the line, or what follows it (allowing
    ``words`` more words in between, for ``END IF``)."""
    match = _FIRST_WORD.match(line_text)
    if not match or match.group(1) != first_word:
        return False
    if column == match.start(1) + 1:
        return True
    between = line_text[match.end(1) : max(column - 1, match.end(1))].split()
    return len(between) <= words


def _stack_of(exc: UnexpectedToken) -> Sequence[object]:
    state = getattr(exc, "state", None)
    stack = getattr(state, "value_stack", None)
    return list(stack) if stack is not None else []


def from_lark(
    exc: UnexpectedInput, source_lines: Sequence[str], filename: str, names: dict[str, str]
) -> DialogSyntaxError:
    """Build the one error to show for a parse failure."""
    if isinstance(exc, UnexpectedCharacters):
        line, column = exc.line, exc.column
        if exc.char == '"':
            reason = 'unterminated string (a string must end with " on the same line)'
        else:
            reason = f"unexpected character {exc.char!r}"
        return DialogSyntaxError(
            filename, line, column, reason, excerpt(source_lines, line, column)
        )
    if not isinstance(exc, UnexpectedToken):  # pragma: no cover - LALR raises only these two
        line, column = max(exc.line, 1), max(exc.column, 1)
        return DialogSyntaxError(filename, line, column, "cannot parse", "")

    token = exc.token
    accepted = _accepted(exc)
    stack = _stack_of(exc)
    open_block = _open_construct(stack)
    if token.type == "$END":
        line = max((i + 1 for i, text in enumerate(source_lines) if text.strip()), default=1)
        column = len(source_lines[line - 1].rstrip()) + 1 if source_lines else 1
        if open_block:
            what, closer, opened = open_block
            reason = f"end of file inside the {what} opened on line {opened}: expected {closer}"
        else:
            reason = "unexpected end of file"
        return DialogSyntaxError(
            filename, line, column, reason, excerpt(source_lines, line, column)
        )

    line, column = token.line or exc.line, token.column or exc.column
    line_text = source_lines[line - 1] if 1 <= line <= len(source_lines) else ""
    match = _FIRST_WORD.match(line_text)
    first_word = match.group(1) if match else ""
    first_upper = first_word.upper()
    start_column = (match.start(1) + 1) if match else 1
    keyword_names = {value.strip('"') for value in names.values() if value.startswith('"')}

    closer_misplaced = first_upper in _CLOSERS and _just_after_first_word(
        line_text, first_word, column, words=1 if first_upper == "END" else 0
    )
    if closer_misplaced:
        closer_text = " ".join(line_text.split()[:2]) if first_upper == "END" else first_word
        if open_block:
            what, closer, opened = open_block
            reason = (
                f'"{closer_text}" does not close the {what} opened on line {opened}: '
                f"expected {closer}"
            )
        else:
            reason = f'"{closer_text}" without a matching IF, FOR or WHILE'
        column = start_column
    elif (
        "EQ" in accepted
        and first_upper not in keyword_names
        and _just_after_first_word(line_text, first_word, column)
    ):
        reason = (
            f'unknown statement "{first_word}": expected {_KEYWORD_HINT}, '
            f'or an assignment "{first_word} = ..."'
        )
        column = start_column
    else:
        reason = f"unexpected {_describe(token)}; expected {_expected(accepted, names)}"
        if open_block and token.type == "_NL" and open_block[0].startswith(("map", "list")):
            reason += f" (inside the {open_block[0]} opened on line {open_block[2]})"
    return DialogSyntaxError(filename, line, column, reason, excerpt(source_lines, line, column))
