"""An example mas plugin (see the README's "Plugins" section)."""
