"""Device and dtype resolution, the TF32 switch for kernel measurements, and provenance attrs."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping

import torch

from ntktheory._provenance import EMPIRICAL
from ntktheory._provenance import provenance as _provenance

#: The ``conventions`` attr of every Dataset that empirical writes (defined in :mod:`ntktheory._provenance`).
CONVENTIONS = EMPIRICAL


def resolve_device(device: str | torch.device) -> torch.device:
    """``"auto"`` -> CUDA when available, else CPU; otherwise ``torch.device(device)``.

    Raises
    ------
    TypeError
        If ``device`` is neither a string nor a ``torch.device``.
    ValueError
        If the string is not a device torch knows, or names CUDA on a machine without it.
    """
    if isinstance(device, torch.device):
        dev = device
    elif isinstance(device, str):
        if device == "auto":
            return torch.device("cuda" if torch.cuda.is_available() else "cpu")
        try:
            dev = torch.device(device)
        except RuntimeError as err:
            raise ValueError(
                f"`device` must be 'auto', 'cpu', 'cuda' or 'cuda:<index>'; got {device!r}."
            ) from err
    else:
        raise TypeError(
            f"`device` must be 'auto', a device string or a torch.device; got {device!r} "
            f"of type {type(device).__name__}."
        )
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"`device` is {device!r} but CUDA is not available here; use 'auto' or 'cpu'.")
    return dev


_FLOAT_DTYPES = (torch.float64, torch.float32, torch.float16, torch.bfloat16)


def check_dtype(dtype: object) -> torch.dtype:
    """A floating torch dtype."""
    if not isinstance(dtype, torch.dtype) or dtype not in _FLOAT_DTYPES:
        allowed = ", ".join(str(d) for d in _FLOAT_DTYPES)
        raise TypeError(f"`dtype` must be a floating torch dtype ({allowed}); got {dtype!r}.")
    return dtype


@contextlib.contextmanager
def exact_matmul() -> Iterator[None]:
    """Turn TF32 off for matmuls and convolutions on CUDA inside the block (restored on exit).

    TF32 rounds float32 mantissas to 10 bits, which would make empirical kernels disagree with
    the analytic ones at the 1e-3 level; kernel measurements always run inside this block.
    """
    matmul = torch.backends.cuda.matmul.allow_tf32
    cudnn = torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32 = matmul
        torch.backends.cudnn.allow_tf32 = cudnn


def provenance(
    config: Mapping[str, object] | None,
    *,
    device: torch.device,
    dtype: torch.dtype,
    seeds: object = None,
) -> dict[str, str]:
    """attrs shared by every Dataset that empirical writes.

    Parameters
    ----------
    config
        The full configuration (JSON types only), stored as JSON text under ``config``.
    device, dtype
        Where and in which precision the network ran.
    seeds
        The seeds of the networks measured (stored as a JSON list), or None.

    Returns
    -------
    dict
        The provenance of :func:`ntktheory._provenance.provenance` with the ``"empirical"``
        conventions, ``device``, ``dtype`` (``"float64"``, ...), ``seeds`` when given, and
        ``torch_version``.
    """
    return {**_provenance(config, conventions="empirical", device=device, dtype=dtype, seeds=seeds),
            "torch_version": torch.__version__}
