"""Classroom mode: language and presenter switches, lesson panels, shareable links.

Shareable links: a page keeps its main choices in the URL (st.query_params) so a teacher can send
students straight to the same view. Every page uses the same parameter names:

    lang       en | ko                                   sidebar (written back)
    presenter  1 | 0                                     sidebar (read once then removed: a teacher's bookmark, not shared on)
    backbone   registry name, e.g. efficientnet_lite0    sidebar
    sample     scikit-image sample, e.g. chelsea         image picker (while the source is a sample)
    layer      layer name, e.g. blocks.3                 Feature maps, any page that picks a layer
    channel    channel index                             Feature maps, Ideal images
    class      class index                               Ideal images, Adversarial, Grad-CAM
    preset     preset name                               Ideal images, Adversarial
    method     method name                               Adversarial (attack), Grad-CAM, Transfer (strategy)
    channels   thumbnails per layer, 1..16               Network overview
    y, x       a position in the enlarged channel        Feature maps (the neuron explained)

`url_state(param, key, default, options)` before a keyed widget does both directions; the page-specific
parameters (PAGE_PARAMS) are dropped from the URL when the user switches page.
"""

from __future__ import annotations

from collections.abc import Callable, Container, Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from typing import Any

import streamlit as st

from explain.ui.i18n import LANGUAGES, language, t

LESSONS_DIR = Path(__file__).resolve().parents[2] / "assets" / "lessons"
PAGE_PARAMS = ("layer", "channel", "class", "preset", "method", "channels", "y", "x")

PRESENTER_CSS = """
<style>
/* Streamlit sizes its text in rem: a larger root size scales every label for the back row. */
html { font-size: 22px; }
[data-testid="stMainBlockContainer"] { max-width: 100%; padding-left: 2rem; padding-right: 2rem; }
[data-testid="stMarkdownContainer"] p, [data-testid="stMarkdownContainer"] li { line-height: 1.5; }
</style>
"""


# ---------------------------------------------------------------- shareable links


def url_bool(text: str) -> bool:
    """URL text to a bool: 1/true/yes/on are True, anything else False."""
    return text.strip().lower() in ("1", "true", "yes", "on")


def _url_text(value: Any) -> str:
    return ("1" if value else "0") if isinstance(value, bool) else str(value)


def url_state(
    param: str,
    key: str,
    default: Any,
    options: Container | None = None,
    cast: Callable[[str], Any] = str,
    write: bool = True,
) -> Any:
    """Prepare the widget with `key`: take its value from ?param= when it has none, keep the URL equal to it.

    Call it just before drawing the widget (with key=key and no index/value argument: the value comes
    from st.session_state). When the session has no value for the widget (the first run of a shared link,
    or Streamlit dropped a widget that was not drawn, e.g. on a page switch) it comes from the URL, else
    from the value this session last had, else `default`. Returns the value.
    options: the values the widget accepts; a URL value outside them is ignored, a stale one reset to default.
    cast: turns URL text into the widget's value (int for indices, url_bool for toggles).
    write: False to read the URL once and then remove the parameter (a personal display setting, not part of a shared view).
    """
    state = st.session_state
    remembered = state.setdefault("_url_last", {})
    if key not in state:
        raw = _url_get(param)
        try:
            value = cast(raw) if raw is not None else None
        except (TypeError, ValueError):
            value = None
        # The browser drops the query string when the user clicks another page: the session remembers it.
        for candidate in (value, remembered.get(key)):
            if candidate is not None and (options is None or candidate in options):
                state[key] = candidate
                break
    if key not in state or (options is not None and state[key] not in options):
        state[key] = default
    # Re-assigning makes it the value a re-created widget starts from (a page switch gives widgets new ids).
    state[key] = remembered[key] = state[key]
    if not write:
        forget_url(param)  # read once; a link copied from the address bar does not carry it on
    elif _url_get(param) != _url_text(state[key]):
        _url_set(param, _url_text(state[key]))
    if write:
        state.setdefault("_url_owner", {})[param] = _current_page()
    return state[key]


def kept_value(key: str, default: Any, options: Container | None = None) -> Any:
    """Prepare the keyed widget `key` (drawn right after, with no index/value argument): its value from the session,
    else `default`, written back so that the browser shows it. Returns the value.

    The browser does not always show the session's value by itself: a widget drawn again after a run that did not
    draw it (no photo yet, a zip being uploaded) starts from its default, and a radio whose labels changed with the
    language shows no choice at all. A value written into the session in this run is sent to the browser either way.
    """
    value = st.session_state.get(key, default)
    if options is not None and value not in options:
        value = default
    st.session_state[key] = value
    return value


