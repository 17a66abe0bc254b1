"""Datasets on the client: convert, validate, describe, preview and synthesise them.

Every function returns a plain object the CLI renders; notebook users call the same ones::

    from detectctl.datasets.validate import validate
    report = validate("data/train.rec", num_classes=20)
    report.valid, report.problems

Modules: :mod:`~detectctl.datasets.convert`, :mod:`~detectctl.datasets.validate`,
:mod:`~detectctl.datasets.stats`, :mod:`~detectctl.datasets.preview`,
:mod:`~detectctl.datasets.synth`; readers and writers in :mod:`~detectctl.datasets.readers`,
:mod:`~detectctl.datasets.writers`, :mod:`~detectctl.datasets.voc`,
:mod:`~detectctl.datasets.coco`; every command that writes goes through
:mod:`~detectctl.datasets.outputs` (whole or nothing). The training-format readers are
``algorithm.data``'s torch-free modules. Nothing here imports torch.
"""
