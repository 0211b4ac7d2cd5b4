"""Experiments: one scenario played with several master seeds into one directory.

`mas run FILE --seeds 0-4 --out DIR` writes

    DIR/experiment.json    what was run: the resolved scenario (overrides applied), the
                           seeds, episodes per seed, the source file and its --set overrides
    DIR/seed-0/            one ordinary run directory per seed (run.sqlite), as
    DIR/seed-1/ ...        `mas run FILE --seed 0 --out DIR/seed-0` would write it
    DIR/report.html        the experiment's report and figures (unless --no-report)
    DIR/figures/

`mas plot`, `mas compare` and `mas report` read DIR as one experiment: metrics are
computed per seed and given with a 95% interval across seeds (`mas.analysis.experiment`).
`mas train` runs follow the same layout (`--out DIR/seed-<n>`): their curves get bands
across seeds. `experiment.json` is written before the first seed runs, so
`mas run --resume DIR` can finish an interrupted experiment.
"""

from __future__ import annotations

import json
import re
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from mas.errors import MasError, StoreError
from mas.scenario import MAX_SEED

EXPERIMENT_FILE = "experiment.json"
SEED_PREFIX = "seed-"
#: the most seeds one experiment runs
MAX_SEEDS = 1000
_RANGE = re.compile(r"^(\d+)\s*-\s*(\d+)$")


def parse_seeds(text: str, most: int = MAX_SEEDS, option: str = "--seeds") -> list[int]:
    """'0-4', '0,3,7' or a mix ('0-2,10') as a sorted list of distinct seeds (at most
    `most`; errors name `option`)."""
    seeds: set[int] = set()
    for part in (p.strip() for p in str(text).split(",")):
        span = _RANGE.match(part)
        if span:
            low, high = int(span.group(1)), int(span.group(2))
            if high < low:
                raise MasError(f"{option}: range '{part}' runs backwards; write {high}-{low}")
            if high - low >= most:
                raise MasError(f"{option}: at most {most} seeds, '{part}' has {high - low + 1}")
            seeds.update(range(low, high + 1))
        elif part.isdigit():
            seeds.add(int(part))
        else:
            raise MasError(f"{option}: expected seeds like 0-4 or 0,3,7, got '{part[:40]}'")
        if len(seeds) > most:
            raise MasError(f"{option}: at most {most} seeds")
    if not seeds:
        raise MasError(f"{option}: no seeds given")
    if max(seeds) > MAX_SEED:
        raise MasError(f"{option}: a seed may be at most {MAX_SEED}")
    return sorted(seeds)


def seed_dir(root: Path, seed: int) -> Path:
    """The run directory of one seed of an experiment."""
    return Path(root) / f"{SEED_PREFIX}{seed}"


def is_experiment(path: Path) -> bool:
    """Whether `path` is an experiment directory (it has `experiment.json`)."""
    return (Path(path) / EXPERIMENT_FILE).is_file()


def write_experiment(root: Path, scenario: dict[str, Any], seeds: list[int], episodes: int,
                     source: str, overrides: list[str]) -> Path:
    """Create the experiment directory and its `experiment.json`; StoreError if one is there."""
    root = Path(root)
    path = root / EXPERIMENT_FILE
    if path.exists():
        raise StoreError(f"{root}: already holds an experiment; finish it with 'mas run --resume {root}' or choose another --out")
    try:
        root.mkdir(parents=True, exist_ok=True)
        config = {
            "kind": "experiment", "version": 1, "source": source, "overrides": list(overrides),
            "seeds": list(seeds), "episodes": episodes, "runs": {str(s): seed_dir(Path("."), s).name for s in seeds},
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"), "scenario": scenario,
        }
        path.write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    except OSError as exc:
        raise StoreError(f"{root}: cannot write the experiment ({exc.strerror or exc})") from None
    return path


def read_experiment(root: Path) -> dict[str, Any]:
    """The configuration of an experiment directory; StoreError naming the problem."""
    path = Path(root) / EXPERIMENT_FILE
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise StoreError(f"{root}: not an experiment directory (no {EXPERIMENT_FILE})") from None
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise StoreError(f"{path}: unreadable ({exc.__class__.__name__})") from None
    if not isinstance(config, dict) or not isinstance(config.get("seeds"), list) or not isinstance(config.get("scenario"), dict):
        raise StoreError(f"{path}: not an experiment file (needs 'seeds' and 'scenario')")
    return config
