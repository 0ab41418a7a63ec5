"""Notifications: pure events, the sinks, the `notify` settings block; imports only the bottom."""
