"""The event side of the daemon: what happens to a window's outcome after inference."""
