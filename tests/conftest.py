import pytest

from optimizer.options import ENGINES


@pytest.fixture(params=ENGINES)
def engine(request):
    """Every engine: hand-checked optima must hold for each of them."""
    return request.param
