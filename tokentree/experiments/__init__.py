"""The experiments, one module each: a frozen ``Config``, ``run(config) -> Result``, and rendering.

Each module follows the :class:`tokentree.framework.runs.Experiment` protocol and is registered as
an entry point of the group ``tokentree.experiments`` (``tokentree run --list``). The
logic lives below, in :mod:`tokentree.verification`, :mod:`tokentree.lab`,
:mod:`tokentree.bridge` and :mod:`tokentree.compression`; an experiment is config,
wiring and rendering. What each one claims and writes: docs/experiments.md.
"""

__all__: list[str] = []
