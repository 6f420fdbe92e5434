"""Models that ship inside the package: ``--model motion`` and ``--init motion``.

Each is a ``.tc3d`` file in ``tc3d/weights/``, installed with the package (package data), so a
plain ``pip install`` has it and nothing is ever downloaded. ``benchmarks/pretrain_motion.sh``
remakes ``motion.tc3d``; docs/RESULTS.md records its command, time and learning curve.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

# The files themselves are package data in tc3d/weights/, beside this package.
WEIGHTS = Path(__file__).resolve().parents[1] / "weights"


@dataclass(frozen=True)
class Shipped:
    name: str
    file: str
    description: str

    @property
    def path(self) -> Path:
        return WEIGHTS / self.file


SHIPPED = {
    "motion": Shipped(
        "motion",
        "motion.tc3d",
        "Res3D-18 (width 0.25, 8-frame clips, used at 96x96) pretrained by 'tc3d pretrain' on "
        "procedural video; its 49 classes name an object's motion and change. The default "
        "--init, and a feature extractor for similarity, CAM and tagging with no training.",
    ),
}


def shipped_path(name: str) -> Path | None:
    """The file of a shipped model called ``name`` (None when there is no such model)."""
    model = SHIPPED.get(name)
    return model.path if model is not None and model.path.is_file() else None


def resolve(name_or_path: str | Path) -> Path:
    """A path as given, unless it does not exist and names a shipped model."""
    path = Path(name_or_path)
    if not path.exists():
        shipped = shipped_path(str(name_or_path))
        if shipped is not None:
            return shipped
    return path


def list_models() -> list[dict]:
    """``tc3d models``: name, file, bytes, width, classes, description of each shipped model."""
    from tc3d.modelfile.tc3dfile import read_tc3d

    rows = []
    for model in SHIPPED.values():
        if not model.path.is_file():
            continue
        header = read_tc3d(model.path).header
        rows.append(
            {
                "name": model.name,
                "file": str(model.path),
                "bytes": model.path.stat().st_size,
                "width": header["model_config"]["width"],
                "classes": len(header["classes"]),
                "class_names": header["classes"],
                "clip": header["clip"],
                "description": model.description,
            }
        )
    return rows
