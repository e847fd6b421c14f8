"""mountsync.retry: exponential backoff with jitter and a ceiling (SPEC §8)."""

import random
import statistics

import pytest

from mountsync.retry import backoff_delay


@pytest.mark.parametrize("attempt", range(1, 12))
def test_bounds(attempt):
    rng = random.Random(attempt)
    cap = min(60.0, 0.5 * 2 ** (attempt - 1))
    for _ in range(200):
        d = backoff_delay(attempt, rng=rng)
        assert cap / 2 <= d <= cap


def test_extremes_of_the_jitter():
    class Fixed(random.Random):
        def __init__(self, v):
            super().__init__()
            self.v = v

        def random(self):
            return self.v

    assert backoff_delay(3, base=1.0, rng=Fixed(0.0)) == 2.0
    assert backoff_delay(3, base=1.0, rng=Fixed(0.999999)) == pytest.approx(4.0, rel=1e-5)


def test_growth_is_exponential_until_the_ceiling():
    class Top(random.Random):
        def random(self):
            return 1.0

    caps = [backoff_delay(a, base=1.0, ceiling=20.0, rng=Top()) for a in range(1, 9)]
    assert caps == [1.0, 2.0, 4.0, 8.0, 16.0, 20.0, 20.0, 20.0]


def test_ceiling_holds_for_huge_attempts():
    rng = random.Random(1)
    for attempt in (50, 1000, 10**6):
        d = backoff_delay(attempt, ceiling=60.0, rng=rng)
        assert 30.0 <= d <= 60.0


def test_attempt_below_one_is_treated_as_first():
    rng1, rng2 = random.Random(5), random.Random(5)
    assert backoff_delay(0, rng=rng1) == backoff_delay(1, rng=rng2)
    assert 0.25 <= backoff_delay(-3, rng=random.Random(0)) <= 0.5


def test_jitter_spreads_and_is_reproducible():
    a = [backoff_delay(6, rng=random.Random(42)) for _ in range(1)]
    b = [backoff_delay(6, rng=random.Random(42)) for _ in range(1)]
    assert a == b  # same seed, same delay
    rng = random.Random(1234)
    ds = [backoff_delay(6, base=1.0, ceiling=100.0, rng=rng) for _ in range(2000)]
    # cap = 32: values uniform in [16, 32]
    assert min(ds) >= 16.0 and max(ds) <= 32.0
    assert len(set(ds)) > 1900  # not collapsed to a few values
    assert min(ds) < 16.5 and max(ds) > 31.5  # covers the whole interval
    assert statistics.mean(ds) == pytest.approx(24.0, abs=0.5)
    assert statistics.pstdev(ds) > 3.0  # uniform on width 16 has stdev ≈ 4.6
