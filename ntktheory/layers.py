"""Architectures as data: one description for the infinite-width kernels and the finite network.

Each layer is a frozen, keyword-only dataclass that only *describes* a piece of network: it is
validated at construction and knows its output shape (:meth:`Layer.out_shape`), but it runs no
numerics and imports neither torch nor numba. Two packages interpret the same description:
:func:`ntktheory.kernels` maps kernels through it (``architecture=``), and ``empirical.build``
turns it into a torch module with exactly the same conventions.

Conventions (those of neural-tangents' ``stax`` for the same layers):

* Inputs are flat ``(N, d)`` or images ``(N, C, H, W)`` (NCHW, as in torch).
* ``Dense(features)``: ``h = (sigma_w / sqrt(fan_in)) W z + sigma_b b`` with W, b ~ N(0, 1) in the
  NTK parameterisation (fan_in = the input's feature count); flat inputs only.
* ``Conv(channels, kernel_size)``: ``h = (sigma_w / sqrt(C_in k_h k_w)) W * z + sigma_b b``, shared
  weights, zero padding for ``"same"`` (jax's split: the extra row/column of an even total padding
  goes to the bottom/right), no padding for ``"valid"``.
* ``AvgPool(window)``: mean over each window (stride defaults to the window, ``"valid"`` padding).
* ``GlobalAvgPool()``: mean over all positions; ``Flatten()``: C H W features (a following Dense has
  fan_in C H W, so its kernel averages the per-position diagonal).
* ``LayerNorm()``: ``(h - mean_c h) / std_c(h)`` over the channels at each position (over the
  features of a flat input), no affine parameters.
* ``Activation(phi)``: any activation ``ntktheory.activations.get_activation`` accepts.
* ``Residual(branch)``: ``z + branch(z)``; the branch must end in a weighted layer (Dense or Conv,
  optionally followed by pooling or LayerNorm) so that its output is independent of the shortcut.
* ``Repeat(block, times=n)``: the block applied n times, each with its own weights.

An Activation or a LayerNorm needs a Gaussian input: the output of Dense, Conv, a pooling of those,
a LayerNorm of those, or a Residual whose both branches are Gaussian. The raw input is not
Gaussian, nor is an Activation's output. :func:`check` walks the whole network for a given input
shape and raises errors that name the layer.

Examples
--------
>>> from ntktheory import layers as L
>>> arch = L.serial(
...     L.Conv(channels=8, kernel_size=3, sigma_w=1.5, sigma_b=0.1),
...     L.Activation("relu"),
...     L.AvgPool(window=2),
...     L.GlobalAvgPool(),
...     L.Dense(features=1, sigma_w=1.5),
... )
>>> arch.out_shape((1, 8, 8))
(1,)
>>> [str(s) for s in L.shapes(arch, (1, 8, 8))]
['(1, 8, 8)', '(8, 8, 8)', '(8, 8, 8)', '(8, 4, 4)', '(8,)', '(1,)']
"""

from __future__ import annotations

import dataclasses
import numbers
from collections.abc import Iterator, Mapping, Sequence
from typing import ClassVar

from ._validate import check_int, check_nonnegative, check_positive
from .activations import Activation as _ActivationFunction
from .activations import ActivationSpec, get_activation

__all__ = [
    "PADDINGS",
    "PRESETS",
    "Activation",
    "AvgPool",
    "Conv",
    "Dense",
    "Flatten",
    "GlobalAvgPool",
    "Layer",
    "LayerNorm",
    "Repeat",
    "Residual",
    "Serial",
    "as_shape",
    "check",
    "cnn",
    "from_spec",
    "mlp",
    "preset",
    "same_padding",
    "serial",
    "shapes",
    "walk",
]

#: A shape without the batch axis: (features,) or (channels, height, width); None for a width
#: left unspecified (``Dense(features=None)``, ``Conv(channels=None)``).
Shape = tuple[int | None, ...]
PADDINGS = ("same", "valid")


class ArchitectureError(ValueError):
    """An architecture that cannot be applied to the given input (message names the layer)."""


