"""syncd keeps the model lists in OpenCode's config files true to what each provider serves."""

__version__ = "0.1.0"
