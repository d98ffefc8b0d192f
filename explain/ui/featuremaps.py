"""What the Feature maps page keeps per session: the recording of every layer for one photo, model summaries."""

from __future__ import annotations

import numpy as np

from explain.featuremaps import record_image
from explain.hooks import Recording
from explain.images import Prepared, prepare
from explain.models import Backbone, ModelSummary, summarize
from explain.ui.backbones import is_shared
from explain.ui.session import cached, image_key

RECORDINGS_KEPT = 1  # every layer's maps of one photo: the largest thing a session holds
SUMMARIES_KEPT = 4


def recording_key(backbone: Backbone, image: np.ndarray) -> tuple:
    """The cache key of what a network computes for a photo (recordings, traces): name, preprocessing, pixels."""
    return (backbone.name, backbone.preprocess, image_key(image))


def record_photo(backbone: Backbone, image: np.ndarray) -> tuple[Prepared, Recording]:
    prepared = prepare(image, backbone.preprocess)
    return prepared, record_image(backbone, prepared.tensor)


def cached_recording(backbone: Backbone, image: np.ndarray) -> tuple[Prepared, Recording]:
    """Every layer's maps for (backbone, image), recorded once per session (once per server for a registry network)."""
    build = lambda: record_photo(backbone, image)  # noqa: E731
    return cached("recordings", recording_key(backbone, image), build, RECORDINGS_KEPT, shared=is_shared(backbone))


def cached_summary(backbone: Backbone) -> ModelSummary:
    """The Keras-style summary of a backbone, computed once per session and backbone."""
    return cached("summaries", backbone.name, lambda: summarize(backbone), SUMMARIES_KEPT)
