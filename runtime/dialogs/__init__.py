"""Dialogs in the General Bots BASIC dialect: parse a ``.bas`` program once, then run it one
message at a time, saving where it waits (``HEAR``) as JSON so any process can resume it.

Typical use by the runtime::

    dialog = load_dialog(bot_dir / "start.bas")          # DialogSyntaxError: bot won't load
    outcome = await run_dialog(dialog, host, saved_state, text)
    if outcome.waiting:
        session["dialog_state"] = outcome.state           # resume with the next message

The dialect in brief (``grammar.lark`` is the reference; ``values.py`` has the operator rules):

- Keywords and variable names are case-insensitive; memory keys and map keys are not (a
  member lookup ``p.name`` falls back to ignoring case when the exact key is absent).
- An unset variable, a missing memory key and a missing member all read as ``""``.
- ``GET x`` binds like a function call: ``GET "k"``, ``GET key``, ``GET ("https://h/" + id)``.
  A key that starts with http:// or https:// is fetched (``DialogHost.http_get``), any other
  key reads session memory.
- ``x = LLM expr`` and ``x = HEAR word`` are statements; ``HEAR`` accepts ``x`` or ``p.name``.
- Lists index from 0 (``l[0]``); ``NOW()`` is whole seconds since the epoch.
"""

from typing import TYPE_CHECKING

from mnemobot.runtime._exports import lazy_exports

if TYPE_CHECKING:
    from mnemobot.runtime.dialogs.errors import (
        DialogRuntimeError,
        DialogStateError,
        DialogSyntaxError,
    )
    from mnemobot.runtime.dialogs.host import DialogHost
    from mnemobot.runtime.dialogs.http_fetch import fetch_json_or_text
    from mnemobot.runtime.dialogs.interpreter import DialogOutcome, DialogStatus, run_dialog
    from mnemobot.runtime.dialogs.limits import DEFAULT_LIMITS, DialogLimits
    from mnemobot.runtime.dialogs.parser import Dialog, load_dialog, parse_dialog

__all__ = [
    "DEFAULT_LIMITS",
    "Dialog",
    "DialogHost",
    "DialogLimits",
    "DialogOutcome",
    "DialogRuntimeError",
    "DialogStateError",
    "DialogStatus",
    "DialogSyntaxError",
    "fetch_json_or_text",
    "load_dialog",
    "parse_dialog",
    "run_dialog",
]

__getattr__ = lazy_exports(
    __name__,
    {
        "DialogRuntimeError": "errors",
        "DialogStateError": "errors",
        "DialogSyntaxError": "errors",
        "DialogHost": "host",
        "fetch_json_or_text": "http_fetch",
        "DialogOutcome": "interpreter",
        "DialogStatus": "interpreter",
        "run_dialog": "interpreter",
        "DEFAULT_LIMITS": "limits",
        "DialogLimits": "limits",
        "Dialog": "parser",
        "load_dialog": "parser",
        "parse_dialog": "parser",
    },
)
