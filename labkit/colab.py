"""Google Colab: every notebook opens in its own runtime, so the runs live on Google Drive.

Notebook 02, opened on Colab, runs on a fresh machine where nothing that notebook 01 wrote to the runtime's disk
exists. So on Colab :func:`labkit.notebook.start` calls :func:`runs_on_drive`: it mounts Google Drive (Colab asks
for access once per runtime; an already mounted Drive is not asked again) and points ``LABKIT_RUNS`` at
``MyDrive/labkit/runs`` there. Opt out with ``start(..., drive=False)`` or the environment variable
``LABKIT_DRIVE=0``: the runs then stay on the runtime's disk and go with it. A ``LABKIT_RUNS`` you set yourself
is kept (Drive is mounted first when it lies on Drive). ``LABKIT_DRIVE_MOUNT`` moves the mount point (default
``/content/drive``; the tests use it with a stand-in ``google.colab``).
"""

from __future__ import annotations

import os
from pathlib import Path

from labkit.env import in_colab

DRIVE_MOUNT = "/content/drive"
DRIVE_RUNS = Path("MyDrive", "labkit", "runs")
OPT_OUT = {"0", "false", "no", "off"}


class DriveNotMounted(RuntimeError):
    """Drive could not be mounted; the message says how to go on. Shown as one line in a notebook."""

    def _render_traceback_(self) -> list[str]:
        return [f"{type(self).__name__}: {self}"]


def drive_mount() -> Path:
    return Path(os.environ.get("LABKIT_DRIVE_MOUNT") or DRIVE_MOUNT)


def drive_wanted(drive: bool | None = None) -> bool:
    """On Colab, unless ``drive=False`` or ``LABKIT_DRIVE=0``."""
    if drive is None:
        drive = os.environ.get("LABKIT_DRIVE", "1").strip().lower() not in OPT_OUT
    return bool(drive) and in_colab()


def runs_on_drive(drive: bool | None = None) -> Path | None:
    """Make the runs live on Google Drive when on Colab (see the module docstring); returns the runs folder there,
    or None when the runs stay where ``LABKIT_RUNS`` / ``LABKIT_HOME`` put them."""
    if not drive_wanted(drive):
        return None
    mount = drive_mount()
    chosen = os.environ.get("LABKIT_RUNS")
    if chosen and not Path(chosen).expanduser().is_relative_to(mount):
        return None  # the user's own folder, off Drive
    mount_drive(mount)
    target = Path(chosen).expanduser() if chosen else mount / DRIVE_RUNS
    os.environ["LABKIT_RUNS"] = str(target)  # read by labkit.runs.runs_root, inherited by `!labkit ...` commands
    return target


def mount_drive(mount: Path) -> None:
    """Mount Drive at ``mount`` through ``google.colab.drive``, unless this runtime has mounted it already."""
    if (mount / "MyDrive").is_dir():
        return
    hint = ("runs on this runtime's disk are lost with it, and notebooks opened later (each in its own runtime) "
            "will not find them; allow Drive access and run this cell again, or opt out with start(..., "
            "drive=False) or LABKIT_DRIVE=0")
    try:
        from google.colab import drive
    except ImportError:
        raise DriveNotMounted(f"this looks like Colab but google.colab cannot be imported to mount Google Drive: "
                              f"{hint}") from None
    print(f"labkit: mounting Google Drive at {mount} for the runs (Colab asks for access once per runtime)")
    try:
        drive.mount(str(mount))
    except Exception as err:  # Colab raises several kinds (access refused, timeout): all mean the same here
        raise DriveNotMounted(f"Google Drive was not mounted ({type(err).__name__}: {err}): {hint}") from None
    if not (mount / "MyDrive").is_dir():
        raise DriveNotMounted(f"Google Drive was mounted at {mount} but {mount / 'MyDrive'} is not there: {hint}")