def forget_url(param: str) -> None:
    """Remove a parameter from the URL (its widget is not shown, e.g. an upload replaced the sample)."""
    if _url_get(param) is not None:
        _url_set(param, None)


_PENDING = "_url_pending"


@contextmanager
def url_batch() -> Iterator[None]:
    """The URL changes made inside (url_state, forget_url) reach the browser as one message at the end.

    Each change of st.query_params is its own message, and the browser rewrites its history entry for each: a layer
    switch on Feature maps changed layer, channel, y and x (and forgot the old y and x) in six. Only this module's
    functions see the pending values, so use it where nothing else reads st.query_params (a fragment).
    """
    state = st.session_state
    if state.get(_PENDING) is not None:  # already batching
        yield
        return
    pending: dict[str, str | None] = {}
    state[_PENDING] = pending
    try:
        yield
    finally:
        state[_PENDING] = None
        if pending:
            params = st.query_params.to_dict()
            for param, text in pending.items():
                if text is None:
                    params.pop(param, None)
                else:
                    params[param] = text
            if params != st.query_params.to_dict():
                st.query_params.from_dict(params)


def _url_get(param: str) -> str | None:
    pending = st.session_state.get(_PENDING)
    if pending is not None and param in pending:
        return pending[param]
    return st.query_params.get(param)


def _url_set(param: str, text: str | None) -> None:
    """Set (or with None remove) one URL parameter, now or at the end of the url_batch around it."""
    pending = st.session_state.get(_PENDING)
    if pending is not None:
        pending[param] = text
    elif text is None:
        st.query_params.pop(param, None)
    else:
        st.query_params[param] = text


def forget_choice(param: str, key: str) -> None:
    """Forget a choice everywhere url_state keeps it (the session, its memory of the last value, the URL), so the
    widget starts from its default again: a new photo starts from its own top-1 class, not the last photo's."""
    st.session_state.pop(key, None)
    st.session_state.get("_url_last", {}).pop(key, None)
    forget_url(param)


def _current_page() -> str:
    from streamlit.runtime.scriptrunner import get_script_run_ctx

    ctx = get_script_run_ctx()
    return ctx.page_script_hash if ctx is not None else ""


def _forget_other_pages_params() -> None:
    """A page-specific parameter belongs to the page that wrote it: drop it when the user is on another page.

    A parameter no page has written yet (fresh from a shared link) waits for the page that uses it.
    """
    owners = st.session_state.setdefault("_url_owner", {})
    page = _current_page()
    for param, owner in list(owners.items()):
        if param in PAGE_PARAMS and owner != page:
            forget_url(param)
            del owners[param]


# ---------------------------------------------------------------- presenter mode and the sidebar switches


def presenter_mode() -> bool:
    """True when the teacher turned on presenter mode: pages hide their advanced knobs."""
    return bool(st.session_state.get("presenter", False))


def classroom_controls() -> None:
    """The sidebar's language switch and presenter toggle (both can come from the URL: ?lang=ko&presenter=1)."""
    _forget_other_pages_params()
    url_state("lang", "lang", "en", options=LANGUAGES)
    st.radio("Language / 언어", list(LANGUAGES), format_func=LANGUAGES.get, key="lang", horizontal=True)
    url_state("presenter", "presenter", False, options=(True, False), cast=url_bool, write=False)
    st.toggle(t("Presenter mode"), key="presenter", help=t("Larger text and fewer controls, for a projector."))
    if presenter_mode():
        st.html(PRESENTER_CSS)


# ---------------------------------------------------------------- lessons


@cache
def lesson_text(lesson: str, lang: str = "en") -> tuple[str, str]:
    """(title, markdown body) of a lesson in `lang`, English when that language has no text yet."""
    path = LESSONS_DIR / f"{lesson}.{lang}.md"
    if not path.is_file():
        path = LESSONS_DIR / f"{lesson}.en.md"
    text = path.read_text(encoding="utf-8").strip()
    first, _, body = text.partition("\n")
    return first.lstrip("# ").strip(), body.strip()


def lesson_panel(lesson: str) -> None:
    """The page's short lesson in the chosen language: a closed expander, open in presenter mode."""
    title, body = lesson_text(lesson, language())
    with st.expander(f"📖 {title}", expanded=presenter_mode()):
        st.markdown(body)
