"""The bottom layer of the product: what every other package may import, and which imports none of them.

- ``errors``: the one error hierarchy (``StreamError`` and its subclasses) and ``guarded_main``.
- ``types``: the frozen data that flows through the pipeline (``Frame``, ``Detections``, ``DepthMap``, ``Result``).
- ``hashing``: the one sha256 helper.

Layers point one way: ``depthstream`` <- ``engines`` <- ``stream`` <- commands that combine them
(``python -m engines check``, ``export``, ``bench``).
"""
