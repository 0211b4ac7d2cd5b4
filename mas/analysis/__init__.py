"""Analysis of run stores: DataFrames, metrics (pure functions) and figures."""
