import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from hypothesis import settings

# "default" draws the same examples on every run, so CI is reproducible; explore new ones by hand with
# HYPOTHESIS_PROFILE=explore python -m pytest
settings.register_profile("default", max_examples=60, deadline=None, derandomize=True)
settings.register_profile("explore", max_examples=1000, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))


import pytest  # noqa: E402

#: Every registered experiment is run once with --quick through the command line, and the
#: tests that check outputs (schema, dataframes, docs) read these folders.
QUICK_EXPERIMENTS = (
    "hooke", "depth-pareto", "measured-vs-theory", "hooke-trained", "rebound", "resistance", "rebound-scale",
    "piggyback-tree", "piggyback",
)


@pytest.fixture(scope="session")
def device_guards():
    """{name: the PretendAccelerator its quick run ran in}, filled by ``quick_runs``."""
    return {}


@pytest.fixture(scope="session")
def quick_runs(tmp_path_factory, device_guards):
    """{name: output folder} of `tokentree run NAME --quick` for every experiment.

    Each runs inside a :class:`tests.device_guard.PretendAccelerator`, so that the model code
    of every experiment is checked to run on a GPU too (the default device is "auto").
    """
    from tests.device_guard import PretendAccelerator
    from tokentree.cli import main

    root = tmp_path_factory.mktemp("quick-runs")
    folders = {}
    for name in QUICK_EXPERIMENTS:
        folders[name] = root / name
        with PretendAccelerator() as device_guards[name]:
            assert main(["run", name, "--quick", "--out", str(folders[name])]) == 0
    return folders
