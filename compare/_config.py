"""Sweep configuration: a frozen dataclass, read from TOML or built in Python, checked up front.

A TOML sweep file looks like::

    name = "tanh-vs-relu"
    architectures = ["fcn", "cnn", "cnn-gap"]   # optional; default ["fcn"] (no architecture dim)
    activations = ["tanh", "relu"]
    widths = [64, 256, 1024]
    depths = [1, 3]
    seeds = 4                      # or an explicit list [0, 1, 2, 3]
    parameterization = "ntk"       # "ntk" | "standard" (theory then per width, see below)
    dtype = "float64"              # "float64" | "float32"
    measure = ["ntk", "nngp", "training"]

    [[points]]                     # named (sigma_w^2, sigma_b^2) initialisations ...
    name = "critical"
    sigma_w2 = "critical"          # a number, "critical" or "<factor>*critical" (per activation)
    sigma_b2 = 0.05

    # [grid]                       # ... or a grid (instead of [[points]])
    # sigma_w2 = [0.5, 1.0, 2.0]
    # sigma_b2 = [0.0, 0.05]

    [data]
    source = "digits"              # "digits" | "sphere" | "file" | "mnist" | "cifar10"
    n_train = 32
    n_test = 16

    [training]
    steps = 20
    snapshots = 5
    relative_learning_rate = 0.5   # eta = this * 2N / lambda_max(Theta_theory)

Every key is checked before any work starts; an error names the key, the value and what is allowed.

``architectures`` are the named presets of :func:`ntktheory.layers.preset`: ``"fcn"`` (``depth``
hidden layers of ``width`` units), ``"cnn"`` (``depth`` x (3x3 'same' convolution with ``width``
channels + activation), Flatten, Dense readout) and ``"cnn-gap"`` (global average pooling
instead of Flatten). CNNs need image data (digits, mnist, cifar10, or a file of (N, C, H, W)
arrays); a sweep that lists ``architectures`` gets an ``architecture`` dim.

With ``parameterization = "standard"`` the analytic NTK grows with the width
(``ntktheory.kernels(..., parameterization="standard", width=n)``, Theta^{l+1} = n E[phi phi] + 1 +
sigma_w^2 E[phi' phi'] Theta^l), so the theory tasks are computed per width: ``ntk_theory`` and
``nngp_theory`` get a ``width`` dim, and every finite network is compared with the kernel of its own
width (the NNGP does not depend on it). In the NTK parameterisation the theory is one kernel per
(activation, init, depth), shared by all widths.
"""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import tomllib

from ._schema import to_json

__all__ = ["DataSpec", "InitPoint", "SweepConfig", "TrainingSpec", "load_sweep"]

_MEASURES = ("ntk", "nngp", "training")
_ARCHITECTURES = ("fcn", "cnn", "cnn-gap")
_IMAGE_SOURCES = ("digits", "file", "mnist", "cifar10")
_SOURCES = ("digits", "sphere", "file", "mnist", "cifar10")
_CRITICAL = re.compile(r"^\s*(?:(?P<factor>[0-9.eE+-]+)\s*\*\s*)?critical\s*$")


class ConfigError(ValueError):
    """A sweep configuration that cannot run; the message names the key."""


def _fail(key: str, value: Any, allowed: str) -> ConfigError:
    return ConfigError(f"sweep config key `{key}`: got {value!r}; {allowed}.")


def _int_list(key: str, value: Any, minimum: int) -> tuple[int, ...]:
    if isinstance(value, (int, float, str, bool)) or not isinstance(value, Sequence) or not value:
        raise _fail(key, value, f"allowed: a non-empty list of integers >= {minimum}")
    for v in value:
        if isinstance(v, bool) or not isinstance(v, int) or v < minimum:
            raise _fail(key, value, f"allowed: a non-empty list of integers >= {minimum} ({v!r} is not)")
    if len(set(value)) != len(value):
        raise _fail(key, value, "entries must be distinct")
    return tuple(int(v) for v in value)


