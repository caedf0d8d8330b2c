"""Perturbations (each checked against its definition), the robustness evaluation (each perturbation's point
recomputed by independent code: scipy/numpy by hand and keras's own predict), and the cache."""

from __future__ import annotations

import zlib

import numpy as np
import pytest
from scipy import ndimage

from mnist_core import perturbations as pert
from mnist_core import registry, robustness
from mnist_core.errors import LabError

SUBSET = 150


@pytest.fixture(scope="module")
def tiny_model(tiny_trained):
    import keras

    return keras.saving.load_model(tiny_trained / "model.keras", compile=False, safe_mode=True)


@pytest.fixture(scope="module")
def digits(small_mnist):
    return small_mnist.x_test[:64], small_mnist.y_test[:64].astype(np.int64)


def cross_entropy(model, images, labels) -> float:
    probs = np.asarray(model(images.astype(np.float32)[..., None] / 255.0, training=False))
    return float(-np.mean(np.log(np.clip(probs[np.arange(len(labels)), labels], 1e-7, 1))))


# ---------- each perturbation against its definition ----------


@pytest.mark.parametrize("name", list(pert.LADDERS))
def test_identity_severity_returns_the_input_unchanged(name, digits, tiny_model):
    x, y = digits
    out = pert.apply(name, x, pert.LADDERS[name].identity, np.random.default_rng(0), model=tiny_model, labels=y)
    assert out.dtype == np.uint8 and np.array_equal(out, x) and out is not x


def test_every_non_identity_level_changes_digits(digits, tiny_model):
    x, y = digits
    for name, ladder in pert.LADDERS.items():
        level = ladder.levels[-1]
        out = pert.apply(name, x, level, np.random.default_rng(0), model=tiny_model, labels=y)
        assert out.shape == x.shape and out.dtype == np.uint8
        assert not np.array_equal(out, x), name


def test_a_three_pixel_shift_moves_the_centre_of_mass_by_three_pixels(digits):
    x, _ = digits
    out = pert.shift(x, 3, np.random.default_rng(1))
    whole = [(b, a) for b, a in zip(x, out, strict=True) if a.sum() == b.sum()]  # no ink left the frame
    assert len(whole) >= 0.8 * len(x)  # MNIST centres the mass, so a few wide digits reach an edge
    for before, after in whole:
        moved = np.subtract(ndimage.center_of_mass(after), ndimage.center_of_mass(before))
        assert np.isclose(np.abs(moved).max(), 3, atol=1e-6) and np.isclose(np.abs(moved).min(), 0, atol=1e-6)


def test_rotation_by_ninety_degrees_is_rot90(digits):
    x, _ = digits
    turned = pert.rotate_by(x[:5], np.full(5, 90.0)).astype(int)
    assert np.abs(turned - np.rot90(x[:5], k=1, axes=(1, 2))).max() <= 1  # counter-clockwise, as np.rot90
    turned = pert.rotation(x[:20], 90, np.random.default_rng(2))  # either way round, per image
    ways = [np.rot90(x[:20], k, axes=(1, 2)) for k in (1, -1)]
    matches = [[np.abs(t.astype(int) - w[i]).max() <= 1 for w in ways] for i, t in enumerate(turned)]
    assert all(any(m) for m in matches)
    assert {m.index(True) for m in matches} == {0, 1}  # both signs drawn


def spread(image) -> float:
    r, c = np.mgrid[0:28, 0:28]
    w = image.astype(float) / image.sum()
    cr, cc = (w * r).sum(), (w * c).sum()
    return float(np.sqrt((w * ((r - cr) ** 2 + (c - cc) ** 2)).sum()))


def test_scale_two_doubles_the_spread_and_half_halves_it():
    r, c = np.mgrid[0:28, 0:28]
    blob = (255 * np.exp(-((r - 12.7) ** 2 + (c - 14.2) ** 2) / (2 * 2.5**2))).astype(np.uint8)[None]
    assert spread(pert.scale(blob, 2.0, None)[0]) / spread(blob[0]) == pytest.approx(2.0, rel=0.05)
    assert spread(pert.scale(blob, 0.5, None)[0]) / spread(blob[0]) == pytest.approx(0.5, rel=0.1)
    assert np.allclose(ndimage.center_of_mass(pert.scale(blob, 2.0, None)[0]), ndimage.center_of_mass(blob[0]),
                       atol=0.1)


