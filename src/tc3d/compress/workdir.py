"""The work folder of ``tc3d compress`` (``FILE.work/``): each finished stage's record and
state, so running the same command again resumes after the last finished stage.

``stages.json`` holds the settings of the run and the records of its finished stages; a run
with other settings starts afresh. A stage counts as finished when its record is there and its
state (``STAGE.pt``; for huffman, the output file) is too.
"""

from __future__ import annotations

import json
import logging
import shutil
from dataclasses import dataclass
from pathlib import Path

from tc3d.io import atomic_save, atomic_write_text

log = logging.getLogger(__name__)


@dataclass
class WorkDir:
    path: Path
    settings: dict  # what must match for finished stages to be reused
    out: Path  # the .tc3d file the huffman stage writes

    @property
    def state_file(self) -> Path:
        return self.path / "stages.json"

    def finished_records(self, stages: list[str]) -> dict[str, dict]:
        """Records of the ``stages`` an identical earlier run finished, by stage name."""
        done: list[dict] = []
        if self.state_file.exists():
            saved = json.loads(self.state_file.read_text())
            if saved.get("settings") == self.settings:
                done = [r for r in saved["stages"] if r["stage"] in stages]
            else:
                log.warning("%s holds a run with other settings: starting afresh", self.path)
                shutil.rmtree(self.path)
        self.path.mkdir(parents=True, exist_ok=True)
        return {r["stage"]: r for r in done}

    def _finished(self, stage: str, records: dict[str, dict]) -> bool:
        if stage not in records:
            return False
        if stage == "huffman":
            return self.out.exists()
        return stage == "baseline" or (self.path / f"{stage}.pt").exists()

    def resume_point(self, stages: list[str], records: dict[str, dict]) -> str | None:
        """The last stage of the unbroken run of finished ones (stages finish in order)."""
        resume_from = None
        for stage in stages:
            if not self._finished(stage, records):
                break
            resume_from = stage
        return resume_from

    def finish(self, ordered: list[dict], record: dict, state: dict | None) -> None:
        """Save a finished stage: its state (when it has one to resume from), then the records
        of every finished stage, in stage order."""
        if state is not None:
            atomic_save(state, self.path / f"{record['stage']}.pt")
        atomic_write_text(
            json.dumps({"settings": self.settings, "stages": ordered}, indent=1), self.state_file
        )
