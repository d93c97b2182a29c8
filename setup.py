"""Build hook (the rest of the packaging is in pyproject.toml): a built wheel records the git commit of
the tree it was built from in ``fastgan/_build_info.json``, so run files written by an installed fastgan
name the commit of their code (``fastgan.store.git_commit``)."""

import json
import os
import subprocess

from setuptools import setup
from setuptools.command.build_py import build_py


def _commit(root: str) -> str:
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=10)
        top = subprocess.run(["git", "rev-parse", "--show-toplevel"], cwd=root, capture_output=True, text=True,
                             timeout=10)
        if head.returncode or top.returncode or os.path.realpath(top.stdout.strip()) != os.path.realpath(root):
            return ""                                   # not a checkout of this project (e.g. an sdist)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                               capture_output=True, text=True, timeout=10).stdout.strip()
        return head.stdout.strip() + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return ""


class BuildWithCommit(build_py):
    def run(self):
        super().run()
        target = os.path.join(self.build_lib, "fastgan", "_build_info.json")
        with open(target, "w") as fh:
            json.dump({"git_commit": _commit(os.path.dirname(os.path.abspath(__file__)))}, fh)


setup(cmdclass={"build_py": BuildWithCommit})
