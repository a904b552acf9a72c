"""The plugin host protocol, a small host, the terminal chat and OpenClaw setup."""
