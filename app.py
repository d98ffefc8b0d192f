"""CNN Lens: see what a convolutional network does. Run with `streamlit run app.py`."""

import logging

import streamlit as st

from explain.ui.i18n import t
from explain.ui.sidebar import sidebar
from explain.ui.warmup import page_running, start_warmup

log = logging.getLogger("cnn_lens")

st.set_page_config(page_title="CNN Lens", page_icon="🔍", layout="wide")

LESSONS = [
    ("lessons/1_Classify.py", "Classify", "🏷️", "What does the network think this photo shows? Every preprocessing step, then the top-5 classes."),
    ("lessons/1_Network_overview.py", "Network overview", "🗺️", "The whole network for your photo in one picture: every main layer's strongest channels, from the input to the class scores."),
    ("lessons/2_Feature_maps.py", "Feature maps", "🧩", "Walk from the first convolution (edges, colours) to the last block (parts, textures), channel by channel."),
    ("lessons/2_Channel_microscope.py", "Channel microscope", "🔬", "What does one channel look for? The photos of a whole set that excite it most, cut to what it can see, and its ideal image."),
    ("lessons/3_Ideal_images.py", "Ideal images", "✨", "Start from noise and change the picture until the network is sure it sees a cat: the course recipe and a clearer one."),
    ("lessons/4_Adversarial.py", "Adversarial lab", "🎭", "Nudge a photo's pixels by two grey levels until the network calls a cat a dog; a person sees no change."),
    ("lessons/5_Grad-CAM.py", "Grad-CAM", "🔥", "Where did the network look to decide? Grad-CAM, Grad-CAM++ and saliency maps over the photo."),
    ("lessons/6_Transfer_learning.py", "Transfer learning", "🎓", "Fine-tune a new head live on your own small set of photos, then use it as a backbone everywhere."),
]


def home() -> None:
    st.title(t("CNN Lens"))
    st.markdown(
        t(
            "CNN Lens lets you **see** what a convolutional network does: it loads a network "
            "pretrained on ImageNet and shows what happens inside it for a photo you choose."
        )
    )
    st.subheader(t("Lessons"))
    for path, title, icon, text in LESSONS:
        st.page_link(path, label=t(title), icon=icon)
        st.caption(t(text))
    st.info(
        t(
            "The default network, EfficientNet-Lite0, ships with its ImageNet weights and works "
            "without internet. Choose another backbone in the sidebar."
        )
    )


pages = [st.Page(home, title=t("Home"), icon="🔍", default=True)] + [
    st.Page(path, title=t(title), icon=icon) for path, title, icon, _ in LESSONS
]


def guarded(run, where: str) -> None:
    """Run the sidebar or a page; a bug shows one friendly line, its traceback goes to the server log only.

    st.stop/st.rerun/st.switch_page raise BaseExceptions and pass through; a fragment's error was shown already.
    """
    from streamlit.errors import FragmentHandledException

    try:
        run()
    except FragmentHandledException:
        raise
    except Exception:
        log.exception("unexpected error in %s", where)
        st.error(
            t(
                "Something went wrong on this page. Your results so far are kept: change a setting or reload the page. "
                "If it happens again, tell your teacher (the details are in the server log)."
            )
        )


navigation = st.navigation(pages)
with page_running():  # the background warm-up waits while a page runs (explain.ui.warmup)
    guarded(sidebar, "the sidebar")
    guarded(navigation.run, f"the page {navigation.title}")

# after the first page is drawn: the default network's results the first visits need, in the background (explain.ui.warmup)
start_warmup()
