"""`syncd run`: schedule, watching, sd_notify around the engine; imports sync, notify, the bottom."""