def test_thicker_strokes_add_ink_and_thinner_remove_it(digits):
    x, _ = digits
    ink = x.reshape(len(x), -1).sum(axis=1)
    assert (pert.thickness(x, 1, None).reshape(len(x), -1).sum(axis=1) > ink).all()
    assert (pert.thickness(x, -1, None).reshape(len(x), -1).sum(axis=1) < ink).all()
    assert (pert.thickness(x, 2, None) >= pert.thickness(x, 1, None)).all()


def test_noise_has_the_asked_standard_deviation():
    grey = np.full((40, 28, 28), 128, np.uint8)  # mid-grey: sigma 0.1 is almost never clipped
    out = pert.noise(grey, 0.1, np.random.default_rng(3))
    assert (out.astype(float) - 128).std() / 255 == pytest.approx(0.1, rel=0.03)


def test_blur_lowers_the_peak_and_keeps_the_ink(digits):
    x, _ = digits
    out = pert.blur(x, 1.5, None)
    assert (out.max(axis=(1, 2)) < x.max(axis=(1, 2))).all()
    ratio = out.reshape(len(x), -1).sum(axis=1) / x.reshape(len(x), -1).sum(axis=1)
    assert np.allclose(ratio, 1, atol=0.02)


def test_elastic_with_alpha_zero_is_identity_and_a_zero_field_warp_too(digits):
    x, _ = digits
    assert np.array_equal(pert.elastic(x, 0, np.random.default_rng(4)), x)
    r, c = np.mgrid[0:28, 0:28].astype(float)
    assert np.array_equal(pert.warp(x, np.broadcast_to(r, x.shape), np.broadcast_to(c, x.shape)), x)
    bent = pert.elastic(x, 30, np.random.default_rng(4))
    assert not np.array_equal(bent, x)
    assert np.allclose(bent.reshape(len(x), -1).sum(1) / x.reshape(len(x), -1).sum(1), 1, atol=0.5)  # bent, not lost
    assert (np.abs(bent.astype(int) - x) > 0).mean() < (np.abs(pert.elastic(x, 60, np.random.default_rng(4)).astype(int) - x) > 0).mean()


@pytest.mark.parametrize("side", [4, 8, 16])
def test_occlusion_zeroes_exactly_one_square_patch(side, digits):
    white = np.full((10, 28, 28), 255, np.uint8)
    out = pert.occlusion(white, side, np.random.default_rng(5))
    for im in out:
        rows, cols = np.nonzero(im == 0)
        assert len(rows) == side * side
        assert rows.max() - rows.min() + 1 == side and cols.max() - cols.min() + 1 == side
    x, _ = digits
    hidden = (pert.occlusion(x, side, np.random.default_rng(5)) == 0) & (x >= 128)
    assert hidden.reshape(len(x), -1).any(axis=1).all()  # the patch is over the digit


@pytest.mark.parametrize("eps", [0.05, 0.1, 0.2])
def test_fgsm_changes_no_pixel_by_more_than_eps_and_raises_the_loss(eps, digits, tiny_model):
    x, y = digits
    out = pert.fgsm(x, eps, None, model=tiny_model, labels=y)
    assert np.abs(out.astype(int) - x).max() <= eps * 255
    assert cross_entropy(tiny_model, out, y) > cross_entropy(tiny_model, x, y) + 0.1


@pytest.mark.parametrize("eps", [0.05, 0.1])
def test_pgd_stays_in_the_eps_ball_and_raises_the_loss(eps, digits, tiny_model):
    x, y = digits
    out = pert.pgd(x, eps, None, model=tiny_model, labels=y)
    assert np.abs(out.astype(int) - x).max() <= eps * 255
    assert cross_entropy(tiny_model, out, y) > cross_entropy(tiny_model, x, y) + 0.1
    right = lambda im: (np.asarray(tiny_model(im[..., None] / 255.0)).argmax(1) == y).mean()  # noqa: E731
    assert right(out) < right(x)


