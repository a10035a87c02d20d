"""Training with measurements: a network and its linearisation, side by side.

Conventions (Lee et al. 2019, arXiv:1902.06720, eq. (3)-(9)):

* MSE loss ``L = (1/2N) sum_i |f(x_i) - y_i|^2`` over the N training points (or the B points of a
  minibatch); cross-entropy ``L = (1/N) sum_i CE(f(x_i), y_i)``.
* Gradient descent ``theta <- theta - lr grad L``. For the linearised model this is, in function
  space, ``f(X) - Y <- (I - (lr/N) Theta)(f(X) - Y)`` with Theta the (N k) x (N k) NTK Gram of the
  training inputs, which converges if and only if ``lr < 2 N / lambda_max(Theta)``: the critical
  learning rate. Equivalently, the loss Hessian of the linear model is ``J^T J / N`` with top
  eigenvalue ``lambda_max(Theta) / N``, and the critical rate is 2 / (that eigenvalue).
  ``lr_factor=c`` sets ``lr = c * 2 N / lambda_max(Theta_0)``: c < 1 converges, c > 1 diverges
  (for the linearised model; for the network approximately, more so the wider it is). The same
  unit is used for cross-entropy.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import time
from collections.abc import Sequence

import numpy as np
import torch
import xarray as xr
from torch import nn
from torch.func import functional_call, jvp

from ntktheory._validate import check_choice, check_int, check_positive

from ._device import exact_matmul, provenance
from ._ntk import as_inputs, ntk, sample_shape

__all__ = ["Linearized", "critical_learning_rate", "train"]

LOSSES = ("mse", "cross_entropy")


class Linearized(nn.Module):
    r"""First-order Taylor model of a network around its current parameters theta_0.

    ``f_lin(x; theta) = f(x; theta_0) + J(x; theta_0) (theta - theta_0)``, evaluated with one
    ``torch.func.jvp`` (no Jacobian is formed). Its trainable parameters are the displacements
    ``theta - theta_0`` (initially zero), registered under the network's parameter names with
    dots replaced by ``"__"``.

    Examples
    --------
    >>> import torch, empirical
    >>> net = empirical.MLP(2, width=8, depth=1, activation="tanh", device="cpu")
    >>> lin = empirical.Linearized(net)
    >>> x = torch.randn(3, 2, dtype=torch.float64)
    >>> bool(torch.equal(lin(x), net(x)))
    True
    """

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self._model = copy.deepcopy(model)
        for p in self._model.parameters():
            p.requires_grad_(False)
        self._names = [k for k, v in model.named_parameters() if v.requires_grad]
        self._theta0 = {k: v.detach().clone() for k, v in model.named_parameters() if v.requires_grad}
        self.delta = nn.ParameterDict(
            {k.replace(".", "__"): nn.Parameter(torch.zeros_like(v)) for k, v in self._theta0.items()}
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        tangents = {k: self.delta[k.replace(".", "__")] for k in self._names}

        def f(params):
            return functional_call(self._model, params, (x,))

        out, tangent_out = jvp(f, (self._theta0,), (tangents,))
        return out + tangent_out


def _flat_ntk(model: nn.Module, x: torch.Tensor, x2: torch.Tensor | None = None, method: str = "auto") -> torch.Tensor:
    """Full NTK block flattened to (N1 k, N2 k)."""
    full = ntk(model, x, x2, method=method, outputs="full")
    n1, n2, k, _ = full.shape
    return full.permute(0, 2, 1, 3).reshape(n1 * k, n2 * k)


def critical_learning_rate(model: nn.Module, x_train: torch.Tensor | np.ndarray, *, method: str = "auto") -> float:
    r"""``2 N / lambda_max(Theta)``: the largest stable GD rate for the loss (1/2N)|f(X) - Y|^2.

    Theta is the full (N k) x (N k) empirical NTK Gram of the N training inputs at the current
    parameters; see the module docstring for the derivation.

    Examples
    --------
    >>> import torch, empirical
    >>> net = empirical.MLP(2, width=16, depth=1, activation="relu", device="cpu")
    >>> x = torch.randn(8, 2, dtype=torch.float64)
    >>> lam = torch.linalg.eigvalsh(empirical.ntk(net, x)).max().item()
    >>> abs(empirical.critical_learning_rate(net, x) - 2 * 8 / lam) < 1e-9
    True
    """
    theta = _flat_ntk(model, x_train, method=method)
    n = theta.shape[0] // _out_features(model, x_train)
    lam = torch.linalg.eigvalsh(theta).max().item()
    return 2.0 * n / lam


def _out_features(model: nn.Module, x) -> int:
    p = next(model.parameters())
    xt = as_inputs(p.dtype, p.device, "x_train", x, None)
    with torch.no_grad():
        return model(xt[:1]).shape[-1]


def _loss_and_grad_f(kind: str, f: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Loss value and dL/df (both on the given points, normalised by their number)."""
    n = f.shape[0]
    if kind == "mse":
        r = f - y
        return 0.5 * (r * r).sum() / n, r / n
    logp = torch.log_softmax(f, dim=-1)
    loss = -logp.gather(1, y[:, None]).sum() / n
    g = torch.softmax(f, dim=-1)
    g = g - nn.functional.one_hot(y, f.shape[-1]).to(f.dtype)
    return loss, g / n


