"""The one per-session cache: bounded, least recently used dropped first, never the entries a caller keeps."""

import pytest
from streamlit.testing.v1 import AppTest

from explain.ui.session import BoundedCache


def test_storing_past_the_bound_drops_the_least_recently_used():
    cache = BoundedCache(3)
    for key in "abc":
        cache[key] = key.upper()
    cache.use("a")  # "b" is now the oldest
    cache["d"] = "D"
    assert list(cache) == ["c", "a", "d"] and len(cache) == 3
    assert "b" not in cache and cache["a"] == "A"


def test_reading_and_replacing_keep_the_order():
    cache = BoundedCache(2, {"a": 1, "b": 2})
    assert cache["a"] == 1  # a plain read is not a use
    cache["a"] = 10  # a new value in its place
    cache["c"] = 3
    assert dict(cache) == {"b": 2, "c": 3}


def test_kept_keys_survive_and_the_new_one_always_stays():
    cache = BoundedCache(2)
    for key in "abcd":
        cache.put(key, key, keep={"a"})
    assert list(cache) == ["a", "d"]
    cache.put("e", "e", keep={"a", "d"})  # nothing may go: over the bound until one is no longer kept
    assert list(cache) == ["a", "d", "e"]
    cache.put("f", "f")
    assert list(cache) == ["e", "f"]


def test_make_room_frees_a_place_before_a_value_is_built():
    cache = BoundedCache(2, {"a": 1, "b": 2})
    cache.make_room()
    assert list(cache) == ["b"]
    with pytest.raises(ValueError):
        BoundedCache(0)


def _page(keys: list[str]) -> None:
    import streamlit as st

    from explain.ui.session import cached

    builds = st.session_state.setdefault("builds", [])
    for key in keys:
        cached("squares", key, lambda k=key: builds.append(k) or len(k) ** 2, max_entries=2)


def test_cached_builds_once_per_key_and_keeps_the_bound_in_the_session():
    at = AppTest.from_function(_page, args=(["x", "yy", "x", "zzz", "x", "yy"],)).run()
    assert not at.exception
    # x is used again before zzz comes, so yy goes; yy comes back after zzz was added, so zzz goes
    assert at.session_state["builds"] == ["x", "yy", "zzz", "yy"]
    store = at.session_state["squares"]
    assert isinstance(store, BoundedCache) and dict(store) == {"x": 1, "yy": 4}


def _seeded_page() -> None:
    import streamlit as st

    from explain.ui.session import cached

    st.session_state["value"] = cached("seeded", "k", lambda: "built", max_entries=1)


def test_a_plain_mapping_in_the_session_is_taken_over():
    at = AppTest.from_function(_seeded_page)
    at.session_state["seeded"] = {"old": "gone", "k": "seeded"}  # past the bound: the first goes
    at.run()
    assert not at.exception and at.session_state["value"] == "seeded"
    assert list(at.session_state["seeded"]) == ["k"]
