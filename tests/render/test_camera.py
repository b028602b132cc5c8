"""Camera moves: smooth, eased, never revealing the edge of the image."""

import math

from storylang.render.camera import View, affine, cover_scale, ease, shot_views
from storylang.film import CameraMove


def move(**kw):
    return CameraMove(**{"speed": "medium", "amount": 20.0, "easing": "ease-in-out", **kw})


def test_easings_start_at_zero_end_at_one_and_never_go_back():
    for kind in ("linear", "ease-in", "ease-out", "ease-in-out"):
        values = [ease(kind, i / 100) for i in range(101)]
        assert values[0] == 0 and values[-1] == 1
        assert all(b >= a for a, b in zip(values, values[1:]))


def test_a_push_in_zooms_steadily_by_its_amount():
    views = shot_views((move(move="push", direction="in", easing="linear"),), 49, 24, 16 / 9)
    zooms = [v.zoom for v in views]
    assert math.isclose(zooms[-1] / zooms[0], 1.2)
    steps = [b - a for a, b in zip(zooms, zooms[1:])]
    assert max(steps) - min(steps) < 1e-9  # linear: equal sub-pixel steps, no stepping


def test_no_move_shows_outside_the_image():
    moves = [
        (move(move="pan", direction="left", amount=35),),
        (move(move="orbit", direction="right", amount=25),),
        (move(move="roll", direction="left", amount=30),),
        (move(move="shake", amount=2),),
        (move(move="truck", direction="right"), move(move="tilt", direction="up")),
    ]
    image, frame = (1920, 1080), (1280, 720)
    for m in moves:
        for v in shot_views(m, 60, 24, 16 / 9, seed="7"):
            assert v.zoom >= cover_scale(v, 16 / 9) - 1e-9
            a, b, c, d, e, f = affine(v, image, frame)
            for x, y in ((0, 0), (frame[0], 0), (0, frame[1]), frame):  # every corner of the frame...
                ix, iy = a * x + b * y + c, d * x + e * y + f  # ...lands inside the image
                assert -1e-6 <= ix <= image[0] + 1e-6 and -1e-6 <= iy <= image[1] + 1e-6, (m, v)


def test_a_static_view_maps_the_image_onto_the_frame():
    a, b, c, d, e, f = affine(View(), (1920, 1080), (1280, 720))
    assert math.isclose(a, 1.5) and math.isclose(e, 1.5) and b == 0 and d == 0
    assert math.isclose(c, 0) and math.isclose(f, 0)


def test_a_pan_left_moves_the_view_left():
    views = shot_views((move(move="pan", direction="left"),), 10, 24, 16 / 9)
    assert views[0].ox > 0 > views[-1].ox


def test_shake_is_deterministic_for_a_seed():
    m = (move(move="shake", amount=1),)
    assert shot_views(m, 30, 24, 16 / 9, seed="1") == shot_views(m, 30, 24, 16 / 9, seed="1")
    assert shot_views(m, 30, 24, 16 / 9, seed="1") != shot_views(m, 30, 24, 16 / 9, seed="2")
