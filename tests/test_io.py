"""Atomic writes: the target holds the old file or the new one, never a torn one."""

from __future__ import annotations

import os

import pytest
import torch

from tc3d.io import (
    atomic_save,
    atomic_write_bytes,
    atomic_write_files,
    atomic_write_text,
    atomic_write_with,
)


def test_each_writer_replaces_the_target_and_leaves_nothing_else(tmp_path):
    atomic_write_text("a\r\nb\n", tmp_path / "t.txt")
    atomic_write_bytes(b"\x00\x01", tmp_path / "b.bin")
    atomic_save({"x": torch.arange(3)}, tmp_path / "m.pt")
    atomic_write_with(tmp_path / "w.bin", lambda f: f.write(b"with"))
    atomic_write_text("new\n", tmp_path / "t.txt")
    assert (tmp_path / "t.txt").read_bytes() == b"new\n"
    assert (tmp_path / "b.bin").read_bytes() == b"\x00\x01"
    assert torch.equal(torch.load(tmp_path / "m.pt", weights_only=True)["x"], torch.arange(3))
    assert (tmp_path / "w.bin").read_bytes() == b"with"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b.bin", "m.pt", "t.txt", "w.bin"]


def test_text_is_utf8_with_line_ends_kept(tmp_path):
    atomic_write_text("Größe\r\nline\n", tmp_path / "t.txt")
    assert (tmp_path / "t.txt").read_bytes() == "Größe\r\nline\n".encode()


def test_a_new_file_gets_the_usual_permissions_and_a_replaced_one_keeps_its_own(tmp_path):
    """Not the owner-only mode of a temporary file: a model written for others stays readable."""
    old_umask = os.umask(0o027)
    try:
        atomic_write_bytes(b"new", tmp_path / "new.bin")
        assert (tmp_path / "new.bin").stat().st_mode & 0o777 == 0o640
        shared = tmp_path / "shared.tc3d"
        shared.write_bytes(b"old")
        shared.chmod(0o664)
        atomic_write_with(shared, lambda f: f.write(b"calibrated"))
        assert shared.stat().st_mode & 0o777 == 0o664 and shared.read_bytes() == b"calibrated"
    finally:
        os.umask(old_umask)


def test_a_failed_write_keeps_the_old_file_and_removes_its_temp(tmp_path):
    target = tmp_path / "sub" / "f.txt"
    atomic_write_text("old\n", target)  # creates the folder

    def half_then_fail(f):
        f.write(b"half a fi")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        atomic_write_with(target, half_then_fail)
    assert target.read_text() == "old\n"
    assert [p.name for p in target.parent.iterdir()] == ["f.txt"]


def test_files_written_together_appear_together(tmp_path):
    paths = [tmp_path / "m.bin", tmp_path / "m.xml"]

    def pair(folder):
        (folder / "m.bin").write_bytes(b"weights")
        (folder / "m.xml").write_text("<net/>")

    atomic_write_files(paths, pair)
    assert [p.read_bytes() for p in paths] == [b"weights", b"<net/>"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.bin", "m.xml"]


def test_a_failed_group_write_leaves_none_of_its_files(tmp_path, monkeypatch):
    paths = [tmp_path / "m.bin", tmp_path / "m.xml"]

    def half(folder):
        (folder / "m.bin").write_bytes(b"weights")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        atomic_write_files(paths, half)
    assert not any(tmp_path.iterdir())

    # the second rename fails: the first file, already in place, is taken back out
    replace, calls = os.replace, []

    def fail_second(src, dst):
        calls.append(dst)
        if len(calls) == 2:
            raise OSError("rename failed")
        replace(src, dst)

    monkeypatch.setattr(os, "replace", fail_second)
    with pytest.raises(OSError, match="rename failed"):
        atomic_write_files(paths, lambda f: [(f / p.name).write_bytes(b"x") for p in paths])
    assert calls == paths and not any(tmp_path.iterdir())
