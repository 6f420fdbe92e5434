"""tc3d: real-time video action recognition with T-C3D (temporal encoding over a Res3D-18)."""

__version__ = "0.1.0"
