"""Look inside a saved model: per-layer activations, conv filters, feature maps, first-layer templates,
saliency and Grad-CAM, nearest training images and a 2-D map of the penultimate-layer embedding.

`Inspector` builds its helper models and traced functions once per model, so each new input costs a few
forward/backward passes (milliseconds), not a rebuild. Every input is a float32 (28, 28) in [0, 1], ink bright.
"""

from __future__ import annotations

from dataclasses import dataclass

import keras
import numpy as np
import tensorflow as tf
from scipy import ndimage

from mnist_core import data as mnist_data
from mnist_core.evaluate import EVAL_BATCH

POOL_TYPES = ("MaxPooling2D", "AveragePooling2D")
MAP_TYPES = ("Activation", *POOL_TYPES)  # the feature maps the next layer actually sees (after BN and activation)
SIGNATURE = [tf.TensorSpec([None, 28, 28, 1], tf.float32)]


def _batch(input28: np.ndarray) -> np.ndarray:
    x = np.asarray(input28, dtype=np.float32)
    if x.shape != (28, 28):
        raise ValueError(f"expected a (28, 28) input, got {x.shape}")
    return x.reshape(1, 28, 28, 1)


def unit_scale(a: np.ndarray) -> np.ndarray:
    """Scale to [0, 1] for display (a constant map becomes all zeros)."""
    a = np.asarray(a, dtype=np.float32)
    lo, hi = float(a.min(initial=0.0)), float(a.max(initial=0.0))
    return (a - lo) / (hi - lo) if hi > lo else np.zeros_like(a)


@dataclass
class Neighbours:
    indices: np.ndarray  # into the training set
    labels: np.ndarray
    distances: np.ndarray


@dataclass
class EmbeddingMap:
    """A PCA of the penultimate-layer embedding of some test images."""

    mean: np.ndarray  # (D,)
    components: np.ndarray  # (2, D)
    coords: np.ndarray  # (N, 2)
    indices: np.ndarray  # into the test set
    labels: np.ndarray
    predicted: np.ndarray
    explained: np.ndarray  # share of the variance each axis explains

    def project(self, embedding: np.ndarray) -> np.ndarray:
        return (np.asarray(embedding, dtype=np.float32) - self.mean) @ self.components.T