# ---------- one point per perturbation, computed independently ----------


def by_hand(name: str, x: np.ndarray, y: np.ndarray, level: float, rng, model) -> np.ndarray:
    """Each perturbation written again from its documented definition, image by image with scipy."""
    import tensorflow as tf

    n = len(x)
    if name == "shift":
        moves = np.array([(-1, 0), (1, 0), (0, -1), (0, 1)])[rng.integers(0, 4, n)] * level
        return np.stack([ndimage.shift(im, m, order=0, mode="constant") for im, m in zip(x, moves, strict=True)])
    if name == "rotation":
        signs = rng.choice([-1, 1], n)  # ndimage.rotate turns the other way round from np.rot90 on (row, col)
        return np.stack([np.clip(np.rint(ndimage.rotate(im.astype(float), s * level, reshape=False, order=1,
                                                        mode="grid-constant")), 0, 255) for im, s in zip(x, signs, strict=True)])
    if name == "scale":
        out = []
        for im in x:
            com = np.array(ndimage.center_of_mass(im))
            out.append(ndimage.affine_transform(im.astype(float), np.eye(2) / level, offset=com - com / level,
                                                order=1, mode="grid-constant"))
        return np.clip(np.rint(out), 0, 255)
    if name == "thickness":
        r, c = np.mgrid[-abs(level) : abs(level) + 1, -abs(level) : abs(level) + 1]
        op = ndimage.grey_dilation if level > 0 else ndimage.grey_erosion
        return np.stack([op(im, footprint=r**2 + c**2 <= level**2, mode="constant") for im in x])
    if name == "noise":
        return np.clip(np.rint(x + rng.normal(0, level * 255, x.shape)), 0, 255)
    if name == "blur":
        return np.stack([np.clip(np.rint(ndimage.gaussian_filter(im.astype(float), level, mode="constant")), 0, 255)
                         for im in x])
    if name == "elastic":
        fields = rng.uniform(-1, 1, (2, *x.shape))
        grid = np.mgrid[0:28, 0:28].astype(float)
        out = []
        for k, im in enumerate(x):
            dr, dc = (level * ndimage.gaussian_filter(f[k], 4.0, mode="constant") for f in fields)
            out.append(ndimage.map_coordinates(im.astype(float), [grid[0] + dr, grid[1] + dc], order=1,
                                               mode="grid-constant"))
        return np.clip(np.rint(out), 0, 255)
    if name == "occlusion":
        out = x.copy()
        for k, im in enumerate(x):
            pixel = np.flatnonzero(im >= 128)[rng.integers(0, (im >= 128).sum())]
            r, c = divmod(int(pixel), 28)
            top, left = min(max(r - level // 2, 0), 28 - level), min(max(c - level // 2, 0), 28 - level)
            out[k, top : top + level, left : left + level] = 0
        return out
    # FGSM, PGD: keras's own loss and an eager GradientTape; PGD without stopping early.
    x0 = tf.constant(x[..., None] / 255.0, tf.float32)
    adv = tf.identity(x0)
    for _ in range(1 if name == "fgsm" else pert.PGD_STEPS):
        with tf.GradientTape() as tape:
            tape.watch(adv)
            loss = tf.keras.losses.sparse_categorical_crossentropy(y, model(adv, training=False))
        step = level if name == "fgsm" else level / 4
        adv = tf.clip_by_value(tf.clip_by_value(adv + step * tf.sign(tape.gradient(loss, adv)), x0 - level, x0 + level),
                               0, 1)
    limit = np.floor(level * 255 + 1e-6)
    return np.clip(np.rint(adv.numpy()[..., 0] * 255), x.astype(float) - limit, x.astype(float) + limit)


TOLERANCE = {"rotation": 0.02, "scale": 0.02, "elastic": 0.02, "pgd": 0.04}  # interpolation / stopping early


def test_one_point_per_perturbation_matches_independent_code(small_mnist, tiny_model):
    seed = 7
    result = robustness.evaluate(tiny_model, small_mnist, subset=SUBSET, seed=seed)
    idx = np.sort(np.random.default_rng(seed).choice(len(small_mnist.x_test), SUBSET, replace=False))
    x, y = small_mnist.x_test[idx], small_mnist.y_test[idx].astype(np.int64)
    assert result["subset"] == SUBSET and result["seed"] == seed
    clean = (tiny_model.predict(x[..., None] / 255.0, verbose=0).argmax(1) == y).mean()
    assert result["clean_accuracy"] == pytest.approx(clean)
    for name, ladder in pert.LADDERS.items():
        i = len(ladder.levels) // 2 if ladder.levels[len(ladder.levels) // 2] != ladder.identity else 1
        level = ladder.levels[i]
        rng = np.random.default_rng([seed, zlib.crc32(name.encode()), i])
        images = by_hand(name, x, y, level, rng, tiny_model).astype(np.float32)
        expected = (tiny_model.predict(images[..., None] / 255.0, verbose=0).argmax(1) == y).mean()
        got = result["perturbations"][name]["accuracy"][i]
        assert got == pytest.approx(expected, abs=TOLERANCE.get(name, 1e-9)), (name, level)


def test_evaluate_reports_every_ladder_and_its_progress(small_mnist, tiny_model):
    seen = []
    result = robustness.evaluate(tiny_model, small_mnist, subset=100, progress=lambda f, t: seen.append((f, t)))
    assert list(result["perturbations"]) == list(pert.LADDERS)
    for name, r in result["perturbations"].items():
        assert r["levels"] == list(pert.LADDERS[name].levels) and len(r["accuracy"]) == len(r["levels"])
        assert r["accuracy"][r["levels"].index(r["identity"])] == result["clean_accuracy"]
    fractions = [f for f, _ in seen]
    assert fractions == sorted(fractions) and fractions[-1] == pytest.approx(1.0)
    means = [np.mean([a for lv, a in zip(r["levels"], r["accuracy"], strict=True) if lv != r["identity"]])
             for r in result["perturbations"].values()]
    assert result["summary"] == pytest.approx(np.mean(means))


@pytest.mark.parametrize("subset", [0, -3, 1001, 2.5])
def test_a_subset_out_of_bounds_is_refused_before_work(subset, small_mnist, tiny_model):
    with pytest.raises(LabError, match="robustness subset"):
        robustness.evaluate(tiny_model, small_mnist, subset=subset)


# ---------- the cache ----------


def test_cached_per_model_file_checksum_and_ladder_version(registry_with, small_mnist, monkeypatch, tmp_path):
    registry_with("tiny")
    real_evaluate, calls = robustness.evaluate, []

    def counting(model, mnist, **kw):
        calls.append(1)
        return real_evaluate(model, mnist, **kw)

    monkeypatch.setattr(robustness, "evaluate", counting)
    assert robustness.cached_summary("tiny", small_mnist, subset=60) is None
    first = robustness.for_model("tiny", small_mnist, subset=60)
    assert len(calls) == 1 and first["model_sha256"] == robustness.model_sha256("tiny")
    assert robustness.cache_dir().is_relative_to(tmp_path)  # each test's own cache, beside its registry
    again = robustness.for_model("tiny", small_mnist, subset=60)
    assert len(calls) == 1 and again == first
    assert robustness.cached_summary("tiny", small_mnist, subset=60) == first["summary"]
    robustness.for_model("tiny", small_mnist, subset=60, seed=1)  # another subset: its own entry
    assert len(calls) == 2
    monkeypatch.setattr(robustness, "LADDER_VERSION", "changed-ladder")
    robustness.for_model("tiny", small_mnist, subset=60)
    assert len(calls) == 3
    monkeypatch.setattr(robustness, "LADDER_VERSION", pert.LADDER_VERSION)
    model_file = registry.model_path("tiny") / registry.MODEL_FILE
    model = registry.load("tiny")
    model_file.write_bytes(model_file.read_bytes() + b"\0")  # another file: another checksum
    robustness.for_model("tiny", small_mnist, model=model, subset=60)
    assert len(calls) == 4
