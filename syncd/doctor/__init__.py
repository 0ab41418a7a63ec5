"""`syncd doctor`: every check and its rendering; imports any part but the CLI, and prints nothing."""