class Inspector:
    """Everything the Inspect page computes for one model."""

    def __init__(self, model: keras.Model):
        self.model = model
        self.layers = [layer for layer in model.layers if not isinstance(layer, keras.layers.InputLayer)]
        self.kind = "cnn" if any(isinstance(layer, keras.layers.Conv2D) for layer in self.layers) else "mlp"
        outputs = [layer.output for layer in self.layers]
        every = keras.Model(model.inputs, outputs)
        self._every = tf.function(lambda x: every(x, training=False), input_signature=SIGNATURE)
        # The class scores before softmax: gradients of a saturated softmax vanish for confident predictions.
        head = self.layers[-1]
        self._embed_model = keras.Model(model.inputs, head.input)
        self._head_kernel, self._head_bias = (head.kernel, head.bias) if isinstance(head, keras.layers.Dense) else (None, None)
        self._embed = tf.function(lambda x: self._embed_model(x, training=False), input_signature=SIGNATURE)
        self._saliency = tf.function(self._saliency_graph, input_signature=[*SIGNATURE, tf.TensorSpec([], tf.int32)])
        self.cam_layer = self._cam_layer()
        if self.cam_layer is not None:
            cam_model = keras.Model(model.inputs, [model.get_layer(self.cam_layer).output, head.input])
            self._cam_model = cam_model
            self._cam = tf.function(self._cam_graph, input_signature=[*SIGNATURE, tf.TensorSpec([], tf.int32)])

    # ---------- scores ----------

    def _scores(self, embedding):
        if self._head_kernel is None:
            return tf.math.log(self.model.layers[-1](embedding) + 1e-7)
        return tf.matmul(embedding, self._head_kernel) + self._head_bias

    def _saliency_graph(self, x, cls):
        with tf.GradientTape() as tape:
            tape.watch(x)
            score = self._scores(self._embed_model(x, training=False))[:, cls]
        return tape.gradient(score, x)

    def _cam_graph(self, x, cls):
        with tf.GradientTape() as tape:
            maps, embedding = self._cam_model(x, training=False)
            score = self._scores(embedding)[:, cls]
        return maps, tape.gradient(score, maps)

    def _cam_layer(self) -> str | None:
        """The last convolutional feature map (after its activation), as Grad-CAM prescribes."""
        name = None
        for layer in self.layers:
            if len(layer.output.shape) == 4 and type(layer).__name__ not in (*POOL_TYPES, "Dropout", "BatchNormalization"):
                name = layer.name
        return name

    # ---------- per input ----------

    def activations(self, input28: np.ndarray) -> dict[str, np.ndarray]:
        """Layer name -> this input's output of that layer (batch axis removed)."""
        outs = self._every(_batch(input28))
        outs = outs if isinstance(outs, (list, tuple)) else [outs]
        return {layer.name: np.asarray(o)[0] for layer, o in zip(self.layers, outs, strict=True)}

    def layer_table(self, acts: dict[str, np.ndarray]) -> list[dict]:
        rows = []
        for layer in self.layers:
            a = acts[layer.name]
            rows.append({
                "layer": layer.name,
                "type": type(layer).__name__,
                "output shape": str(tuple(a.shape)),
                "parameters": int(layer.count_params()),
                "mean": float(a.mean()),
                "std": float(a.std()),
                "max": float(a.max()),
                "zero %": float((a == 0).mean() * 100),  # ReLU units silent for this input
            })
        return rows

    def feature_maps(self, acts: dict[str, np.ndarray]) -> list[tuple[str, np.ndarray]]:
        """(layer name, (channels, H, W)) for each conv block's activation and pooling output."""
        found = []
        for layer in self.layers:
            a = acts[layer.name]
            if a.ndim == 3 and (type(layer).__name__ in MAP_TYPES or
                                (isinstance(layer, keras.layers.Conv2D) and layer.activation is not keras.activations.linear)):
                found.append((layer.name, np.moveaxis(a, -1, 0)))
        return found

    def conv_filters(self) -> list[tuple[str, np.ndarray]]:
        """(layer name, (filters, kh, kw)): each filter's kernel, averaged over its input channels
        (exact for the first layer, which has one input channel)."""
        found = []
        for layer in self.layers:
            if isinstance(layer, keras.layers.Conv2D):
                kernel = np.asarray(layer.kernel)  # (kh, kw, in, out)
                found.append((layer.name, np.moveaxis(kernel.mean(axis=2), -1, 0)))
        return found

    def first_dense_templates(self, acts: dict[str, np.ndarray], count: int = 16) -> list[tuple[int, float, np.ndarray]]:
        """MLPs: (unit, activation, 28x28 weights) of the first dense layer's `count` most active units for this input."""
        dense = next((layer for layer in self.layers if isinstance(layer, keras.layers.Dense)), None)
        if dense is None or self.kind != "mlp" or dense.kernel.shape[0] != 784:
            return []
        kernel = np.asarray(dense.kernel)  # (784, units): the flatten order is row-major over the 28x28 image
        response = acts[dense.name]
        top = np.argsort(-response)[:count]
        return [(int(u), float(response[u]), kernel[:, u].reshape(28, 28)) for u in top]

    def class_scores(self, input28: np.ndarray) -> np.ndarray:
        """The ten class scores before softmax (logits)."""
        return np.asarray(self._scores(self._embed(_batch(input28))))[0]

    def gradient(self, input28: np.ndarray, cls: int) -> np.ndarray:
        """d score(cls) / d pixel, (28, 28)."""
        return np.asarray(self._saliency(tf.constant(_batch(input28)), tf.constant(int(cls), tf.int32)))[0, ..., 0]

    def saliency(self, input28: np.ndarray, cls: int) -> np.ndarray:
        """|gradient| scaled to [0, 1]: which pixels would change the class score most.

        Plain gradients, not SmoothGrad: on MNIST the added noise spread the map off the ink here.
        """
        return unit_scale(np.abs(self.gradient(input28, cls)))

    def grad_cam(self, input28: np.ndarray, cls: int) -> np.ndarray | None:
        """Grad-CAM heatmap (28, 28) in [0, 1] from the last conv feature map; None for MLPs."""
        if self.cam_layer is None:
            return None
        maps, grads = self._cam(tf.constant(_batch(input28)), tf.constant(int(cls), tf.int32))
        maps, grads = np.asarray(maps)[0], np.asarray(grads)[0]
        weights = grads.mean(axis=(0, 1))  # one weight per channel
        cam = np.maximum((maps * weights).sum(axis=-1), 0.0)
        cam = ndimage.zoom(cam, (28 / cam.shape[0], 28 / cam.shape[1]), order=1)[:28, :28]
        return unit_scale(cam)

    # ---------- embedding ----------

    def embed(self, images: np.ndarray, batch_size: int = EVAL_BATCH) -> np.ndarray:
        """Penultimate-layer vectors for uint8 (N, 28, 28) images or one float (28, 28) input."""
        images = np.asarray(images)
        if images.dtype != np.uint8:
            return np.asarray(self._embed(_batch(images)))
        # Normalised a batch at a time, as evaluate does: 10,000 images at once would be 31 MB more at the peak.
        out = [np.asarray(self._embed(mnist_data.normalise(images[i : i + batch_size])))
               for i in range(0, len(images), batch_size)]
        return np.concatenate(out) if out else np.zeros((0, int(self._embed_model.output.shape[-1])), np.float32)