def _default_snapshots(steps: int) -> list[int]:
    pts = {0, steps}
    if steps:
        pts.update(round(v) for v in np.geomspace(1, steps, num=min(steps, 10)))
    return sorted(pts)


def train(
    model: nn.Module,
    x_train: torch.Tensor | np.ndarray,
    y_train: torch.Tensor | np.ndarray,
    *,
    steps: int,
    lr: float | None = None,
    lr_factor: float | None = None,
    loss: str = "mse",
    batch_size: int | None = None,
    x_test: torch.Tensor | np.ndarray | None = None,
    snapshot_steps: Sequence[int] | None = None,
    measure_ntk: bool = True,
    linearized: bool = True,
    ntk_method: str = "auto",
    divergence_factor: float = 1e6,
    seed: int = 0,
    inplace: bool = False,
) -> xr.Dataset:
    r"""Train a network by (full-batch or minibatch) gradient descent, measuring as it goes.

    The linearised network (:class:`Linearized`; first-order Taylor model at initialisation) is
    trained alongside with the same data, minibatches and rate. It is evolved in function space,
    ``f_lin(x) <- f_lin(x) - lr Theta_0(x, X_B) dL/df(X_B)``, which is exactly gradient descent on
    its parameters (the model is linear in them) at the cost of one NTK block at step 0.

    Parameters
    ----------
    model
        The network; a copy is trained unless ``inplace=True``.
    x_train, y_train
        Inputs (N, d); targets (N, k) or (N,) for MSE, integer labels (N,) for cross-entropy.
    steps
        Number of updates, >= 1.
    lr, lr_factor
        Exactly one: an absolute learning rate, or a factor of the critical rate
        ``2 N / lambda_max(Theta_0)`` (see :func:`critical_learning_rate`).
    loss
        ``"mse"`` ((1/2N) sum ``|f - y|^2``) or ``"cross_entropy"``.
    batch_size
        None for full-batch GD; else SGD on minibatches of this size drawn without replacement
        (reshuffled every epoch, from ``seed``).
    x_test
        Optional test inputs (M, d) whose outputs are recorded.
    snapshot_steps
        Steps (0..steps) at which to measure; default 0, ``steps`` and ~10 log-spaced steps.
    measure_ntk
        Record the empirical NTK of the training inputs at each snapshot.
    linearized
        Train the linearised model alongside.
    ntk_method
        Method of :func:`ntk` for all NTK measurements.
    divergence_factor
        The run counts as diverged when the loss is not finite or exceeds
        ``divergence_factor * (loss_0 + 1)``; training of that model stops, later snapshots are NaN,
        and the step and loss are recorded. Never raised.
    seed
        Seed of the minibatch order.
    inplace
        Train ``model`` itself.

    Returns
    -------
    xarray.Dataset
        On dim ``step`` (snapshot steps): ``loss``, ``loss_linearized`` (full training loss),
        ``output_train``/``output_train_linearized`` (step, x_train, output), ``output_test``/
        ``output_test_linearized`` (step, x_test, output), ``function_distance_train``/``_test``
        (RMS over points and outputs of f - f_lin), ``param_relative_change``
        (``|theta_t - theta_0|`` / ``|theta_0|``), ``param_relative_change_layer`` (step, parameter),
        ``ntk_empirical`` (step, x1, x2; mean over outputs), ``ntk_relative_change``
        (Frobenius, relative to step 0), ``diverged``/``diverged_linearized`` (bool); on dim
        ``iteration``: ``loss_trace`` (the loss each update was computed from). attrs: lr,
        lr_critical, lambda_max, divergence step and loss (-1 and NaN if none), seconds, and the
        provenance of :func:`ntktheory._provenance.provenance` (``config``: the network's and the
        training's arguments as JSON; ``device``, ``dtype``, ``seeds``: the model's seed).

    Examples
    --------
    >>> import torch, empirical
    >>> net = empirical.MLP(2, width=32, depth=1, activation="tanh", device="cpu")
    >>> x = torch.randn(8, 2, dtype=torch.float64); y = torch.sin(x[:, :1])
    >>> ds = empirical.train(net, x, y, steps=20, lr_factor=0.5, snapshot_steps=[0, 20])
    >>> bool(ds["loss"][1] < ds["loss"][0])
    True
    """
    spec = _TrainSpec.from_arguments(
        model, x_train, y_train, steps=steps, lr=lr, lr_factor=lr_factor, loss=loss, batch_size=batch_size,
        x_test=x_test, snapshot_steps=snapshot_steps, measure_ntk=measure_ntk, linearized=linearized,
        ntk_method=ntk_method, divergence_factor=divergence_factor, seed=seed, inplace=inplace)
    started = time.perf_counter()
    theta0_all, lam_max, lr_critical = _initial_kernel(spec)
    lr = spec.lr if spec.lr is not None else spec.lr_factor * lr_critical
    recorder = _Recorder(spec)
    stepper = _Stepper(spec, lr, theta0_all)
    for step in range(spec.steps + 1):
        recorder.snapshot_due(step, stepper.f_lin)
        if step == spec.steps or recorder.all_diverged:
            if recorder.pending and step < spec.steps:
                continue  # keep recording NaN snapshots until the last requested step
            break
        idx = stepper.next_batch()
        if recorder.network.alive:
            value = stepper.network_loss(idx)
            lv = value.item()
            recorder.loss_trace[step] = lv
            if not recorder.network.diverges(step, lv):
                stepper.network_update(value)
        if spec.linearized and recorder.linearized.alive:
            lv_lin, g = stepper.linear_loss(idx)
            if not recorder.linearized.diverges(step, lv_lin):
                stepper.linear_update(idx, g)
    seconds = time.perf_counter() - started
    return _dataset(recorder.rec, list(spec.snapshots), recorder.loss_trace, spec.n,
                    None if spec.x_test is None else spec.x_test.shape[0], spec.k, spec.params,
                    spec.measure_ntk, spec.linearized, spec.net, dict(
                        lr=lr, lr_factor=float("nan") if spec.lr_factor is None else spec.lr_factor,
                        lr_critical=lr_critical, lambda_max=lam_max, loss=spec.loss,
                        batch_size=-1 if spec.batch_size is None else spec.batch_size, steps=spec.steps,
                        seed=spec.seed, divergence_factor=spec.divergence_factor,
                        diverged_step=recorder.network.step, diverged_loss=recorder.network.loss,
                        diverged_step_linearized=recorder.linearized.step,
                        diverged_loss_linearized=recorder.linearized.loss,
                        seconds=seconds, ntk_method=spec.ntk_method))