# ---------------------------------------------------------------------- helpers
def _pair(name: str, value: object, minimum: int = 1) -> tuple[int, int]:
    """An int or a pair of ints (>= minimum), as a pair."""
    if isinstance(value, Sequence) and not isinstance(value, str):
        if len(value) != 2:
            raise ValueError(f"`{name}` must be an integer or a pair of integers; got {value!r}.")
        return (check_int(name, value[0], minimum=minimum), check_int(name, value[1], minimum=minimum))
    v = check_int(name, value, minimum=minimum)
    return (v, v)


def _features(name: str, value: object) -> int | None:
    return None if value is None else check_int(name, value, minimum=1)


def _fmt_pair(p: tuple[int, int]) -> str:
    return str(p[0]) if p[0] == p[1] else f"({p[0]}, {p[1]})"


def same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """(before, after) zero padding of ``"same"`` along one axis, split as jax and stax do.

    The output has ceil(size / stride) positions; the total padding is
    max((out - 1) stride + kernel - size, 0), with the extra one (odd totals) after.

    Examples
    --------
    >>> same_padding(8, 3, 1), same_padding(8, 4, 1), same_padding(8, 3, 2)
    ((1, 1), (1, 2), (0, 1))
    """
    out = -(-size // stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


def _is_image(shape: Shape) -> bool:
    return len(shape) == 3


# ---------------------------------------------------------------------- base class
@dataclasses.dataclass(frozen=True)
class Layer:
    """Base class of the layer descriptions.

    Subclasses define :meth:`out_shape` and declare whether they hold weights (``weighted``),
    produce a Gaussian output from a Gaussian input (``preserves_gaussian``) or from any input
    (``makes_gaussian``), and whether they need a Gaussian input (``needs_gaussian``).
    """

    weighted: ClassVar[bool] = False
    makes_gaussian: ClassVar[bool] = False
    preserves_gaussian: ClassVar[bool] = True
    needs_gaussian: ClassVar[bool] = False

    def out_shape(self, in_shape: Shape) -> Shape:
        """The output shape (without the batch axis) for an input of shape ``in_shape``."""
        raise NotImplementedError

    def describe(self) -> str:
        """A short one-line description, as used in error messages."""
        fields = []
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if value == f.default:
                continue
            text = _fmt_pair(value) if isinstance(value, tuple) and len(value) == 2 else repr(value)
            fields.append(f"{f.name}={text}")
        return f"{type(self).__name__}({', '.join(fields)})"

    def __repr__(self) -> str:
        return self.describe()

    def __deepcopy__(self, memo: dict) -> Layer:
        return self  # immutable description (its Activation may cache a compiled numba module)

    def output_gaussian(self, input_gaussian: bool) -> bool:
        """Whether the output is Gaussian (at infinite width) given whether the input is."""
        if self.makes_gaussian:
            return True
        return input_gaussian and self.preserves_gaussian

    def needs_gaussian_first(self) -> bool:
        """Whether the first primitive layer needs a Gaussian input."""
        return self.needs_gaussian


def _flat_only(layer: Layer, in_shape: Shape) -> None:
    if _is_image(in_shape):
        raise ArchitectureError(
            f"{layer.describe()} needs a flat input (features,), got an image of shape {in_shape!r}; "
            "put Flatten() or GlobalAvgPool() before it, or use Conv(kernel_size=1) to act on the channels."
        )


def _image_only(layer: Layer, in_shape: Shape) -> None:
    if not _is_image(in_shape):
        raise ArchitectureError(
            f"{layer.describe()} needs an image input (channels, height, width), got a flat input of shape "
            f"{in_shape!r}; it must come before Flatten() / GlobalAvgPool(), and the data must be images "
            "(N, C, H, W)."
        )


# ---------------------------------------------------------------------- weighted layers
@dataclasses.dataclass(frozen=True, kw_only=True, repr=False)
class Dense(Layer):
    """Fully-connected layer ``h = (sigma_w / sqrt(fan_in)) W z + sigma_b b`` on flat inputs.

    Parameters
    ----------
    features
        Output width. None leaves it unspecified: enough for the infinite-width kernels in the NTK
        parameterisation; the standard parameterisation (whose NTK grows with the width) and
        ``empirical.build`` need a number.
    sigma_w, sigma_b
        Weight (> 0) and bias (>= 0) standard deviations.
    """

    features: int | None = None
    sigma_w: float = 1.0
    sigma_b: float = 0.0
    weighted: ClassVar[bool] = True
    makes_gaussian: ClassVar[bool] = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "features", _features("features", self.features))
        object.__setattr__(self, "sigma_w", check_positive("sigma_w", self.sigma_w))
        object.__setattr__(self, "sigma_b", check_nonnegative("sigma_b", self.sigma_b))

    def out_shape(self, in_shape: Shape) -> Shape:
        _flat_only(self, in_shape)
        return (self.features,)


