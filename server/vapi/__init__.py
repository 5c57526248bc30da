"""Vapi: the webhook adapter (authenticate → parse → pipeline → render) and tool definitions."""