@dataclasses.dataclass(frozen=True, eq=False)
class _TrainSpec:
    """The checked arguments of :func:`train`, with the network to train and its data as tensors.

    Attributes
    ----------
    net
        The network that is trained (``model`` itself or a copy).
    params
        Its trainable ``(name, parameter)`` pairs, in ``named_parameters`` order (at least one).
    x, y
        Training inputs (N, ...) and targets (N, k) (MSE) or labels (N,) (cross-entropy), on the
        parameters' dtype and device.
    x_test
        Test inputs (M, ...) or None.
    f0_train
        The network's outputs on ``x`` at initialisation, (N, k).
    steps, lr, lr_factor, loss, batch_size, measure_ntk, linearized, ntk_method, divergence_factor, seed
        As for :func:`train` (exactly one of ``lr`` and ``lr_factor`` is not None).
    snapshots
        The sorted distinct snapshot steps.
    """

    net: nn.Module
    params: list[tuple[str, nn.Parameter]]
    x: torch.Tensor
    y: torch.Tensor
    x_test: torch.Tensor | None
    f0_train: torch.Tensor
    steps: int
    lr: float | None
    lr_factor: float | None
    loss: str
    batch_size: int | None
    snapshots: tuple[int, ...]
    measure_ntk: bool
    linearized: bool
    ntk_method: str
    divergence_factor: float
    seed: int

    @property
    def n(self) -> int:
        """Number of training points."""
        return self.x.shape[0]

    @property
    def k(self) -> int:
        """Number of outputs."""
        return self.f0_train.shape[-1]

    @classmethod
    def from_arguments(cls, model, x_train, y_train, *, steps, lr, lr_factor, loss, batch_size, x_test,
                       snapshot_steps, measure_ntk, linearized, ntk_method, divergence_factor, seed,
                       inplace) -> _TrainSpec:
        """Check the arguments of :func:`train` (in its order) and copy the model unless ``inplace``.

        Parameters
        ----------
        model, x_train, y_train, steps, lr, lr_factor, loss, batch_size, x_test, snapshot_steps
            As for :func:`train`.
        measure_ntk, linearized, ntk_method, divergence_factor, seed, inplace
            As for :func:`train`.

        Returns
        -------
        _TrainSpec

        Raises
        ------
        TypeError, ValueError
            As documented by :func:`train`.
        """
        if not isinstance(model, nn.Module):
            raise TypeError(f"`model` must be a torch.nn.Module; got {model!r} of type {type(model).__name__}.")
        steps = check_int("steps", steps)
        if steps < 1:
            raise ValueError(
                f"`steps` must be an integer >= 1 (the number of updates); got {steps!r}. To measure the network at "
                "initialisation without training, call empirical.ntk / empirical.nngp on it."
            )
        loss = check_choice("loss", loss, LOSSES)
        if (lr is None) == (lr_factor is None):
            raise ValueError(
                f"pass exactly one of `lr` (absolute) and `lr_factor` (relative to 2N/lambda_max); got "
                f"lr={lr!r}, lr_factor={lr_factor!r}."
            )
        if lr is not None:
            lr = check_positive("lr", lr)
        else:
            lr_factor = check_positive("lr_factor", lr_factor)
        divergence_factor = check_positive("divergence_factor", divergence_factor)
        seed = check_int("seed", seed, minimum=0)
        net = model if inplace else copy.deepcopy(model)
        params = [(k, p) for k, p in net.named_parameters() if p.requires_grad]
        if not params:
            raise ValueError("`model` has no trainable parameters (requires_grad).")
        dtype, device = params[0][1].dtype, params[0][1].device
        x = as_inputs(dtype, device, "x_train", x_train, sample_shape(net))
        n = x.shape[0]
        xt = None if x_test is None else as_inputs(dtype, device, "x_test", x_test, tuple(x.shape[1:]))
        with torch.no_grad():
            f0_train = net(x)
        k = f0_train.shape[-1]
        y = _targets(loss, y_train, n, k, dtype, device)
        if batch_size is not None:
            batch_size = check_int("batch_size", batch_size, minimum=1)
            if batch_size > n:
                raise ValueError(f"`batch_size` must be <= the number of training points {n}; got {batch_size!r}.")
        if snapshot_steps is None:
            snaps = _default_snapshots(steps)
        else:
            snaps = sorted({check_int("snapshot_steps", s, minimum=0) for s in snapshot_steps})
            if snaps and snaps[-1] > steps:
                raise ValueError(f"`snapshot_steps` must lie in 0..steps={steps}; got {snaps[-1]!r}.")
        return cls(net=net, params=params, x=x, y=y, x_test=xt, f0_train=f0_train, steps=steps, lr=lr,
                   lr_factor=lr_factor, loss=loss, batch_size=batch_size, snapshots=tuple(snaps),
                   measure_ntk=measure_ntk, linearized=linearized, ntk_method=ntk_method,
                   divergence_factor=divergence_factor, seed=seed)