def _number(key: str, value: Any, *, minimum: float = 0.0, strict: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _fail(key, value, f"allowed: a number {'>' if strict else '>='} {minimum}")
    if value < minimum or (strict and value == minimum):
        raise _fail(key, value, f"allowed: a number {'>' if strict else '>='} {minimum}")
    return float(value)


@dataclasses.dataclass(frozen=True)
class InitPoint:
    """A named initialisation (sigma_w^2, sigma_b^2).

    ``sigma_w2`` is a number, or ``"critical"`` / ``"<factor>*critical"``, resolved per activation
    with ``ntktheory.critical_sigma_w2(activation, sigma_b2)``.
    """

    name: str
    sigma_w2: float | str
    sigma_b2: float

    def __post_init__(self) -> None:
        key = f"points[{self.name!r}]"
        if not isinstance(self.name, str) or not re.fullmatch(r"[A-Za-z0-9_.+-]+", self.name):
            raise _fail("points.name", self.name, "allowed: a non-empty name of letters, digits, '_.+-'")
        if isinstance(self.sigma_w2, str):
            m = _CRITICAL.match(self.sigma_w2)
            if m is None or (m["factor"] is not None and not _is_positive_float(m["factor"])):
                raise _fail(f"{key}.sigma_w2", self.sigma_w2,
                            "allowed: a number > 0, 'critical' or '<factor>*critical' such as '0.5*critical'")
        else:
            _number(f"{key}.sigma_w2", self.sigma_w2, strict=True)
        _number(f"{key}.sigma_b2", self.sigma_b2)

    def resolve(self, activation: str) -> tuple[float, float]:
        """(sigma_w2, sigma_b2) as numbers for ``activation``."""
        if not isinstance(self.sigma_w2, str):
            return float(self.sigma_w2), float(self.sigma_b2)
        m = _CRITICAL.match(self.sigma_w2)
        factor = float(m["factor"]) if m["factor"] else 1.0
        return factor * _critical_sigma_w2(activation, float(self.sigma_b2)), float(self.sigma_b2)


def _is_positive_float(text: str) -> bool:
    try:
        return float(text) > 0
    except ValueError:
        return False


def _critical_sigma_w2(activation: str, sigma_b2: float) -> float:
    import ntktheory

    if not hasattr(ntktheory, "critical_sigma_w2"):
        raise NotImplementedError(
            "sigma_w2 = 'critical' needs ntktheory.critical_sigma_w2, which this installation lacks; "
            "give sigma_w2 as a number."
        )
    return float(ntktheory.critical_sigma_w2(activation, sigma_b2))


@dataclasses.dataclass(frozen=True)
class DataSpec:
    """Where the inputs come from (see :mod:`compare._data`).

    ``n_train`` training and ``n_test`` test points are drawn (without replacement, with
    ``seed``) from the source. Targets: +1 / -1 by label parity (one output).
    """

    source: str = "digits"
    n_train: int = 32
    n_test: int = 16
    seed: int = 0
    path: str | None = None
    correlation: float = 0.3
    dim: int = 32

    def __post_init__(self) -> None:
        if self.source not in _SOURCES:
            raise _fail("data.source", self.source, f"allowed: {', '.join(map(repr, _SOURCES))}")
        for key, minimum in (("n_train", 1), ("n_test", 1), ("seed", 0), ("dim", 1)):
            v = getattr(self, key)
            if isinstance(v, bool) or not isinstance(v, int) or v < minimum:
                raise _fail(f"data.{key}", v, f"allowed: an integer >= {minimum}")
        if self.source in ("file", "mnist", "cifar10") and not self.path:
            raise _fail("data.path", self.path, f"data.source = {self.source!r} needs a path to files on disk")
        if not (isinstance(self.correlation, (int, float)) and 0 <= self.correlation < 1):
            raise _fail("data.correlation", self.correlation, "allowed: a number in [0, 1)")


@dataclasses.dataclass(frozen=True)
class TrainingSpec:
    """Full-batch gradient descent on (1/2N)|f - Y|^2, with ``snapshots`` evenly spaced records.

    The learning rate is ``learning_rate`` when given, else ``relative_learning_rate`` times
    2N / lambda_max of the analytic NTK on the training points (the stability limit of the
    linearised dynamics, Lee et al. 2019, arXiv:1902.06720).
    """

    steps: int = 20
    snapshots: int = 5
    relative_learning_rate: float = 0.5
    learning_rate: float | None = None

    def __post_init__(self) -> None:
        if isinstance(self.steps, bool) or not isinstance(self.steps, int) or self.steps < 1:
            raise _fail("training.steps", self.steps, "allowed: an integer >= 1")
        if isinstance(self.snapshots, bool) or not isinstance(self.snapshots, int) or not 2 <= self.snapshots:
            raise _fail("training.snapshots", self.snapshots, "allowed: an integer >= 2 (first and last step)")
        _number("training.relative_learning_rate", self.relative_learning_rate, strict=True)
        if self.learning_rate is not None:
            _number("training.learning_rate", self.learning_rate, strict=True)

    @property
    def snapshot_steps(self) -> tuple[int, ...]:
        """Steps at which training is recorded (0 and ``steps`` included)."""
        import numpy as np

        return tuple(sorted({round(s) for s in np.linspace(0, self.steps, self.snapshots)}))


@dataclasses.dataclass(frozen=True)
class SweepConfig:
    """A sweep: the cartesian product [architectures x] activations x points x widths x depths x seeds.

    Invariants are checked at construction; :meth:`from_mapping` and :func:`load_sweep` add
    checks for unknown keys.
    """

    activations: tuple[str, ...] = ("tanh", "relu")
    points: tuple[InitPoint, ...] = (InitPoint("critical", "critical", 0.05),)
    architectures: tuple[str, ...] | None = None
    widths: tuple[int, ...] = (64, 256, 1024)
    depths: tuple[int, ...] = (2,)
    seeds: tuple[int, ...] = (0, 1, 2, 3)
    data: DataSpec = DataSpec()
    training: TrainingSpec = TrainingSpec()
    measure: tuple[str, ...] = ("ntk", "nngp", "training")
    parameterization: str = "ntk"
    dtype: str = "float64"
    name: str = "sweep"

    def __post_init__(self) -> None:
        if isinstance(self.activations, str) or not self.activations:
            raise _fail("activations", self.activations, "allowed: a non-empty list of activation names")
        from ntktheory import get_activation

        for a in self.activations:
            try:
                get_activation(a)
            except Exception as err:  # sympy parse errors are not all ValueErrors
                raise _fail(
                    "activations", a,
                    f"not a registry name or a sympy expression in x ({type(err).__name__}: {err})",
                ) from err
        if len(set(self.activations)) != len(self.activations):
            raise _fail("activations", self.activations, "entries must be distinct")
        object.__setattr__(self, "activations", tuple(self.activations))
        if self.architectures is not None:
            archs = self.architectures
            if isinstance(archs, str) or not archs or any(a not in _ARCHITECTURES for a in archs):
                allowed = ", ".join(map(repr, _ARCHITECTURES))
                raise _fail("architectures", archs, f"allowed: a non-empty list from {allowed}")
            if len(set(archs)) != len(archs):
                raise _fail("architectures", archs, "entries must be distinct")
            object.__setattr__(self, "architectures", tuple(archs))
            if any(a != "fcn" for a in archs) and self.data.source not in _IMAGE_SOURCES:
                raise _fail("data.source", self.data.source,
                            f"the architectures {list(archs)!r} need images: {', '.join(map(repr, _IMAGE_SOURCES))} "
                            "(a file of (N, C, H, W) arrays)")
        object.__setattr__(self, "widths", _int_list("widths", self.widths, 1))
        object.__setattr__(self, "depths", _int_list("depths", self.depths, 1))
        object.__setattr__(self, "seeds", _int_list("seeds", self.seeds, 0))
        if not self.points or not all(isinstance(p, InitPoint) for p in self.points):
            raise _fail("points", self.points, "allowed: a non-empty list of InitPoint (or a [grid])")
        names = [p.name for p in self.points]
        if len(set(names)) != len(names):
            raise _fail("points.name", names, "point names must be distinct")
        object.__setattr__(self, "points", tuple(self.points))
        bad = [m for m in self.measure if m not in _MEASURES]
        if isinstance(self.measure, str) or not self.measure or bad:
            raise _fail("measure", self.measure, f"allowed: a non-empty list from {', '.join(map(repr, _MEASURES))}")
        object.__setattr__(self, "measure", tuple(self.measure))
        if self.parameterization not in ("ntk", "standard"):
            raise _fail("parameterization", self.parameterization, "allowed: 'ntk', 'standard'")
        if self.dtype not in ("float64", "float32"):
            raise _fail("dtype", self.dtype, "allowed: 'float64', 'float32'")
        if not isinstance(self.name, str) or not self.name:
            raise _fail("name", self.name, "allowed: a non-empty string")

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_mapping(cls, raw: Mapping[str, Any], *, source: str = "config") -> SweepConfig:
        """Build from a dict as read from TOML; unknown keys are errors that list the known ones."""
        raw = dict(raw)
        fields = {f.name for f in dataclasses.fields(cls)} | {"grid"}
        fields.discard("points")
        fields.add("points")
        unknown = sorted(set(raw) - fields)
        if unknown:
            guesses = [g for k in unknown for g in difflib.get_close_matches(str(k), sorted(fields), n=1)]
            hint = f" (did you mean {', '.join(map(repr, guesses))}?)" if guesses else ""
            raise ConfigError(
                f"{source}: unknown key(s) {unknown!r}{hint}; allowed top-level keys: {sorted(fields)!r}."
            )
        if "points" in raw and "grid" in raw:
            raise ConfigError(f"{source}: give either `points` or `grid`, not both.")
        kwargs: dict[str, Any] = {}
        for key in ("activations", "architectures", "widths", "depths", "measure"):
            if key in raw:
                kwargs[key] = raw[key]
        if "seeds" in raw:
            s = raw["seeds"]
            if isinstance(s, int) and not isinstance(s, bool):
                if s < 1:
                    raise _fail("seeds", s, "allowed: a number of seeds >= 1 or a list of seeds")
                s = list(range(s))
            kwargs["seeds"] = s
        for key in ("parameterization", "dtype", "name"):
            if key in raw:
                kwargs[key] = raw[key]
        if "points" in raw:
            kwargs["points"] = tuple(_point(i, p) for i, p in enumerate(_list_of_tables("points", raw["points"])))
        if "grid" in raw:
            kwargs["points"] = _grid(raw["grid"])
        if "data" in raw:
            kwargs["data"] = _table(DataSpec, "data", raw["data"])
        if "training" in raw:
            kwargs["training"] = _table(TrainingSpec, "training", raw["training"])
        return cls(**kwargs)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict that :meth:`from_mapping` turns back into an equal config."""
        d = dataclasses.asdict(self)
        d["points"] = [dataclasses.asdict(p) for p in self.points]
        d["data"] = {k: v for k, v in d["data"].items() if v is not None}
        d["training"] = {k: v for k, v in d["training"].items() if v is not None}
        if d["architectures"] is None:  # fully-connected sweeps keep their fingerprint
            del d["architectures"]
        return d

    def fingerprint(self) -> str:
        """sha256 of the canonical JSON of the configuration (what a store is tied to)."""
        return hashlib.sha256(to_json(self.to_dict()).encode()).hexdigest()

    @property
    def architecture_list(self) -> tuple[str, ...]:
        """The architectures swept (("fcn",) when the config names none)."""
        return self.architectures or ("fcn",)

    @property
    def n_configurations(self) -> int:
        return (len(self.architecture_list) * len(self.activations) * len(self.points) * len(self.widths)
                * len(self.depths) * len(self.seeds))


def _list_of_tables(key: str, value: Any) -> list[Mapping[str, Any]]:
    if not isinstance(value, list) or not value or not all(isinstance(v, Mapping) for v in value):
        raise _fail(key, value, "allowed: a non-empty array of tables ([[points]] with name, sigma_w2, sigma_b2)")
    return value


def _point(i: int, p: Mapping[str, Any]) -> InitPoint:
    allowed = {"name", "sigma_w2", "sigma_b2"}
    unknown = sorted(set(p) - allowed)
    if unknown:
        raise ConfigError(f"sweep config key `points[{i}]`: unknown key(s) {unknown!r}; allowed: {sorted(allowed)!r}.")
    missing = sorted({"sigma_w2", "sigma_b2"} - set(p))
    if missing:
        raise ConfigError(
            f"sweep config key `points[{i}]`: missing {missing!r}; each point needs sigma_w2 and sigma_b2."
        )
    return InitPoint(name=p.get("name", f"p{i}"), sigma_w2=p["sigma_w2"], sigma_b2=p["sigma_b2"])


def _grid(g: Any) -> tuple[InitPoint, ...]:
    if not isinstance(g, Mapping) or set(g) != {"sigma_w2", "sigma_b2"}:
        raise _fail("grid", g, "allowed: a table with exactly the keys sigma_w2 and sigma_b2 (lists of numbers)")
    out = []
    for key in ("sigma_w2", "sigma_b2"):
        if not isinstance(g[key], list) or not g[key]:
            raise _fail(f"grid.{key}", g[key], "allowed: a non-empty list of numbers")
    for w in g["sigma_w2"]:
        for b in g["sigma_b2"]:
            out.append(InitPoint(name=f"w{w:g}_b{b:g}" if _isnum(w) and _isnum(b) else "bad", sigma_w2=w, sigma_b2=b))
    return tuple(out)


def _isnum(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _table(cls: type, key: str, value: Any) -> Any:
    if not isinstance(value, Mapping):
        raise _fail(key, value, "allowed: a table")
    allowed = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(value) - allowed)
    if unknown:
        raise ConfigError(f"sweep config key `{key}`: unknown key(s) {unknown!r}; allowed: {sorted(allowed)!r}.")
    return cls(**value)


def load_sweep(path: str | Path) -> SweepConfig:
    """Read and check a TOML sweep file (see the module docstring for the keys).

    Raises
    ------
    FileNotFoundError
        The file does not exist.
    ValueError
        Invalid TOML, or a key with an invalid value (the message names the key and what is allowed).
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"sweep config file {str(path)!r} does not exist.")
    try:
        raw = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"{str(path)!r} is not valid TOML: {err}.") from err
    return SweepConfig.from_mapping(raw, source=str(path))