@dataclasses.dataclass(frozen=True, kw_only=True, repr=False)
class Conv(Layer):
    """2-D convolution with shared weights, ``h = (sigma_w / sqrt(C_in k_h k_w)) W * z + sigma_b b``.

    Parameters
    ----------
    channels
        Output channels (None: unspecified, as for :class:`Dense` ``features``).
    kernel_size
        Filter size k or (k_h, k_w).
    stride
        Stride s or (s_h, s_w).
    padding
        ``"same"`` (zero padding, ceil(H / s) output rows; jax's split of odd totals) or ``"valid"``.
    sigma_w, sigma_b
        Weight (> 0) and bias (>= 0) standard deviations.
    """

    channels: int | None = None
    kernel_size: int | tuple[int, int] = 3
    stride: int | tuple[int, int] = 1
    padding: str = "same"
    sigma_w: float = 1.0
    sigma_b: float = 0.0
    weighted: ClassVar[bool] = True
    makes_gaussian: ClassVar[bool] = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "channels", _features("channels", self.channels))
        object.__setattr__(self, "kernel_size", _pair("kernel_size", self.kernel_size))
        object.__setattr__(self, "stride", _pair("stride", self.stride))
        if not isinstance(self.padding, str) or self.padding.lower() not in PADDINGS:
            raise ValueError(f"`padding` must be one of 'same', 'valid'; got {self.padding!r}.")
        object.__setattr__(self, "padding", self.padding.lower())
        object.__setattr__(self, "sigma_w", check_positive("sigma_w", self.sigma_w))
        object.__setattr__(self, "sigma_b", check_nonnegative("sigma_b", self.sigma_b))

    def padding_amounts(self, in_shape: Shape) -> tuple[tuple[int, int], tuple[int, int]]:
        """((top, bottom), (left, right)) zero padding for an input of shape (C, H, W)."""
        if self.padding == "valid":
            return (0, 0), (0, 0)
        return tuple(same_padding(n, k, s) for n, k, s in zip(in_shape[1:], self.kernel_size, self.stride))

    def out_shape(self, in_shape: Shape) -> Shape:
        _image_only(self, in_shape)
        (pt, pb), (pl, pr) = self.padding_amounts(in_shape)
        sizes = (in_shape[1] + pt + pb, in_shape[2] + pl + pr)
        for axis, n, k in zip(("height", "width"), sizes, self.kernel_size):
            if n < k:
                raise ArchitectureError(
                    f"{self.describe()} gets an image of {in_shape[1]}x{in_shape[2]} positions, whose {axis} "
                    f"({n}) is smaller than the {self.kernel_size[0]}x{self.kernel_size[1]} kernel; use "
                    "padding='same', a smaller kernel_size, or fewer shrinking layers before it."
                )
        out = tuple((n - k) // s + 1 for n, k, s in zip(sizes, self.kernel_size, self.stride))
        return (self.channels, *out)


# ---------------------------------------------------------------------- parameter-free layers
@dataclasses.dataclass(frozen=True, kw_only=True, repr=False)
class AvgPool(Layer):
    """Average pooling over windows (``"valid"`` padding).

    Parameters
    ----------
    window
        Window size w or (w_h, w_w).
    stride
        Stride; defaults to the window (non-overlapping windows).
    """

    window: int | tuple[int, int] = 2
    stride: int | tuple[int, int] | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "window", _pair("window", self.window))
        stride = self.window if self.stride is None else self.stride
        object.__setattr__(self, "stride", _pair("stride", stride))

    def describe(self) -> str:
        extra = "" if self.stride == self.window else f", stride={_fmt_pair(self.stride)}"
        return f"AvgPool(window={_fmt_pair(self.window)}{extra})"

    def out_shape(self, in_shape: Shape) -> Shape:
        _image_only(self, in_shape)
        for axis, n, w in zip(("height", "width"), in_shape[1:], self.window):
            if n < w:
                raise ArchitectureError(
                    f"{self.describe()} gets an image of {in_shape[1]}x{in_shape[2]} positions, whose {axis} "
                    f"({n}) is smaller than its window; use a smaller window or pool earlier."
                )
        out = tuple((n - w) // s + 1 for n, w, s in zip(in_shape[1:], self.window, self.stride))
        return (in_shape[0], *out)


@dataclasses.dataclass(frozen=True, repr=False)
class GlobalAvgPool(Layer):
    """Mean over all spatial positions: (C, H, W) -> (C,)."""

    def out_shape(self, in_shape: Shape) -> Shape:
        _image_only(self, in_shape)
        return (in_shape[0],)


@dataclasses.dataclass(frozen=True, repr=False)
class Flatten(Layer):
    """(C, H, W) -> (C H W,), in torch's (C, H, W) order."""

    def out_shape(self, in_shape: Shape) -> Shape:
        if not _is_image(in_shape):
            raise ArchitectureError(
                f"Flatten() gets a flat input of shape {in_shape!r}: the representation is flat already "
                "(a second Flatten, or Flatten after GlobalAvgPool?); remove it."
            )
        c, h, w = in_shape
        return (None if c is None else c * h * w,)


@dataclasses.dataclass(frozen=True, repr=False)
class LayerNorm(Layer):
    """Normalisation over the channels at each position (features of flat inputs), no affine."""

    needs_gaussian: ClassVar[bool] = True

    def out_shape(self, in_shape: Shape) -> Shape:
        return in_shape


@dataclasses.dataclass(frozen=True, repr=False)
class Activation(Layer):
    """An elementwise nonlinearity: a registry name, an Activation object or an expression in x.

    Examples
    --------
    >>> Activation("x*tanh(x)").function.name
    'x*tanh(x)'
    """

    activation: ActivationSpec = "relu"
    needs_gaussian: ClassVar[bool] = True
    preserves_gaussian: ClassVar[bool] = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "activation", get_activation(self.activation))

    @property
    def function(self) -> _ActivationFunction:
        """The resolved :class:`ntktheory.activations.Activation`."""
        return self.activation

    def describe(self) -> str:
        act = self.activation
        params = ", ".join(f"{k}={v!r}" for k, v in act.params)
        return f"Activation({act.name!r}{', ' + params if params else ''})"

    def out_shape(self, in_shape: Shape) -> Shape:
        return in_shape


