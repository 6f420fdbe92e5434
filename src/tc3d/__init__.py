"""tc3d: real-time video action recognition with T-C3D (temporal encoding over a Res3D-18)."""

__version__ = "0.1.0"


def load_model(model, device: str = "auto", precision: str = "fp32", **geometry):
    """A model ready to ``predict`` and extract ``features`` (see :mod:`tc3d.api`).

    Imported lazily so that ``import tc3d`` (and ``tc3d --help``) stays fast.
    """
    from tc3d.api import load_model as load

    return load(model, device, precision, **geometry)
