"""Training: the learner registry, the `mas train` loop, run directories, curves and checkpoints.

- `registry`: every algorithm, registered once (the CLI's `--algo` choices come from it).
- `learners`: who learns in a scenario, and with which hyperparameters.
- `run`: `train()`, the entry point, and the loop of the numeric learners (IQL, MAPPO/IPPO).
- `llm`: the loop of `llm-ppo` / `llm-mappo` (LLM agents, LoRA adapters).
- `curves`, `rundir`, `checkpoint`: what a training run writes.

Importing this package imports nothing heavy; `run`, `llm` and `checkpoint` need torch.
"""
