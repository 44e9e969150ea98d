"""Named, consecutive time periods of the logs: every split is by time, never at random.

    periods = Periods.from_config(dataset.start, dataset.n_days, config["periods"], every=7)
    periods.mask("validation", timestamps)       # rows whose time falls in the period

A system's config lists its periods in order with their lengths in days; the first one takes what
the others leave (after `warmup_days`, whose features have no history yet), the later ones are
counted back from the end of the logs:

    periods:
      warmup_days: 1
      days: {train: null, validation: 3, test: 3}           # ads
      days: {two_tower: null, train: 4, validation: 2, test: 2}   # video: the two-tower's own period first

Every boundary falls on a snapshot day (a multiple of `every` days since the start), so features
read at a boundary cover every event before it; `end` is the first snapshot after the last event,
which is also the serving clock of a frozen world.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class Periods:
    starts: dict[str, pd.Timestamp]  # in order; each period runs until the next one starts
    end: pd.Timestamp

    @classmethod
    def from_config(cls, start: pd.Timestamp, n_days: int, config: dict, every: int = 1) -> Periods:
        names, lengths = list(config["days"]), list(config["days"].values())
        if lengths[0] is not None or any(days is None or days < 1 for days in lengths[1:]):
            raise ValueError(f"periods {config['days']}: the first takes the rest (null), the others >= 1 day")

        def on_snapshot(day: int) -> int:
            return every * (day // every)

        end_day = every * int(np.ceil(n_days / every))
        first_days = [0] * len(names)
        first_days[-1] = on_snapshot(n_days - lengths[-1])
        for i in range(len(names) - 2, 0, -1):
            first_days[i] = on_snapshot(first_days[i + 1] - lengths[i])
        first_days[0] = config.get("warmup_days", 0)
        if first_days[1] - first_days[0] < 1:
            raise ValueError(f"{n_days} days of logs are too few for the periods {config['days']}")
        day = pd.Timedelta(days=1)
        return cls({name: start + d * day for name, d in zip(names, first_days, strict=True)}, start + end_day * day)

    @property
    def names(self) -> list[str]:
        return list(self.starts)

    def start(self, name: str) -> pd.Timestamp:
        return self.starts[name]

    def stop(self, name: str) -> pd.Timestamp:
        """Where the period ends (exclusive): the next period's start, or `end` for the last."""
        later = self.names[self.names.index(name) + 1 :]
        return self.starts[later[0]] if later else self.end

    def mask(self, name: str, timestamps) -> np.ndarray:
        """Which of `timestamps` fall in the period; the last period also keeps anything after `end`."""
        times = pd.DatetimeIndex(timestamps)
        keep = times >= self.start(name)
        if name != self.names[-1]:
            keep &= times < self.stop(name)
        return np.asarray(keep)

    def describe(self) -> dict[str, str]:
        """Each period's first day, for run parameters."""
        return {f"{name}_start": str(start.date()) for name, start in self.starts.items()}
