import pytest

from compare import ConfigError, InitPoint, SweepConfig, load_sweep

GOOD = """
name = "t"
activations = ["tanh", "relu"]
widths = [16, 32]
depths = [1, 2]
seeds = 3
[[points]]
name = "a"
sigma_w2 = 1.5
sigma_b2 = 0.05
[data]
source = "sphere"
n_train = 8
n_test = 4
[training]
steps = 5
snapshots = 2
"""


def _write(tmp_path, text):
    p = tmp_path / "sweep.toml"
    p.write_text(text)
    return p


def test_good_file_round_trips(tmp_path):
    cfg = load_sweep(_write(tmp_path, GOOD))
    assert cfg.seeds == (0, 1, 2) and cfg.widths == (16, 32) and cfg.data.source == "sphere"
    assert cfg.n_configurations == 2 * 1 * 2 * 2 * 3
    assert SweepConfig.from_mapping(cfg.to_dict()) == cfg
    assert SweepConfig.from_mapping(cfg.to_dict()).fingerprint() == cfg.fingerprint()


def test_grid_expands_to_named_points(tmp_path):
    text = GOOD.split("[[points]]")[0] + "[grid]\nsigma_w2 = [1.0, 2.0]\nsigma_b2 = [0.0, 0.1]\n"
    cfg = load_sweep(_write(tmp_path, text))
    assert [p.name for p in cfg.points] == ["w1_b0", "w1_b0.1", "w2_b0", "w2_b0.1"]


@pytest.mark.parametrize(
    ("replace", "by", "match"),
    [
        (
            'widths = [16, 32]',
            'widths = [16, "wide"]',
            r"key `widths`: got \[16, 'wide'\]; allowed: a non-empty list of integers >= 1",
        ),
        ('widths = [16, 32]', 'widths = []', r"key `widths`.*non-empty list"),
        ('depths = [1, 2]', 'depths = [0]', r"key `depths`.*integers >= 1"),
        (
            'activations = ["tanh", "relu"]',
            'activations = ["tanh", "relu", "notanactivation("]',
            r"key `activations`: got 'notanactivation\('",
        ),
        ('seeds = 3', 'seeds = 0', r"key `seeds`: got 0"),
        ('source = "sphere"', 'source = "imagenet"', r"key `data.source`: got 'imagenet'; allowed: 'digits', 'sphere'"),
        ('source = "sphere"', 'source = "mnist"', r"key `data.path`: got None; data.source = 'mnist' needs a path"),
        ('n_train = 8', 'n_train = -1', r"key `data.n_train`: got -1; allowed: an integer >= 1"),
        ('steps = 5', 'steps = 2.5', r"key `training.steps`: got 2.5"),
        ('snapshots = 2', 'snapshots = 1', r"key `training.snapshots`: got 1; allowed: an integer >= 2"),
        (
            'sigma_w2 = 1.5',
            'sigma_w2 = "supercritical"',
            r"key `points\['a'\].sigma_w2`: got 'supercritical'; allowed: a number > 0, 'critical'",
        ),
        ('sigma_b2 = 0.05', 'sigma_b2 = -1', r"key `points\['a'\].sigma_b2`: got -1"),
        ('name = "t"', 'name = "t"\nwidht = [3]',
         r"unknown key\(s\) \['widht'\] \(did you mean 'widths'\?\); allowed top-level keys"),
        ('n_test = 4', 'n_test = 4\nbatch = 3', r"key `data`: unknown key\(s\) \['batch'\]; allowed: \["),
        (
            'name = "t"',
            'name = "t"\nmeasure = ["ntk", "hessian"]',
            r"key `measure`.*allowed: a non-empty list from 'ntk', 'nngp', 'training'",
        ),
        ('name = "t"', 'name = "t"\nparameterization = "mup"', r"key `parameterization`: got 'mup'; allowed: 'ntk'"),
        ('name = "t"', 'name = "t"\ndtype = "float16"', r"key `dtype`: got 'float16'; allowed: 'float64', 'float32'"),
        ('name = "t"', 'name = "t" = 3', r"is not valid TOML"),
    ],
)
def test_bad_files_name_the_key(tmp_path, replace, by, match):
    assert replace in GOOD
    with pytest.raises(ValueError, match=match):
        load_sweep(_write(tmp_path, GOOD.replace(replace, by, 1)))


def test_points_and_grid_together_are_refused(tmp_path):
    with pytest.raises(ConfigError, match="either `points` or `grid`, not both"):
        load_sweep(_write(tmp_path, GOOD + "[grid]\nsigma_w2 = [1.0]\nsigma_b2 = [0.0]\n"))


def test_missing_file():
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_sweep("/nonexistent/sweep.toml")


def test_python_object_checks_at_construction():
    with pytest.raises(ValueError, match=r"key `points.name`.*distinct"):
        SweepConfig(points=(InitPoint("a", 1.0, 0.0), InitPoint("a", 2.0, 0.0)))
    with pytest.raises(ValueError, match=r"key `widths`"):
        SweepConfig(widths=(64, 64))


def test_bundled_example_sweep_loads_and_resolves_critical_points():
    from pathlib import Path

    from compare._sweep import resolve_points

    cfg = load_sweep(Path(__file__).parents[2] / "data" / "sweep-example.toml")
    resolved = resolve_points(cfg)
    crit = resolved[("erf", "critical")][0]
    assert resolved[("erf", "ordered")][0] == 0.5 * crit and resolved[("erf", "chaotic")][0] == 2 * crit
    assert cfg.n_configurations == 2 * 3 * 5 * 2 * 4


