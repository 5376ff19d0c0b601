"""Overlay: what it draws and where, checked on the pixels of small synthetic frames.

The placement rules are checked the way a viewer sees them: a box's inner area (15 % in from each side)
left as it was, every label found whole somewhere in the frame, the HUD's size against the frame's.
"""

from __future__ import annotations

import dataclasses

import cv2
import numpy as np
import pytest

from depthstream.errors import ConfigError
from depthstream.schema.config import OverlayConfig, load_config
from depthstream.types import DepthMap, Detections, Frame, Result
from stream.overlay import Overlay, class_colour, colorize_depth, draw, label_text
from stream.overlay_layout import CORNERS, TextStyle, box_rects, corner_rects, inner_rects, place_labels

GREY = 120
NAMES = ["person", "bicycle", "car", "motorcycle", "airplane"]
NO_HUD = OverlayConfig(hud=False)


def grey(h: int = 240, w: int = 320) -> np.ndarray:
    return np.full((h, w, 3), GREY, np.uint8)


def make_result(image: np.ndarray | None = None, *, dets: Detections | None = None, depth: np.ndarray | None = None,
                mask: np.ndarray | None = None, valid_range: tuple[float, float] | None = None, state: str = "",
                timings: dict[str, float] | None = None) -> Result:
    image = grey() if image is None else image
    frame = Frame(image=image, index=0, pts_s=0.0, captured_ns=0, source_id="test")
    dmap = None if depth is None else DepthMap(depth.astype(np.float32), source="fake", kind="metric",
                                               valid_range_m=valid_range, state=state)
    return Result(frame=frame, depth=dmap, mask=mask, detections=dets,
                  timings_ms={"depth": 3.1, "detect": 12.0} if timings is None else timings)


def boxes(xyxy, classes=None, depth=None, reliable=None, tracks=None) -> Detections:
    n = len(xyxy)
    return Detections(
        xyxy=np.array(xyxy, np.float32).reshape(-1, 4),
        confidence=np.linspace(0.9, 0.5, n).astype(np.float32),
        class_id=np.array([0] * n if classes is None else classes, np.int32),
        depth_m=np.array([3.0 + i for i in range(n)] if depth is None else depth, np.float32),
        depth_reliable=reliable,
        track_id=tracks,
    )


def painted(out: np.ndarray, image: np.ndarray, box) -> float:
    """Share of the box's inner area (15 % in from each side) changed by more than 24 levels."""
    x1, y1, x2, y2 = box
    dx, dy = (x2 - x1) * 0.15, (y2 - y1) * 0.15
    ys, xs = slice(int(np.ceil(y1 + dy)), int(np.floor(y2 - dy)) + 1), slice(int(np.ceil(x1 + dx)), int(np.floor(x2 - dx)) + 1)
    return float((np.abs(out[ys, xs].astype(int) - image[ys, xs].astype(int)).max(axis=2) > 24).mean())


def changed_bbox(out: np.ndarray, image: np.ndarray) -> tuple[int, int, int, int] | None:
    ys, xs = np.nonzero(np.any(out != image, axis=2))
    return None if ys.size == 0 else (int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1)


def blend(colour, alpha: float = 0.7) -> np.ndarray:
    return np.round(np.asarray(colour, float) * alpha + GREY * (1 - alpha))


def has_colour(out: np.ndarray, colour, tol: int = 2) -> int:
    return int((np.abs(out.astype(int) - np.asarray(colour, int)).max(axis=2) <= tol).sum())


# -- the frame itself, the tint ---------------------------------------------------------------------


def test_draw_returns_new_image_and_leaves_input_untouched() -> None:
    result = make_result(mask=np.zeros((240, 320), bool), dets=boxes([[150, 120, 260, 220]]), depth=np.full((240, 320), 3.0))
    before = result.frame.image.copy()
    out = draw(result, NAMES, fps=30.0, band_text="closer than 2 m", options=OverlayConfig(depth_inset=True))
    assert out.shape == (240, 320, 3) and out.dtype == np.uint8
    assert not np.shares_memory(out, result.frame.image)
    np.testing.assert_array_equal(result.frame.image, before)
    assert not np.array_equal(out, before)


