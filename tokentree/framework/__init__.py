"""The experiment framework: the experiment contract, the registry, TOML configs, run outputs, tests over seeds.

==================  ===============================================================
``config``          :class:`Checked` configs: bounds declared once (``bounded``), nested ``group``s
``runs``            :class:`Experiment`, the registry of entry points, TOML configs, run folders
``runner``          ``run_cases``: the seed loop with progress and timing, tables concatenated
``tables``          declared tables (columns, units, formats), rendered as Markdown and terminal text
``claims``          a claim: a named function from tables to a finding
``verdicts``        a verdict: status, evidence in words, and its numbers (``values``)
``report``          :class:`ExperimentReport`: result.json, summary.md, terminal and pandas, written once
``aggregate``       descriptions over seeds: means, spreads, signs, log-log slopes
``stats``           tests over seeds: paired t / Wilcoxon, trend (slope on log x, Page's L), Holm, clustering
``decisions``       from a test to holds / fails / within noise / not detectable, with the reason in words
==================  ===============================================================
"""
