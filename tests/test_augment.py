"""The training augmentation (mnist_core.augment): each transform does what its name says, on real digits."""

from __future__ import annotations

import json

import numpy as np
import pytest
import tensorflow as tf
from scipy import ndimage

from mnist_core import augment, data
from mnist_core import spec as specs
from mnist_core.errors import LabError
from mnist_core.train import make_dataset


@pytest.fixture(scope="module")
def digits(small_mnist) -> tf.Tensor:
    return tf.constant(data.normalise(small_mnist.x_test[:64]))


def ink(images) -> np.ndarray:
    return np.asarray(images).reshape(len(images), -1).sum(axis=1)


def centres(images) -> np.ndarray:
    return np.array([ndimage.center_of_mass(np.asarray(img)[..., 0]) for img in images])


def identity_coordinates(n: int) -> tf.Tensor:
    zeros = tf.zeros([n])
    return augment.affine_source_coordinates(zeros, tf.ones([n]), zeros, tf.zeros([n, 2]))


def test_identity_transform_returns_the_images_exactly(digits):
    out = augment.warp(digits, identity_coordinates(len(digits)))
    np.testing.assert_allclose(out, digits, atol=1e-6)


def test_a_shift_moves_the_centre_of_mass_by_that_many_pixels(digits):
    n = len(digits)
    zeros = tf.zeros([n])
    shift = tf.constant([[3.0, -2.0]] * n)  # 3 down, 2 left
    moved = augment.warp(digits, augment.affine_source_coordinates(zeros, tf.ones([n]), zeros, shift))
    # Digits whose ink would leave the frame are rare in MNIST's 20x20 box; compare the ones fully inside.
    inside = np.abs(ink(moved) - ink(digits)) < 1e-3 * ink(digits)
    assert inside.sum() > n // 2
    np.testing.assert_allclose(centres(moved)[inside] - centres(digits)[inside], [[3.0, -2.0]] * int(inside.sum()),
                               atol=1e-3)


def test_a_quarter_turn_is_numpy_rot90(digits):
    n = len(digits)
    zeros = tf.zeros([n])
    turned = augment.warp(digits, augment.affine_source_coordinates(zeros + np.pi / 2, tf.ones([n]), zeros,
                                                                    tf.zeros([n, 2])))
    np.testing.assert_allclose(turned, np.rot90(np.asarray(digits), k=1, axes=(1, 2)), atol=1e-4)


def test_scale_half_shrinks_the_ink_to_about_a_quarter(digits):
    n = len(digits)
    zeros = tf.zeros([n])
    small = augment.warp(digits, augment.affine_source_coordinates(zeros, tf.ones([n]) * 0.5, zeros, tf.zeros([n, 2])))
    ratio = ink(small) / ink(digits)
    assert 0.2 < np.median(ratio) < 0.3, np.median(ratio)


def test_positive_shear_slants_the_top_to_the_right():
    bar = np.zeros((1, 28, 28, 1), np.float32)
    bar[0, 4:24, 13:15] = 1.0  # a vertical stroke
    n = 1
    slanted = augment.warp(tf.constant(bar), augment.affine_source_coordinates(
        tf.zeros([n]), tf.ones([n]), tf.constant([0.5]), tf.zeros([n, 2])))[0, ..., 0].numpy()
    top = ndimage.center_of_mass(slanted[4:10])[1]
    bottom = ndimage.center_of_mass(slanted[18:24])[1]
    assert top - bottom > 5, (top, bottom)


def test_thickness_thins_or_thickens_every_digit(digits):
    n = len(digits)
    levels = [augment.change_thickness(digits, tf.fill([n], steps)) for steps in (-1, 0, 1, 2)]
    for changed in levels:
        assert changed.shape == digits.shape and changed.dtype == tf.float32
        assert float(tf.reduce_min(changed)) >= 0 and float(tf.reduce_max(changed)) <= 1
    thinner, same, thick, thicker = (ink(level) for level in levels)
    np.testing.assert_array_equal(same, ink(digits))
    assert (thinner < same).all() and (same * 1.15 < thick).all() and (thick * 1.15 < thicker).all()


