"""`reintegration api` under cProfile, every thread of it (where py-spy is not installed).

    python -m bench.profile_api OUT [reintegration api's arguments]

Each thread the API starts (the request threads of the thread pool, the event loop's) runs its
own ``cProfile.Profile``; when the process ends (SIGTERM, as the benchmark stops it) their
statistics are merged and written as text to OUT (the functions by their own time and by
cumulative time) and as a pstats file to OUT.pstats. cProfile slows Python code about twice:
read the shares, not the absolute figures, and compare commands/s without it.
"""

from __future__ import annotations

import atexit
import cProfile
import io
import pstats
import sys
import threading
from pathlib import Path
from typing import Any

PROFILES: list[cProfile.Profile] = []


def _start_in_this_thread(*_: Any) -> None:
    """The first profiling event of a new thread: give it a profiler of its own."""
    sys.setprofile(None)
    profile = cProfile.Profile()
    PROFILES.append(profile)
    profile.enable()


def _dump(out: Path) -> None:
    merged: pstats.Stats | None = None
    for profile in list(PROFILES):
        profile.snapshot_stats()
        if not profile.stats:
            continue
        if merged is None:
            merged = pstats.Stats(profile)
        else:
            merged.add(profile)
    if merged is None:
        return
    merged.dump_stats(str(out) + ".pstats")
    text = io.StringIO()
    merged.stream = text  # type: ignore[attr-defined]
    merged.sort_stats("tottime").print_stats(45)
    merged.sort_stats("cumulative").print_stats(90)
    out.write_text(text.getvalue())


if __name__ == "__main__":
    target = Path(sys.argv[1])
    threading.setprofile(_start_in_this_thread)
    _start_in_this_thread()
    atexit.register(_dump, target)
    from api.cli import main

    sys.argv = ["reintegration", "api", *sys.argv[2:]]
    main()
