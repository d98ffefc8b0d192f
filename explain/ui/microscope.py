"""Widgets of the Channel microscope page: the photo set, its index (built with a progress bar), a channel's top patches,
its histogram and its ideal image; and the link that opens a channel there from other pages."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
import streamlit as st

from explain.jobs import Progress
from explain.limits import MAX_INDEX_IMAGES, MAX_MICROSCOPE_TOP
from explain.microscope import (
    ChannelIndex,
    ChannelQuery,
    ImageCollection,
    enlarged,
    ensure_index,
    find_index,
    in_context,
    memory_images,
    sample_images,
    zip_images,
)
from explain.models import Backbone
from explain.synthesis import IdealResult, channel_target, ideal_image, preset, result_so_far
from explain.ui.classroom import kept_value, presenter_mode, url_state
from explain.ui.errors import run_safely
from explain.ui.i18n import t
from explain.ui.jobs import JobView, run_job, stop_button
from explain.ui.limits import image_limits, limits_caption
from explain.ui.plots import upright_yaxis_title
from explain.ui.session import cached, session_cache

MICROSCOPE_PAGE = "lessons/2_Channel_microscope.py"
SETS_KEPT = 2  # listed photo sets (a zip's digests, the transfer dataset's) per session
IDEALS_KEPT = 6  # channel ideal images per session
PATCH_SIDE = 160  # pixels a patch is drawn at (nearest neighbour: a 3×3 patch stays nine squares)


def open_in_microscope(layer: str, channel: int) -> None:
    """Switch to the Channel microscope with this layer and channel chosen; the URL names them (a shareable link)."""
    st.session_state.update(mic_layer=layer, mic_channel=int(channel))
    st.session_state.get("_url_last", {}).update(mic_layer=layer, mic_channel=int(channel))
    params = {k: st.query_params[k] for k in ("lang", "backbone") if k in st.query_params}
    st.switch_page(MICROSCOPE_PAGE, query_params=params | {"layer": layer, "channel": str(int(channel))})


def microscope_button(layer: str, channel: int, key: str, where=None, indexed: bool = True) -> None:
    """"Open in channel microscope 🔬" for a channel shown elsewhere; a layer the index does not hold says so instead."""
    where = where or st
    if not indexed:
        where.caption(t("The channel microscope indexes the main layers only; turn on “Main layers only” to pick one."))
        return
    if where.button(t("Open in channel microscope 🔬"), key=key, help=t("The photos of a whole set that excite this channel most.")):
        open_in_microscope(layer, channel)


# ---------------------------------------------------------------- the photo set and its index


def _transfer_dataset():
    """The dataset the Transfer learning page decoded last in this session, or None."""
    from explain.ui.transfer import DATASETS_KEPT

    datasets = session_cache("tl_datasets", DATASETS_KEPT)
    return datasets[list(datasets)[-1]] if len(datasets) else None


SET_TITLES = {"samples": "scikit-image's sample photos and crops of them", "zip": "the uploaded zip", "transfer": "the Transfer learning dataset"}


def photo_set_picker() -> tuple[ImageCollection, str] | None:
    """The photos to look through and what to call them: the default set (scikit-image's, offline), a zip, or the
    Transfer learning dataset."""
    dataset = _transfer_dataset()
    sources = {"samples": t("Sample photos and crops (built in)"), "zip": t("A zip of photos")}
    if dataset is not None:
        sources["transfer"] = t("The Transfer learning dataset ({n} photos)", n=len(dataset))
    if presenter_mode():
        source = "samples"
    else:
        kept_value("mic_source", "samples", sources)
        source = st.radio(t("Photos to look through"), list(sources), format_func=sources.get, horizontal=True, key="mic_source")
    label = t(SET_TITLES[source])
    if source == "samples":
        return sample_images(), label
    if source == "transfer":
        return cached("mic_sets", ("transfer", id(dataset)), lambda: memory_images("transfer", dataset.images, dataset.names), SETS_KEPT), label
    up = st.file_uploader(t("Zip of photos (any folders)"), type=["zip"], key="mic_zip")
    limits_caption(image_limits(), t("at most {n} photos", n=MAX_INDEX_IMAGES))
    photos = None if up is None else run_safely(cached, "mic_sets", ("zip", up.file_id), lambda: zip_images(up.getvalue(), up.name), SETS_KEPT)
    return None if photos is None else (photos, f"{label} {up.name}")


def _index_view(total: int) -> JobView:
    return JobView(caption=lambda p: t("Indexing: photo {s} of {n}", s=p.step, n=total))


def channel_index(backbone: Backbone, photos: ImageCollection, label: str) -> ChannelIndex | None:
    """The index of (backbone, photos) from the shared disk cache, or built now with a progress bar and Stop.

    The built-in set is indexed without asking (once per server and network); other sets after a click."""
    found = run_safely(find_index, backbone, photos)
    if found is not None:
        return found
    holder = st.empty()  # the notice, the buttons and the progress bar go once the index is there
    with holder.container():
        built = _build_here(backbone, photos, label)
    if built is None:
        return None
    holder.empty()
    if built.skipped:
        st.caption(t("Skipped {n} file(s): {files}", n=len(built.skipped), files="; ".join(built.skipped[:5])))
    return built.index


def _build_here(backbone: Backbone, photos: ImageCollection, label: str):
    """The notice and the Build button; the build itself with the progress bar and Stop. The build, or None."""
    state = st.session_state
    attempt = (backbone.name, photos.digest)
    st.info(t("{set}: {n} photos, not indexed yet for {model}. Indexing records every main layer once per photo and is kept for every session.",
              set=label, n=len(photos), model=backbone.name))
    c1, c2 = st.columns([3, 1])
    clicked = c1.button(t("Build the index"), key="mic_build", type="primary")
    stop_button("mic_index", c2)
    automatic = photos.title == sample_images().title and state.get("mic_auto") != attempt
    start = clicked or automatic
    if start:
        state["mic_auto"] = attempt  # the built-in set starts by itself once; after a Stop it waits for the button
    # ensure_index looks again first: another session may have built it while this one waited for a heavy-job slot
    work = (lambda job: ensure_index(backbone, photos, callback=job.callback, should_stop=job.should_stop)) if start else None
    outcome = run_job("mic_index", t("Indexing"), work, _index_view(len(photos)))
    if outcome is None:
        return None
    built = outcome.result
    if outcome.interrupted or built is None or built.stopped:
        st.warning(t("Stopped: the index was not saved. Build it again to look through these photos."))
        return None
    return built


# ---------------------------------------------------------------- the channel


def channel_picker(index: ChannelIndex) -> tuple[str, int]:
    """Layer and channel, both in the URL (?layer=…&channel=…); a new layer starts at channel 0."""
    names = [li.name for li in index.layers]
    by_name = {li.name: li for li in index.layers}
    url_state("layer", "mic_layer", names[len(names) // 2], options=names)
    c1, c2 = st.columns([3, 1])
    layer = c1.selectbox(t("Layer"), names, key="mic_layer", format_func=lambda n: f"{names.index(n) + 1}. {n} · {by_name[n].type} · {'×'.join(map(str, by_name[n].shape))}")
    channels = by_name[layer].shape[0]
    url_state("channel", "mic_channel", 0, options=range(channels), cast=int)
    channel = int(c2.number_input(t("Channel"), 0, channels - 1, key="mic_channel"))
    return layer, channel


def top_grid(index: ChannelIndex, query: ChannelQuery, context: bool, columns: int = 3) -> None:
    """The strongest photos' patches (or the photos with the box drawn), each with its value and file."""
    for start in range(0, len(query.top), columns):
        for col, p in zip(st.columns(columns), query.top[start : start + columns]):
            picture = in_context(index, p) if context else enlarged(p.patch, PATCH_SIDE)
            x0, y0, x1, y1 = p.box
            col.image(picture, width="stretch", caption=t("#{r} · {v:.3f} · {file} · box {w}×{h} at x {x0}, y {y0}",
                                                            r=p.rank, v=p.value, file=p.file, w=x1 - x0, h=y1 - y0, x0=x0, y0=y0))


def histogram_figure(query: ChannelQuery) -> go.Figure:
    """How strongly the channel answers each photo of the set (each photo's maximum), the top-k's share marked."""
    centres = (query.edges[:-1] + query.edges[1:]) / 2
    fig = go.Figure(go.Bar(x=centres, y=query.counts, width=np.diff(query.edges), marker_color="#4C78A8",
                           hovertemplate=t("maximum") + " %{x:.3f}<br>" + t("photos") + " %{y}<extra></extra>"))
    if query.top:
        weakest = query.top[-1].value
        fig.add_vline(x=weakest, line_dash="dot", line_color="#e4572e",
                      annotation_text=t("top {k} from here", k=len(query.top)), annotation_position="top right")
    fig.update_layout(height=280, margin=dict(l=10, r=10, t=40, b=30), xaxis_title=t("the photo's maximum of this channel"), bargap=0.05)
    return upright_yaxis_title(fig, t("photos"))


def top_count() -> int:
    """How many patches (fixed in presenter mode)."""
    if presenter_mode():
        return 9
    return int(st.slider(t("Patches"), 3, min(MAX_MICROSCOPE_TOP, 24), 9, step=3, key="mic_top"))


# ---------------------------------------------------------------- the channel's ideal image


def _ideals():
    return session_cache("mic_ideals", IDEALS_KEPT)


def ideal_panel(backbone: Backbone, layer: str, channel: int) -> None:
    """The channel's ideal image (the clear recipe of Ideal images): made on a click, with progress and Stop, kept per session."""
    key = (backbone.name, layer, channel)
    target = run_safely(channel_target, backbone, layer, channel)
    if target is None:
        return
    settings = preset("clear")
    c1, c2 = st.columns([3, 1])
    clicked = c1.button(t("Make its ideal image ✨"), key="mic_ideal_run", help=t("Grow a picture from noise that excites this channel as much as possible (the clear recipe of Ideal images)."))
    stop_button("mic_ideal", c2)

    def work(job) -> IdealResult:
        job.keep(key)
        return ideal_image(backbone, target, settings, job.callback, job.should_stop)

    def salvage(kept, last: Progress | None) -> IdealResult | None:
        return result_so_far(backbone, target, settings, last) if kept == key and last is not None and last.preview is not None else None

    view = JobView(preview=lambda p: (p.preview, t("step {s} of {n}", s=p.step, n=p.total)), every=8)
    outcome = run_job("mic_ideal", t("Ideal image of {layer} channel {c}", layer=layer, c=channel), work if clicked else None, view, salvage)
    if outcome is not None and outcome.result is not None:
        _ideals()[key] = outcome.result
    result = _ideals().get(key)
    if result is None:
        st.caption(t("No ideal image of this channel yet: it takes about {s} steps.", s=settings.steps))
        return
    note = t("stopped at step {s} of {n}", s=result.steps_done, n=settings.steps) if result.stopped else t("{n} steps in {s:.1f} s", n=result.steps_done, s=result.seconds)
    st.image(result.image, width=320, caption=t("ideal image of {layer} channel {c}: mean activation {a:.3f} · {note}", layer=layer, c=channel, a=result.activation, note=note))
