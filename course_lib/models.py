"""The course's models: the seed article's CNN, LeNet-300-100 and LeNet-5.

Introduced in 01_baseline. Every layer has a fixed name, so summaries and per-layer reports
read the same in every run (and under ``# NBVAL_CHECK_OUTPUT``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from course_lib.compat import keras

layers = keras.layers
Shape = tuple[int, ...]


def seed_cnn(
    input_shape: Shape = (28, 28, 1), num_classes: int = 10, logits: bool = False
) -> keras.Model:
    """Build the seed article's CNN: Conv2D(32, 3x3, relu) -> Flatten -> Dense(10, softmax).

    On 28x28x1 inputs it has 216,650 parameters: 320 in the convolution and 216,330 in the
    dense layer, which sees all 26 x 26 x 32 = 21,632 activations. ``logits=True`` leaves out
    the softmax.
    """
    return keras.Sequential(
        [
            keras.Input(shape=input_shape, name="image"),
            layers.Conv2D(32, (3, 3), activation="relu", name="conv"),
            layers.Flatten(name="flatten"),
            layers.Dense(num_classes, activation=None if logits else "softmax", name="dense"),
        ],
        name="seed_cnn",
    )


def lenet_300_100(input_shape: Shape = (28, 28, 1), num_classes: int = 10) -> keras.Model:
    """Build LeNet-300-100: a multilayer perceptron 784-300-100-10 (266,610 parameters).

    The fully connected model of LeCun et al. (1998) used in Deep Compression (Han et al.,
    2016, Table 1).
    """
    return keras.Sequential(
        [
            keras.Input(shape=input_shape, name="image"),
            layers.Flatten(name="flatten"),
            layers.Dense(300, activation="relu", name="fc1"),
            layers.Dense(100, activation="relu", name="fc2"),
            layers.Dense(num_classes, activation="softmax", name="fc3"),
        ],
        name="lenet_300_100",
    )


def lenet_5(input_shape: Shape = (28, 28, 1), num_classes: int = 10) -> keras.Model:
    """Build LeNet-5 as in Caffe's MNIST example (431,080 parameters).

    conv 20 5x5 -> max-pool 2 -> conv 50 5x5 -> max-pool 2 -> dense 500 (relu) -> dense 10.
    Caffe's convolutions have no activation; we add ReLU to them, which changes no
    parameter count and trains more reliably.
    """
    return keras.Sequential(
        [
            keras.Input(shape=input_shape, name="image"),
            layers.Conv2D(20, (5, 5), activation="relu", name="conv1"),
            layers.MaxPooling2D((2, 2), name="pool1"),
            layers.Conv2D(50, (5, 5), activation="relu", name="conv2"),
            layers.MaxPooling2D((2, 2), name="pool2"),
            layers.Flatten(name="flatten"),
            layers.Dense(500, activation="relu", name="fc1"),
            layers.Dense(num_classes, activation="softmax", name="fc2"),
        ],
        name="lenet_5",
    )


def _head(num_classes: int, logits: bool, name: str = "dense") -> keras.layers.Layer:
    return layers.Dense(num_classes, activation=None if logits else "softmax", name=name)


def seed_cnn_pooled(
    input_shape: Shape = (28, 28, 1), num_classes: int = 10, logits: bool = False
) -> keras.Model:
    """The seed CNN with a 2x2 max-pool before Flatten: 4x fewer dense connections.

    Introduced in 05_structure.
    """
    return keras.Sequential(
        [
            keras.Input(shape=input_shape, name="image"),
            layers.Conv2D(32, (3, 3), activation="relu", name="conv"),
            layers.MaxPooling2D(2, name="pool"),
            layers.Flatten(name="flatten"),
            _head(num_classes, logits),
        ],
        name="seed_cnn_pooled",
    )


def seed_cnn_gap(
    input_shape: Shape = (28, 28, 1), num_classes: int = 10, logits: bool = False
) -> keras.Model:
    """The seed CNN with global average pooling instead of Flatten: 320 dense weights.

    Introduced in 05_structure, where it shows what removing almost every connection costs.
    """
    return keras.Sequential(
        [
            keras.Input(shape=input_shape, name="image"),
            layers.Conv2D(32, (3, 3), activation="relu", name="conv"),
            layers.GlobalAveragePooling2D(name="gap"),
            _head(num_classes, logits),
        ],
        name="seed_cnn_gap",
    )


def strided_cnn(
    input_shape: Shape = (28, 28, 1), num_classes: int = 10, logits: bool = False
) -> keras.Model:
    """Conv2D(8, 3x3, stride 2) -> Flatten -> Dense(10): 25,688 MACs, 16x fewer than the seed.

    Introduced in 05_structure. The stride computes a quarter of the output positions.
    """
    return keras.Sequential(
        [
            keras.Input(shape=input_shape, name="image"),
            layers.Conv2D(8, 3, strides=2, activation="relu", name="conv"),
            layers.Flatten(name="flatten"),
            _head(num_classes, logits),
        ],
        name="strided_cnn",
    )


def two_conv_cnn(
    input_shape: Shape = (28, 28, 1), num_classes: int = 10, logits: bool = False
) -> keras.Model:
    """Two stride-2 convolutions (4 and 16 filters) -> Dense(10): 32,580 MACs.

    Introduced in 05_structure. Depth instead of width: the second convolution sees 7x7
    pixels of the image at a quarter of the first one's positions.
    """
    return keras.Sequential(
        [
            keras.Input(shape=input_shape, name="image"),
            layers.Conv2D(4, 3, strides=2, activation="relu", name="conv1"),
            layers.Conv2D(16, 3, strides=2, activation="relu", name="conv2"),
            layers.Flatten(name="flatten"),
            _head(num_classes, logits),
        ],
        name="two_conv_cnn",
    )


def separable_cnn(
    input_shape: Shape = (28, 28, 1), num_classes: int = 10, logits: bool = False
) -> keras.Model:
    """Conv2D(8, stride 2) -> SeparableConv2D(16, stride 2) -> Dense(10): 25,128 MACs.

    Introduced in 05_structure. A depthwise-separable convolution filters each channel on its
    own (3x3) and then mixes channels with a 1x1 convolution, instead of doing both at once.
    """
    return keras.Sequential(
        [
            keras.Input(shape=input_shape, name="image"),
            layers.Conv2D(8, 3, strides=2, activation="relu", name="conv1"),
            layers.SeparableConv2D(16, 3, strides=2, activation="relu", name="sepconv2"),
            layers.Flatten(name="flatten"),
            _head(num_classes, logits),
        ],
        name="separable_cnn",
    )


def wide_cnn(
    input_shape: Shape = (28, 28, 1), num_classes: int = 10, logits: bool = False
) -> keras.Model:
    """A VGG-style CNN where compute dominates: 4 convolutions (32, 32, 64, 64), 18.7 M MACs.

    Introduced in 06_mixed_precision, where the seed CNN is too small for arithmetic speed to
    matter.
    """
    return keras.Sequential(
        [
            keras.Input(shape=input_shape, name="image"),
            layers.Conv2D(32, 3, padding="same", activation="relu", name="conv1"),
            layers.Conv2D(32, 3, padding="same", activation="relu", name="conv2"),
            layers.MaxPooling2D(2, name="pool1"),
            layers.Conv2D(64, 3, padding="same", activation="relu", name="conv3"),
            layers.Conv2D(64, 3, padding="same", activation="relu", name="conv4"),
            layers.MaxPooling2D(2, name="pool2"),
            layers.Flatten(name="flatten"),
            layers.Dense(128, activation="relu", name="fc1"),
            _head(num_classes, logits, name="fc2"),
        ],
        name="wide_cnn",
    )


def with_softmax(model: keras.Model, dtype: str | None = None) -> keras.Model:
    """Append a softmax to a model that outputs logits (e.g. a distilled student).

    ``dtype="float32"`` keeps the softmax in float32 under a mixed-precision policy.
    """
    return keras.Sequential(
        [
            keras.Input(shape=model.input_shape[1:], name="image"),
            *model.layers,
            layers.Softmax(name="softmax", dtype=dtype),
        ],
        name=f"{model.name}_softmax",
    )


def xnnpack_sparse_cnn(
    input_shape: Shape = (28, 28, 1), num_classes: int = 10, width: int = 64
) -> keras.Model:
    """Build a small MobileNet-style CNN shaped for XNNPACK's sparse inference.

    Introduced in 02_pruning. XNNPACK can run pruned 1x1 convolutions with sparse kernels
    only inside a subgraph that starts with a 3x3 stride-2 convolution on 3 channels, padded
    by 1 on each side, contains only 1x1 convolutions, 3x3 depthwise convolutions and
    element-wise ops, and ends in a global average pool (see the "Sparse Inference" section
    of the TFLite XNNPACK delegate README). tfmot's ``PruneForLatencyOnXNNPack`` checks for
    exactly this shape. A grey MNIST image is repeated to 3 channels to fit it.
    """
    image = keras.Input(shape=input_shape, name="image")
    x = layers.Concatenate(name="to_rgb")([image] * (3 // input_shape[-1]))
    x = layers.ZeroPadding2D(1, name="pad")(x)
    x = layers.Conv2D(32, 3, strides=2, activation="relu", name="stem")(x)
    for i, filters in enumerate((width, width, width), start=1):
        x = layers.DepthwiseConv2D(3, padding="same", activation="relu", name=f"dw{i}")(x)
        x = layers.Conv2D(filters, 1, activation="relu", name=f"pw{i}")(x)
    x = layers.GlobalAveragePooling2D(keepdims=True, name="pool")(x)
    x = layers.Flatten(name="flatten")(x)
    outputs = layers.Dense(num_classes, activation="softmax", name="dense")(x)
    return keras.Model(image, outputs, name="xnnpack_sparse_cnn")


MODELS: dict[str, Callable[..., keras.Model]] = {
    "seed_cnn": seed_cnn,
    "lenet_300_100": lenet_300_100,
    "lenet_5": lenet_5,
    "xnnpack_sparse_cnn": xnnpack_sparse_cnn,
    "seed_cnn_pooled": seed_cnn_pooled,
    "seed_cnn_gap": seed_cnn_gap,
    "strided_cnn": strided_cnn,
    "two_conv_cnn": two_conv_cnn,
    "separable_cnn": separable_cnn,
    "wide_cnn": wide_cnn,
}
"""Model builders by name; :func:`build_model` looks names up here."""


def build_model(
    name: str, input_shape: Shape = (28, 28, 1), num_classes: int = 10, **options: Any
) -> keras.Model:
    """Build a fresh, untrained model by name.

    ``options`` go to the builder, e.g. ``logits=True`` for the chapter 05 architectures.

    Raises:
        ValueError: unknown name (the message lists the known ones).
    """
    if name not in MODELS:
        raise ValueError(f"Unknown model {name!r}. Known models: {', '.join(sorted(MODELS))}.")
    return MODELS[name](input_shape=input_shape, num_classes=num_classes, **options)
