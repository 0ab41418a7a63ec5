"""A cycle's pieces: targets, plans, state, locks, the only user-file writes; imports jsonc, providers."""