# ---------------------------------------------------------------------- combinators
@dataclasses.dataclass(frozen=True, repr=False)
class Serial(Layer):
    """Layers applied one after the other (build with :func:`serial`)."""

    layers: tuple[Layer, ...] = ()

    def __post_init__(self) -> None:
        flat: list[Layer] = []
        for i, layer in enumerate(self.layers):
            if not isinstance(layer, Layer):
                raise TypeError(
                    f"serial: element {i} must be a layer from ntktheory.layers; got {layer!r} of type "
                    f"{type(layer).__name__}."
                )
            flat.extend(layer.layers if isinstance(layer, Serial) else (layer,))
        object.__setattr__(self, "layers", tuple(flat))
        for prev, layer in zip(self.layers, self.layers[1:]):
            if layer.needs_gaussian and isinstance(prev, Activation):
                raise ArchitectureError(
                    f"{layer.describe()} follows {prev.describe()}, whose output is not Gaussian; "
                    f"put a Dense or Conv between them."
                )

    @property
    def weighted(self) -> bool:  # type: ignore[override]
        return any(layer.weighted for layer in self.layers)

    def describe(self) -> str:
        return f"serial({', '.join(layer.describe() for layer in self.layers)})"

    def out_shape(self, in_shape: Shape) -> Shape:
        shape = in_shape
        for layer in self.layers:
            shape = layer.out_shape(shape)
        return shape

    def output_gaussian(self, input_gaussian: bool) -> bool:
        g = input_gaussian
        for layer in self.layers:
            g = layer.output_gaussian(g)
        return g

    def needs_gaussian_first(self) -> bool:
        return bool(self.layers) and self.layers[0].needs_gaussian_first()


