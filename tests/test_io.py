"""Atomic writes: the target holds the old file or the new one, never a torn one."""

from __future__ import annotations

import pytest
import torch

from tc3d.io import atomic_save, atomic_write_bytes, atomic_write_text, atomic_write_with


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
