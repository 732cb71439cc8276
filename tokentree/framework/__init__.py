"""The experiment framework: the experiment contract, the registry, configs in TOML, run outputs, seed statistics.

==================  ===============================================================
``runs``            :class:`Experiment`, the registry of entry points, TOML configs, run folders
``aggregate``       means and spreads over seeds, and whether a change stands out of the noise
==================  ===============================================================
"""
