"""`pip install "labkit[colab]"` inside Colab's GPU runtime (tests/colab_resolver.py emulates it from Colab's
published pip freeze): the kernel stack, numpy, pandas and torch stay; at most 3 other Colab packages change."""

import os
import urllib.request
import zipfile

import pytest

import colab_resolver as cr

SAMPLE_CONFLICT = """ERROR: Cannot install labkit because these package versions have conflicting dependencies.
The conflict is caused by:
    unsloth 2026.10.9 depends on certifi>=2026.10.19
    The user requested (constraint) certifi==2026.7.22
    The user requested (constraint) numpy==2.1.3
"""


def test_freeze_lines_from_urls_are_skipped_and_names_normalised(tmp_path):
    freeze = tmp_path / "freeze.txt"
    freeze.write_text("Jupyter_Client==7.4.9\ntorch==2.11.0+cu128\n"
                      "google-colab @ file:///colabtools/dist/google_colab-1.0.0.tar.gz\n# comment\n")
    assert cr.read_freeze(freeze) == {"jupyter-client": "7.4.9", "torch": "2.11.0+cu128"}


def test_stand_in_wheel_carries_the_local_version(tmp_path):
    wheel = cr.stand_in_wheel("torch", "2.11.0+cu128", tmp_path)
    assert wheel.name == "torch-2.11.0+cu128-py3-none-any.whl"
    with zipfile.ZipFile(wheel) as archive:
        assert "Version: 2.11.0+cu128" in archive.read("torch-2.11.0+cu128.dist-info/METADATA").decode()


def test_blockers_are_the_held_packages_pip_names():
    held = {"certifi": "2026.7.22", "numpy": "2.1.3", "six": "1.17.0"}
    assert cr.blocking_packages(SAMPLE_CONFLICT, held) == ["certifi", "numpy"]


def test_protected_packages():
    assert all(map(cr.is_protected, ["ipykernel", "ipython", "numpy", "pandas", "torch", "torchvision"]))
    assert not cr.is_protected("torchao") and not cr.is_protected("certifi")


def _registry_reachable() -> str | None:
    index = os.environ.get("PIP_INDEX_URL", "https://pypi.org/simple").rstrip("/")
    try:
        urllib.request.urlopen(f"{index}/pip/", timeout=10).close()
    except OSError as err:
        return f"no package registry reachable at {index} ({err}); the resolver check needs one"
    return None


@pytest.mark.network
@pytest.mark.slow
def test_labkit_installs_into_colabs_runtime_without_replacing_it(tmp_path, capsys):
    if not cr.FREEZE.exists():
        pytest.skip(f"no Colab freeze at {cr.FREEZE}; set LABKIT_COLAB_FREEZE to ../shared/colab/pip-freeze.gpu.txt")
    unreachable = _registry_reachable()
    if unreachable:
        pytest.skip(unreachable)
    outcome = cr.resolve(cr.FREEZE, tmp_path)
    with capsys.disabled():
        print(f"\nColab resolver ({cr.FREEZE}):\n{outcome.summary()}")
    assert not outcome.error, outcome.summary()
    assert outcome.protected_changes == [], outcome.summary()
    assert len(outcome.other_changes) <= cr.MAX_OTHER_CHANGES, outcome.summary()


def test_ml_stack_changes_are_not_counted_but_protected_and_other_changes_are():
    outcome = cr.Outcome(changes={"transformers": ("5.15.0", "5.17.0"), "certifi": ("1", "2"),
                                  "numpy": ("2.1.3", "2.4.6"), "torchvision": ("0.26.0+cu128", "0.27.0")})
    assert outcome.protected_changes == ["numpy", "torchvision"]
    assert outcome.other_changes == ["certifi"]
    assert "transformers: 5.15.0 -> 5.17.0 (ML stack)" in outcome.summary()
