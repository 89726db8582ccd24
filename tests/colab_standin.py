"""A stand-in for Colab's ``google.colab`` package (only ``drive.mount``), written as files so that it also works in
the fresh kernels of the simulated Colab series. Its ``mount`` creates ``MyDrive`` under the mount point and logs
each call to ``$STANDIN_DRIVE_LOG``; with ``STANDIN_DRIVE_REFUSE=1`` it raises as Colab does when access is refused.
With ``$STANDIN_DRIVE_STORE`` set, ``MyDrive`` is a link to that folder: one Drive that several simulated runtimes,
each with its own mount point, see."""

from __future__ import annotations

from pathlib import Path

DRIVE = '''
import os
from pathlib import Path


def mount(mountpoint, force_remount=False, timeout_ms=120000, readonly=False):
    if os.environ.get("STANDIN_DRIVE_REFUSE") == "1":
        raise ValueError("mount failed: credential propagation was unsuccessful")
    with open(os.environ["STANDIN_DRIVE_LOG"], "a", encoding="utf-8") as log:
        log.write(f"{mountpoint}\\n")
    store = os.environ.get("STANDIN_DRIVE_STORE")
    if store:  # one Drive seen from several runtimes, each with its own mount point
        Path(mountpoint).mkdir(parents=True, exist_ok=True)
        Path(mountpoint, "MyDrive").symlink_to(store, target_is_directory=True)
    else:
        Path(mountpoint, "MyDrive").mkdir(parents=True, exist_ok=True)
'''

# Colab sets these in every runtime (COLAB_GPU only on GPU runtimes).
MARKERS = {"COLAB_RELEASE_TAG": "release-colab-standin", "COLAB_BACKEND_VERSION": "standin"}


def write_standin(folder: Path) -> Path:
    """Write the ``google.colab`` stand-in under ``folder`` (put ``folder`` on the path); returns ``folder``.

    ``google`` stays a namespace package (no ``__init__.py``), so the installed ``google.protobuf`` still imports."""
    package = folder / "google" / "colab"
    package.mkdir(parents=True, exist_ok=True)
    (package / "__init__.py").write_text("", encoding="utf-8")
    (package / "drive.py").write_text(DRIVE, encoding="utf-8")
    return folder


def mount_calls(log: Path) -> list[str]:
    return log.read_text(encoding="utf-8").splitlines() if log.exists() else []
