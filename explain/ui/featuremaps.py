"""What the Feature maps page keeps per session: the recording of every layer for one photo, model summaries."""

from __future__ import annotations

import numpy as np

from explain.featuremaps import record_image
from explain.hooks import Recording
from explain.images import Prepared, prepare
from explain.models import Backbone, ModelSummary, summarize
from explain.ui.session import cached, image_key

RECORDINGS_KEPT = 1  # every layer's maps of one photo: the largest thing a session holds
SUMMARIES_KEPT = 4


def cached_recording(backbone: Backbone, image: np.ndarray) -> tuple[Prepared, Recording]:
    """Every layer's maps for (backbone, image), recorded once per session and re-used on every layer switch."""

    def record() -> tuple[Prepared, Recording]:
        prepared = prepare(image, backbone.preprocess)
        return prepared, record_image(backbone, prepared.tensor)

    return cached("recordings", (backbone.name, image_key(image)), record, RECORDINGS_KEPT)


def cached_summary(backbone: Backbone) -> ModelSummary:
    """The Keras-style summary of a backbone, computed once per session and backbone."""
    return cached("summaries", backbone.name, lambda: summarize(backbone), SUMMARIES_KEPT)
