"""One router per resource: chat, sessions, system."""
