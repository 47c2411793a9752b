"""SortedMap against sortedcontainers.SortedDict: the same answers for the same changes."""

from __future__ import annotations

import copy
import pickle
import random

import pytest
from sortedcontainers import SortedDict

from emulator.kern.sortedmap import SortedMap


@pytest.mark.parametrize("seed", range(20))
def test_a_sorted_map_answers_as_a_sorted_dict(seed: int) -> None:
    rng = random.Random(seed)
    mine: SortedMap[str] = SortedMap()
    ref = SortedDict()
    for step in range(300):
        key = rng.randrange(-5, 40)
        op = rng.randrange(6)
        if op <= 1:
            mine[key] = ref[key] = f"v{step}"
        elif op == 2 and key in ref:
            del mine[key]
            del ref[key]
        elif op == 3:
            assert mine.pop(key, None) == ref.pop(key, None)
        elif op == 4:
            assert mine.setdefault(key, f"d{step}") == ref.setdefault(key, f"d{step}")
        else:
            assert mine.bisect_left(key) == ref.bisect_left(key)
            assert mine.bisect_right(key) == ref.bisect_right(key)
        assert list(mine) == list(ref) and len(mine) == len(ref)
        assert list(mine.items()) == list(ref.items())
        assert list(mine.values()) == list(ref.values())
        assert list(mine.keys()) == list(ref.keys())
        assert mine == ref and (key in mine) == (key in ref) and mine.get(key) == ref.get(key)
        if ref:
            i = rng.randrange(len(ref))
            assert mine.peekitem(i) == ref.peekitem(i)
            assert mine.peekitem() == ref.peekitem()
            assert list(reversed(mine)) == list(reversed(ref))


def test_a_sorted_map_copies_pickles_and_rejects_what_is_missing() -> None:
    m: SortedMap[str] = SortedMap([(3, "c"), (1, "a")])
    m.update({2: "b"})
    m |= {0: "z"}
    assert list(m.items()) == [(0, "z"), (1, "a"), (2, "b"), (3, "c")]
    for other in (m.copy(), copy.copy(m), pickle.loads(pickle.dumps(m)), m | {}):
        assert type(other) is SortedMap and list(other.items()) == list(m.items())
        assert other is not m
    assert m.popitem() == (3, "c") and list(m) == [0, 1, 2]
    with pytest.raises(KeyError):
        m.pop(9)
    with pytest.raises(KeyError):
        del m[9]
    assert list(m) == [0, 1, 2]  # a failed delete changes nothing
    m.clear()
    assert not m and list(m) == [] and m.bisect_left(5) == 0
    with pytest.raises(KeyError):
        m.popitem()
