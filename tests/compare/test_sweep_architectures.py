"""Sweeps over architectures (fcn, cnn, cnn-gap): configuration checks and a tiny real sweep whose
tasks agree with ntktheory / empirical called directly."""

import numpy as np
import pytest
import torch
from tolerances_compare import tol  # tests/compare is on sys.path (pytest rootdir import)

import empirical
import ntktheory
from compare import ConfigError, InitPoint, SweepConfig, run_sweep
from compare._config import DataSpec, TrainingSpec
from compare._tasks import load_points
from ntktheory import layers as L


def _config(**kw):
    base = dict(architectures=("fcn", "cnn", "cnn-gap"), activations=("relu",), widths=(8, 16), depths=(1,),
                seeds=(0,), points=(InitPoint("p", 2.0, 0.1),), measure=("ntk", "nngp"),
                data=DataSpec(source="digits", n_train=4, n_test=2), training=TrainingSpec(steps=2, snapshots=2))
    base.update(kw)
    return SweepConfig(**base)


def test_architecture_sweep_matches_direct_calls(tmp_path):
    cfg = _config()
    res = run_sweep(cfg, tmp_path / "s.zarr", scheduler="threads", n_workers=1, progress=False)
    ds = res.dataset
    assert res.n_tasks == 3 * (1 + 2) and res.n_failed == 0
    assert ds.ntk_theory.dims == ("architecture", "activation", "init", "depth", "x1", "x2")
    assert list(ds.architecture.values) == ["fcn", "cnn", "cnn-gap"]
    x_img, _, _ = load_points(cfg.data, images=True)
    gap = L.preset("cnn-gap", depth=1, width=None, activation="relu", sigma_w=np.sqrt(2.0), sigma_b=np.sqrt(0.1))
    theory = ntktheory.kernels(x_img, architecture=gap)
    np.testing.assert_allclose(ds.ntk_theory.sel(architecture="cnn-gap").squeeze().values, theory.ntk.values,
                               rtol=tol("sweep_vs_kernels"))
    fcn = ntktheory.kernels(x_img.reshape(len(x_img), -1), activation="relu", depth=1, sigma_w=np.sqrt(2.0),
                            sigma_b=np.sqrt(0.1))
    np.testing.assert_allclose(ds.ntk_theory.sel(architecture="fcn").squeeze().values, fcn.ntk.values,
                               rtol=tol("sweep_vs_kernels"))
    net = empirical.build(L.preset("cnn", depth=1, width=16, activation="relu", sigma_w=np.sqrt(2.0),
                                   sigma_b=np.sqrt(0.1)), (1, 8, 8), seed=0, device="cpu")
    k = empirical.ntk(net, torch.as_tensor(x_img)).numpy()
    np.testing.assert_allclose(ds.ntk_empirical.sel(architecture="cnn", width=16).squeeze().values, k,
                               rtol=tol("sweep_vs_empirical"))


def test_default_sweep_has_no_architecture_dim_and_keeps_its_fingerprint():
    cfg = SweepConfig(activations=("tanh",))
    assert cfg.architectures is None and cfg.architecture_list == ("fcn",)
    assert "architectures" not in cfg.to_dict()
    assert _config(architectures=("fcn",)).n_configurations == 2


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        ({"architectures": ("resnet",)}, r"sweep config key `architectures`: got \('resnet',\); allowed: a non-empty "
                                         r"list from 'fcn', 'cnn', 'cnn-gap'"),
        ({"architectures": ("cnn", "cnn")}, r"entries must be distinct"),
        ({"data": DataSpec(source="sphere")}, r"sweep config key `data.source`: got 'sphere'; the architectures "
                                              r"\['fcn', 'cnn', 'cnn-gap'\] need images"),
    ],
)
def test_architecture_config_errors(kw, match):
    with pytest.raises(ConfigError, match=match):
        _config(**kw)


def test_from_mapping_reads_architectures():
    raw = {"architectures": ["cnn-gap"], "activations": ["erf"], "data": {"source": "digits"}}
    assert SweepConfig.from_mapping(raw).architectures == ("cnn-gap",)
