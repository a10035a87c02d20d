"""Activation functions: phi, phi', phi'' and, where they exist, closed-form Gaussian expectations.

An activation is given everywhere in ntkgap as one of

* a registry name: ``"relu"``, ``"leaky_relu"``, ``"abs"``, ``"erf"``, ``"tanh"``, ``"sigmoid"``,
  ``"gelu"`` (exact, x Phi(x)), ``"softplus"``, ``"swish"``, ``"sin"``, ``"identity"``, ``"step"``;
* an :class:`Activation` object, e.g. ``leaky_relu(negative_slope=0.1)``;
* a sympy-parsable expression in ``x``, e.g. ``"x*tanh(x)"`` or ``"log(1+exp(x))"``: sympy derives
  phi' and phi'', and the three functions are compiled with numba (and cached on disk).

Derivatives at kinks take autograd's values (relu'(0) = 0, abs'(0) = 0, step' = 0), so that the
analytic kernels and torch's empirical ones use the same convention.

Examples
--------
>>> from ntktheory.activations import get_activation
>>> act = get_activation("x*tanh(x)")
>>> float(act.dphi(0.5)) == float(0.5 * (1 - np.tanh(0.5) ** 2) + np.tanh(0.5))
True
>>> get_activation("relu").has_closed_form
True
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import re
from collections.abc import Callable
from types import ModuleType

import numpy as np
import sympy
from sympy.core.function import AppliedUndef

from . import _closed_forms, _codegen
from ._validate import check_real

__all__ = [
    "Activation",
    "ActivationSpec",
    "from_expression",
    "get_activation",
    "leaky_relu",
    "registry_activation",
    "registry_defaults",
    "registry_names",
]

#: The real symbol every activation expression is written in.
x = sympy.Symbol("x", real=True)


@dataclasses.dataclass(frozen=True, eq=False)
class Activation:
    """A scalar nonlinearity with its first two derivatives.

    Parameters
    ----------
    name
        Registry name, or the expression's text for expression activations.
    expression
        phi as a sympy expression in the real symbol ``x`` (parameters substituted).
    params
        Parameters as ``((name, value), ...)``, e.g. ``(("negative_slope", 0.1),)``.
    closed_form
        Numba function filling E[phi phi] and E[phi' phi'] (see ``_closed_forms``), or None when
        the expectations need quadrature.
    code
        Optional numerically stable Python/numba source for (phi, phi', phi'') overriding the code
        printed from ``expression`` (e.g. softplus without overflow).
    """

    name: str
    expression: sympy.Expr
    params: tuple[tuple[str, float], ...] = ()
    closed_form: Callable | None = dataclasses.field(default=None, repr=False)
    code: tuple[str, str, str] | None = dataclasses.field(default=None, repr=False)

    # ------------------------------------------------------------------ derived symbolic forms
    @functools.cached_property
    def derivative_expressions(self) -> tuple[sympy.Expr, sympy.Expr]:
        """(phi', phi'') as sympy expressions, with autograd's conventions at kinks."""
        d1 = _autograd_convention(sympy.diff(self.expression, x))
        d2 = _autograd_convention(sympy.diff(d1, x))
        return d1, d2

    @functools.cached_property
    def kinks(self) -> tuple[float, ...]:
        """Real points where phi or a derivative is not smooth (quadrature breakpoints)."""
        return _kink_points(self.expression)

    @property
    def is_smooth(self) -> bool:
        """True when phi has no kinks or jumps (all derivatives continuous)."""
        return not self.kinks

    @property
    def has_closed_form(self) -> bool:
        return self.closed_form is not None

    @property
    def param_value(self) -> float:
        """The single numeric parameter passed to the closed form (0.0 when there is none)."""
        return float(self.params[0][1]) if self.params else 0.0

    # ------------------------------------------------------------------ compiled functions
    @functools.cached_property
    def compiled(self) -> ModuleType:
        """The generated numba module: ``phi``, ``dphi``, ``d2phi`` (1-D float64 arrays) and
        their ``*_scalar`` versions, usable from other numba code."""
        if self.code is not None:
            codes, fused = self.code, None
        else:
            d1, d2 = self.derivative_expressions
            codes = tuple(_codegen.to_code(e) for e in (self.expression, d1, d2))
            fused = _codegen.fused_code(self.expression, d1)
        return _codegen.compile_module(*codes, doc=f"{self.name}: {self.expression}", fused=fused)

    def phi(self, u: object) -> np.ndarray:
        """phi evaluated elementwise (float64, any shape)."""
        return _codegen.apply_elementwise(self.compiled.phi, u)

    def dphi(self, u: object) -> np.ndarray:
        """phi' evaluated elementwise."""
        return _codegen.apply_elementwise(self.compiled.dphi, u)

    def phi_and_dphi(self, u: object) -> tuple[np.ndarray, np.ndarray]:
        """(phi, phi') evaluated elementwise in one pass (float64, the shape of ``u``)."""
        arr = np.asarray(u, dtype=np.float64)
        values = self.compiled.phi_dphi_numpy(arr)
        if values is not None:
            return values
        flat = np.ascontiguousarray(arr).reshape(-1)
        out_phi, out_dphi = np.empty_like(flat), np.empty_like(flat)
        self.compiled.phi_dphi(flat, out_phi, out_dphi)
        return out_phi.reshape(arr.shape), out_dphi.reshape(arr.shape)

    def d2phi(self, u: object) -> np.ndarray:
        """phi'' evaluated elementwise (0 at kinks' Dirac masses: autograd's convention)."""
        return _codegen.apply_elementwise(self.compiled.d2phi, u)

    __call__ = phi

    def gaussian_expectations(self, q1, q2, q12) -> tuple[np.ndarray, np.ndarray]:
        """Closed-form (E[phi(u) phi(v)], E[phi'(u) phi'(v)]) for (u, v) ~ N(0, [[q1, q12], [q12, q2]]).

        Raises
        ------
        NotImplementedError
            If the activation has no closed form (use ntktheory's quadrature instead).
        """
        if self.closed_form is None:
            raise NotImplementedError(
                f"activation {self.name!r} has no closed-form Gaussian expectations; "
                "use ntktheory's quadrature (the kernels do so automatically)."
            )
        return _closed_forms.evaluate(self.closed_form, q1, q2, q12, self.param_value)

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in self.params)
        return f"Activation({self.name!r}{', ' + params if params else ''}: phi(x) = {self.expression})"


ActivationSpec = str | Activation


# ---------------------------------------------------------------------- sympy helpers
def _autograd_convention(expr: sympy.Expr) -> sympy.Expr:
    """Derivatives at kinks as autograd takes them: Heaviside(0) = 0, Dirac masses dropped."""
    expr = expr.replace(sympy.DiracDelta, lambda *args: sympy.S.Zero)
    expr = expr.replace(sympy.Heaviside, lambda arg, *rest: sympy.Heaviside(arg, 0))
    return expr


def _kink_points(expr: sympy.Expr) -> tuple[float, ...]:
    """Real roots of the arguments of non-smooth functions and of Piecewise conditions."""
    args: list[sympy.Expr] = []
    for node in sympy.preorder_traversal(expr):
        if isinstance(node, (sympy.Abs, sympy.sign, sympy.Heaviside)):
            args.append(node.args[0])
        elif isinstance(node, (sympy.Max, sympy.Min)):
            first, *rest = node.args
            args.extend(first - other for other in rest)
        elif isinstance(node, sympy.Piecewise):
            for _, cond in node.args:
                if isinstance(cond, sympy.core.relational.Relational):
                    args.append(cond.lhs - cond.rhs)
    points: set[float] = set()
    for arg in args:
        if not arg.has(x):
            continue
        try:
            roots = sympy.solve(sympy.Eq(arg, 0), x)
        except (NotImplementedError, TypeError, ValueError):
            continue
        for root in roots:
            if root.is_real:
                points.add(float(root))
    return tuple(sorted(points))


# ---------------------------------------------------------------------- registry
_STABLE_SOFTPLUS = (
    "max(x, 0.0) + math.log1p(math.exp(-abs(x)))",
    "0.5 * (1.0 + math.tanh(0.5 * x))",
    "0.25 * (1.0 - math.tanh(0.5 * x) ** 2)",
)


def _registry() -> dict[str, Callable[..., Activation]]:
    """Registry name -> factory; a factory's keyword arguments (with their defaults) are the
    activation's parameters, the one place that names and defaults are defined."""
    half = sympy.Rational(1, 2)
    return {
        "relu": lambda: Activation("relu", sympy.Max(x, 0), closed_form=_closed_forms.relu),
        "leaky_relu": lambda **params: leaky_relu(**params),
        "abs": lambda: Activation("abs", sympy.Abs(x), closed_form=_closed_forms.abs_),
        "erf": lambda: Activation("erf", sympy.erf(x), closed_form=_closed_forms.erf),
        "tanh": lambda: Activation("tanh", sympy.tanh(x)),
        # sigmoid(x) = (1 + tanh(x/2)) / 2: the same function, without overflow in exp(-x).
        "sigmoid": lambda: Activation("sigmoid", half * (1 + sympy.tanh(x / 2))),
        "gelu": lambda: Activation(
            "gelu", x * half * (1 + sympy.erf(x / sympy.sqrt(2))), closed_form=_closed_forms.gelu
        ),
        "softplus": lambda: Activation("softplus", sympy.log(1 + sympy.exp(x)), code=_STABLE_SOFTPLUS),
        "swish": lambda: Activation("swish", x * half * (1 + sympy.tanh(x / 2))),
        "sin": lambda: Activation("sin", sympy.sin(x), closed_form=_closed_forms.sin),
        "identity": lambda: Activation("identity", x, closed_form=_closed_forms.identity),
        "step": lambda: Activation("step", sympy.Heaviside(x, 0), closed_form=_closed_forms.step),
    }


_REGISTRY = _registry()


def registry_names() -> tuple[str, ...]:
    """Names accepted by :func:`get_activation` (besides expressions)."""
    return tuple(_REGISTRY)


def registry_defaults() -> dict[str, dict[str, float]]:
    """Every registry name with its parameters and their default values.

    Derived from the registry itself, so that other packages (e.g. empirical's torch translation)
    take names and defaults from here instead of repeating them.

    Examples
    --------
    >>> registry_defaults()["leaky_relu"], registry_defaults()["relu"]
    ({'negative_slope': 0.01}, {})
    """
    return {name: dict(_cached_registry_activation(name).params) for name in _REGISTRY}


def registry_activation(name: str, **params: float) -> Activation:
    """The registry activation ``name`` with ``params`` (defaults from :func:`registry_defaults`).

    Parameters
    ----------
    name
        A registry name (see :func:`registry_names`).
    **params
        Parameters of that activation, e.g. ``negative_slope=0.1`` for ``"leaky_relu"``.

    Raises
    ------
    ValueError
        If ``name`` is not a registry name.
    TypeError
        If a parameter is not one of that activation's (see :func:`registry_defaults`).

    Examples
    --------
    >>> registry_activation("leaky_relu", negative_slope=0.2).params
    (('negative_slope', 0.2),)
    """
    if name not in _REGISTRY:
        raise _unknown_name(name)
    unknown = sorted(set(params) - set(registry_defaults()[name]))
    if unknown:
        allowed = ", ".join(registry_defaults()[name]) or "none"
        raise TypeError(f"activation {name!r} has no parameter {unknown[0]!r}; its parameters: {allowed}.")
    return _REGISTRY[name](**params) if params else _cached_registry_activation(name)


def leaky_relu(negative_slope: float = 0.01) -> Activation:
    """Leaky relu, phi(x) = x for x > 0 and ``negative_slope * x`` otherwise (torch's default 0.01).

    Examples
    --------
    >>> leaky_relu(negative_slope=0.1).params
    (('negative_slope', 0.1),)
    """
    a = check_real("negative_slope", negative_slope)
    expr = sympy.Piecewise((x, x > 0), (sympy.Float(a) * x, True))
    return Activation("leaky_relu", expr, params=(("negative_slope", a),), closed_form=_closed_forms.leaky_relu)


# Friendly names allowed inside expressions, e.g. "relu(x) + 0.1*x".
_EXPRESSION_NAMES = {
    "x": x,
    "relu": lambda a: sympy.Max(a, 0),
    "sigmoid": lambda a: 1 / (1 + sympy.exp(-a)),
    "softplus": lambda a: sympy.log(1 + sympy.exp(a)),
    "step": lambda a: sympy.Heaviside(a, 0),
}


#: A bare name (no operators, no call): an unknown registry name rather than an expression.
_BARE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")
#: Radii r (growth from |x| <= r to |x| <= 2r, the first r where phi is finite), and the log(1 + |phi|)
#: that phi must exceed at 2r before growth like exp(c x^2) is refused.
_GROWTH_RADII = (10.0, 5.0, 2.5)
_GROWTH_LOG_LIMIT = 20.0


def _suggestion(name: str) -> str | None:
    """A registry name close to ``name`` (case, '-' for '_', one typo), or None."""
    key = name.lower().replace("-", "_")
    if key in _REGISTRY:
        return key
    close = difflib.get_close_matches(key, list(_REGISTRY), n=1, cutoff=0.75)
    return close[0] if close else None


def _unknown_name(text: str) -> ValueError:
    guess = _suggestion(text)
    hint = f" (did you mean {guess!r}? names are lower case)" if guess and guess == text.lower() else (
        f" (did you mean {guess!r}?)" if guess else "")
    return ValueError(
        f"unknown activation {text!r}{hint}; the registry has {', '.join(registry_names())}; "
        "an expression in x such as 'x*tanh(x)' or '0.5*relu(x) + sin(x)' is accepted too."
    )


def _check_growth(text: str, grid: np.ndarray, phi: np.ndarray) -> None:
    """Refuse phi growing like exp(c x^2) or faster: its Gaussian expectations diverge.

    E[phi(u)^2] for u ~ N(0, q) is finite for every q only if log|phi(x)| = o(x^2). The test
    compares M(r) = max_{|x| <= r} log(1 + |phi(x)|) at r and 2 r (r = 10, or smaller where phi
    overflows there): quadratic growth quadruples it, exponential growth (exp(x), cosh(x)^3)
    doubles it, polynomials barely move it.
    """
    with np.errstate(over="ignore", invalid="ignore"):
        size = np.log1p(np.abs(phi))
    for r in _GROWTH_RADII:
        inner = float(np.max(size[np.abs(grid) <= r]))
        outer = float(np.max(size[np.abs(grid) <= 2 * r]))
        if np.isfinite(inner):
            break
    else:
        return  # not finite near 0: the finiteness check reports it
    if outer <= _GROWTH_LOG_LIMIT or (outer < np.inf and np.log2(outer / max(inner, 1e-300)) <= 1.75):
        return
    reach = "overflows float64" if outer == np.inf else f"about exp({outer:.3g})"
    raise ValueError(
        f"activation {text!r} grows like exp(c x^2) or faster (|phi| reaches about exp({inner:.3g}) at |x| = {r:g} "
        f"and {reach} at |x| = {2 * r:g}): E[phi(u)^2] is infinite for Gaussian u of large enough variance, so "
        "its NNGP and NTK do not exist. Use an activation that grows at most exponentially, e.g. 'exp(x)' or 'x**3'."
    )


@functools.lru_cache(maxsize=256)
def from_expression(text: str) -> Activation:
    """Build an activation from a sympy-parsable expression in ``x``.

    Parameters
    ----------
    text
        e.g. ``"x*tanh(x)"``, ``"log(1+exp(x))"``, ``"Max(x, 0) + 0.1*sin(x)"``. Besides sympy's
        functions, ``relu``, ``sigmoid``, ``softplus`` and ``step`` may be used.

    Raises
    ------
    ValueError
        If the text is a name that is not in the registry (with a suggestion for a near miss such
        as ``"Tanh"``), does not parse, has symbols other than ``x``, calls unknown functions, uses
        a function numba cannot compile, is not real and finite on [-20, 20], or grows like
        exp(c x^2) or faster (its Gaussian expectations would be infinite).

    Examples
    --------
    >>> from_expression("x*tanh(x)").name
    'x*tanh(x)'
    >>> from_expression("Tanh")
    Traceback (most recent call last):
        ...
    ValueError: unknown activation 'Tanh' (did you mean 'tanh'? names are lower case); the registry has ...
    """
    if _BARE_NAME.match(text) and text != "x":
        named = getattr(sympy, text, None)
        if isinstance(named, sympy.FunctionClass) or text in ("relu", "sigmoid", "softplus", "step"):
            raise ValueError(f"activation {text!r} is a function name; apply it to x: '{text}(x)'.")
        raise _unknown_name(text)
    try:
        expr = sympy.parse_expr(text, local_dict=dict(_EXPRESSION_NAMES), evaluate=True)
    except (sympy.SympifyError, SyntaxError, TypeError, ValueError, AttributeError) as err:
        raise ValueError(
            f"activation {text!r} is not a known name and does not parse as an expression in x: {err}"
        ) from err
    if not isinstance(expr, sympy.Expr):
        raise ValueError(f"activation {text!r} must be an expression in x, got {type(expr).__name__}.")
    unknown = sorted(str(f.func) for f in expr.atoms(AppliedUndef))
    if unknown:
        guesses = [g for g in (_suggestion(u) or (u.lower() if hasattr(sympy, u.lower()) else None)
                               for u in unknown) if g]
        hint = f" (did you mean {', '.join(repr(g + '(x)') for g in guesses)}?)" if guesses else ""
        raise ValueError(
            f"activation {text!r} calls unknown function(s) {', '.join(unknown)}{hint}; use sympy functions "
            f"(tanh, exp, log, erf, Max, Abs, ...) or the registry names {', '.join(registry_names())}."
        )
    others = sorted(str(s) for s in expr.free_symbols - {x})
    if others:
        raise ValueError(
            f"activation {text!r} has free symbol(s) {', '.join(others)} besides x; substitute numbers for them."
        )
    act = Activation(text, expr)
    grid = np.linspace(-20.0, 20.0, 4001)
    try:
        values = [act.phi(grid), act.dphi(grid), act.d2phi(grid)]
    except Exception as err:  # numba typing errors have many classes; all mean "cannot compile"
        raise ValueError(f"activation {text!r} cannot be compiled with numba: {str(err).splitlines()[0]}") from err
    for label, vals in zip(("phi", "phi'", "phi''"), values):
        if np.isnan(vals).any():
            raise ValueError(
                f"activation {text!r}: {label} is not real at x = {float(grid[np.isnan(vals)][0])!r}; "
                "activations must be real-valued on the whole real line."
            )
    _check_growth(text, grid, values[0])
    for label, vals in zip(("phi", "phi'", "phi''"), values):
        bad = ~np.isfinite(vals)
        if bad.any():
            raise ValueError(
                f"activation {text!r}: {label} is not real and finite at x = {float(grid[bad][0])!r}; "
                "activations must be real-valued on the whole real line."
            )
    return act


def get_activation(spec: ActivationSpec) -> Activation:
    """Resolve a registry name, an :class:`Activation`, or an expression to an Activation.

    Raises
    ------
    TypeError
        If ``spec`` is neither a string nor an Activation.
    ValueError
        If the string is neither a registry name nor a valid expression (see :func:`from_expression`).
    """
    if isinstance(spec, Activation):
        return spec
    if not isinstance(spec, str):
        raise TypeError(
            f"`activation` must be a registry name, an Activation or an expression string; got {spec!r} "
            f"of type {type(spec).__name__}."
        )
    key = spec.strip()
    if key in _REGISTRY:
        return _cached_registry_activation(key)
    return from_expression(key)


@functools.cache
def _cached_registry_activation(name: str) -> Activation:
    return _REGISTRY[name]()
