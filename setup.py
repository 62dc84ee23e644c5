"""Packaging that pyproject.toml cannot say alone (everything else is there):

- the top-level templates/ folder ships inside the package as ``dispatch.templates`` (package
  data, read through importlib.resources), next to the packages found under src/;
- the committed example list, subscribers/example.csv, ships as the demo's sample list
  (dispatch/sample/subscribers.csv); nothing else from subscribers/, where an editor's own
  lists live, goes into a wheel.
"""

from pathlib import Path

from setuptools import find_packages, setup
from setuptools.command.build_py import build_py


class BuildPy(build_py):
    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False):
            return  # an editable install reads subscribers/example.csv where it is
        target = Path(self.build_lib) / "dispatch" / "sample" / "subscribers.csv"
        self.mkpath(str(target.parent))
        self.copy_file(str(Path("subscribers") / "example.csv"), str(target))


setup(
    packages=[*find_packages("src"), "dispatch.templates"],
    package_dir={"": "src", "dispatch.templates": "templates"},
    cmdclass={"build_py": BuildPy},
)
