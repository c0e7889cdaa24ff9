import pytest

from optimizer.solvers.options import ENGINES


@pytest.fixture(params=ENGINES)
def engine(request):
    """Every engine: hand-checked optima must hold for each of them."""
    return request.param
