"""`winwin up` restarts a dead child after an exponential backoff, capped."""

from services.supervisor import FIRST_DELAY, MAX_DELAY, backoff


def test_backoff_doubles_from_half_a_second_up_to_its_cap():
    delays = [backoff(n) for n in range(10)]
    assert delays[:4] == [FIRST_DELAY, 2 * FIRST_DELAY, 4 * FIRST_DELAY, 8 * FIRST_DELAY]
    assert max(delays) == delays[-1] == MAX_DELAY
    assert delays == sorted(delays)
