"""The background service (systemd unit, launchd agent): files, install, status; imports the bottom."""
