"""Portrait-segmentation designs. ``create_arch(name)``, ``list_archs(pattern)``, ``get_spec(name)``."""
from .registry import (LOGITS, SEG_ALPHA, ArchSpec, CheckpointInfo, Preprocess, create_arch,
                       get_spec, list_archs, register_arch)

# Importing a design module registers it: the five designs, then the peers (SINet, ExtremeC3Net).
from . import esp_dense_seg, mobilenet_dilate_unet, residualdense_bisenet, seg_matting, shuffle_seg_skipnet  # noqa: E402,F401
from . import extremec3, sinet  # noqa: E402,F401

__all__ = ["ArchSpec", "CheckpointInfo", "Preprocess", "LOGITS", "SEG_ALPHA", "create_arch",
           "get_spec", "list_archs", "register_arch"]
