"""Fresh request ids (`server/access_log.py`): unique within a process, and a forked worker
draws its own prefix instead of repeating its parent's ids."""

from __future__ import annotations

import os
import re

from vapi_calendar.server import access_log


def _fresh_ids(n: int) -> list[str]:
    return [f"{access_log._ID_PREFIX}{next(access_log._ID_COUNT):016x}" for _ in range(n)]


def test_fresh_request_ids_are_unique_and_uuid_shaped() -> None:
    ids = _fresh_ids(1000)
    assert len(set(ids)) == 1000
    assert all(re.fullmatch(r"[0-9a-f]{32}", rid) for rid in ids)


def test_a_forked_process_does_not_repeat_its_parents_ids() -> None:
    parent = _fresh_ids(3)
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: no locks, no threads, just the ids down the pipe
        try:
            os.write(write, " ".join(_fresh_ids(3)).encode())
        finally:
            os._exit(0)
    os.close(write)
    with os.fdopen(read, "rb") as pipe:
        got = pipe.read().decode().split()
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert len(got) == 3 and not set(got) & set(parent)
    assert got[0][:16] != parent[0][:16]  # its own prefix, not the parent's
