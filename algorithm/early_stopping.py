"""Early stopping with the built-in algorithm's semantics.

After each epoch's ``validation:mAP``: an epoch *improves* when ``(mAP - best) / best`` exceeds
``tolerance`` (any positive mAP improves on a best of 0). The job stops once ``patience`` epochs
in a row have not improved, but never before ``min_epochs`` epochs have run.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, Optional


@dataclass
class EarlyStopping:
    min_epochs: int = 10
    patience: int = 5
    tolerance: float = 0.0
    best: Optional[float] = None
    best_epoch: Optional[int] = None
    stale_epochs: int = 0

    def update(self, epoch: int, score: float) -> bool:
        """Record the score of ``epoch`` (1-based); True when this epoch improved on the best."""
        improved = self.best is None or (
            score > self.best if self.best == 0 else (score - self.best) / self.best
            > self.tolerance)
        if improved:
            self.best, self.best_epoch, self.stale_epochs = score, epoch, 0
        else:
            self.stale_epochs += 1
        return improved

    def should_stop(self, epoch: int) -> bool:
        """True when the job should end after ``epoch`` (1-based)."""
        return epoch >= self.min_epochs and self.stale_epochs >= self.patience

    def state_dict(self) -> Dict[str, Any]:
        return {"best": self.best, "best_epoch": self.best_epoch,
                "stale_epochs": self.stale_epochs}

    def load_state_dict(self, state: Dict[str, Any]) -> None:
        self.best = state["best"]
        self.best_epoch = state["best_epoch"]
        self.stale_epochs = state["stale_epochs"]
