"""The command line: the only part that prints, where errors become exit codes; imports any part."""
