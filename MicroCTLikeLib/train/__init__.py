"""Headless training of the MDCT -> micro-CT translation models.

Layers, each in its own module:

* :mod:`.config`: defaults + YAML/JSON file + command-line overrides -> one resolved dict;
* :mod:`.data`: cohort -> axial slices at the target spacing, normalised to [-1, 1],
  random crops/flips, unpaired (or paired, for pix2pixHD) batches, split by specimen;
* :mod:`.checkpoint`: atomic, ``weights_only``-loadable checkpoints and
  :func:`~.checkpoint.load_inference_model` for the generation engine;
* :mod:`.distributed`: torchrun / DistributedDataParallel set-up and data sharding;
* :mod:`.runlog`: CSV log, optional TensorBoard, sample PNGs;
* :mod:`.trainer`: :func:`~.trainer.train`, the loop that ties them together.

torch is imported by these modules; import them only where training or inference happens.
"""
