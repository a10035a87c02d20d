"""Every public Dataset producer writes the one provenance schema of :mod:`ntktheory._provenance`."""

from __future__ import annotations

import datetime
import json

import numpy as np
import pytest
import torch
import xarray as xr

import compare
import empirical
import ntktheory
from ntktheory import layers as L
from ntktheory._provenance import (
    CONVENTIONS,
    REQUIRED_KEYS,
    check_provenance,
    config_json,
    provenance,
)

X = np.random.default_rng(0).standard_normal((4, 3))
Y = X[:, :1].copy()
XT = np.random.default_rng(1).standard_normal((2, 3))


def assert_schema(attrs, family, *, empirical_data=False):
    """``attrs`` follow the schema, with the conventions text of ``family``; the parsed config."""
    for key in REQUIRED_KEYS:
        assert isinstance(attrs[key], str), key
    assert attrs["ntkgap_version"] == ntktheory.__version__
    assert attrs["conventions"] == CONVENTIONS[family]
    created = datetime.datetime.fromisoformat(attrs["creation_time"])
    assert created.utcoffset() == datetime.timedelta(0)
    config = json.loads(attrs["config"])
    assert isinstance(config, dict) and config
    if empirical_data:
        assert isinstance(attrs["device"], str) and isinstance(attrs["dtype"], str)
        assert all(isinstance(s, int) for s in json.loads(attrs["seeds"]))
    assert check_provenance(attrs) == config
    return config


# ---------------------------------------------------------------------- ntktheory
def test_kernels_preset_and_all_depths():
    ds = ntktheory.kernels(X, activation="tanh", depth=2, sigma_w=1.5)
    config = assert_schema(ds.attrs, "fully_connected")
    assert config["activation"] == "tanh" and config["depth"] == 2 and config["in_shape"] == [3]
    assert config["activation_params"] == {} and json.loads(ds.attrs["activation_params"]) == {}
    # the domain attrs that code reads stay flat
    assert ds.attrs["x2_is_x1"] == 1 and ds.attrs["spatial_form"] == "flat" and "quadrature" in ds.attrs
    deep = ntktheory.kernels(X, XT, depth=2, all_depths=True)
    assert assert_schema(deep.attrs, "fully_connected")["all_depths"] is True
    assert deep.attrs["all_depths"] == 1 and deep.attrs["x2_is_x1"] == 0


def test_kernels_architecture():
    arch = L.serial(L.Conv(kernel_size=3), L.Activation("relu"), L.GlobalAvgPool(), L.Dense())
    images = np.random.default_rng(2).standard_normal((2, 1, 4, 4))
    ds = ntktheory.kernels(images, architecture=arch)
    config = assert_schema(ds.attrs, "architecture")
    assert config["architecture"] == arch.describe() and config["in_shape"] == [1, 4, 4]


def test_predict_and_predict_from_kernels():
    ds = ntktheory.predict(X, Y, XT, depth=2, time=[1.0, np.inf])
    config = assert_schema(ds.attrs, "prediction")
    assert config["time"] == [1.0, "inf"] and config["network"]["depth"] == 2
    assert ds.attrs["kernel_conventions"] == CONVENTIONS["fully_connected"]
    bayes = ntktheory.predict_from_kernels(X @ X.T + np.eye(4), XT @ X.T, Y, XT @ XT.T, method="bayesian")
    assert assert_schema(bayes.attrs, "prediction")["method"] == "bayesian"
    assert "kernel_conventions" not in bayes.attrs


def test_mean_field_producers():
    phase = ntktheory.phase_diagram("relu", sigma_w2=[1.0, 3.0], sigma_b2=[0.0, 0.1])
    assert assert_schema(phase.attrs, "mean_field")["sigma_w2"]["num"] == 2
    traj = ntktheory.meanfield_trajectory([1.0, 0.0], [0.0, 1.0], activation="relu", depth=2, sigma_w2=2.0)
    assert assert_schema(traj.attrs, "mean_field")["depth"] == 2 and traj.attrs["depth"] == 2


def test_large_depth_analysis():
    ds = ntktheory.large_depth_analysis(X, XT, activation="erf", depth=4, sigma_w2=[1.0, 2.0], sigma_b2=[0.1])
    assert assert_schema(ds.attrs, "large_depth")["activation"] == "erf"


# ---------------------------------------------------------------------- empirical
def test_empirical_ensemble_kernels():
    ds = empirical.ensemble_kernels(X, width=8, depth=1, activation="relu", seeds=[3, 1], device="cpu")
    config = assert_schema(ds.attrs, "empirical", empirical_data=True)
    assert ds.attrs["seeds"] == "[3, 1]" and ds.attrs["dtype"] == "float64" and ds.attrs["device"] == "cpu"
    assert config["width"] == 8 and config["activation_params"] == {}
    assert json.loads(ds.attrs["activation_params"]) == {}


def test_empirical_train():
    net = empirical.MLP(3, width=8, depth=1, activation="tanh", seed=5, device="cpu")
    ds = empirical.train(net, torch.as_tensor(X), torch.as_tensor(Y), steps=2, lr=0.1)
    config = assert_schema(ds.attrs, "empirical", empirical_data=True)
    assert config["seed"] == 5 and config["training"]["steps"] == 2 and ds.attrs["seeds"] == "[5]"


