"""The channel microscope: which photos of a set excite a channel most, cut to the channel's receptive field.

    sets    the photos to index: a folder or zip, a dataset in memory, the default set (scikit-image's photos and crops)
    store   an index on disk: the shared cache folder, the manifest, opening it memory-mapped, the weights fingerprint
    index   building it (a long job: every main layer's per-channel maximum and its position, per photo)
    query   the top-k patches of one channel and its histogram, from the index alone (no network runs)
"""

from explain.microscope.index import (
    IndexBuild,
    build_index,
    cache_path,
    ensure_index,
    find_index,
    index_key,
    index_layers,
)
from explain.microscope.query import (
    DEFAULT_TOP,
    ChannelQuery,
    TopPatch,
    enlarged,
    in_context,
    query_channel,
    query_json,
)
from explain.microscope.sets import (
    ImageCollection,
    SetImage,
    folder_images,
    memory_images,
    path_images,
    sample_images,
    zip_images,
)
from explain.microscope.store import ChannelIndex, IndexLayer, index_root, open_index, prune_cache, weights_fingerprint

__all__ = [
    "DEFAULT_TOP", "ChannelIndex", "ChannelQuery", "ImageCollection", "IndexBuild", "IndexLayer", "SetImage", "TopPatch",
    "build_index", "cache_path", "enlarged", "ensure_index", "find_index", "folder_images", "in_context", "index_key",
    "index_layers", "index_root", "memory_images", "open_index", "path_images", "prune_cache", "query_channel",
    "query_json", "sample_images", "weights_fingerprint", "zip_images",
]
