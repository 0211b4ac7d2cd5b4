"""Reinforcement-learning agents: independent Q-learning (tabular and DQN) and MAPPO/IPPO.

`config` (hyperparameters and scenario specs) imports no torch; the learners, the
checkpoint policy and the PettingZoo adapter do. Install them with `pip install 'mas-sim[rl]'`.
"""