def test_tint_outside_band_only() -> None:
    ys, xs = np.mgrid[0:240, 0:320]
    image = np.dstack([(xs * 255 // 320), (ys * 255 // 240), np.full_like(xs, 90)]).astype(np.uint8)
    mask = np.zeros((240, 320), bool)
    mask[:, 160:] = True  # right half inside the band
    out = draw(make_result(image, mask=mask), NAMES, fps=None, band_text=None,
               options=OverlayConfig(hud=False, tint_bgr=(0, 0, 200), tint_alpha=0.5))
    np.testing.assert_array_equal(out[:, 160:], image[:, 160:])
    expected = image[:, :160].astype(np.float32) * 0.5 + np.array([0, 0, 200], np.float32) * 0.5
    assert np.abs(out[:, :160].astype(np.float32) - expected).max() <= 1.0


def test_tint_leaves_the_boxes_shown_as_found_clear() -> None:
    """A box the product reports inside the band is not tinted as outside it (its depth pixels may be)."""
    box = [100, 80, 180, 200]
    result = make_result(mask=np.zeros((240, 320), bool), dets=boxes([box]))
    out = draw(result, NAMES, fps=None, band_text="closer than 30 m", options=NO_HUD)
    assert painted(out, result.frame.image, box) == 0.0
    assert painted(out, result.frame.image, [250, 20, 310, 60]) == 1.0  # elsewhere the tint is there


def test_no_mask_means_no_tint() -> None:
    result = make_result()
    np.testing.assert_array_equal(draw(result, NAMES, fps=None, band_text=None, options=NO_HUD), result.frame.image)


def test_mask_of_wrong_shape_is_rejected() -> None:
    with pytest.raises(ValueError, match=r"Result.mask has shape \(10, 10\)"):
        draw(make_result(mask=np.ones((10, 10), bool)), NAMES, fps=None, band_text=None, options=OverlayConfig())


@pytest.mark.parametrize(("item", "match"), [
    ("overlay.tint_alpha=1.5", r"^overlay\.tint_alpha: got 1\.5, expected a number in \[0, 1\]$"),
    ("overlay.tint_bgr=[0, 0, 300]", r"^overlay\.tint_bgr: got \[0, 0, 300\], expected three integers 0\.\.255 \(B, G, R\)$"),
    ("overlay.tint_bgr=[1]", r"^overlay\.tint_bgr: got \[1\], expected three integers 0\.\.255 \(B, G, R\)$"),
    ("overlay.inset_fraction=0.9", r"^overlay\.inset_fraction: got 0\.9, expected a fraction in \[0\.05, 0\.5\]$"),
])
def test_options_validated(item, match) -> None:
    """The overlay's options are checked when the config loads (the Overlay receives them validated)."""
    with pytest.raises(ConfigError, match=match):
        load_config(sets=[item])


# -- boxes and their colours ------------------------------------------------------------------------


def test_box_border_has_class_colour() -> None:
    out = draw(make_result(dets=boxes([[150, 120, 260, 220]], classes=[2])), NAMES, fps=None, band_text=None, options=NO_HUD)
    colour = np.array(class_colour(2), np.uint8)
    for y, x in [(170, 150), (170, 260), (220, 205)]:
        np.testing.assert_array_equal(out[y, x], colour)
    assert len({class_colour(c) for c in range(20)}) == 20


def test_neighbours_of_one_class_get_different_colours() -> None:
    """Three people side by side: each outline differs from the one next to it."""
    xyxy = [[40, 80, 90, 200], [92, 80, 142, 200], [144, 80, 194, 200]]
    out = draw(make_result(dets=boxes(xyxy)), NAMES, fps=None, band_text=None, options=NO_HUD)
    left_edges = [tuple(out[150, x1]) for x1, *_ in xyxy]
    assert left_edges[0] != left_edges[1] and left_edges[1] != left_edges[2]


def test_tracked_boxes_keep_their_track_colour() -> None:
    far_apart = [[10, 100, 50, 200], [250, 100, 290, 200]]
    untracked = draw(make_result(dets=boxes(far_apart)), NAMES, fps=None, band_text=None, options=NO_HUD)
    assert tuple(untracked[150, 10]) == tuple(untracked[150, 250]) == class_colour(0)  # per class
    tracked = draw(make_result(dets=boxes(far_apart, tracks=[3, 4])), NAMES, fps=None, band_text=None, options=NO_HUD)
    assert tuple(tracked[150, 10]) != tuple(tracked[150, 250])  # per track
    moved = draw(make_result(dets=boxes([[130, 50, 170, 150]], tracks=[3])), NAMES, fps=None, band_text=None, options=NO_HUD)
    assert tuple(moved[100, 130]) == tuple(tracked[150, 10])  # track 3 keeps its colour wherever it goes


# -- labels -----------------------------------------------------------------------------------------


def test_label_text() -> None:
    assert label_text("person", 3.21) == "person 3.2 m"
    assert label_text("person", 3.21, reliable=False) == "person ~3.2 m"
    assert label_text("person", float("nan")) == "person ? m"
    assert label_text("person", 3.21, confidence=0.87) == "person 0.87 3.2 m"


def test_a_tracked_label_has_its_id_its_filtered_distance_and_a_sure_approach_only() -> None:
    """Boxes: untracked; tracked, speed unsure (-0.5 +- 0.4 m/s); tracked, sure approach (-1.4 +- 0.3 m/s),
    its raw distance an outlier; tracked, flagged unreliable, speed not known yet."""
    dets = dataclasses.replace(
        boxes([[10, 10, 50, 90], [60, 10, 100, 90], [110, 10, 150, 90], [160, 10, 200, 90]],
              depth=[3.21, 12.0, 30.0, 20.0], reliable=[True, True, True, False], tracks=[-1, 4, 7, 9]),
        depth_filtered_m=[np.nan, 12.34, 12.31, 21.46], speed_mps=[np.nan, -0.5, -1.42, np.nan],
        speed_std_mps=[np.nan, 0.4, 0.3, np.nan], ttc_s=[np.nan, 24.7, 8.64, np.nan], ttc_std_s=[np.nan, 20.0, 1.21, np.nan])
    scored = Overlay(OverlayConfig(scores=True), NAMES).label_texts(dets)
    assert Overlay(NO_HUD, NAMES).label_texts(dets) == [
        "person 3.2 m", "#4 person 12.3 m", "#7 person 12.3 m -1.4 m/s ttc 8.6±1.2 s", "#9 person ~21.5 m"]
    assert scored[2] == "#7 person 0.63 12.3 m -1.4 m/s ttc 8.6±1.2 s"


def test_unreliable_distance_is_drawn_grey() -> None:
    reliable = draw(make_result(dets=boxes([[100, 100, 160, 200]])), NAMES, fps=None, band_text=None, options=NO_HUD)
    flagged = draw(make_result(dets=boxes([[100, 100, 160, 200]], reliable=[False])), NAMES, fps=None, band_text=None,
                   options=NO_HUD)
    assert has_colour(reliable, (150, 150, 150), tol=0) == 0
    assert has_colour(flagged, (150, 150, 150), tol=0) > 200  # the label's grey fill


def test_label_stays_inside_the_frame_for_a_box_at_the_edge() -> None:
    alone = draw(make_result(dets=boxes([[150, 100, 161, 110]], depth=[np.nan])), NAMES, fps=None, band_text=None, options=NO_HUD)
    edge = draw(make_result(dets=boxes([[308, 0, 319, 10]], depth=[np.nan])), NAMES, fps=None, band_text=None, options=NO_HUD)
    label_px = has_colour(alone, class_colour(0), tol=0)
    assert label_px > 300 and has_colour(edge, class_colour(0), tol=0) >= 0.95 * label_px  # whole, moved into the frame


def _label_template(image: np.ndarray, box, class_id: int, depth: float) -> np.ndarray:
    """The pixels of one box's label, drawn alone (everything changed outside the box's outline)."""
    out = draw(make_result(image, dets=boxes([box], classes=[class_id], depth=[depth])), NAMES, fps=None,
               band_text=None, options=NO_HUD)
    diff = np.any(out != image, axis=2)
    x0, y0, x1, y1 = box
    diff[max(0, y0 - 3):y1 + 4, max(0, x0 - 3):x1 + 4] = False  # the outline
    ys, xs = np.nonzero(diff)
    return out[ys.min():ys.max() + 1, xs.min():xs.max() + 1]


def test_labels_never_cover_each_other_in_a_crowd() -> None:
    """Five narrow objects side by side at the top of the frame: every label appears whole somewhere."""
    image = grey()
    xyxy = [[20 + 26 * i, 0, 44 + 26 * i, 70] for i in range(5)]
    depth = [4.0, 5.0, 6.0, 7.0, 8.0]
    out = draw(make_result(image, dets=boxes(xyxy, classes=list(range(5)), depth=depth)), NAMES, fps=None,
               band_text=None, options=NO_HUD)
    for i, box in enumerate(xyxy):
        template = _label_template(image, box, i, depth[i])
        th, tw = template.shape[:2]
        near = np.argwhere(cv2.matchTemplate(out, template, cv2.TM_SQDIFF) < 1000)  # then compared exactly
        assert any(np.array_equal(out[y:y + th, x:x + tw], template) for y, x in near), f"label {i} is covered"


def test_labels_leave_every_box_clear_where_space_exists() -> None:
    """Boxes stacked on top of each other and side by side, free space around: no label covers the inside
    of any box (its own included), and none covers another."""
    image = grey(360, 640)
    xyxy = [[200, 100, 260, 160], [200, 160, 260, 220], [262, 100, 322, 160], [262, 160, 322, 220],
            [40, 250, 90, 340], [92, 250, 142, 340], [500, 30, 600, 120]]
    out = draw(make_result(image, dets=boxes(xyxy)), NAMES, fps=None, band_text=None, options=NO_HUD)
    for box in xyxy:
        assert painted(out, image, box) == 0.0, box


def test_labels_avoid_the_hud() -> None:
    image = grey(360, 640)
    box = [6, 30, 60, 120]  # its label would naturally sit above it, where a top-left HUD is
    without = draw(make_result(image, dets=boxes([box])), NAMES, fps=None, band_text=None, options=NO_HUD)
    out = draw(make_result(image, dets=boxes([box])), NAMES, fps=25.0, band_text=None, options=OverlayConfig())
    assert has_colour(out, class_colour(0), tol=0) == has_colour(without, class_colour(0), tol=0)  # nothing drawn over it
    assert painted(out, image, box) == 0.0


def test_place_labels_uses_a_leader_when_its_box_is_boxed_in() -> None:
    width, height = 400, 300
    xyxy = np.array([[150, 120, 200, 170],  # boxed in by the four around it
                     [150, 60, 200, 118], [150, 172, 200, 230], [90, 120, 148, 170], [202, 120, 260, 170]], float)
    outline, inner = box_rects(xyxy, 1, width, height), inner_rects(xyxy, width, height)
    sizes = np.array([[70, 16]] * 5)
    placed = place_labels(sizes, outline, inner, [0, 1, 2, 3, 4], width=width, height=height, gap=2)
    assert placed.leader[0]
    rects = placed.rects
    for i in range(5):
        assert 0 <= rects[i, 0] and rects[i, 2] <= width and 0 <= rects[i, 1] and rects[i, 3] <= height
        for j in range(5):
            if i != j:
                assert not _meet(rects[i], rects[j]), (i, j)  # no label on another label
                assert not _meet(rects[i], outline[j]), (i, j)  # nor on another box


def test_place_labels_in_random_scenes_keep_apart() -> None:
    """Twelve boxes thrown at random on a 640x480 frame (seeded): no label meets another label or another
    box whenever the frame has the room (these scenes do)."""
    rng = np.random.default_rng(7)
    style = TextStyle.for_frame(480, 640)
    for _ in range(20):
        xy = rng.uniform([0, 0], [600, 420], size=(12, 2))
        wh = rng.uniform([15, 30], [60, 90], size=(12, 2))
        xyxy = np.concatenate([xy, np.minimum(xy + wh, [639, 479])], axis=1)
        outline, inner = box_rects(xyxy, style.line_px, 640, 480), inner_rects(xyxy, 640, 480)
        sizes = np.array([style.box_size(f"person {d:.1f} m") for d in rng.uniform(1, 30, 12)])
        rects = place_labels(sizes, outline, inner, range(12), width=640, height=480, gap=style.gap).rects
        for i in range(12):
            for j in range(12):
                if i != j:
                    assert not _meet(rects[i], rects[j])
                    assert not _meet(rects[i], inner[j])


def _meet(a, b) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


# -- depth inset ------------------------------------------------------------------------------------


def test_inset_goes_to_the_corner_with_fewest_boxes() -> None:
    """Objects in both right-hand corners: the inset goes left and covers none of them."""
    image = grey(480, 640)
    xyxy = [[520, 10, 630, 120], [520, 360, 630, 470]]
    result = make_result(image, dets=boxes(xyxy), depth=np.full((480, 640), 5.0), valid_range=(0.0, 10.0))
    out = draw(result, NAMES, fps=None, band_text=None, options=OverlayConfig(hud=False, depth_inset=True))
    for box in xyxy:
        assert painted(out, image, box) == 0.0
    five_m = blend(colorize_depth(np.array([[5.0]]), 0.0, 10.0)[0, 0])
    assert has_colour(out[:, :320], five_m) > 5000  # the inset, on the left


def test_inset_corner_follows_recent_frames_and_does_not_flicker() -> None:
    image = grey(480, 640)
    depth = np.full((480, 640), 5.0)
    overlay = Overlay(OverlayConfig(hud=False, depth_inset=True), NAMES)
    busy_top_right = boxes([[500, 10, 630, 130]])
    for _ in range(10):
        overlay.draw(make_result(image, dets=busy_top_right, depth=depth), fps=None, band_text=None)
    corner = overlay.corners[1]
    assert corner is not None and corner != "tr"
    # One frame with somebody in the inset's corner: the inset stays put, and the person shows through it.
    x0 = 10 if corner[1] == "l" else 520
    y0 = 10 if corner[0] == "t" else 350
    passer_by = [x0, y0, x0 + 100, y0 + 120]
    out = overlay.draw(make_result(image, dets=boxes([passer_by]), depth=depth), fps=None, band_text=None)
    assert overlay.corners[1] == corner
    assert painted(out, image, passer_by) == 0.0
    for _ in range(30):  # people keep standing there: the inset moves
        overlay.draw(make_result(image, dets=boxes([passer_by]), depth=depth), fps=None, band_text=None)
    assert overlay.corners[1] != corner


def test_inset_and_hud_never_meet() -> None:
    """A HUD as wide as most of the frame and the inset on the same edge: the inset moves beside it."""
    for hud_corner in CORNERS:
        for inset_corner in CORNERS:
            hud, inset = corner_rects(hud_corner, inset_corner, (600, 40), (128, 116), 640, 480, margin=2)
            assert not _meet(hud, inset), (hud_corner, inset_corner)
            assert 0 <= inset[0] and inset[2] <= 640 and 0 <= inset[1] and inset[3] <= 480


def test_inset_left_out_of_small_frames_unless_asked() -> None:
    image = grey(360, 640)
    result = make_result(image, depth=np.full((360, 640), 5.0))
    auto = draw(result, NAMES, fps=None, band_text=None, options=OverlayConfig(hud=False, depth_inset="auto"))
    np.testing.assert_array_equal(auto, image)
    forced = draw(result, NAMES, fps=None, band_text=None, options=OverlayConfig(hud=False, depth_inset=True))
    assert changed_bbox(forced, image) is not None
    off = draw(make_result(grey(480, 640), depth=np.full((480, 640), 5.0)), NAMES, fps=None, band_text=None,
               options=OverlayConfig(hud=False, depth_inset=False))
    np.testing.assert_array_equal(off, grey(480, 640))


def test_inset_colours_span_the_sources_own_range() -> None:
    """A 2-10 m source: its near end is the warm end of the colour map, its far end the cool end (not one
    colour for everything, as a fixed 0-40 m scale would make it)."""
    depth = np.full((480, 640), 2.0)
    depth[:, 320:] = 10.0
    out = draw(make_result(grey(480, 640), depth=depth, valid_range=(2.0, 10.0)), NAMES, fps=None, band_text=None,
               options=OverlayConfig(hud=False, depth_inset=True))
    warm, cool = colorize_depth(np.array([[2.0, 10.0]]), 2.0, 10.0)[0]
    np.testing.assert_array_equal(warm, colorize_depth(np.array([[0.001]]), 0.0, 1.0)[0, 0])  # the ends of the map
    assert has_colour(out, blend(warm)) > 2000 and has_colour(out, blend(cool)) > 2000


def test_inset_without_a_stated_range_spans_zero_to_the_farthest_depth_seen() -> None:
    """No range from the source: 0 to the farthest depth so far, rounded up (7 m -> 10 m); it only grows."""
    depth = np.full((480, 640), 3.0)
    depth[:, 320:] = 7.0
    depth[:40] = np.nan  # no depth: dark
    overlay = Overlay(OverlayConfig(hud=False, depth_inset=True), NAMES)
    out = overlay.draw(make_result(grey(480, 640), depth=depth), fps=None, band_text=None)
    seven = blend(colorize_depth(np.array([[7.0]]), 0.0, 10.0)[0, 0])
    assert has_colour(out, seven) > 2000
    assert has_colour(out, blend((0, 0, 0))) > 200
    nearer = overlay.draw(make_result(grey(480, 640), depth=np.minimum(depth, 4.0)), fps=None, band_text=None)
    four_on_0_10 = blend(colorize_depth(np.array([[4.0]]), 0.0, 10.0)[0, 0])
    assert has_colour(nearer, four_on_0_10) > 2000  # still 0..10 m: the same metres keep their colour


def test_colorize_depth_fixed_range() -> None:
    a = np.array([[1.0, 5.0, 19.0]], np.float32)
    b = np.array([[1.0, 5.0, 100.0, 0.5, np.nan]], np.float32)
    ca, cb = colorize_depth(a, 0.0, 20.0), colorize_depth(b, 0.0, 20.0)
    assert ca.dtype == np.uint8 and ca.shape == (1, 3, 3)
    np.testing.assert_array_equal(ca[0, :2], cb[0, :2])  # same metres, same colour, whatever else is in the map
    np.testing.assert_array_equal(cb[0, 4], [0, 0, 0])  # NaN black
    np.testing.assert_array_equal(colorize_depth(np.array([[25.0]]), 0.0, 20.0), colorize_depth(np.array([[20.0]]), 0.0, 20.0))
    near, far = ca[0, 0].astype(int), ca[0, 2].astype(int)
    assert near[2] > near[0] and far[0] > far[2]  # near warm (red > blue), far cool
    np.testing.assert_array_equal(colorize_depth(np.array([[2.0]]), 2.0, 10.0), colorize_depth(np.array([[0.01]]), 0.0, 8.0))


def test_colorize_depth_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match=r"\(H, W\) depth map"):
        colorize_depth(np.zeros((2, 2, 3), np.float32), 0.0, 20.0)
    with pytest.raises(ValueError, match=r"0 <= near < far"):
        colorize_depth(np.zeros((2, 2), np.float32), 5.0, 5.0)


# -- HUD --------------------------------------------------------------------------------------------


def _hud_box(h: int, w: int, **options) -> tuple[int, int, int, int]:
    image = grey(h, w)
    out = draw(make_result(image, depth=np.full((h, w), 5.0)), NAMES, fps=29.97, band_text="closer than 30 m",
               options=OverlayConfig(depth_inset=False, **options))
    box = changed_bbox(out, image)
    assert box is not None
    return box


def test_hud_is_a_compact_strip_that_scales_with_the_frame() -> None:
    small, large = _hud_box(360, 640), _hud_box(1080, 1920)
    small_h, large_h = small[3] - small[1], large[3] - large[1]
    assert small_h <= 0.06 * 360 and large_h <= 0.06 * 1080  # one row of text, not a quarter of the frame
    assert 2.0 <= large_h / small_h <= 3.6  # 3x the rows, 2-3x the text (never under 9 px, to stay readable)
    assert small[2] - small[0] <= 640 and (large[2] - large[0]) / (small[2] - small[0]) > 2.4


def test_hud_timings_only_when_asked() -> None:
    plain, timed = _hud_box(360, 640), _hud_box(360, 640, timings=True)
    assert (timed[3] - timed[1]) > (plain[3] - plain[1])


def test_hud_names_the_depth_state_and_shows_the_band_swatch() -> None:
    image = grey(360, 640)
    result = make_result(image, depth=np.full((360, 640), 50.0), mask=np.zeros((360, 640), bool), state="indoor, metric")
    out = draw(result, NAMES, fps=25.0, band_text="closer than 30 m",
               options=OverlayConfig(tint_bgr=(0, 0, 200), tint_alpha=0.5))
    assert has_colour(out, (0, 0, 200), tol=0) >= 40  # the swatch: the tint's own colour, beside "outside the band"
    no_band = draw(make_result(image, depth=np.full((360, 640), 50.0)), NAMES, fps=25.0, band_text=None,
                   options=OverlayConfig(tint_bgr=(0, 0, 200), tint_alpha=0.5))
    assert has_colour(no_band, (0, 0, 200), tol=0) == 0


def test_hud_goes_where_the_objects_are_not() -> None:
    image = grey(360, 640)
    box = [0, 0, 300, 60]  # an object in the top-left corner, reaching into the strip's height
    out = draw(make_result(image, dets=boxes([box])), NAMES, fps=25.0, band_text="closer than 30 m", options=OverlayConfig())
    assert painted(out, image, box) == 0.0
    assert changed_bbox(out[:, 320:], image[:, 320:]) is not None  # the HUD is on the right


def _hud_alone(h: int, w: int) -> tuple[int, int]:
    """The HUD (with timings) alone on a grey frame: its rows of white text, and the last column its text reaches."""
    frame = Frame(image=np.full((h, w, 3), 200, np.uint8), index=0, pts_s=None, captured_ns=0, source_id="t")
    result = Result(frame=frame, timings_ms={"capture": 0.1, "depth": 3.1, "detect": 12.0, "assign": 0.2})
    out = draw(result, NAMES, fps=29.97, band_text="between 3 m and 8 m", options=OverlayConfig(timings=True))
    assert out.shape == (h, w, 3)
    white = out.min(axis=2) > 230  # the text is white, the frame grey 200
    rows = np.nonzero(white.any(axis=1))[0]
    assert rows.size and changed_bbox(out, frame.image) is not None
    return 1 + int((np.diff(rows) > 1).sum()), int(np.nonzero(white.any(axis=0))[0].max())


def test_hud_wraps_on_a_small_frame() -> None:
    # The HUD's strip may span the frame (it sits at the edge); its text must stay inside it, off the edge by the
    # strip's padding (2 px at this size), whatever the font's widths (OpenCV 5.0 and 5.1 differ by a few pixels).
    (wide_rows, _), (narrow_rows, narrow_right) = _hud_alone(240, 640), _hud_alone(240, 80)
    assert narrow_rows > wide_rows  # wrapped onto more rows, not cut off at the right edge
    assert narrow_right < 80 - 2
    tiny_rows, tiny_right = _hud_alone(60, 80)
    assert 1 <= tiny_rows < narrow_rows and tiny_right < 80 - 2  # what fits in 60 rows, no more
