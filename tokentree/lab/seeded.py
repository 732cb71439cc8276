"""What the Config of every experiment that trains models over seeds shares: its list of seeds."""

from __future__ import annotations

from tokentree.framework.runner import seed_list

__all__ = ["SeededTraining"]


class SeededTraining:
    """Mixin for a frozen ``Config`` dataclass with the fields ``seed`` and ``n_seeds``."""

    seed: int
    n_seeds: int

    @property
    def seeds(self) -> list[int]:
        """The run's seeds: ``seed``, ``seed + 1``, ..., ``n_seeds`` of them."""
        return seed_list(self.seed, self.n_seeds)
