"""Episodes: finished sessions summarised by a worker, rolled up when there are too many, read back.

The same worker extracts facts from a session (``episodes.facts``).
"""

from typing import TYPE_CHECKING

from mnemobot.runtime._exports import lazy_exports

if TYPE_CHECKING:
    from mnemobot.runtime.episodes.changes import Changes
    from mnemobot.runtime.episodes.jobs import EpisodeJobs
    from mnemobot.runtime.episodes.reader import EpisodeReader
    from mnemobot.runtime.episodes.worker import EpisodeWorker

__all__ = ["Changes", "EpisodeJobs", "EpisodeReader", "EpisodeWorker"]

__getattr__ = lazy_exports(
    __name__,
    {
        "Changes": "changes",
        "EpisodeJobs": "jobs",
        "EpisodeReader": "reader",
        "EpisodeWorker": "worker",
    },
)
