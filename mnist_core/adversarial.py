"""Adversarial training: each step trains on a batch half clean, half attacked against the current weights.

TrainConfig.adversarial_eps > 0 turns it on (mnist_core.train wraps the built model in AdversarialTrainer).
The attack is FGSM from a random start inside the eps-ball (Wong et al. 2020, "Fast is better than free"):
a random start keeps single-step training from overfitting to its own attack, so the model also resists
multi-step PGD, at the cost of one extra gradient pass over half a batch (about 1.3x per step).

The wrapper only changes how a training batch is made. It owns no weights: the model that is saved is the
plain inner functional model, so the registry's checks apply to it unchanged.
"""

from __future__ import annotations

import keras
import tensorflow as tf

ADVERSARIAL_SHARE = 0.5  # of each training batch; the rest stays clean so clean accuracy is still learned
STEP_FACTOR = 1.25  # FGSM step after the random start, in units of eps (Wong et al.'s choice)


def fgsm_batch(model: keras.Model, images: tf.Tensor, labels: tf.Tensor, eps: float, seed) -> tf.Tensor:
    """Images (N, 28, 28, 1) in [0, 1] moved within eps of themselves (per pixel) and within [0, 1] to raise
    `model`'s cross-entropy: a uniform random start in the eps-ball, then one signed-gradient step of
    STEP_FACTOR * eps, projected back. `seed` is a stateless seed (two integers); the model runs in inference
    mode, so batch-norm statistics are not disturbed by the attack."""
    images = tf.convert_to_tensor(images, tf.float32)
    start = tf.random.stateless_uniform(tf.shape(images), seed, -eps, eps)
    moved = tf.clip_by_value(images + start, 0.0, 1.0)
    with tf.GradientTape() as tape:
        tape.watch(moved)
        loss = keras.losses.sparse_categorical_crossentropy(labels, model(moved, training=False))
    gradient = tape.gradient(loss, moved)
    delta = tf.clip_by_value(moved + STEP_FACTOR * eps * tf.sign(gradient) - images, -eps, eps)
    return tf.stop_gradient(tf.clip_by_value(images + delta, 0.0, 1.0))


class AdversarialTrainer(keras.Model):
    """Trains `inner` on batches whose last ADVERSARIAL_SHARE is replaced by fgsm_batch at `eps`.

    Calls, evaluation and weights are the inner model's; only train_step differs. The attack's random start
    is seeded from `seed` and the optimizer's step count, so a seeded run repeats exactly.
    """

    def __init__(self, inner: keras.Model, eps: float, seed: int = 0, **kwargs):
        super().__init__(**kwargs)
        self.inner = inner
        self.eps = float(eps)
        self.seed = int(seed)

    def call(self, inputs, training=False):
        return self.inner(inputs, training=training)

    def train_step(self, data):
        images, labels = data[0], data[1]
        count = tf.shape(images)[0]
        keep = count - tf.cast(tf.round(tf.cast(count, tf.float32) * ADVERSARIAL_SHARE), tf.int32)
        seed = tf.stack([tf.constant(self.seed, tf.int64), tf.cast(self.optimizer.iterations, tf.int64)])
        attacked = fgsm_batch(self.inner, images[keep:], labels[keep:], self.eps, seed)
        mixed = tf.concat([images[:keep], attacked], axis=0)
        return super().train_step((mixed, labels))
