"""Analysis of run stores: DataFrames, metrics (pure functions), figures and reports.

    from mas.analysis.load import load_run, load_result
    from mas.analysis.summary import summarize

    run = load_run("runs/commons-a")          # DataFrames: episodes, steps, states, messages, decisions, training
    summary = summarize(run)                  # overview metrics, per-agent table, named tables

Modules: `load` (runs and training runs), `tournaments` (tournament results), `training`
(curve files), `metrics` (cooperation, welfare, equality, reliability), `game_metrics`
(optimum, commons, bargaining, signalling), `communication` (talk statistics, mutual
information, promise keeping), `summary` (the standard tables), `plots` (drawing only),
`figures` (the standard figure set) and `report` (self-contained HTML). Only `plots`,
`figures` and `report` import matplotlib or Jinja2.
"""
