"""The browser view (``python -m stream --serve HOST:PORT``): the live annotated video, the band and layout
controls, the depth source, the objects in the band, the last events, and "try a photo or a clip".

- :mod:`.hub`: :class:`FrameHub` (the run's newest frame, published by its consumer thread) and :class:`JpegFeed`
  (one JPEG encode per frame for every viewer, on the server's event loop).
- :mod:`.routes`: :class:`WebView`, the Starlette application: the page, MJPEG, state, control, uploads.
- :mod:`.security`: the token, Host and Origin checks in front of every route.
- :mod:`.state`: the JSON of ``/api/state``.
- :mod:`.uploads`: what an upload may be (probed by content), its limits, the result store.
- :mod:`.server`: :class:`WebServer`, uvicorn on its own thread, and :func:`bind`.
- ``page.html``: the page (no external resources: it works without internet).

It imports nothing of the run (:mod:`stream.app`): :mod:`stream.serve` composes the two.
"""

from .hub import FeedStats, FrameHub, JpegFeed
from .routes import DetectJob, DetectOutput, WebView
from .server import WebServer, bind, is_loopback
from .uploads import Probe, ResultStore, UploadError

__all__ = ["FrameHub", "JpegFeed", "FeedStats", "WebView", "DetectJob", "DetectOutput", "WebServer", "bind",
           "is_loopback", "Probe", "ResultStore", "UploadError"]
