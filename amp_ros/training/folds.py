"""The cross-validation folds: which six DAVIS-2016 train sequences a training run holds out.

The DAVIS-2016 val sequences are the benchmark's test set and are not used at all; each training
run holds six of the 30 *train* sequences out for validation and scoring (``amp-train --fold``,
``scripts/heldout_results.sh``, the protocol of ``docs/results.md``). Imports nothing heavy, so
that scripts can read it quickly.
"""

from __future__ import annotations

# Six DAVIS-2016 train sequences held out for validation (fixed, chosen to be varied):
#   bus         – large rigid object, camera following it (camera motion, occlusion)
#   car-turn    – rigid object turning (scale variation, rotation, cluttered background)
#   dance-jump  – deforming person, motion blur, moving camera
#   hike        – small person walking, low resolution, deformation
#   mallard-fly – small, fast bird against a similar background
#   stroller    – camera shake, fast motion, person + stroller
VAL_SEQUENCES = ("bus", "car-turn", "dance-jump", "hike", "mallard-fly", "stroller")
# The five folds: fold A is the default's; the five hold each of the 30 sequences once.
FOLDS = {
    "A": VAL_SEQUENCES,
    "1": ("bmx-bumps", "drift-turn", "horsejump-low", "motocross-bumps", "rollerblade", "tennis"),
    "2": ("boat", "elephant", "kite-walk", "motorbike", "scooter-gray", "swing"),
    "3": ("breakdance-flare", "flamingo", "lucia", "paragliding", "soccerball", "train"),
    "4": ("bear", "dog-agility", "hockey", "mallard-water", "rhino", "surf"),
}