def serial(*layers: Layer) -> Serial:
    """Compose layers in order (nested serials are flattened).

    Examples
    --------
    >>> from ntktheory import layers as L
    >>> L.serial(L.Dense(features=4), L.Activation("tanh"), L.Dense(features=1)).out_shape((3,))
    (1,)
    """
    return Serial(tuple(layers))


@dataclasses.dataclass(frozen=True, repr=False)
class Residual(Layer):
    """``z + branch(z)``: the shortcut and the branch's kernels add (stax FanOut, parallel, FanInSum).

    The branch must map the input shape to itself and end in a weighted layer (optionally followed
    by pooling or LayerNorm), which makes its output independent of the shortcut at initialisation.
    """

    branch: Layer = dataclasses.field(default_factory=Serial)

    def __init__(self, *layers: Layer) -> None:
        if not layers:
            raise ValueError("Residual needs a branch: Residual(layer, ...) or Residual(serial(...)).")
        branch = layers[0] if len(layers) == 1 else serial(*layers)
        if not isinstance(branch, Layer):
            raise TypeError(
                f"Residual: the branch must be a layer from ntktheory.layers; got {branch!r} of type "
                f"{type(branch).__name__}."
            )
        object.__setattr__(self, "branch", branch)
        if not _ends_gaussian(branch):
            raise ArchitectureError(
                f"the branch of Residual, {branch.describe()}, must end in a Dense or Conv (optionally "
                "followed by pooling or LayerNorm), so that its output is independent of the shortcut; "
                "append a Dense or Conv to the branch."
            )

    @property
    def weighted(self) -> bool:  # type: ignore[override]
        return self.branch.weighted

    def describe(self) -> str:
        return f"Residual({self.branch.describe()})"

    def out_shape(self, in_shape: Shape) -> Shape:
        out = self.branch.out_shape(in_shape)
        if out != in_shape:
            raise ArchitectureError(
                f"the branch of {self.describe()} maps shape {in_shape!r} to {out!r}; a residual branch "
                "must keep the shape (same channels, padding='same', stride 1)."
            )
        return out

    def output_gaussian(self, input_gaussian: bool) -> bool:
        return input_gaussian and self.branch.output_gaussian(input_gaussian)


def _ends_gaussian(layer: Layer) -> bool:
    """Whether the output is Gaussian whatever the input (the last weighted step makes it so)."""
    return layer.output_gaussian(False)


@dataclasses.dataclass(frozen=True, repr=False)
class Repeat(Layer):
    """``block`` applied ``times`` times in sequence, each repetition with its own weights.

    With ``ntktheory.kernels(..., all_depths=True)`` an architecture ``serial(prefix..., Repeat(block,
    times=n), suffix...)`` reports the kernels of ``serial(prefix, block x d, suffix)`` for every
    d = 1..n, from one pass.
    """

    block: Layer = dataclasses.field(default_factory=Serial)
    times: int = 1

    def __init__(self, block: Layer, *, times: int) -> None:
        if not isinstance(block, Layer):
            raise TypeError(
                f"Repeat: `block` must be a layer from ntktheory.layers; got {block!r} of type "
                f"{type(block).__name__}."
            )
        object.__setattr__(self, "block", block)
        object.__setattr__(self, "times", check_int("times", times, minimum=0))
        if self.times > 1 and block.needs_gaussian_first() and not block.output_gaussian(True):
            raise ArchitectureError(
                f"Repeat({block.describe()}, times={self.times}) feeds the block's non-Gaussian output back "
                "into its first layer, which needs a Gaussian input; reorder the block (e.g. Dense then "
                "Activation)."
            )

    @property
    def weighted(self) -> bool:  # type: ignore[override]
        return self.block.weighted and self.times > 0

    def describe(self) -> str:
        return f"Repeat({self.block.describe()}, times={self.times})"

    def out_shape(self, in_shape: Shape) -> Shape:
        shape = in_shape
        for _ in range(self.times):
            shape = self.block.out_shape(shape)
        return shape

    def output_gaussian(self, input_gaussian: bool) -> bool:
        g = input_gaussian
        for _ in range(min(self.times, 2)):
            g = self.block.output_gaussian(g)
        return g

    def needs_gaussian_first(self) -> bool:
        return self.times > 0 and self.block.needs_gaussian_first()


