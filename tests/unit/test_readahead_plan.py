"""core.readahead.plan_read: random reads take small blocks, sequential ones a growing window."""

import itertools

from mountsync.core.readahead import RANDOM_BLOCK, WINDOW_MAX, WINDOW_MIN, Stream, plan_read, subtract

MiB = 1024 * 1024
SIZE = 1024 * MiB


def test_random_read_needs_its_aligned_block_and_fetches_nothing_ahead():
    p = plan_read(Stream(last_end=5 * MiB), 300 * MiB + 10, 300 * MiB + 4106, SIZE)
    assert p.need == (300 * MiB, 300 * MiB + RANDOM_BLOCK)
    assert p.ahead is None and p.stream.window == 0


def test_a_read_straddling_blocks_needs_both():
    off = 7 * RANDOM_BLOCK - 100
    p = plan_read(Stream(last_end=0), off + 5 * MiB, off + 5 * MiB + 200, SIZE)
    assert p.need[1] - p.need[0] == 2 * RANDOM_BLOCK


def test_sequential_windows_grow_1_8_64_256_and_stay_capped():
    s, issued, off, step = Stream(), [], 0, 128 * 1024
    while off < 700 * MiB:
        p = plan_read(s, off, off + step, SIZE)
        s = p.stream
        if p.ahead:
            issued.append(p.ahead)
        off += step
    sizes = [e - b for b, e in issued]
    assert sizes[:4] == [WINDOW_MIN, 8 * MiB, 64 * MiB, WINDOW_MAX]
    assert max(sizes) == WINDOW_MAX
    # contiguous, and always ahead of the reader before it gets there
    assert all(a[1] == b[0] for a, b in itertools.pairwise(issued))
    assert issued[0][0] == 0


def test_stream_starts_only_at_zero_or_exactly_at_the_last_end():
    assert plan_read(Stream(last_end=10 * MiB), 10 * MiB + 4096, 10 * MiB + 8192, SIZE).ahead is None
    assert plan_read(Stream(last_end=10 * MiB), 10 * MiB, 10 * MiB + 4096, SIZE).ahead == (10 * MiB, 11 * MiB)


def test_a_stream_tolerates_slightly_reordered_reads():
    s = plan_read(Stream(), 0, 128 * 1024, SIZE).stream
    p = plan_read(s, 256 * 1024, 384 * 1024, SIZE)  # the 128 KiB read before it comes later
    assert p.stream.window > 0
    p = plan_read(p.stream, 128 * 1024, 256 * 1024, SIZE)
    assert p.stream.window > 0 and p.stream.last_end == 384 * 1024


def test_read_ahead_stops_at_the_end_of_the_file():
    p = plan_read(Stream(), 0, 4096, 100_000)
    assert p.ahead == (0, 100_000)
    assert plan_read(p.stream, 4096, 8192, 100_000).ahead is None


def test_subtract():
    assert subtract([(0, 10)], [(2, 4), (6, 8)]) == [(0, 2), (4, 6), (8, 10)]
    assert subtract([(0, 10)], []) == [(0, 10)]
    assert subtract([(0, 10)], [(0, 10)]) == []
