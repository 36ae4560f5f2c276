"""A tqdm progress bar per epoch on stderr, fed by the trainer's callbacks."""

from __future__ import annotations

import math
import sys
import time

from digitocr.training import EpochStats, TrainCallbacks


class EpochProgressBars(TrainCallbacks):
    """Loss and examples/s while an epoch runs; its validation accuracy when it ends.

    ``unit``: what an example is, as the rate names it: "img" for a classifier's digits, "lines" for a line model's.
    """

    def __init__(self, total_epochs: int, refresh_every: int = 20, unit: str = "img"):
        self.total_epochs = total_epochs
        self.refresh_every = refresh_every
        self.unit = unit
        self.bar = None

    def on_epoch_start(self, epoch: int, steps: int) -> None:
        from tqdm import tqdm

        self.bar = tqdm(
            total=steps,
            desc=f"epoch {epoch}/{self.total_epochs}",
            file=sys.stderr,
            unit="batch",
            leave=True,
            dynamic_ncols=True,
        )
        self.started = time.perf_counter()
        self.examples = 0
        self.pending = 0

    def on_step(self, step: int, loss: float, images: int) -> None:
        self.examples += images
        self.pending += 1
        if self.pending >= self.refresh_every:
            rate = self.examples / max(time.perf_counter() - self.started, 1e-9)
            self.bar.set_postfix_str(f"loss {loss:.4f}, {rate:,.0f} {self.unit}/s", refresh=False)
            self.bar.update(self.pending)
            self.pending = 0

    def on_epoch_end(self, stats: EpochStats) -> None:
        self.bar.update(self.pending)
        accuracy = "n/a" if math.isnan(stats.val_accuracy) else f"{stats.val_accuracy:.2%}"
        rate = self.examples / max(stats.seconds, 1e-9)
        self.bar.set_postfix_str(f"loss {stats.train_loss:.4f}, val acc {accuracy}, {rate:,.0f} {self.unit}/s")
        self.close()

    def close(self) -> None:
        """End a bar left open by an interruption, so what is printed next starts on a line of its own."""
        if self.bar is not None:
            self.bar.close()
            self.bar = None
