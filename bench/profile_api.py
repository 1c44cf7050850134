"""`reintegration api`, sampling its own threads' stacks (where py-spy is not installed).

    python -m bench.profile_api OUT.txt [reintegration api's arguments]

Every 2 ms a thread takes ``sys._current_frames()`` and counts, for each thread busy in a
request (a frame of the project, FastAPI, Starlette, pydantic or psycopg on its stack), the
function it is in (self) and every function on its stack (inclusive). The counts are written
to OUT.txt when the process ends (SIGTERM, as the benchmark stops it). Sampling costs the API
a few per cent of a core; compare commands/s with and without it.
"""

from __future__ import annotations

import atexit
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from types import FrameType

INTERVAL_S = 0.002
BUSY = ("/api/", "/application/", "/domain/", "/infra/", "fastapi", "starlette", "pydantic")


def _name(frame: FrameType) -> str:
    code = frame.f_code
    path = code.co_filename
    for marker in ("site-packages/", "/work/"):
        if marker in path:
            path = path.split(marker, 1)[1]
    return f"{path}:{code.co_name}"


def sample(out: Path) -> None:
    inclusive: Counter[str] = Counter()
    leaf: Counter[str] = Counter()
    samples = 0
    sampler: list[int | None] = [None]

    def run() -> None:
        nonlocal samples
        while True:
            time.sleep(INTERVAL_S)
            for ident, frame in sys._current_frames().items():
                if ident == sampler[0]:
                    continue
                stack: list[str] = []
                f: FrameType | None = frame
                while f is not None:
                    stack.append(_name(f))
                    f = f.f_back
                if not any(marker in name for name in stack for marker in BUSY):
                    continue
                samples += 1
                leaf[stack[0]] += 1
                for name in set(stack):
                    inclusive[name] += 1

    def dump() -> None:
        lines = [f"{samples} busy-thread samples every {INTERVAL_S * 1000:.0f} ms", ""]
        lines.append("inclusive (share of busy samples with the function on the stack):")
        lines += [f"{n / max(samples, 1):7.1%}  {name}" for name, n in inclusive.most_common(70)]
        lines += ["", "self (share of busy samples in the function itself):"]
        lines += [f"{n / max(samples, 1):7.1%}  {name}" for name, n in leaf.most_common(50)]
        out.write_text("\n".join(lines) + "\n")

    thread = threading.Thread(target=run, daemon=True, name="sampler")
    thread.start()
    sampler[0] = thread.ident
    atexit.register(dump)


if __name__ == "__main__":
    sample(Path(sys.argv[1]))
    from api.cli import main

    sys.argv = ["reintegration", "api", *sys.argv[2:]]
    main()
