"""The bounded value types of the configuration's keys (:mod:`depthstream.schema.config` and its sections): every
number has a bound on both sides, so no value can make a run take minutes or gigabytes (issue 11), and each says
what it is in the one-line message a wrong value gets."""

from __future__ import annotations

from pydantic import ConfigDict

from .fields import integer, number

SCHEMA = ConfigDict(extra="forbid")

Seconds = number(gt=0, le=120, noun="seconds")
BackoffSeconds = number(gt=0, le=60, noun="seconds")
BackoffMaxSeconds = number(gt=0, le=300, noun="seconds")
QueueSeconds = number(gt=0, le=5, noun="seconds")
Fraction01 = number(ge=0, le=1)
BoxFraction = number(gt=0, le=1, noun="a fraction")
InsetFraction = number(ge=0.05, le=0.5, noun="a fraction")
MaxFrames = integer(ge=0, le=1_000_000_000, note="0 = the whole source")
Threads = integer(ge=0, le=256, note="0 = every core")
DepthThreads = integer(ge=0, le=256, note="0 = a share of pipeline.threads")
Attempts = integer(ge=0, le=10_000, note="0 = do not reconnect")
QueueSize = integer(ge=1, le=256)
MaxBoxes = integer(ge=1, le=10_000)
Crf = integer(ge=0, le=51, note="lower = better quality")
FarMetres = number(gt=0, le=1_000_000, noun="metres")
BandMetres = number(gt=0, le=10_000, text="a positive number of metres (at most 10000)")
OpenFraction = number(gt=0, lt=1)
Share = number(gt=0, le=1, noun="a fraction")
Gain = number(gt=0, le=1)
Factor = number(ge=1, le=100)
Window = integer(ge=2, le=100)
Accel = number(gt=0, le=100, noun="metres per second squared")
Speed = number(gt=0, le=1000, noun="metres per second")
MarginMetres = number(ge=0, le=1000, noun="metres")
ShortSeconds = number(gt=0, le=60, noun="seconds")
HoldSeconds = number(ge=0, le=60, noun="seconds")
TtcSeconds = number(gt=0, le=600, noun="seconds")
DrainSeconds = number(ge=0, le=600, noun="seconds")
EventQueue = integer(ge=1, le=10000)
Degrees90 = number(gt=-90, lt=90, noun="degrees")
Degrees180 = number(gt=0, lt=180, noun="degrees")
FocalPixels = number(gt=0, le=1_000_000, noun="pixels")
Pixels = number(ge=-1_000_000, le=1_000_000, noun="pixels")
Spread = number(gt=0, le=1, noun="a relative spread (1 sigma / value)")
Tolerance = number(gt=0, le=5, noun="a relative difference")
BorderPixels = number(ge=0, le=50, noun="pixels")
BoxErrorPixels = number(ge=0, le=20, noun="pixels")
Aspect = number(ge=1, le=5, noun="a height / width ratio")
References = number(gt=0, le=1000, noun="a number of references per frame")
Frames = integer(ge=1, le=10000, noun="a number of frames")
GrowHeight = number(ge=0, le=10, noun="metres", note="0 = the mask is not grown")
GrowFraction = number(ge=0, le=1, noun="a fraction of the object's height")
DepthEvery = integer(ge=1, le=30, noun="an integer", note="the depth network runs on every Nth frame")
DepthEveryMax = integer(ge=2, le=30)
MAX_CAMERA_INDEX = 1023
BLUR_KSIZE_MAX = 99  # a Gaussian kernel this wide already costs tens of ms a frame on a CPU; wider ones cost seconds
