"""LLM-policy agents: backends (local transformers, OpenAI-compatible HTTP, replay), prompts, the policy."""
