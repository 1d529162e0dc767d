"""Dialogs in the General Bots BASIC dialect: parse a ``.bas`` program once, then run it one
message at a time, saving where it waits (``HEAR``) as JSON so any process can resume it.

Typical use by the runtime::

    dialog = load_dialog(bot_dir / "start.bas")          # DialogSyntaxError: bot won't load
    outcome = await run_dialog(dialog, host, saved_state, text)
    if outcome.waiting:
        session["dialog_state"] = outcome.state           # resume with the next message
"""

from runtime.dialogs.errors import DialogRuntimeError, DialogStateError, DialogSyntaxError
from runtime.dialogs.host import DialogHost
from runtime.dialogs.http_fetch import fetch_json_or_text
from runtime.dialogs.interpreter import (
    DEFAULT_LIMITS,
    DialogLimits,
    DialogOutcome,
    DialogStatus,
    run_dialog,
)
from runtime.dialogs.parser import Dialog, load_dialog, parse_dialog

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
