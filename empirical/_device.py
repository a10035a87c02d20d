"""Device and dtype resolution, the TF32 switch for kernel measurements, and provenance attrs."""

from __future__ import annotations

import contextlib
import datetime
from collections.abc import Iterator

import torch

CONVENTIONS = (
    "Fully-connected network, depth L hidden layers of width n, readout width k. "
    "NTK parameterisation: h^1 = sigma_w/sqrt(d) W^1 x + sigma_b b^1, "
    "h^{l+1} = sigma_w/sqrt(n) W^{l+1} phi(h^l) + sigma_b b^{l+1}, all W, b ~ N(0, 1). "
    "Standard parameterisation: same forward function, trained parameters W ~ N(0, sigma_w^2/fan_in), "
    "b ~ N(0, sigma_b^2) (biases trained even when sigma_b = 0). Empirical NTK: "
    "Theta(x, x') = sum_p df(x)/dp df(x')/dp over trained parameters p; empirical NNGP of the readout: "
    "sigma_w^2/n phi(h^L(x)).phi(h^L(x')) + sigma_b^2. Reported per output: mean over the k diagonal "
    "output blocks unless outputs='full' or 'trace'. Networks from empirical.build follow ntktheory.layers: "
    "Conv h = (sigma_w/sqrt(C_in k_h k_w)) W * z + sigma_b b (NTK parameterisation; zero padding for 'same', "
    "extra row/column after), AvgPool/GlobalAvgPool means, Flatten in (C, H, W) order, LayerNorm over channels "
    "without affine (eps 1e-12), Residual z + f(z); images NCHW."
)


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


def provenance(device: torch.device, dtype: torch.dtype) -> dict[str, str]:
    """attrs shared by every Dataset that empirical writes."""
    from ntktheory._version import __version__

    return {
        "conventions": CONVENTIONS,
        "package": "ntkgap.empirical",
        "version": __version__,
        "torch_version": torch.__version__,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(),
        "device": str(device),
        "dtype": str(dtype).replace("torch.", ""),
    }
