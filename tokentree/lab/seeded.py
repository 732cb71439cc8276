"""What the Config of every experiment that trains models over seeds shares: the seeds, the device, the threads."""

from __future__ import annotations

from tokentree.bridge.hf import DEVICES
from tokentree.framework.runner import seed_list
from tokentree.infra.checks import check_choice, check_int

__all__ = ["SeededTraining"]


class SeededTraining:
    """Mixin for a frozen ``Config`` dataclass with the fields ``seed``, ``n_seeds``, ``device`` and ``threads``."""

    seed: int
    n_seeds: int
    device: str
    threads: int

    @property
    def seeds(self) -> list[int]:
        """The run's seeds: ``seed``, ``seed + 1``, ..., ``n_seeds`` of them."""
        return seed_list(self.seed, self.n_seeds)

    def check_training_settings(self) -> None:
        """Refuse a device that is not one of ``DEVICES``, fewer than one thread or seed, or a negative seed."""
        check_choice(self.device, "device", DEVICES)
        check_int(self.threads, "threads", minimum=1)
        check_int(self.seed, "seed", minimum=0)
        check_int(self.n_seeds, "n_seeds", minimum=1)
