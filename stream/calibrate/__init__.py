"""``python -m stream calibrate``: camera profiles from what the user has.

- :mod:`.chessboard`: chessboard photos -> intrinsics (OpenCV), and each board's pose -> metres at the board.
- :mod:`.depthfit`: a depth model's scale (and shift) from known distances or RGB-D pairs.
- :mod:`.rgbd`: RGB-D pairs on disk (also read by ``python -m bench depth``).
- :mod:`.cli`: the command line; profiles are :class:`depthstream.schema.camera.CameraProfile`.
"""
