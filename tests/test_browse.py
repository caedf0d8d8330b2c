"""mnist_core.browse on real MNIST digits."""

import numpy as np
import pytest

from mnist_core import browse


def test_class_counts_and_mean_images(small_mnist):
    counts = browse.class_counts(small_mnist.y_test)
    assert counts.sum() == len(small_mnist.y_test) and counts.shape == (10,)
    means = browse.mean_images(small_mnist.x_train, small_mnist.y_train)
    assert means.shape == (10, 28, 28) and 0 <= means.min() and means.max() <= 1
    ones = small_mnist.x_train[small_mnist.y_train == 1].mean(axis=0) / 255
    assert np.allclose(means[1], ones, atol=1e-6)
    # A mean 0 has ink on its ring and none in its hole; a mean 1 the other way round.
    assert means[0][14, 14] < means[0][14, 8] and means[1][14, 14] > means[1][14, 8]


def test_samples_per_digit_are_of_that_digit_and_reproducible(small_mnist):
    picks = browse.samples_per_digit(small_mnist.y_train, 5, seed=3)
    assert picks.shape == (10, 5)
    assert (small_mnist.y_train[picks] == np.arange(10)[:, None]).all()
    assert (picks == browse.samples_per_digit(small_mnist.y_train, 5, seed=3)).all()
    assert (picks != browse.samples_per_digit(small_mnist.y_train, 5, seed=4)).any()


def test_select_by_digit_and_correctness(small_mnist):
    y = small_mnist.y_test
    predicted = y.copy()
    predicted[:7] = (y[:7] + 1) % 10  # the first seven are wrong
    assert (y[browse.select(y, digit=4)] == 4).all()
    assert list(browse.select(y, predicted=predicted, correct=False)) == list(range(7))
    wrong_fours = browse.select(y, digit=4, predicted=predicted, correct=False)
    assert list(wrong_fours) == [i for i in range(7) if y[i] == 4]
    assert len(browse.select(y, predicted=predicted, correct=True)) == len(y) - 7
    with pytest.raises(ValueError):
        browse.select(y, correct=True)
