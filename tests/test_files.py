"""Atomic outputs: nothing half-written is ever visible under the final name."""

from __future__ import annotations

import pytest

from edgeprune.errors import EdgepruneError
from edgeprune.files import atomic_output, atomic_write_json, read_json, sha256_path


def test_atomic_write_json_roundtrip(tmp_path):
    p = atomic_write_json(tmp_path / "a" / "x.json", {"k": [1, 2]})
    assert read_json(p) == {"k": [1, 2]}
    assert [f.name for f in p.parent.iterdir()] == ["x.json"]


def test_atomic_output_keeps_old_file_on_failure(tmp_path):
    target = tmp_path / "model.bin"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError):
        with atomic_output(target) as tmp:
            tmp.write_bytes(b"half")
            raise RuntimeError("converter crashed")
    assert target.read_bytes() == b"old"
    assert sorted(f.name for f in tmp_path.iterdir()) == ["model.bin"]


def test_atomic_output_directory(tmp_path):
    target = tmp_path / "m.mlpackage"
    with atomic_output(target) as tmp:
        (tmp / "sub").mkdir(parents=True)
        (tmp / "sub" / "w").write_bytes(b"1")
    assert (target / "sub" / "w").read_bytes() == b"1"
    h1 = sha256_path(target)
    (target / "sub" / "w").write_bytes(b"2")
    assert sha256_path(target) != h1


def test_read_json_errors(tmp_path):
    with pytest.raises(EdgepruneError, match="not found"):
        read_json(tmp_path / "missing.json", "table")
    bad = tmp_path / "bad.json"
    bad.write_text('{"a": ')
    with pytest.raises(EdgepruneError, match="corrupted"):
        read_json(bad, "table")


def test_atomic_writes_get_the_modes_a_plain_write_would(tmp_path):
    """A temp file is created 0600; the renamed result must not be (shared profiles/, CI artifacts)."""
    import os
    import stat

    mask = os.umask(0o022)
    try:
        fresh = atomic_write_json(tmp_path / "t.json", {"a": 1})
        assert stat.S_IMODE(fresh.stat().st_mode) == 0o644
        kept = tmp_path / "k.json"
        kept.write_text("{}")
        kept.chmod(0o640)
        atomic_write_json(kept, {"b": 2})
        assert stat.S_IMODE(kept.stat().st_mode) == 0o640
    finally:
        os.umask(mask)
