"""Discovery: what each provider serves (the only HTTP), normalised; imports jsonc, settings, the bottom."""
