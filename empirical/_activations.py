"""Torch versions of ntktheory's activations: the same specs build the same nonlinearity.

Names and default parameters come from ntktheory's registry
(:func:`ntktheory.activations.registry_defaults`); registry activations map to torch built-ins
(autograd's derivative conventions at kinks, as ntktheory uses) and any other activation is
translated from its sympy expression into torch operations.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable

import sympy
import torch
import torch.nn.functional as F
from torch import nn

from ntktheory.activations import (
    Activation,
    ActivationSpec,
    get_activation,
    registry_activation,
    registry_defaults,
)
from ntktheory.activations import x as _x

__all__ = ["TorchActivation", "torch_activation"]


def _step(u: torch.Tensor) -> torch.Tensor:
    # Heaviside(u, 0) with a zero (not missing) gradient, so autograd and torch.func see 0.
    return (u > 0).to(u.dtype) + 0.0 * u


def _identity(u: torch.Tensor) -> torch.Tensor:
    return u


#: Torch built-ins for ntktheory's registry activations (autograd's derivative conventions at kinks,
#: as ntktheory uses). Each entry takes the activation's parameters, named as in
#: :func:`ntktheory.activations.registry_defaults` (which also holds the defaults), and returns the
#: torch function. A registry name without an entry here is translated from its sympy expression,
#: so that adding an activation to ntktheory's registry is enough.
_TORCH_BUILTINS: dict[str, Callable[..., Callable[[torch.Tensor], torch.Tensor]]] = {
    "relu": lambda: torch.relu,
    "leaky_relu": lambda negative_slope: functools.partial(F.leaky_relu, negative_slope=float(negative_slope)),
    "abs": lambda: torch.abs,
    "erf": lambda: torch.erf,
    "tanh": lambda: torch.tanh,
    "sigmoid": lambda: torch.sigmoid,
    "gelu": lambda: functools.partial(F.gelu, approximate="none"),
    # torch's softplus returns x itself for x > 20: off by log1p(exp(-20)) < 2.1e-9 there.
    "softplus": lambda: F.softplus,
    "swish": lambda: F.silu,
    "sin": lambda: torch.sin,
    "identity": lambda: _identity,
    "step": lambda: _step,
}


def _builtin(act: Activation) -> Callable[[torch.Tensor], torch.Tensor] | None:
    """The torch built-in for a registry activation, or None when ``act`` is not one."""
    defaults = registry_defaults()
    if act.name not in defaults or act.name not in _TORCH_BUILTINS:
        return None
    params = dict(act.params)
    if set(params) - set(defaults[act.name]):
        return None  # a user-built Activation that reuses a registry name with other parameters
    params = defaults[act.name] | params
    reference = registry_activation(act.name, **params)
    if reference.expression != act.expression and sympy.simplify(reference.expression - act.expression) != 0:
        return None  # a user-built Activation that reuses a registry name for another function
    return _TORCH_BUILTINS[act.name](**params)


_UNARY: dict[type, Callable[[torch.Tensor], torch.Tensor]] = {
    sympy.exp: torch.exp,
    sympy.log: torch.log,
    sympy.sin: torch.sin,
    sympy.cos: torch.cos,
    sympy.tan: torch.tan,
    sympy.tanh: torch.tanh,
    sympy.sinh: torch.sinh,
    sympy.cosh: torch.cosh,
    sympy.asinh: torch.asinh,
    sympy.atan: torch.atan,
    sympy.erf: torch.erf,
    sympy.erfc: torch.erfc,
    sympy.Abs: torch.abs,
    sympy.sign: torch.sign,
    sympy.floor: torch.floor,
    sympy.ceiling: torch.ceil,
}


def _to_torch(expr: sympy.Expr) -> Callable[[torch.Tensor], torch.Tensor]:
    """Translate a sympy expression in ``ntktheory.activations.x`` into a torch function.

    Supported: numbers, +, *, powers, Max/Min, Piecewise, Heaviside and the functions in
    ``_UNARY``. Anything else raises NotImplementedError naming the sympy function.
    """
    if expr == _x:
        return _identity
    if expr.is_Number or expr.is_NumberSymbol:
        value = float(expr)
        return lambda u: torch.full_like(u, value)
    parts = [_to_torch(a) for a in expr.args]
    if isinstance(expr, sympy.Add):
        return lambda u: functools.reduce(torch.add, (p(u) for p in parts))
    if isinstance(expr, sympy.Mul):
        return lambda u: functools.reduce(torch.mul, (p(u) for p in parts))
    if isinstance(expr, sympy.Pow):
        base, exponent = parts
        if expr.exp.is_Number:
            e = float(expr.exp)
            if e == 0.5:
                return lambda u: torch.sqrt(base(u))
            return lambda u: torch.pow(base(u), e)
        return lambda u: torch.pow(base(u), exponent(u))
    if isinstance(expr, sympy.Max):
        return lambda u: functools.reduce(torch.maximum, (p(u) for p in parts))
    if isinstance(expr, sympy.Min):
        return lambda u: functools.reduce(torch.minimum, (p(u) for p in parts))
    if isinstance(expr, sympy.Heaviside):
        arg = parts[0]
        return lambda u: _step(arg(u))
    if isinstance(expr, sympy.Piecewise):
        branches = [(_to_torch(e), _condition(c)) for e, c in expr.args]

        def piecewise(u: torch.Tensor) -> torch.Tensor:
            out = branches[-1][0](u)
            for value, cond in reversed(branches[:-1]):
                out = torch.where(cond(u), value(u), out)
            return out

        return piecewise
    if expr.func in _UNARY and len(parts) == 1:
        fn, arg = _UNARY[expr.func], parts[0]
        return lambda u: fn(arg(u))
    raise NotImplementedError(
        f"cannot translate {expr.func.__name__} (in {expr}) into torch; supported: +, *, powers, "
        f"Max, Min, Piecewise, Heaviside, {', '.join(f.__name__ for f in _UNARY)}."
    )


_RELATIONS: dict[type, Callable] = {
    sympy.StrictGreaterThan: torch.gt,
    sympy.GreaterThan: torch.ge,
    sympy.StrictLessThan: torch.lt,
    sympy.LessThan: torch.le,
}


def _condition(cond: sympy.Basic) -> Callable[[torch.Tensor], torch.Tensor]:
    if cond is sympy.true:
        return lambda u: torch.ones_like(u, dtype=torch.bool)
    if type(cond) in _RELATIONS:
        lhs, rhs, rel = _to_torch(cond.lhs), _to_torch(cond.rhs), _RELATIONS[type(cond)]
        return lambda u: rel(lhs(u), rhs(u))
    raise NotImplementedError(f"cannot translate the Piecewise condition {cond} into torch.")


class TorchActivation(nn.Module):
    """An elementwise nonlinearity built from an ntktheory activation spec.

    Parameters
    ----------
    activation
        A registry name, an :class:`ntktheory.Activation` or a sympy expression in ``x``.

    Attributes
    ----------
    spec
        The resolved :class:`ntktheory.Activation` (name, expression, params).

    Examples
    --------
    >>> import torch
    >>> phi = TorchActivation("x*tanh(x)")
    >>> value = float(phi(torch.tensor([0.5], dtype=torch.float64))[0])
    >>> math.isclose(value, 0.5 * math.tanh(0.5), rel_tol=1e-15)
    True
    """

    elementwise = True  # the structured NTK relies on this

    def __init__(self, activation: ActivationSpec) -> None:
        super().__init__()
        self.spec = get_activation(activation)
        fn = _builtin(self.spec)
        if fn is None:
            try:
                fn = _to_torch(self.spec.expression)
            except NotImplementedError as err:
                raise ValueError(f"`activation` {self.spec.name!r}: {err}") from err
        self._fn = fn

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        return self._fn(u)

    def __deepcopy__(self, memo: dict) -> TorchActivation:
        # The spec is immutable and may cache a compiled numba module (not copyable): share it.
        new = type(self).__new__(type(self))
        nn.Module.__init__(new)
        new.spec, new._fn = self.spec, self._fn
        memo[id(self)] = new
        return new

    def extra_repr(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in self.spec.params)
        return f"{self.spec.name!r}{', ' + params if params else ''}"


def torch_activation(activation: ActivationSpec) -> TorchActivation:
    """Build the torch module for an activation spec (see :class:`TorchActivation`).

    Examples
    --------
    >>> import torch
    >>> torch_activation("relu")(torch.tensor([-1.0, 2.0])).tolist()
    [0.0, 2.0]
    """
    return TorchActivation(activation)


_ = math  # used in doctests