# ---------------------------------------------------------------------- compare
def test_theory_empirical_dataset():
    ds = compare.theory_empirical_dataset(ntk_theory=np.eye(2), ntk_empirical=np.eye(2), config={"a": 1},
                                          seeds=[0], device="cpu", dtype="float64")
    assert assert_schema(ds.attrs, "sweep", empirical_data=True) == {"a": 1}
    assert json.loads(ds.attrs["package_versions"])["ntkgap"] == ntktheory.__version__


def _tiny_task(task, config) -> xr.Dataset:
    """Theory: sigma_w2 * I; empirical: the same plus 1 / width."""
    base = np.eye(2) * task.sigma_w2
    if task.kind == "theory":
        return xr.Dataset({"ntk_theory": (("x1", "x2"), base)})
    return xr.Dataset({"ntk_empirical": (("x1", "x2"), base + 1.0 / task.width), "diverged": False})


def test_sweep(tmp_path):
    config = compare.SweepConfig(activations=("relu",), points=(compare.InitPoint("a", 1.0, 0.0),), widths=(4,),
                                 depths=(1,), seeds=(0, 1), training=compare.TrainingSpec(steps=1, snapshots=2),
                                 name="tiny")
    ds = compare.run_sweep(config, tmp_path / "s.zarr", task_fn=_tiny_task, scheduler="threads",
                           progress=False).dataset
    assert assert_schema(ds.attrs, "sweep")["name"] == "tiny"
    assert ds.attrs["seeds"] == "[0, 1]"


def test_kernel_matrix_and_predict_from_store(tmp_path):
    res = compare.kernel_matrix(X, store=tmp_path / "k.zarr", block_size=2, scheduler="threads", n_workers=1,
                                progress=False, depth=2)
    config = assert_schema(res.dataset.attrs, "fully_connected")
    assert config["n1"] == 4 and res.dataset.attrs["depth"] == 2
    fit = compare.predict_from_store(tmp_path / "k.zarr", Y)
    assert assert_schema(fit.attrs, "kernel_regression")["kernel"] == "ntk"


@pytest.mark.parametrize("name", ["hanin-nica", "xiao-pennington-schoenholz"])
def test_recipe_dataset_attrs(name):
    """The attrs every recipe's Dataset gets (the step of run_recipe that writes them; running a recipe
    end to end is tests/compare/test_recipes_e2e.py)."""
    from compare.recipes import get_recipe
    from compare.recipes._base import _finalise

    recipe = get_recipe(name)
    ds = _finalise(xr.Dataset({"v": ("x", [1.0])}), recipe, "tiny", recipe.config("tiny"))
    config = assert_schema(ds.attrs, "sweep")
    assert (ds.attrs["device"], ds.attrs["dtype"]) == ("cpu", "float64")
    assert config["recipe"] == name and config["scale"] == "tiny" and ds.attrs["recipe"] == name


# ---------------------------------------------------------------------- the builder
def test_builder_rejects_a_configuration_that_is_not_json():
    with pytest.raises(TypeError, match=r"`config\['model'\]` is .* of type object, which is not JSON"):
        provenance({"model": object()}, conventions="empirical")
    with pytest.raises(TypeError, match=r"`config\['sizes'\]\[1\]` is \{1, 2\} of type set"):
        config_json({"sizes": [1, {1, 2}]})
    with pytest.raises(TypeError, match="string keys"):
        config_json({"grid": {1: 2.0}})
    with pytest.raises(TypeError, match="must be a mapping"):
        config_json([1, 2])


def test_builder_rejects_unknown_conventions_and_bad_seeds():
    with pytest.raises(ValueError, match="`conventions` must be one of 'fully_connected'"):
        provenance({}, conventions="Fully-connected network")
    with pytest.raises(TypeError, match="`seeds` must be integers"):
        provenance({}, conventions="empirical", seeds=[0.5])


def test_builder_output_and_checker():
    config = {"w": np.float64(2.0), "shape": (1, np.int64(4)), "grid": np.arange(2)}
    attrs = provenance(config, conventions="sweep", device=torch.device("cpu"), dtype=torch.float32,
                       seeds=np.int64(3), created="2026-01-31T12:00:00+00:00")
    assert attrs["config"] == '{"grid": [0, 1], "shape": [1, 4], "w": 2.0}'
    assert (attrs["device"], attrs["dtype"], attrs["seeds"]) == ("cpu", "float32", "[3]")
    assert attrs["creation_time"] == "2026-01-31T12:00:00+00:00"
    with pytest.raises(ValueError, match="missing: config"):
        check_provenance({k: v for k, v in attrs.items() if k != "config"})
    with pytest.raises(ValueError, match="not one of the conventions texts"):
        check_provenance({**attrs, "conventions": "my own words"})
    with pytest.raises(ValueError, match="not in UTC"):
        check_provenance({**attrs, "creation_time": "2026-01-31T12:00:00+02:00"})


def test_each_conventions_text_is_defined_once():
    assert len(set(CONVENTIONS.values())) == len(CONVENTIONS)
    assert ntktheory._kernels.CONVENTIONS is CONVENTIONS["fully_connected"]
    assert empirical.CONVENTIONS is CONVENTIONS["empirical"] and compare.CONVENTIONS is CONVENTIONS["sweep"]
