"""Training of the two-stream network's background/object heads (``amp-train``).

Modules: :mod:`~amp_ros.training.data` (sequences at the training size, DIS flow cache),
:mod:`~amp_ros.training.augment` (scale/crop, flip, photometric jitter, camera motion, object
pasting with known motion), :mod:`~amp_ros.training.train` (the loop and the ``amp-train`` CLI)
and :mod:`~amp_ros.training.imprint_check` (imprinted proxies vs learned heads).
"""