def test_thickness_step_zero_keeps_the_digit_and_steps_apply_per_image(digits):
    steps = tf.constant([0, 2] * (len(digits) // 2))
    changed = augment.change_thickness(digits, steps).numpy()
    np.testing.assert_array_equal(changed[0::2], np.asarray(digits)[0::2])
    assert (ink(changed[1::2]) > ink(np.asarray(digits)[1::2])).all()


def test_elastic_field_is_smooth_and_about_a_pixel(digits):
    field = augment.elastic_displacement(tf.random.Generator.from_seed(3), 200).numpy()
    assert field.shape == (200, 28, 28, 2)
    assert 0.4 < field.std() < 2 * augment.ELASTIC_PIXELS
    neighbour_step = np.abs(np.diff(field, axis=1)).mean()
    assert neighbour_step < 0.2 * np.abs(field).mean()  # smooth: neighbours move together
    coords = identity_coordinates(len(digits)) + field[: len(digits)]
    warped = augment.warp(digits, coords).numpy()
    assert warped.min() >= 0 and warped.max() <= 1
    assert np.abs(warped - np.asarray(digits)).max() > 0.3  # it changes the digits ...
    ratio = ink(warped) / ink(digits)  # ... without erasing or inventing ink
    assert 0.9 < np.median(ratio) < 1.1 and ratio.min() > 0.6 and ratio.max() < 1.4, ratio


def test_real_input_level_keeps_shape_dtype_range_and_is_seeded(digits):
    first = augment.make_augmenter(specs.REAL_INPUT, 7)(digits)
    again = augment.make_augmenter(specs.REAL_INPUT, 7)(digits)
    other = augment.make_augmenter(specs.REAL_INPUT, 8)(digits)
    assert first.shape == digits.shape and first.dtype == tf.float32
    assert float(tf.reduce_min(first)) >= 0 and float(tf.reduce_max(first)) <= 1
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)
    changed = np.abs(np.asarray(first) - np.asarray(digits)).reshape(len(digits), -1).max(axis=1) > 0.2
    assert changed.mean() > 0.9  # almost every digit is varied


def test_levels_false_true_and_unknown():
    assert augment.make_augmenter(False, 0) is None
    light = augment.make_augmenter(True, 0)
    x = tf.zeros([2, 28, 28, 1])
    assert light(x).shape == x.shape
    for bad in ("heavy", 1, None):
        with pytest.raises(ValueError, match="augment must be"):
            augment.make_augmenter(bad, 0)


def test_dataset_with_real_input_keeps_labels_and_shapes(small_mnist):
    x, y = small_mnist.x_train[:300], small_mnist.y_train[:300]
    plain = list(make_dataset(x, y, 100, augment=False))
    varied = list(make_dataset(x, y, 100, augment=specs.REAL_INPUT))
    assert len(plain) == len(varied) == 3
    for (a, la), (b, lb) in zip(plain, varied, strict=True):
        assert a.shape == b.shape == (100, 28, 28, 1) and b.dtype == tf.float32
        np.testing.assert_array_equal(la, lb)
        assert not np.array_equal(a, b)


@pytest.mark.parametrize("value", [False, True, "real-input"])
def test_config_augment_levels_round_trip_through_json(value):
    config = specs.TrainConfig(augment=value).validate()
    back = specs.config_from_dict(json.loads(specs.to_json(config)))
    assert back.augment == value and type(back.augment) is type(value)


def test_old_metadata_with_boolean_augment_still_loads():
    old = {"optimizer": "adam", "learning_rate": 0.005, "schedule": "one-cycle", "warmup_fraction": 0.2,
           "batch_size": 128, "epochs": 1, "validation_split": 0.1, "seed": 0, "augment": True}
    assert specs.config_from_dict(old).augment is True
    assert specs.config_from_dict({**old, "augment": False}).augment is False


@pytest.mark.parametrize("bad", ["heavy", 1, 0, None, "REAL-INPUT"])
def test_unknown_augment_level_is_refused_in_one_line(bad):
    with pytest.raises(LabError, match=r"^augment must be false, true or 'real-input', got "):
        specs.config_from_dict({"augment": bad})


def test_blank_square_removes_only_ink_inside_one_square_of_the_allowed_size(digits):
    before = np.asarray(digits)[..., 0]
    after = np.asarray(augment.blank_square(digits, tf.random.Generator.from_seed(4)))[..., 0]
    for old, new in zip(before, after, strict=True):
        changed = np.argwhere(old != new)
        assert len(changed), "the square is centred on ink, so some ink goes"
        assert (new[old != new] == 0).all()
        rows, cols = np.ptp(changed, axis=0) + 1
        assert rows <= augment.BLANK_SIZES[1] and cols <= augment.BLANK_SIZES[1]
        assert (new <= old).all()


def test_flagged_ones_gain_ink_only_up_and_left_of_the_stroke_and_nothing_else_changes(small_mnist):
    x, y = small_mnist.x_train[:600], small_mnist.y_train[:600]
    flagged = augment.with_flagged_ones(x, y, seed=0)
    changed = (flagged != x).any(axis=(1, 2))
    assert not changed[y != 1].any()
    ones = np.flatnonzero(y == 1)
    share = changed[ones].mean()
    assert 0.5 * augment.FLAGGED_ONES_SHARE <= share <= augment.FLAGGED_ONES_SHARE + 0.1
    for i in np.flatnonzero(changed):
        assert (flagged[i] >= x[i]).all()
        gained = np.argwhere(flagged[i].astype(int) - x[i] > 64)
        rows, cols = np.nonzero(x[i] > 127)
        assert gained[:, 0].max() <= rows.min() + 0.5 * (rows.max() - rows.min()) + 3, "the flag hangs from the top"
        top_col = cols[rows <= rows.min() + 1].mean()
        assert gained[:, 1].min() < top_col - 1, "and points left"
    assert np.array_equal(augment.with_flagged_ones(x, y, seed=0), flagged)
    assert not np.array_equal(augment.with_flagged_ones(x, y, seed=1), flagged)


def test_a_one_leaning_left_or_on_a_base_gets_no_flag_since_it_would_read_as_7_or_2(monkeypatch):
    monkeypatch.setattr(augment, "FLAGGED_ONES_SHARE", 1.0)
    leaning, upright, based = np.zeros((3, 28, 28), np.uint8)
    for row in range(4, 24):
        leaning[row, 6 + row // 2 : 9 + row // 2] = 255  # top-left to bottom-right
        upright[row, 13:16] = 255
        based[row, 13:16] = 255
    based[22:24, 9:20] = 255
    flagged = augment.with_flagged_ones(np.stack([leaning, upright, based]), np.array([1, 1, 1]), seed=0)
    assert np.array_equal(flagged[0], leaning)
    assert not np.array_equal(flagged[1], upright)
    assert np.array_equal(flagged[2], based)
