"""One module per group of commands; each command is a typed function whose docstring is its help."""