def _initial_kernel(spec: _TrainSpec) -> tuple[torch.Tensor | None, float, float]:
    """The NTK block Theta_0(X and X*, X) at initialisation, when the run needs it, and its scale.

    Parameters
    ----------
    spec
        The run.

    Returns
    -------
    tuple
        ``(theta0_all, lambda_max, lr_critical)``: the flattened ((N + M) k, N k) block (None
        unless the linearised model is trained or ``lr_factor`` is given), the top eigenvalue of
        its training part and ``2 N / lambda_max`` (both NaN when the block is not computed).
    """
    if not (spec.linearized or spec.lr is None):
        return None, float("nan"), float("nan")
    x, n, k = spec.x, spec.n, spec.k
    x_all = x if spec.x_test is None else torch.cat([x, spec.x_test])
    with exact_matmul():
        full = ntk(spec.net, x_all, x, method=spec.ntk_method, outputs="full")  # (N+M, N, k, k)
    theta0_all = full.permute(0, 2, 1, 3).reshape(x_all.shape[0] * k, n * k)
    lam_max = torch.linalg.eigvalsh(theta0_all[: n * k]).max().item()
    return theta0_all, lam_max, 2.0 * n / lam_max


@dataclasses.dataclass
class _Divergence:
    """Divergence record of one model: the test of each update's loss, and where it failed.

    Attributes
    ----------
    factor
        ``divergence_factor`` of :func:`train`.
    loss0
        The loss of the first update (None before it).
    step, loss
        The step and loss at which the model diverged (-1 and NaN while it has not).
    """

    factor: float
    loss0: float | None = None
    step: int = -1
    loss: float = float("nan")

    @property
    def alive(self) -> bool:
        """True while the model has not diverged."""
        return self.step < 0

    def diverges(self, step: int, value: float) -> bool:
        """Test the loss ``value`` an update at ``step`` was computed from; record a divergence.

        Parameters
        ----------
        step
            The update's index.
        value
            Its loss (the first one tested becomes ``loss0``).

        Returns
        -------
        bool
            True, and the step and loss recorded, if ``value`` is not finite or exceeds
            ``factor * (loss0 + 1)``: the update must then not be applied.
        """
        if self.loss0 is None:
            self.loss0 = value
        if not math.isfinite(value) or value > self.factor * (self.loss0 + 1.0):
            self.step, self.loss = step, value
            return True
        return False