class NeighbourIndex:
    """Nearest training images by Euclidean distance in the penultimate-layer embedding."""

    def __init__(self, embeddings: np.ndarray, labels: np.ndarray, indices: np.ndarray):
        self.embeddings = np.asarray(embeddings, dtype=np.float64)  # float32 cancels badly in |a|^2 - 2ab + |b|^2
        self.sq_norms = (self.embeddings**2).sum(axis=1)
        self.labels, self.indices = np.asarray(labels), np.asarray(indices)

    @classmethod
    def build(cls, inspector: Inspector, x_train: np.ndarray, y_train: np.ndarray, size: int = 10000,
              seed: int = 0) -> NeighbourIndex:
        """Index a seeded sample of `size` training images (all of them if size >= the set)."""
        n = len(x_train)
        idx = np.arange(n) if size >= n else np.sort(np.random.default_rng(seed).choice(n, size, replace=False))
        return cls(inspector.embed(x_train[idx]), y_train[idx], idx)

    def query(self, embedding: np.ndarray, k: int = 8) -> Neighbours:
        e = np.asarray(embedding, dtype=np.float64).reshape(-1)
        d2 = np.maximum(self.sq_norms - 2 * self.embeddings @ e + e @ e, 0.0)
        k = min(k, len(d2))
        top = np.argpartition(d2, k - 1)[:k]
        top = top[np.argsort(d2[top])]
        return Neighbours(self.indices[top], self.labels[top], np.sqrt(d2[top]))


def pca(vectors: np.ndarray, components: int = 2) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(mean, components (k, D), explained variance share (k,)) by SVD of the centred data."""
    v = np.asarray(vectors, dtype=np.float64)
    mean = v.mean(axis=0)
    _, s, vt = np.linalg.svd(v - mean, full_matrices=False)
    var = s**2
    share = var[:components] / var.sum() if var.sum() > 0 else np.zeros(components)
    # Fix each axis's sign so the same model always draws the same picture.
    top = vt[:components]
    signs = np.sign(top[np.arange(len(top)), np.abs(top).argmax(axis=1)])
    return mean.astype(np.float32), (top * signs[:, None]).astype(np.float32), share


def embedding_map(inspector: Inspector, x_test: np.ndarray, y_test: np.ndarray, size: int = 3000,
                  seed: int = 0) -> EmbeddingMap:
    """Project a seeded sample of `size` test images' embeddings onto their first two principal axes."""
    n = len(x_test)
    idx = np.arange(n) if size >= n else np.sort(np.random.default_rng(seed).choice(n, size, replace=False))
    vectors = inspector.embed(x_test[idx])
    mean, comps, share = pca(vectors)
    predicted = np.asarray(inspector.model.layers[-1](vectors)).argmax(axis=1)
    coords = (vectors - mean) @ comps.T
    return EmbeddingMap(mean, comps, coords, idx, np.asarray(y_test[idx]), predicted, share)


def tint(input28: np.ndarray, heat: np.ndarray, scale: int = 8) -> np.ndarray:
    """RGB uint8 image: the input in gray with `heat` ([0, 1]) laid over it in red-yellow, enlarged for display."""
    gray = np.asarray(input28, dtype=np.float32) * 0.55
    heat = np.asarray(heat, dtype=np.float32)
    rgb = np.stack([np.clip(gray + heat, 0, 1), np.clip(gray + np.maximum(heat - 0.5, 0) * 2, 0, 1),
                    gray * (1 - heat)], axis=-1)
    big = np.kron(rgb, np.ones((scale, scale, 1), np.float32))
    return (big * 255).round().astype(np.uint8)


def mosaic(tiles: np.ndarray, cols: int | None = None, scale: int = 2, gap: int = 1) -> np.ndarray:
    """(N, H, W) tiles in [0, 1] -> one uint8 image of full rows (by default 8 to 16 tiles a row, dividing N when
    possible), each tile enlarged `scale` times, grey lines between them.

    One small PNG for a whole layer's maps is far lighter to send to the browser than a chart per map.
    """
    tiles = np.asarray(tiles, dtype=np.float32)
    n, h, w = tiles.shape
    cols = cols or next((c for c in range(16, 7, -1) if n % c == 0), min(n, 16))
    cols = max(1, min(cols, n))
    rows = -(-n // cols)
    th, tw = h * scale + gap, w * scale + gap
    out = np.zeros((rows * th + gap, cols * tw + gap), np.float32)
    out[::th, :] = out[:, ::tw] = 0.35  # grid lines
    for i, tile in enumerate(tiles):
        r, c = divmod(i, cols)
        out[gap + r * th : gap + r * th + h * scale, gap + c * tw : gap + c * tw + w * scale] = np.kron(
            np.clip(tile, 0, 1), np.ones((scale, scale), np.float32))
    return (out * 255).round().astype(np.uint8)
