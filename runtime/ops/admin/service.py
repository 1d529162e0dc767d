"""See and correct what the bots remember about a person: the core behind the admin API.

The HTTP layer (``adapters/admin_api.py``, ``adapters/admin_operations.py``) only parses
requests and shapes answers; every read and every correction lives here, in the parts named
below, so the same rules hold whoever calls them:

* every write runs in one transaction together with its audit record
  (:mod:`runtime.audit`): it happens whole, recorded, or not at all;
* values are checked as bots' writes are (:func:`check_key`, :func:`check_value`, the
  user-memory limits), so an operator cannot store what a bot could not read back;
* a fact written or deleted here gets a ``fact_history`` row with ``source = "admin"``,
  and any user-memory change that touches a fact does too, so provenance stays complete;
* forget and export are exactly the CLI's (:mod:`runtime.privacy`), plus an audit record
  that outlives the person's data and names them by id only.

:class:`Admin` is three parts with one job each and nothing shared but the runtime and the
audit log (:mod:`runtime.admin_base`): :mod:`runtime.admin_people` finds people and reads,
exports or forgets all of a person; :mod:`runtime.admin_edits` corrects one item of a
person's memory, facts, episodes or accounts; :mod:`runtime.ops.admin.memories` lists and
corrects a person's free-text memories; :mod:`runtime.admin_bots` lists the bots,
corrects their own memory and previews their prompts.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mnemobot.runtime.ops.admin.base import AdminPart, AdminServices
from mnemobot.runtime.ops.admin.bots import Bots
from mnemobot.runtime.ops.admin.edits import PersonEdits
from mnemobot.runtime.ops.admin.memories import PersonMemories
from mnemobot.runtime.ops.admin.people import People

if TYPE_CHECKING:
    from mnemobot.runtime.ops.audit import AuditLog

__all__ = ["Admin"]


class Admin(AdminPart):
    """Inspection and correction of people's and bots' memory, on a started runtime.

    Callers reach the work through its parts (``admin.people.search(...)``,
    ``admin.edits.set_fact(...)``, ``admin.bots.bot_memory(...)``) and the audit log itself
    through ``admin.audit``. The parts never call one another, so each holds only what it
    needs.

    Args:
        runtime: the admin's services of a started runtime (:class:`AdminServices`).
        audit: where writes are recorded.
    """

    def __init__(self, runtime: AdminServices, audit: AuditLog) -> None:
        super().__init__(runtime, audit)
        self.people = People(runtime, audit)
        self.edits = PersonEdits(runtime, audit)
        self.memories = PersonMemories(runtime, audit)
        self.bots = Bots(runtime, audit)