class _Stepper:
    """One optimisation step of the network and of its linearisation, and the minibatch order.

    The network takes a gradient step on its parameters; the linearised model a step in function
    space, ``f_lin <- f_lin - lr Theta_0(., X_B) dL/df(X_B)`` (see :func:`train`).

    Parameters
    ----------
    spec
        The run.
    lr
        The learning rate.
    theta0_all
        The flattened NTK block of :func:`_initial_kernel` (None unless the linearised model is
        trained or ``lr_factor`` is given).

    Attributes
    ----------
    f_lin
        The linearised model's outputs on the training then the test inputs, ((N + M), k),
        updated in place.
    """

    def __init__(self, spec: _TrainSpec, lr: float, theta0_all: torch.Tensor | None) -> None:
        self.spec, self.lr, self.theta0_all = spec, lr, theta0_all
        xt = spec.x_test
        with torch.no_grad():
            self.f_lin = torch.cat([spec.f0_train, spec.net(xt)]) if xt is not None else spec.f0_train.clone()
        self._gen = torch.Generator(device="cpu").manual_seed(spec.seed)
        self._order, self._cursor = torch.randperm(spec.n, generator=self._gen), 0

    def next_batch(self) -> torch.Tensor | None:
        """Indices of the next minibatch (None for full-batch GD), reshuffled every epoch.

        Returns
        -------
        torch.Tensor or None
            ``batch_size`` training indices, drawn without replacement within an epoch.
        """
        bs, n = self.spec.batch_size, self.spec.n
        if bs is None:
            return None
        if self._cursor + bs > n:
            self._order, self._cursor = torch.randperm(n, generator=self._gen), 0
        idx = self._order[self._cursor : self._cursor + bs].to(self.spec.x.device)
        self._cursor += bs
        return idx

    def _batch_targets(self, idx: torch.Tensor | None) -> torch.Tensor:
        return self.spec.y if idx is None else self.spec.y[idx]

    def network_loss(self, idx: torch.Tensor | None) -> torch.Tensor:
        """The network's loss on the batch, with its autograd graph.

        Parameters
        ----------
        idx
            Batch indices from :meth:`next_batch`.

        Returns
        -------
        torch.Tensor
            The scalar loss.
        """
        x = self.spec.x
        out = self.spec.net(x if idx is None else x[idx])
        return _loss_and_grad_f(self.spec.loss, out, self._batch_targets(idx))[0]

    def network_update(self, value: torch.Tensor) -> None:
        """``theta <- theta - lr grad value`` for every trainable parameter that ``value`` uses.

        Parameters
        ----------
        value
            The loss from :meth:`network_loss`.
        """
        params = self.spec.params
        grads = torch.autograd.grad(value, [p for _, p in params], allow_unused=True)
        with torch.no_grad():
            for (_, p), g in zip(params, grads):
                if g is not None:  # None: unused, e.g. NTK-parameterised biases at sigma_b = 0
                    p.sub_(self.lr * g)

    def linear_loss(self, idx: torch.Tensor | None) -> tuple[float, torch.Tensor]:
        """The linearised model's loss on the batch and dL/df there.

        Parameters
        ----------
        idx
            Batch indices from :meth:`next_batch`.

        Returns
        -------
        tuple
            ``(loss, dL/df)``: a float and a (B, k) tensor.
        """
        with torch.no_grad():
            fb = self.f_lin[: self.spec.n] if idx is None else self.f_lin[idx]
            value, g = _loss_and_grad_f(self.spec.loss, fb, self._batch_targets(idx))
            return value.item(), g

    def linear_update(self, idx: torch.Tensor | None, g: torch.Tensor) -> None:
        """``f_lin <- f_lin - lr Theta_0(., X_B) g`` on the training and test inputs, in place.

        Parameters
        ----------
        idx
            Batch indices from :meth:`next_batch`.
        g
            dL/df on the batch, from :meth:`linear_loss`.
        """
        n, k, theta = self.spec.n, self.spec.k, self.theta0_all
        with torch.no_grad():
            cols = theta if idx is None else theta.view(-1, n, k)[:, idx].reshape(-1, len(idx) * k)
            self.f_lin -= self.lr * (cols @ g.reshape(-1)).view(-1, k)


