"""Overlay: a new image, tint outside the band only, class colours, NaN labels, the depth inset."""

from __future__ import annotations

import numpy as np
import pytest

from depthstream.errors import ConfigError
from depthstream.schema.config import OverlayConfig, load_config
from stream.overlay import class_colour, colorize_depth, draw, label_text
from depthstream.types import DepthMap, Detections, Frame, Result

H, W = 240, 320
NAMES = ["person", "bicycle", "car"]


def make_image() -> np.ndarray:
    ys, xs = np.mgrid[0:H, 0:W]
    return np.dstack([(xs * 255 // W), (ys * 255 // H), np.full_like(xs, 90)]).astype(np.uint8)


def make_result(*, mask: np.ndarray | None = None, dets: Detections | None = None, depth: np.ndarray | None = None) -> Result:
    frame = Frame(image=make_image(), index=0, pts_s=0.0, captured_ns=0, source_id="test")
    dmap = None if depth is None else DepthMap(depth.astype(np.float32), source="fake", kind="metric")
    return Result(frame=frame, depth=dmap, mask=mask, detections=dets, timings_ms={"depth": 3.1, "detect": 12.0})


def one_box(class_id: int = 1, depth_m: float = 2.5) -> Detections:
    return Detections(
        xyxy=np.array([[150, 120, 260, 220]], np.float32),
        confidence=np.array([0.9], np.float32),
        class_id=np.array([class_id], np.int32),
        depth_m=np.array([depth_m], np.float32),
    )


def test_draw_returns_new_image_and_leaves_input_untouched() -> None:
    mask = np.zeros((H, W), bool)
    result = make_result(mask=mask, dets=one_box(), depth=np.full((H, W), 3.0))
    before = result.frame.image.copy()
    out = draw(result, NAMES, fps=30.0, band_text="closer than 2 m", options=OverlayConfig(depth_inset=True))
    assert out.shape == (H, W, 3) and out.dtype == np.uint8
    assert out is not result.frame.image and not np.shares_memory(out, result.frame.image)
    np.testing.assert_array_equal(result.frame.image, before)
    assert not np.array_equal(out, before)


def test_tint_outside_band_only() -> None:
    mask = np.zeros((H, W), bool)
    mask[:, W // 2 :] = True  # right half inside the band
    options = OverlayConfig(hud=False, tint_bgr=(0, 0, 200), tint_alpha=0.5)
    result = make_result(mask=mask)
    out = draw(result, NAMES, fps=None, band_text=None, options=options)
    image = result.frame.image
    np.testing.assert_array_equal(out[:, W // 2 :], image[:, W // 2 :])
    expected = image[:, : W // 2].astype(np.float32) * 0.5 + np.array([0, 0, 200], np.float32) * 0.5
    assert np.abs(out[:, : W // 2].astype(np.float32) - expected).max() <= 1.0


def test_no_mask_means_no_tint() -> None:
    result = make_result()
    out = draw(result, NAMES, fps=None, band_text=None, options=OverlayConfig(hud=False))
    np.testing.assert_array_equal(out, result.frame.image)


def test_hud_leaves_the_rest_of_the_frame_alone() -> None:
    result = make_result()
    out = draw(result, NAMES, fps=25.0, band_text="between 3 m and 8 m", options=OverlayConfig())
    changed = np.any(out != result.frame.image, axis=2)
    ys, xs = np.nonzero(changed)
    assert ys.size and ys.min() < 20 and xs.min() < 20  # top-left
    np.testing.assert_array_equal(out[H // 2 :], result.frame.image[H // 2 :])


def test_box_border_has_class_colour() -> None:
    dets = one_box(class_id=2)
    out = draw(make_result(dets=dets), NAMES, fps=None, band_text=None, options=OverlayConfig(hud=False))
    colour = np.array(class_colour(2), np.uint8)
    x1, y1, x2, y2 = 150, 120, 260, 220
    mid_y, mid_x = (y1 + y2) // 2, (x1 + x2) // 2
    for y, x in [(mid_y, x1), (mid_y, x2), (y2, mid_x), (mid_y, x1 + 1)]:
        np.testing.assert_array_equal(out[y, x], colour)
    assert class_colour(2) == class_colour(2)
    assert len({class_colour(c) for c in range(20)}) == 20


def test_labels_show_metres_or_question_mark() -> None:
    assert label_text("person", 0.87, 3.21) == "person 0.87 3.2 m"
    assert label_text("person", 0.87, float("nan")) == "person 0.87 ? m"


def test_label_drawn_inside_image_for_box_at_the_edge() -> None:
    dets = Detections(
        xyxy=np.array([[W - 12, 0, W - 1, 10]], np.float32),
        confidence=np.array([0.5], np.float32),
        class_id=np.array([0], np.int32),
        depth_m=np.array([np.nan], np.float32),
    )
    out = draw(make_result(dets=dets), NAMES, fps=None, band_text=None, options=OverlayConfig(hud=False))
    colour = np.array(class_colour(0), np.uint8)
    label_cols = np.nonzero(np.all(out[:8] == colour, axis=2).any(axis=0))[0]
    assert label_cols.min() < W - 40  # the label was moved left to stay inside the frame


def test_inset_top_right_with_black_for_nan() -> None:
    depth = np.full((H, W), 4.0, np.float32)
    depth[:, : W // 2] = np.nan  # left half of the map invalid -> left half of the inset black
    options = OverlayConfig(hud=False, depth_inset=True, inset_fraction=0.25, inset_max_m=20.0)
    result = make_result(depth=depth)
    out = draw(result, NAMES, fps=None, band_text=None, options=options)
    changed = np.any(out != result.frame.image, axis=2)
    ys, xs = np.nonzero(changed)
    assert xs.min() > W // 2 and ys.min() < 20 and xs.max() > W - 12
    inset_w = round(W * 0.25)
    x0 = W - 6 - 1 - inset_w
    y0 = 7
    inset = out[y0 + 2 : y0 + 50, x0 + 2 : x0 + inset_w - 2]
    np.testing.assert_array_equal(inset[:, : inset_w // 2 - 4], 0)
    np.testing.assert_array_equal(inset[:, -5:], np.broadcast_to(colorize_depth(np.array([[4.0]], np.float32), 20.0)[0, 0], inset[:, -5:].shape))


def test_inset_off_or_without_depth_draws_nothing() -> None:
    result = make_result()
    out = draw(result, NAMES, fps=None, band_text=None, options=OverlayConfig(hud=False, depth_inset=True))
    np.testing.assert_array_equal(out, result.frame.image)


def test_colorize_depth_fixed_range() -> None:
    a = np.array([[1.0, 5.0, 19.0]], np.float32)
    b = np.array([[1.0, 5.0, 100.0, 0.5, np.nan]], np.float32)
    ca, cb = colorize_depth(a, 20.0), colorize_depth(b, 20.0)
    assert ca.dtype == np.uint8 and ca.shape == (1, 3, 3)
    np.testing.assert_array_equal(ca[0, :2], cb[0, :2])  # same metres, same colour, whatever else is in the map
    np.testing.assert_array_equal(cb[0, 4], [0, 0, 0])  # NaN black
    np.testing.assert_array_equal(colorize_depth(np.array([[25.0]], np.float32), 20.0), colorize_depth(np.array([[20.0]], np.float32), 20.0))
    near, far = ca[0, 0].astype(int), ca[0, 2].astype(int)
    assert near[2] > near[0] and far[0] > far[2]  # near warm (red > blue), far cool


def test_colorize_depth_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match=r"\(H, W\) depth map"):
        colorize_depth(np.zeros((2, 2, 3), np.float32), 20.0)
    with pytest.raises(ValueError, match="positive number of metres"):
        colorize_depth(np.zeros((2, 2), np.float32), 0.0)


def _hud_on_grey(height: int, width: int) -> np.ndarray:
    """The HUD alone (no depth, no boxes) on a grey (200) frame; its 4 lines: fps, no depth, band, timings."""
    frame = Frame(image=np.full((height, width, 3), 200, np.uint8), index=0, pts_s=None, captured_ns=0, source_id="t")
    result = Result(frame=frame, timings_ms={"capture": 0.1, "depth": 3.1, "detect": 12.0, "assign": 0.2})
    out = draw(result, NAMES, fps=29.97, band_text="between 3 m and 8 m", options=OverlayConfig())
    assert out.shape == (height, width, 3)
    return out[..., 0]


def _text_rows(grey: np.ndarray) -> int:
    """Rows of white text (bands of image rows holding text pixels, separated by rows without)."""
    rows = np.nonzero((grey > 200).any(axis=1))[0]
    return 0 if rows.size == 0 else 1 + int((np.diff(rows) > 1).sum())


def test_hud_wraps_on_a_narrow_frame() -> None:
    wide, narrow = _hud_on_grey(240, 640), _hud_on_grey(240, 80)
    assert _text_rows(wide) == 4  # one row per line where they fit
    assert _text_rows(narrow) > 4  # wrapped, not cut off at the right edge
    for grey in (wide, narrow):
        assert (grey[:6] == 200).all() and (grey[:, :6] == 200).all()  # the 6 px margin stays as it was
        text_cols = np.nonzero((grey > 200).any(axis=0))[0]
        panel_cols = np.nonzero((grey == 90).any(axis=0))[0]  # the panel darkens the frame to 45 %
        assert panel_cols.min() <= text_cols.min() and text_cols.max() <= panel_cols.max() < grey.shape[1]


def test_hud_on_a_tiny_frame_keeps_to_the_frame() -> None:
    grey = _hud_on_grey(60, 80)
    assert 1 <= _text_rows(grey) <= 3  # only the rows that fit in 60 px are drawn
    assert (grey[:6] == 200).all() and (grey[:, :6] == 200).all() and grey[6:, 6:72].mean() < 120


def test_mask_of_wrong_shape_is_rejected() -> None:
    with pytest.raises(ValueError, match=r"Result.mask has shape \(10, 10\)"):
        draw(make_result(mask=np.ones((10, 10), bool)), NAMES, fps=None, band_text=None, options=OverlayConfig())


@pytest.mark.parametrize(("item", "match"), [
    ("overlay.tint_alpha=1.5", r"^overlay\.tint_alpha: got 1\.5, expected a number in \[0, 1\]$"),
    ("overlay.inset_max_m=0", r"^overlay\.inset_max_m: got 0, expected metres in \(0, 10000\]$"),
    ("overlay.tint_bgr=[0, 0, 300]", r"^overlay\.tint_bgr: got \[0, 0, 300\], expected three integers 0\.\.255 \(B, G, R\)$"),
    ("overlay.tint_bgr=[1]", r"^overlay\.tint_bgr: got \[1\], expected three integers 0\.\.255 \(B, G, R\)$"),
    ("overlay.inset_fraction=0.9", r"^overlay\.inset_fraction: got 0\.9, expected a fraction in \[0\.05, 0\.5\]$"),
])
def test_options_validated(item, match) -> None:
    """The overlay's options are checked when the config loads (draw() receives them validated)."""
    with pytest.raises(ConfigError, match=match):
        load_config(sets=[item])


def test_labels_of_overlapping_boxes_do_not_cover_each_other() -> None:
    """Two objects in one place (a person on a bicycle): both labels stay whole and readable."""
    dets = Detections(
        xyxy=np.array([[150, 120, 260, 220], [160, 130, 250, 215]], np.float32),
        confidence=np.array([0.9, 0.8], np.float32),
        class_id=np.array([0, 1], np.int32),
        depth_m=np.array([3.0, 3.1], np.float32),
    )

    def colour_pixels(d: Detections, class_id: int) -> int:
        out = draw(make_result(dets=d), NAMES, fps=None, band_text=None, options=OverlayConfig(hud=False))
        return int(np.all(out == np.array(class_colour(class_id), np.uint8), axis=2).sum())

    for i in (0, 1):
        alone = colour_pixels(dets[[i]], i)
        together = colour_pixels(dets, i)
        assert together >= 0.9 * alone, (i, alone, together)  # no label hidden under the other one
