"""Game families, one module each; the module docstring documents the game."""