# ---------------------------------------------------------------------- whole-network checks
@dataclasses.dataclass(frozen=True)
class Step:
    """One primitive layer of a network, as :func:`walk` yields it."""

    path: str
    layer: Layer
    in_shape: Shape
    out_shape: Shape


def _walk(layer: Layer, shape: Shape, gaussian: bool, path: str, source: str) -> Iterator[tuple[Step, bool]]:
    """Yield (step, output_gaussian) for every primitive layer; ``source`` describes the input."""
    if isinstance(layer, Serial):
        for i, sub in enumerate(layer.layers, start=1):
            for step, g in _walk(sub, shape, gaussian, f"{path}.{i}" if path else str(i), source):
                yield step, g
                shape, gaussian = step.out_shape, g
                source = f"the output of layer {step.path}, {step.layer.describe()}"
        return
    if isinstance(layer, Repeat):
        for r in range(1, layer.times + 1):
            for step, g in _walk(layer.block, shape, gaussian, f"{path}[{r}]", source):
                yield step, g
                shape, gaussian = step.out_shape, g
                source = f"the output of layer {step.path}, {step.layer.describe()}"
        return
    if isinstance(layer, Residual):
        out_shape, out_g = shape, gaussian
        for step, g in _walk(layer.branch, shape, gaussian, f"{path}.branch" if path else "branch", source):
            yield step, g
            out_shape, out_g = step.out_shape, g
        if out_shape != shape:
            raise ArchitectureError(
                f"layer {path or 1}, {layer.describe()}: the branch maps shape {shape!r} to {out_shape!r}; a "
                "residual branch must keep the shape (same channels, padding='same', stride 1)."
            )
        yield Step(path or "1", layer, shape, shape), gaussian and out_g
        return
    path = path or "1"
    if layer.needs_gaussian and not gaussian:
        raise ArchitectureError(
            f"layer {path}, {layer.describe()}, needs a Gaussian input, but {source} is not Gaussian; put a "
            "Dense or Conv before it (Activation and LayerNorm act on pre-activations)."
        )
    try:
        out = layer.out_shape(shape)
    except ArchitectureError as err:
        raise ArchitectureError(f"layer {path}: {err}") from None
    yield Step(path, layer, shape, out), layer.output_gaussian(gaussian)


def walk(architecture: Layer, in_shape: Shape) -> Iterator[Step]:
    """The primitive layers in order with their shapes (Residual yields its branch, then itself)."""
    for step, _ in _walk(architecture, as_shape(in_shape), False, "", "the raw input"):
        yield step


def as_shape(in_shape: object) -> Shape:
    """``in_shape`` as a tuple of positive ints: (features,) or (channels, height, width)."""
    if isinstance(in_shape, numbers.Integral):
        in_shape = (in_shape,)
    if not isinstance(in_shape, Sequence) or len(in_shape) not in (1, 3):
        raise ValueError(
            f"`in_shape` must be (features,) for flat inputs or (channels, height, width) for images; "
            f"got {in_shape!r}."
        )
    return tuple(check_int("in_shape", n, minimum=1) for n in in_shape)


def check(architecture: Layer, in_shape: Shape) -> Shape:
    """Validate the whole network for inputs of shape ``in_shape``; return the output shape.

    Raises
    ------
    ArchitectureError
        (a ValueError) naming the layer by its position (``3``, ``2.branch.1``, ``4[2]`` for the
        second repetition of layer 4), the shapes involved and the fix.
    TypeError
        If ``architecture`` is not a layer.
    """
    if not isinstance(architecture, Layer):
        raise TypeError(
            f"`architecture` must be a layer from ntktheory.layers (e.g. layers.serial(...)); got "
            f"{architecture!r} of type {type(architecture).__name__}."
        )
    shape = as_shape(in_shape)
    for step in walk(architecture, shape):
        shape = step.out_shape
    if _is_image(shape):
        raise ArchitectureError(
            f"the network ends with an image output of shape {shape!r}; end it with Flatten() or "
            "GlobalAvgPool() followed by a Dense readout."
        )
    return shape


