import os
import shutil
import tempfile

import pytest

TEMPORARY = pytest.StashKey[tuple[str, str | None]]()


def pytest_configure(config: pytest.Config) -> None:
    """The processes the tests start keep their temporary files in a directory of this run's,
    removed at its end. Some are killed on purpose (an operator's crash, a dashboard stopped
    with SIGTERM) and cannot remove what they wrote: the kubeconfig's certificates and keys,
    written out by the Kubernetes client."""
    tempfile.gettempdir()  # this process, and pytest's own tmp_path, stay where they were
    path = tempfile.mkdtemp(prefix="adroit-tests-")
    config.stash[TEMPORARY] = (path, os.environ.get("TMPDIR"))
    os.environ["TMPDIR"] = path


def pytest_unconfigure(config: pytest.Config) -> None:
    path, before = config.stash[TEMPORARY]
    if before is None:
        os.environ.pop("TMPDIR", None)
    else:
        os.environ["TMPDIR"] = before
    shutil.rmtree(path, ignore_errors=True)