class _Recorder:
    """What :func:`train` records: the snapshots, the loss trace and the divergence records.

    At each snapshot step: the losses and outputs of both models, the relative parameter drift
    from initialisation (total and per parameter), the empirical NTK of the training inputs
    (``measure_ntk``) and whether each model has diverged; a diverged model's entries are NaN.

    Parameters
    ----------
    spec
        The run; the parameters at construction are the reference of the drift.

    Attributes
    ----------
    rec
        Lists per recorded quantity, one entry per snapshot taken (the layout ``_dataset`` reads).
    loss_trace
        The network's loss at each update (NaN after divergence).
    network, linearized
        The :class:`_Divergence` records of the two models.
    """

    def __init__(self, spec: _TrainSpec) -> None:
        self.spec = spec
        self._theta0 = [p.detach().clone() for _, p in spec.params]
        self._norm0 = [t.norm().item() for t in self._theta0]
        self._total0 = math.sqrt(sum(v * v for v in self._norm0))
        self.rec: dict[str, list] = {key: [] for key in (
            "loss", "loss_linearized", "output_train", "output_train_linearized", "output_test",
            "output_test_linearized", "param_relative_change", "param_relative_change_layer", "ntk_empirical",
            "diverged", "diverged_linearized")}
        self.loss_trace = np.full(spec.steps, np.nan)
        self.network = _Divergence(spec.divergence_factor)
        self.linearized = _Divergence(spec.divergence_factor)
        self._nan_out = torch.full((spec.n, spec.k), float("nan"), dtype=spec.x.dtype, device=spec.x.device)
        self._snaps = iter(spec.snapshots)
        self._next = next(self._snaps, None)

    @property
    def pending(self) -> bool:
        """True while snapshot steps remain."""
        return self._next is not None

    @property
    def all_diverged(self) -> bool:
        """True once every trained model has diverged."""
        return not self.network.alive and (not self.spec.linearized or not self.linearized.alive)

    def snapshot_due(self, step: int, f_lin: torch.Tensor) -> None:
        """Take the snapshot of ``step`` if it is a snapshot step.

        Parameters
        ----------
        step
            The number of updates made so far.
        f_lin
            The linearised model's current outputs (training then test inputs).
        """
        while self._next is not None and self._next == step:
            self._snapshot(f_lin)
            self._next = next(self._snaps, None)

    def _snapshot(self, f_lin: torch.Tensor) -> None:
        spec, rec, nan_out = self.spec, self.rec, self._nan_out
        net, x, xt, n, k = spec.net, spec.x, spec.x_test, spec.n, spec.k
        alive = self.network.alive
        with torch.no_grad():
            out_train = net(x) if alive else nan_out
            rec["loss"].append(_loss_and_grad_f(spec.loss, out_train, spec.y)[0].item() if alive else float("nan"))
            rec["output_train"].append(out_train.cpu().numpy())
            if xt is not None:
                rec["output_test"].append(net(xt).cpu().numpy() if alive else np.full((xt.shape[0], k), np.nan))
            changes = [(p.detach() - t0).norm().item() for (_, p), t0 in zip(spec.params, self._theta0)]
            rec["param_relative_change"].append(
                math.sqrt(sum(c * c for c in changes)) / self._total0 if alive else float("nan")
            )
            rec["param_relative_change_layer"].append(
                [c / v if v > 0 and alive else float("nan") for c, v in zip(changes, self._norm0)]
            )
        if spec.measure_ntk:
            rec["ntk_empirical"].append(
                ntk(net, x, method=spec.ntk_method).cpu().numpy() if alive else np.full((n, n), np.nan)
            )
        lin_alive = self.linearized.alive
        if spec.linearized:
            fl = f_lin[:n] if lin_alive else nan_out
            rec["loss_linearized"].append(
                _loss_and_grad_f(spec.loss, fl, spec.y)[0].item() if lin_alive else float("nan"))
            rec["output_train_linearized"].append(fl.cpu().numpy().copy())  # f_lin is updated in place
            if xt is not None:
                rec["output_test_linearized"].append(
                    f_lin[n:].cpu().numpy().copy() if lin_alive else np.full((xt.shape[0], k), np.nan)
                )
        rec["diverged"].append(not alive)
        rec["diverged_linearized"].append(spec.linearized and not lin_alive)