def shapes(architecture: Layer, in_shape: Shape) -> list[Shape]:
    """The input shape followed by the output shape of every top-level layer."""
    shape = as_shape(in_shape)
    out = [shape]
    layers = architecture.layers if isinstance(architecture, Serial) else (architecture,)
    for layer in layers:
        shape = layer.out_shape(shape)
        out.append(shape)
    return out


# ---------------------------------------------------------------------- presets
def mlp(
    *,
    depth: int = 3,
    width: int | None = None,
    activation: ActivationSpec = "relu",
    sigma_w: float = 1.0,
    sigma_b: float = 0.0,
    out_features: int = 1,
) -> Serial:
    """Fully-connected network: ``depth`` x (Dense(width), Activation), then Dense(out_features).

    This is the network of ``ntktheory.kernels(x, activation=..., depth=...)`` and
    ``empirical.MLP``.

    Examples
    --------
    >>> from ntktheory import layers as L
    >>> L.mlp(depth=2, width=16, activation="tanh").out_shape((5,))
    (1,)
    """
    depth = check_int("depth", depth, minimum=0)
    block = serial(Dense(features=width, sigma_w=sigma_w, sigma_b=sigma_b), Activation(activation))
    return serial(Repeat(block, times=depth), Dense(features=out_features, sigma_w=sigma_w, sigma_b=sigma_b))


READOUTS = ("flatten", "gap")


def cnn(
    *,
    depth: int = 3,
    channels: int | None = None,
    kernel_size: int | tuple[int, int] = 3,
    activation: ActivationSpec = "relu",
    sigma_w: float = 1.0,
    sigma_b: float = 0.0,
    readout: str = "flatten",
    out_features: int = 1,
) -> Serial:
    """Convolutional network: ``depth`` x (Conv(channels, kernel_size, "same"), Activation), then
    Flatten (``readout="flatten"``) or GlobalAvgPool (``readout="gap"``), then Dense(out_features).

    These are the CNNs of Xiao, Pennington & Schoenholz 2020 (arXiv:1912.13053), with and without
    global average pooling.

    Examples
    --------
    >>> from ntktheory import layers as L
    >>> L.cnn(depth=2, channels=8, readout="gap").out_shape((1, 8, 8))
    (1,)
    """
    depth = check_int("depth", depth, minimum=0)
    if readout not in READOUTS:
        raise ValueError(f"`readout` must be one of 'flatten', 'gap'; got {readout!r}.")
    block = serial(
        Conv(channels=channels, kernel_size=kernel_size, sigma_w=sigma_w, sigma_b=sigma_b), Activation(activation)
    )
    pool = Flatten() if readout == "flatten" else GlobalAvgPool()
    return serial(Repeat(block, times=depth), pool, Dense(features=out_features, sigma_w=sigma_w, sigma_b=sigma_b))


#: Named presets (sweep files and the command line): a fully-connected network, and CNNs with a
#: Flatten or a global-average-pooling readout (Xiao, Pennington & Schoenholz 2020).
PRESETS = ("fcn", "cnn", "cnn-gap")


def preset(
    name: str,
    *,
    depth: int,
    width: int | None = None,
    activation: ActivationSpec = "relu",
    sigma_w: float = 1.0,
    sigma_b: float = 0.0,
    kernel_size: int | tuple[int, int] = 3,
    out_features: int = 1,
) -> Serial:
    """A named architecture: ``"fcn"`` (:func:`mlp`, ``width`` hidden units), ``"cnn"`` and
    ``"cnn-gap"`` (:func:`cnn` with ``width`` channels, readout Flatten or GlobalAvgPool).

    Examples
    --------
    >>> from ntktheory import layers as L
    >>> L.preset("cnn-gap", depth=2, width=16).layers[1:]
    (GlobalAvgPool(), Dense(features=1))
    """
    if name not in PRESETS:
        raise ValueError(f"`architecture` must be one of {', '.join(map(repr, PRESETS))} (or a list of layers); "
                         f"got {name!r}.")
    common = {"depth": depth, "activation": activation, "sigma_w": sigma_w, "sigma_b": sigma_b,
              "out_features": out_features}
    if name == "fcn":
        return mlp(width=width, **common)
    return cnn(channels=width, kernel_size=kernel_size, readout="flatten" if name == "cnn" else "gap", **common)


