"""fastmlp.cli: the `fastmlp` command (Click). Parsing and printing only."""
