import pytest

from tests.live.world import build_batch


@pytest.fixture(scope="session")
def live_batch(tmp_path_factory):
    """The batch through the live week's eve, built once for every live test (copy it before changing it)."""
    root = tmp_path_factory.mktemp("live-batch")
    build_batch(root)
    return root
