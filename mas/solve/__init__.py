"""Exact game-theoretic and dynamic-programming baselines (`mas solve`).

- `equilibria`: pure and mixed Nash equilibria of a stage game.
- `repeated`: the best response to a fixed strategy in a repeated game, by value
  iteration over the strategy's memory states.
- `mdp`: value iteration for a single-agent tabular MDP (the one-agent maze).
- `baselines`: all of them for a scenario, as plain data and as text.
"""
