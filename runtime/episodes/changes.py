"""What one after-session edit by the model did: fact extraction and memory editing alike."""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["Changes"]


@dataclass
class Changes:
    """What was applied (by key or memory id) and what was refused with why.

    Never the refused values: they can be what the rules kept out (a secret, a guess), and
    this goes to the job's note and the logs.
    """

    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        return {
            "added": len(self.added),
            "updated": len(self.updated),
            "deleted": len(self.deleted),
            "rejected": len(self.rejected),
        }