def _targets(loss: str, y_train, n: int, k: int, dtype, device) -> torch.Tensor:
    y = y_train.detach() if isinstance(y_train, torch.Tensor) else torch.as_tensor(np.asarray(y_train))
    if loss == "cross_entropy":
        if y.ndim != 1 or y.shape[0] != n or y.is_floating_point():
            raise ValueError(
                f"`y_train` for loss='cross_entropy' must be integer class labels of shape ({n},); "
                f"got shape {tuple(y.shape)!r} and dtype {y.dtype}."
            )
        if k < 2 or int(y.min()) < 0 or int(y.max()) >= k:
            raise ValueError(f"`y_train` labels must lie in 0..{k - 1} (out_features={k}, at least 2 classes).")
        return y.to(device=device, dtype=torch.long)
    if y.ndim == 1 and k == 1:
        y = y[:, None]
    if tuple(y.shape) != (n, k):
        raise ValueError(f"`y_train` must have shape ({n}, {k}) (points, outputs); got {tuple(y.shape)!r}.")
    y = y.to(device=device, dtype=dtype)
    if not bool(torch.isfinite(y).all()):
        raise ValueError("`y_train` must be finite; it contains NaN or inf.")
    return y


def _dataset(rec, snaps, loss_trace, n, m, k, params, measure_ntk, linearized, net, attrs) -> xr.Dataset:
    coords = {"step": snaps, "x_train": np.arange(n), "output": np.arange(k), "iteration": np.arange(len(loss_trace)),
              "parameter": [name for name, _ in params]}
    ds = xr.Dataset(coords=coords)
    ds["loss"] = ("step", np.array(rec["loss"]))
    ds["output_train"] = (("step", "x_train", "output"), np.array(rec["output_train"]).reshape(-1, n, k))
    ds["param_relative_change"] = ("step", np.array(rec["param_relative_change"]))
    ds["param_relative_change_layer"] = (("step", "parameter"), np.array(rec["param_relative_change_layer"]))
    ds["diverged"] = ("step", np.array(rec["diverged"], dtype=bool))
    ds["loss_trace"] = ("iteration", loss_trace)
    if m is not None:
        ds = ds.assign_coords(x_test=np.arange(m))
        ds["output_test"] = (("step", "x_test", "output"), np.array(rec["output_test"]).reshape(-1, m, k))
    if linearized:
        ds["loss_linearized"] = ("step", np.array(rec["loss_linearized"]))
        ds["output_train_linearized"] = (("step", "x_train", "output"),
                                         np.array(rec["output_train_linearized"]).reshape(-1, n, k))
        diff = ds["output_train"] - ds["output_train_linearized"]
        ds["function_distance_train"] = np.sqrt((diff**2).mean(("x_train", "output")))
        if m is not None:
            ds["output_test_linearized"] = (("step", "x_test", "output"),
                                            np.array(rec["output_test_linearized"]).reshape(-1, m, k))
            diff = ds["output_test"] - ds["output_test_linearized"]
            ds["function_distance_test"] = np.sqrt((diff**2).mean(("x_test", "output")))
        ds["diverged_linearized"] = ("step", np.array(rec["diverged_linearized"], dtype=bool))
    if measure_ntk:
        ntks = np.array(rec["ntk_empirical"]).reshape(-1, n, n)
        ds["ntk_empirical"] = (("step", "x1", "x2"), ntks)
        ref = ntks[0] if snaps and snaps[0] == 0 else None
        if ref is not None:
            rel = np.linalg.norm(ntks - ref, axis=(1, 2)) / np.linalg.norm(ref)
            ds["ntk_relative_change"] = ("step", rel)
    p = params[0][1]
    config = getattr(net, "config", None)
    settings = {k: attrs[k] for k in ("lr", "lr_factor", "loss", "batch_size", "steps", "seed", "divergence_factor",
                                      "ntk_method")}
    settings["lr_factor"] = None if math.isnan(settings["lr_factor"]) else settings["lr_factor"]
    ds.attrs.update(provenance({**(config if config is not None else {"model": repr(net)}), "training": settings},
                               device=p.device, dtype=p.dtype, seeds=None if config is None else [config["seed"]]))
    ds.attrs.update(attrs)
    if config is not None:
        ds.attrs["model_seed"] = config["seed"]
    return ds
