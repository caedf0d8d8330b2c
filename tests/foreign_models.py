"""Models trained elsewhere, made with the real tools: tf-keras (Keras 2) writes the full-model .h5 and the
architecture .json + save_weights .h5 pair, Keras 3 writes the .keras. Each is trained briefly on the fixture's
images scaled the way its "project" did; `scaled(images, scaling)` is that scaling done with the foreign tool
(tf_keras.utils.normalize for the L2 rows), independent of the lab's wrapper layers."""

from __future__ import annotations

from pathlib import Path

import numpy as np

MNIST_MEAN, MNIST_STD = 0.1307, 0.3081


def scaled(images_uint8: np.ndarray, scaling: str) -> np.ndarray:
    """(N, 28, 28) float32 as the foreign project fed its model."""
    import tf_keras

    x = images_uint8.astype(np.float32)
    if scaling == "unit":
        return x / 255.0
    if scaling == "byte":
        return x
    if scaling == "symmetric":
        return x / 127.5 - 1.0
    if scaling == "l2_columns":
        return np.asarray(tf_keras.utils.normalize(x, axis=1), np.float32)  # the tutorials' call on (N, 28, 28)
    if scaling == "l2_image":
        return np.asarray(tf_keras.utils.normalize(x.reshape(len(x), -1), axis=1), np.float32).reshape(x.shape)
    if scaling == "standard":
        return (x / 255.0 - MNIST_MEAN) / MNIST_STD
    raise ValueError(scaling)


def keras2_mlp_h5(folder: Path, mnist, scaling: str = "l2_columns", epochs: int = 5):
    """A tf-keras MLP on (28, 28) input with logits out, saved whole as .h5; returns (path, model)."""
    import tf_keras

    tf_keras.utils.set_random_seed(1)
    model = tf_keras.Sequential([
        tf_keras.layers.Flatten(input_shape=(28, 28)),
        tf_keras.layers.Dense(64, activation="relu", kernel_regularizer=tf_keras.regularizers.l2(1e-5)),
        tf_keras.layers.Dense(10),
    ])
    model.compile("adam", tf_keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(scaled(mnist.x_train, scaling), mnist.y_train, epochs=epochs, batch_size=32, verbose=0)
    path = folder / f"mlp_{scaling}.h5"
    model.save(path)
    return path, model


def keras2_cnn_json(folder: Path, mnist, scaling: str = "symmetric", epochs: int = 4):
    """A tf-keras functional CNN on (28, 28, 1) input with softmax out, saved as to_json() + save_weights();
    returns (json path, weights path, model)."""
    import tf_keras

    tf_keras.utils.set_random_seed(2)
    image = tf_keras.Input((28, 28, 1))
    x = tf_keras.layers.Conv2D(8, 3, activation="relu")(image)
    x = tf_keras.layers.BatchNormalization()(x)
    x = tf_keras.layers.MaxPooling2D()(x)
    x = tf_keras.layers.Flatten()(x)
    out = tf_keras.layers.Dense(10, activation="softmax")(x)
    model = tf_keras.Model(image, out)
    model.compile("adam", "sparse_categorical_crossentropy")
    model.fit(scaled(mnist.x_train, scaling)[..., None], mnist.y_train, epochs=epochs, batch_size=32, verbose=0)
    json_path, weights_path = folder / f"cnn_{scaling}.json", folder / f"cnn_{scaling}_weights.h5"
    json_path.write_text(model.to_json())
    model.save_weights(weights_path)
    return json_path, weights_path, model


def keras3_flat(folder: Path, mnist, scaling: str = "unit", epochs: int = 5):
    """A Keras 3 MLP on flattened (784,) input with softmax out, saved as .keras; returns (path, model)."""
    import keras

    keras.utils.set_random_seed(3)
    model = keras.Sequential([keras.Input((784,)), keras.layers.Dense(64, activation="relu"),
                              keras.layers.Dropout(0.1), keras.layers.Dense(10, activation="softmax")])
    model.compile("adam", "sparse_categorical_crossentropy")
    model.fit(scaled(mnist.x_train, scaling).reshape(-1, 784), mnist.y_train, epochs=epochs, batch_size=32,
              verbose=0)
    path = folder / f"flat_{scaling}.keras"
    model.save(path)
    return path, model


def lambda_payload(folder: Path, marker_env: str):
    """A tf-keras model whose Lambda layer writes the file named by $marker_env when it is built, saved the two
    ways Keras 2 stores a Lambda (marshalled bytecode in the config): a full .h5, and a .json + weights .h5.
    Building it here already runs it once, so the caller points $marker_env elsewhere meanwhile."""
    import tf_keras

    model = tf_keras.Sequential([
        tf_keras.layers.Lambda(lambda x: (open(__import__("os").environ[marker_env], "w").write("ran"), x)[1],
                               input_shape=(28, 28)),
        tf_keras.layers.Flatten(),
        tf_keras.layers.Dense(10),
    ])
    full, architecture, weights = folder / "evil.h5", folder / "evil.json", folder / "evil_weights.h5"
    model.save(full)
    architecture.write_text(model.to_json())
    model.save_weights(weights)
    return full, architecture, weights
