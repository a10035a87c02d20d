"""Finite-width predictions for the dispersion of the NTK diagonal of ReLU networks.

Two results are implemented, each with its assumptions stated:

1. **Hanin & Nica 2019** (arXiv:1909.05989, Theorem 1, eq. (8)-(9)): for a ReLU network at the
   edge of chaos (He initialisation sigma_w^2 = 2, zero biases), hidden widths n_1..n_L, a fixed
   input x != 0 and a scalar output,

       E[Theta(x, x)^2] / E[Theta(x, x)]^2  ~  exp(5 beta),   beta = sum_l 1 / n_l,

   where ``~`` means "bounded above and below by universal constants times", with corrections
   O(sum_l 1/n_l^2), in the regime of large widths with beta held fixed. It is a scaling law, not
   an equality: Monte Carlo at n = 32..128 gives an effective exponent log(ratio)/beta of about
   3.1-3.7 for beta <= 0.5 (tests/ntktheory/test_finite_width.py). :func:`hanin_nica_ratio` returns
   exp(rate * beta) with the
   paper's rate 5 by default; compare measured data by fitting the rate (slope of log ratio
   against beta), not by asserting the constant.

2. **Phase dependence** (Seleznova & Kutyniok 2022, arXiv:2202.00553, who measure it by Monte Carlo
   in the standard parameterisation with zero-initialised trainable biases). Their paper gives no
   closed form for the dispersion itself; the prediction here is a leading-order model derived
   from two exact facts and Hanin & Nica's law:

   * With zero biases at initialisation a ReLU network is positively homogeneous in its weights.
     Writing a = sigma_w^2 / 2 and comparing with the same network at sigma_w^2 = 2, the
     weight-gradient part of Theta(x, x) is exactly a^L times its value at sigma_w^2 = 2 and the
     gradient with respect to the bias of layer l exactly a^(L + 1 - l) times it (pathwise, for
     every draw of the weights). In the NTK parameterisation with sigma_b = 0 the bias gradients
     vanish, so the relative dispersion does not depend on sigma_w^2 at all.
   * In the standard parameterisation the infinite-width means of the two parts follow the
     recursion of the README's conventions: weights W^1 = ``|x|^2``, W^{l+1} = n E[phi^2] + a W^l; biases B^1 = 1,
     B^{l+1} = 1 + a B^l, with q^1 = sigma_w^2 ``|x|^2`` / d and q^{l+1} = a q^l.

   Assumptions (leading order in 1/n, all terms driven by the same random backward pass): the
   weight part has Hanin & Nica's relative second moment exp(rate beta); the gradient with
   respect to the bias of hidden layer l is a squared back-propagated gradient norm through the
   L + 1 - l layers above it and gets exp(rate (L + 1 - l) / n) by the same law; the readout bias
   has gradient exactly 1; and the fluctuations of all terms are perfectly correlated. With m_i
   the infinite-width means and r_i the relative second moments of the terms,

       E[Theta^2] / E[Theta]^2  ~=  (sum_i m_i sqrt(r_i))^2 / (sum_i m_i)^2.

   Ordered phase (a < 1): the biases of the last layers dominate the mean and hardly fluctuate, so
   the dispersion tends to 1 + O(1/n) with depth; chaotic phase (a > 1): the weights and the
   biases of the first layers dominate, both with r ~ exp(rate beta), so the dispersion follows
   Hanin & Nica's law; the edge of chaos lies in between. This is the phase dependence Seleznova &
   Kutyniok report (Fig. 2: ~1.02 at sigma_w^2 = 1 for all depths, ~5 at depth 49, width 100 for
   sigma_w^2 >= 2). The perfect correlation makes it an upper estimate when the terms mix.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from ._validate import check_choice, check_int, check_positive

__all__ = [
    "hanin_nica_beta",
    "hanin_nica_ratio",
    "relu_ntk_mean_parts",
    "seleznova_kutyniok_dispersion",
]

#: Hanin & Nica's exponent: E[Theta^2]/E[Theta]^2 ~ exp(5 beta).
HANIN_NICA_RATE = 5.0


def _widths(widths: object) -> tuple[int, ...]:
    if isinstance(widths, (int, np.integer)) and not isinstance(widths, bool):
        widths = (widths,)
    if isinstance(widths, (str, bytes)) or not isinstance(widths, (Sequence, np.ndarray)):
        raise TypeError(f"`widths` must be a sequence of hidden-layer widths (integers), got {widths!r}.")
    if len(widths) == 0:
        raise ValueError(f"`widths` must list at least one hidden layer, got {widths!r}.")
    return tuple(check_int("widths", int(w) if isinstance(w, np.integer) else w, minimum=1) for w in widths)


def hanin_nica_beta(widths: Sequence[int] | int) -> float:
    """beta = sum_l 1 / n_l over the hidden widths (Hanin & Nica 2019, arXiv:1909.05989, eq. (5)).

    Examples
    --------
    >>> hanin_nica_beta([100] * 20)
    0.2
    """
    return math.fsum(1.0 / n for n in _widths(widths))


def hanin_nica_ratio(widths: Sequence[int] | int, *, rate: float = HANIN_NICA_RATE) -> float:
    """Leading-order E[Theta(x,x)^2] / E[Theta(x,x)]^2 = exp(rate * beta) of a ReLU network.

    Hanin & Nica 2019, arXiv:1909.05989, Theorem 1: the ratio is ``exp(5 beta)`` up to universal
    multiplicative constants and corrections O(sum 1/n_l^2). Assumptions: ReLU, sigma_w^2 = 2,
    zero biases, any parameterisation (homogeneity makes the ratio independent of sigma_w^2 when
    there are no bias gradients), scalar output, fixed input x != 0, widths large with beta fixed.
    The relative variance Var[Theta] / E[Theta]^2 is this minus 1.

    Parameters
    ----------
    widths
        Hidden-layer widths n_1..n_L (or one width for a single hidden layer).
    rate
        Exponent per unit beta; 5 in the paper. Fit it from data (log ratio vs beta) to compare.

    Returns
    -------
    float

    Examples
    --------
    >>> round(hanin_nica_ratio([64] * 16), 6)   # beta = 0.25
    3.490343
    """
    rate = check_positive("rate", rate)
    return math.exp(rate * hanin_nica_beta(widths))


def relu_ntk_mean_parts(
    depth: int,
    *,
    sigma_w2: float,
    width: int,
    x_norm2: float = 1.0,
    in_features: int = 1,
    parameterization: str = "standard",
) -> tuple[float, float]:
    """Infinite-width E[Theta(x, x)] of a zero-bias-initialised ReLU net, split into weight and bias parts.

    Parameters
    ----------
    depth
        Hidden layers L >= 1 (the readout layer is L + 1).
    sigma_w2
        Weight variance sigma_w^2 > 0.
    width
        Hidden width n (enters the standard parameterisation).
    x_norm2, in_features
        ``|x|^2`` and the input dimension d.
    parameterization
        ``"standard"`` (trainable biases initialised at 0, as in the README's conventions) or ``"ntk"`` (sigma_b = 0:
        bias gradients are 0).

    Returns
    -------
    (weights, biases) : tuple of float
        Their sum is Theta^{L+1}(x, x) of the README's conventions with sigma_b = 0.

    Examples
    --------
    >>> w, b = relu_ntk_mean_parts(1, sigma_w2=2.0, width=10, x_norm2=4.0, in_features=4)
    >>> w, b   # W^2 = n q^1 / 2 + |x|^2 = 10 + 4, B^2 = 1 + 1
    (14.0, 2.0)
    """
    depth = check_int("depth", depth, minimum=1)
    sw2 = check_positive("sigma_w2", sigma_w2)
    n = check_int("width", width, minimum=1)
    x2 = check_positive("x_norm2", x_norm2)
    d = check_int("in_features", in_features, minimum=1)
    check_choice("parameterization", parameterization, ("standard", "ntk"))
    a = sw2 / 2.0
    q = sw2 * x2 / d
    if parameterization == "ntk":
        weights = q  # Theta^1 = Sigma^1
        for _ in range(depth):
            q = a * q  # Sigma^{l+1} = sigma_w^2 q / 2
            weights = q + a * weights
        return weights, 0.0
    weights, biases = x2, 1.0
    for _ in range(depth):
        weights = n * q / 2.0 + a * weights
        biases = 1.0 + a * biases
        q = a * q
    return weights, biases


def seleznova_kutyniok_dispersion(
    depth: int,
    *,
    sigma_w2: float,
    width: int,
    x_norm2: float = 1.0,
    in_features: int = 1,
    parameterization: str = "standard",
    rate: float = HANIN_NICA_RATE,
) -> float:
    """Leading-order E[Theta(x,x)^2] / E[Theta(x,x)]^2 of a ReLU net across the phases.

    ``(sum_i m_i sqrt(r_i))^2 / (sum_i m_i)^2`` over the weight part and the bias of each layer,
    with means m_i from the recursion of the README's conventions and relative second moments r_i from Hanin &
    Nica's law per layer traversed; see the module docstring for the derivation and its
    assumptions (zero-initialised biases, ReLU homogeneity, perfectly correlated fluctuations).
    Ordered phase (sigma_w^2 < 2): tends to 1 with depth; chaotic (> 2): tends to Hanin & Nica's
    exp(rate beta); NTK parameterisation with sigma_b = 0: equal to it for every sigma_w^2.
    Compare with Seleznova & Kutyniok 2022 (arXiv:2202.00553, Fig. 2; Monte Carlo, standard
    parameterisation).

    Parameters
    ----------
    depth, sigma_w2, width, x_norm2, in_features, parameterization
        As in :func:`relu_ntk_mean_parts`; all hidden layers have ``width`` units.
    rate
        Hanin & Nica's exponent per unit of depth / width (5 in the paper; fit it from data).

    Returns
    -------
    float

    Examples
    --------
    >>> ordered = seleznova_kutyniok_dispersion(49, sigma_w2=1.0, width=100, in_features=100)
    >>> chaotic = seleznova_kutyniok_dispersion(49, sigma_w2=3.0, width=100, in_features=100)
    >>> round(ordered, 3), round(chaotic / hanin_nica_ratio([100] * 49), 2)
    (1.053, 0.99)
    """
    rate = check_positive("rate", rate)
    weights, _ = relu_ntk_mean_parts(depth, sigma_w2=sigma_w2, width=width, x_norm2=x_norm2,
                                     in_features=in_features, parameterization=parameterization)
    a = sigma_w2 / 2.0
    means = [weights]
    roots = [math.exp(0.5 * rate * depth / width)]
    if parameterization == "standard":
        for above in range(depth + 1):  # bias of layer L + 1 - above; the readout has above = 0
            means.append(a**above)
            roots.append(math.exp(0.5 * rate * above / width))
    m = np.asarray(means)
    return float((m @ np.asarray(roots)) ** 2 / m.sum() ** 2)
