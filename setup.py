"""Build step only (the project is described in pyproject.toml): ship the project's datasets inside the package.

`data/` stays the top-level source folder of the repository. A wheel, and therefore a `pip install git+...`,
gets a copy at `labkit/_data/`, which `labkit.config.project_data_dir()` finds; an editable install (a clone)
reads `data/` itself.
"""

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

DATA = Path(__file__).resolve().parent / "data"


class BuildWithData(build_py):
    def run(self) -> None:
        super().run()
        if not self.editable_mode and DATA.is_dir():
            shutil.copytree(DATA, Path(self.build_lib) / "labkit" / "_data", dirs_exist_ok=True,
                            ignore=shutil.ignore_patterns("__pycache__", ".*"))


setup(cmdclass={"build_py": BuildWithData})
