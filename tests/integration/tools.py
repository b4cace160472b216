"""The tools the install tests run, built from Go modules by hack/tools/build.sh (once per
version, cached under ~/.cache/adroit/bin; `make test` builds them first)."""

import functools
import subprocess
from pathlib import Path

from tests.kube import REPO

BUILD = REPO / "hack" / "tools" / "build.sh"


@functools.cache
def tool(name: str) -> Path:
    """The path of HELM or LUA_HEALTH, built now if it is not cached yet."""
    subprocess.run([str(BUILD)], check=True, timeout=1800)
    printed = subprocess.run([str(BUILD), "--print"], capture_output=True, text=True, check=True)
    paths = dict(line.split("=", 1) for line in printed.stdout.splitlines())
    return Path(paths[name])
