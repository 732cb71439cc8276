"""The experiment framework: the experiment contract, the registry, TOML configs, run outputs, tests over seeds.

==================  ===============================================================
``runs``            :class:`Experiment`, the registry of entry points, TOML configs, run folders
``aggregate``       means and spreads over seeds, and whether a change stands out of the noise
``stats``           tests over seeds: paired t / Wilcoxon, trend (slope on log x, Page's L), Holm, clustering
``decisions``       from a test to holds / fails / within noise / not detectable, with the reason in words
==================  ===============================================================
"""
