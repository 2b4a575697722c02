"""The object store's atomic writes leave nothing behind, even after a killed write."""

from __future__ import annotations

import os
import time
from pathlib import Path

from closedloop.store.objects import STALE_TEMPORARY_SECONDS, ObjectStore

URI = "s3://reviews/flow/2024/05/06/07/08/09/loop-1/output.json"


def test_a_write_replaces_the_object_whole_and_leaves_no_temporary(
    tmp_path: Path,
) -> None:
    store = ObjectStore(str(tmp_path))
    store.write_atomic(URI, b'{"first": 1}')
    store.write_atomic(URI, b'{"second": 2}')

    assert store.read(URI) == b'{"second": 2}'
    folder = tmp_path / "reviews/flow/2024/05/06/07/08/09/loop-1"
    assert sorted(p.name for p in folder.iterdir()) == ["output.json"]


def test_the_next_write_removes_what_a_killed_write_left_but_not_a_running_one(
    tmp_path: Path,
) -> None:
    store = ObjectStore(str(tmp_path))
    folder = tmp_path / "reviews/flow/2024/05/06/07/08/09/loop-1"
    folder.mkdir(parents=True)
    killed = folder / ".output.json.k1ll3d.tmp"
    killed.write_bytes(b'{"half')
    old = time.time() - STALE_TEMPORARY_SECONDS - 5
    os.utime(killed, (old, old))
    running = folder / ".output.json.runn1ng.tmp"
    running.write_bytes(b'{"in progress')
    neighbour = folder / ".other.json.k1ll3d.tmp"
    neighbour.write_bytes(b"not ours")
    os.utime(neighbour, (old, old))

    store.write_atomic(URI, b'{"whole": true}')

    assert not killed.exists()
    assert running.exists() and neighbour.exists()
    assert store.read(URI) == b'{"whole": true}'
