import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # until a root conftest puts the project on sys.path
    sys.path.insert(0, str(ROOT))

from collections.abc import Iterator  # noqa: E402

import pytest  # noqa: E402

from sync.clock import FakeClock  # noqa: E402
from sync.emulator import Backend, emulate  # noqa: E402
from tests.emulator.emu_helpers import BASE, KEY, Api  # noqa: E402


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def backend(clock: FakeClock) -> Backend:
    return Backend(api_key=KEY, clock=clock, index_seconds=3.0, seed=1)


@pytest.fixture
def api(backend: Backend) -> Iterator[Api]:
    with emulate(backend):
        yield Api(BASE)