_SPEC_TYPES = {
    "dense": (Dense, ("features", "sigma_w", "sigma_b")),
    "conv": (Conv, ("channels", "kernel_size", "stride", "padding", "sigma_w", "sigma_b")),
    "avgpool": (AvgPool, ("window", "stride")),
    "gap": (GlobalAvgPool, ()),
    "flatten": (Flatten, ()),
    "layernorm": (LayerNorm, ()),
}


def from_spec(spec: object) -> Layer:
    """An architecture from plain data (as read from JSON or TOML): a list of layer tables.

    Each table has a ``type``: ``dense`` (features, sigma_w, sigma_b), ``conv`` (channels,
    kernel_size, stride, padding, sigma_w, sigma_b), ``act`` (``name``, and ``negative_slope``
    for leaky_relu), ``avgpool`` (window, stride), ``gap``, ``flatten``, ``layernorm``,
    ``residual`` (``branch``: a list of tables) or ``repeat`` (``block``: a list, ``times``).
    Lists of numbers are pairs (kernel_size = [3, 3]).

    Examples
    --------
    >>> from ntktheory import layers as L
    >>> L.from_spec([{"type": "conv", "channels": 4}, {"type": "act", "name": "relu"}, {"type": "gap"},
    ...              {"type": "dense", "features": 1}]).describe()
    "serial(Conv(channels=4, kernel_size=3, stride=1), Activation('relu'), GlobalAvgPool(), Dense(features=1))"
    """
    if isinstance(spec, Mapping):
        spec = [spec]
    if isinstance(spec, (str, bytes)) or not isinstance(spec, Sequence):
        raise TypeError(f"an architecture spec must be a list of layer tables; got {spec!r}.")
    layers = []
    for i, table in enumerate(spec, start=1):
        if not isinstance(table, Mapping) or "type" not in table:
            raise ValueError(f"architecture spec, layer {i}: must be a table with a `type`; got {table!r}.")
        kind = str(table["type"]).lower()
        args = {k: (tuple(v) if isinstance(v, list) else v) for k, v in table.items() if k != "type"}
        if kind in _SPEC_TYPES:
            cls, allowed = _SPEC_TYPES[kind]
        elif kind == "act":
            cls, allowed = Activation, ("name", "negative_slope")
        elif kind == "residual":
            cls, allowed = Residual, ("branch",)
        elif kind == "repeat":
            cls, allowed = Repeat, ("block", "times")
        else:
            known = ", ".join([*_SPEC_TYPES, "act", "residual", "repeat"])
            raise ValueError(f"architecture spec, layer {i}: unknown type {table['type']!r}; known: {known}.")
        unknown = sorted(set(args) - set(allowed))
        if unknown:
            raise ValueError(
                f"architecture spec, layer {i} ({kind}): unknown key(s) {unknown}; allowed: {list(allowed)}."
            )
        if kind == "act":
            if "name" not in args:
                raise ValueError(f"architecture spec, layer {i} (act): needs a `name` (an activation).")
            name = args["name"]
            act = _leaky(args["negative_slope"]) if "negative_slope" in args else name
            layers.append(Activation(act))
        elif kind == "residual":
            layers.append(Residual(from_spec(list(table.get("branch", [])))))
        elif kind == "repeat":
            layers.append(Repeat(from_spec(list(table.get("block", []))), times=args.get("times", 1)))
        else:
            layers.append(cls(**args))
    return serial(*layers) if len(layers) != 1 else layers[0]


def _leaky(slope: float):
    from .activations import leaky_relu

    return leaky_relu(negative_slope=slope)
