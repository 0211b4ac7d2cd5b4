"""Policies: scripted baselines, LLM policies, RL learners."""
