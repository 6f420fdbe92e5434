"""``tc3d serve``: a local web page that analyses a video.

:mod:`tc3d.serve.app` is the server (Starlette + uvicorn, one static page in ``static/``),
:mod:`tc3d.serve.analysis` what the page shows about a video (all of it from the library's
own predict, stream, CAM and anomaly functions), :mod:`tc3d.serve.examples` the example videos
rendered at start-up. Starlette, uvicorn and python-multipart come with ``pip install
tc3d[serve]``; nothing here is imported by ``import tc3d``.
"""
