"""The core model's random test: hypothesis generates programs (mount parameters and 1–25
operations) and ``core_model.run_program`` runs each one, checking the model after every
step (the model, its invariant and the operations are described in ``core_model.py``).
100 derandomized examples per conflict strategy."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.model.core_model import ALLOWED_LOGS, PATHS, STRATEGIES, Params, run_program

pytestmark = pytest.mark.model


# ----------------------------------------------------------------- strategies

# half the operations go to one path, so that edits, puts and syncs meet there often
paths = st.one_of(st.just(PATHS[0]), st.sampled_from(PATHS + ("#0", "#1", "#2")))
operations = st.one_of(
    st.just(("sync",)),
    st.tuples(st.just("write"), paths),
    st.tuples(st.just("put"), paths, st.sampled_from([None, "old", "future"])),
    st.tuples(st.just("append"), paths),
    st.tuples(st.just("unlink"), paths),
    st.tuples(st.just("delete"), paths),
    st.tuples(st.just("rename"), paths, paths).filter(lambda op: op[1] != op[2] or op[1].startswith("#")),
    st.just(("restart",)),
    st.tuples(st.just("crash"), st.integers(1, 12), st.sampled_from(["after", "before"])),
    st.tuples(st.just("mvdir"), st.sampled_from(["none", "upload", "other", "offline"])),
    st.tuples(st.just("offline_rename"), paths, paths).filter(lambda op: op[1] != op[2] or op[1].startswith("#")),
)
# program lengths spread over 1..25 (a plain st.lists averages about 6 operations)
programs = st.integers(1, 25).flatmap(lambda n: st.lists(operations, min_size=n, max_size=n))
params_st = st.builds(Params, strategy=st.sampled_from(STRATEGIES), allow_delete=st.booleans(),
                      conditional_writes=st.sampled_from(["yes", "no"]), multipart=st.booleans())


@pytest.mark.parametrize("strategy", STRATEGIES)
@settings(max_examples=100, deadline=None, derandomize=True, database=None, print_blob=False,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                 HealthCheck.filter_too_much])
@given(allow_delete=st.booleans(), conditional_writes=st.sampled_from(["yes", "no"]),
       multipart=st.booleans(), ops=programs, resolve=st.sampled_from(["both", "local", "remote"]))
def test_core_model(allow_log, strategy, allow_delete, conditional_writes, multipart, ops, resolve):
    allow_log(ALLOWED_LOGS[0].pattern)
    run_program(ops, Params(strategy, allow_delete, conditional_writes, multipart), resolve)

