"""A text progress bar as a streaming callback."""

from __future__ import annotations

from .samplers import Chunk, RunInfo


class ProgressBar:
    """tqdm bar over all planned draws (per chain), updated once per chunk."""

    def __init__(self, desc: str = "sampling"):
        self.desc = desc
        self._bar = None

    def __call__(self, chunk: Chunk, info: RunInfo) -> None:
        from tqdm.auto import tqdm

        if self._bar is None:
            self._bar = tqdm(total=info.total, initial=info.done - chunk.size,
                             desc=self.desc, unit="draw", leave=True)
        self._bar.total = info.total
        self._bar.update(chunk.size)
        extra = {"phase": chunk.phase}
        stats = chunk.stats
        if "num_steps" in stats:
            extra["steps"] = int(stats["num_steps"][:, -1].max())
            extra["step_size"] = f"{float(stats['step_size'][:, -1].mean()):.2e}"
        if "accepted" in stats:
            extra["acc"] = f"{float(stats['accepted'].mean()):.2f}"
        self._bar.set_postfix(extra, refresh=False)
        if info.done >= info.total:
            self.close()

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
