"""Built-in plugins: sources, region miners, box cleaners, writers and training components."""
