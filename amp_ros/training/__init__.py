"""Training of the two-stream network's background/object heads (``amp-train``).

Modules:

- :mod:`~amp_ros.training.data`: sequences at the training size, DIS flow cache.
- :mod:`~amp_ros.training.augment`: scale/crop, flip, photometric jitter, camera motion, object
  pasting with known motion.
- :mod:`~amp_ros.training.folds`: the cross-validation folds (the six sequences a run holds out).
- :mod:`~amp_ros.training.sampling`: the train/validation split and
  :class:`~amp_ros.training.sampling.SampleSource` (supervised samples and episode pairs).
- :mod:`~amp_ros.training.model`: the network and its learnable heads as one module, and the
  two losses (supervised, episodic).
- :mod:`~amp_ros.training.episodes`: the episodic prototype loss (imprint on one frame,
  classify another).
- :mod:`~amp_ros.training.validation`: validation J with the learned heads and one-shot J.
- :mod:`~amp_ros.training.appearance`: ImageNet initialisation and freezing of the
  EfficientNet appearance trunk.
- :mod:`~amp_ros.training.optimizer`: AdamW parameter groups, the learning-rate schedule, and
  the optimizer state as safetensors.
- :mod:`~amp_ros.training.pack`: the data shrunk and split to travel to a GPU machine.
- :mod:`~amp_ros.training.run_state`: seeding, the resumable run state (RNGs, epoch, log),
  provenance (machine, portable command) and the JSON files of a run.
- :mod:`~amp_ros.training.threads`: the torch thread count.
- :mod:`~amp_ros.training.options`: the ``amp-train`` options (argparse).
- :mod:`~amp_ros.training.train`: the training loop and the ``amp-train`` entry point.
- :mod:`~amp_ros.training.imprint_check`: imprinted proxies vs learned heads.
- :mod:`~amp_ros.training.ship`: copy a trained checkpoint into ``amp_ros/models``.

Library functions raise :class:`TrainingError` (or another :class:`amp_ros.errors.AmpError`);
only the command-line ``main`` functions turn it into an exit status.
"""

from amp_ros.errors import AmpError


class TrainingError(AmpError):
    """A training run cannot start or continue (bad data selection, incompatible resume, …)."""


__all__ = ["TrainingError"]
