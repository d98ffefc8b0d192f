"""Every cap that bounds what one user (one session, one command) can make the server hold or compute.

One place, so the library's checks, the pages' captions and `.streamlit/config.toml` agree. Each cap is
enforced by the library (a LensError naming the cap) and stated on the page where it applies
(explain/ui/limits.py). Imports nothing: every module may import it.
"""

from __future__ import annotations

# --- uploads and images ------------------------------------------------------------------------
# Streamlit refuses bigger uploads before they reach the app: must equal config.toml's maxUploadSize.
# Weights files (ResNet-50: 98 MB) and dataset zips need more room than one photo.
MAX_UPLOAD_MB = 200
MAX_IMAGE_MB = 50  # one photo file; no camera or phone photo comes near it
MAX_IMAGE_BYTES = MAX_IMAGE_MB * 1024 * 1024
MAX_IMAGE_PIXELS = 40_000_000  # 40 MP decode to 120 MB of RGB; checked from the header before decoding (decompression bombs)

# --- ideal images (explain/synthesis/) -------------------------------------------------------
MAX_IDEAL_STEPS = 2000  # ~3 min on 2 CPU cores at 224 px; more only keeps one of the few heavy-job slots busy
MIN_IDEAL_SIZE = 32  # smaller than the network's first strides leaves nothing to optimise
MAX_IDEAL_SIZE = 1024  # activations and their gradients grow with the square of the side
MAX_IDEAL_BATCH = 16  # augmented copies per step: memory grows with each copy

# --- adversarial attacks (explain/adversarial/) ----------------------------------------------
MAX_ATTACK_STEPS = 1000  # PGD converges in tens of steps; a thousand is already far past useful

# --- class maps (explain/cam/, explain/trust/) ---------------------------------------------------------------
MAX_SMOOTHGRAD_SAMPLES = 50  # each noisy copy is one more forward and backward pass
MAX_IG_STEPS = 200  # integrated gradients: each step is one more forward and backward pass
MAX_TRUST_IMAGES = 100  # `trust` scores every method on each image: minutes per image on a CPU for Score-CAM

# --- transfer learning (explain/transfer/) ---------------------------------------------------
MAX_EPOCHS = 200  # a small dataset's head learns in tens of epochs; keeps one training job from holding a slot for hours
MAX_DATASET_IMAGES = 5000  # uploads live in memory (at MAX_STORED_SIDE: ~300 KB each, ~1.5 GB in all)
MAX_STORED_SIDE = 320  # shorter side kept in memory; every registry input is smaller
ZIP_MAX_ENTRIES = 20_000  # the central directory alone of a zip with millions of tiny entries fills memory
ZIP_MAX_TOTAL_BYTES = 1024 * 1024 * 1024  # what a zip may unpack to, summed over its entries
ZIP_MAX_RATIO = 200  # a higher compression ratio than this is a zip bomb, not photos

# --- network overview and one neuron (explain/overview.py, explain/neuron.py) --------------------
MAX_OVERVIEW_CHANNELS = 16  # thumbnails per layer column; more makes one picture too tall to read

# --- channel microscope (explain/microscope/) ----------------------------------------------------
MAX_INDEX_IMAGES = 5000  # the index keeps every photo as the network saw it (150 KB at 224 px): 5000 are ~750 MB on disk
MAX_MICROSCOPE_TOP = 64  # patches per query; a page grid of more is too small to read
MAX_INDEX_CACHE_MB = 4096  # the shared index cache on disk; past it the least recently used indexes go

# --- one session -------------------------------------------------------------------------------
MAX_SESSION_MODELS = 4  # own models (uploaded weights, trained) kept per session; each holds a whole network
MAX_IDEAL_GALLERY = 24  # ideal images kept per session (with their curves); the oldest go first
