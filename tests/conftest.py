"""Shared test settings and fixtures.

Helper modules beside this file (``kube_envtest``, ``upstream_controllers``, ``kfp_api_double``,
``tiny_models``) are importable from every test folder: pytest puts this folder on ``sys.path``
when it loads this conftest (the default "prepend" import mode). No test module imports another.

Tests that need what only this workplace's ``../shared`` provides (a real kube-apiserver, the
ECVL/EDDL build) carry a marker, ``envtest`` or ``ecvl``, and skip with a reason on a clone
elsewhere. Under ``CI=true`` such a skip is a failure: CI has ``../shared`` beside the clone, so a
skip there means the set-up broke, not that the dependency is absent.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

SHARED_MARKERS = ("envtest", "ecvl")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    outcome = yield
    report = outcome.get_result()
    needs_shared = [m for m in SHARED_MARKERS if item.get_closest_marker(m)]
    if report.skipped and needs_shared and os.environ.get("CI") == "true":
        report.outcome = "failed"
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else report.longrepr
        report.longrepr = f"CI=true: a test marked {needs_shared[0]!r} may not skip ({reason})"


@pytest.fixture(scope="session")
def envtest_cluster():
    """A real kube-apiserver for the whole run, with our CRDs, a namespace and manifests/rbac.yaml in it
    (tests/kube_envtest.py); the tests that use it carry ``@pytest.mark.envtest``."""
    from kube_envtest import EnvtestUnavailable, control_plane, install

    plane = control_plane()
    try:
        started = plane.__enter__()
    except EnvtestUnavailable as reason:
        pytest.skip(str(reason))
    try:
        yield install(started)
    finally:
        plane.__exit__(None, None, None)


@pytest.fixture(scope="session")
def fake_kubelet(envtest_cluster, tmp_path_factory):
    """A Node whose kubelet is a local HTTPS server: pods/log of pods on it works through the real API server."""
    from kube_envtest import _make_pki
    from upstream_controllers import FakeKubelet

    kubelet = FakeKubelet(envtest_cluster.admin, _make_pki(tmp_path_factory.mktemp("kubelet") / "pki"))
    yield kubelet
    kubelet.close()


@pytest.fixture
def local_runner(tmp_path, monkeypatch) -> Path:
    """KFP's local runner in this environment (SubprocessRunner(use_venv=False)), run from ``tmp_path``;
    returns the pipeline root, where the tasks' outputs land."""
    from kfp import local

    monkeypatch.chdir(tmp_path)
    local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=str(tmp_path / "outputs"))
    return tmp_path / "outputs"


@pytest.fixture(scope="session")
def lesion_model(tmp_path_factory) -> tuple[object, Path]:
    """(tf-keras model, Model folder) of the tiny lesion segmenter (tests/tiny_models.py), trained once per
    run; tests read the folder and never change it."""
    from tiny_models import lesion_model_folder

    return lesion_model_folder(tmp_path_factory.mktemp("lesion"))


@pytest.fixture(scope="session")
def digits_model(tmp_path_factory) -> tuple[object, Path]:
    """(tf-keras model, Model folder) of the tiny digits classifier (tests/tiny_models.py), trained once per run."""
    from tiny_models import digits_model_folder

    return digits_model_folder(tmp_path_factory.mktemp("digits"))
