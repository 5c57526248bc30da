"""The tool-call pipeline: platform-neutral, knows no HTTP and no voice platform.

A platform adapter (the Vapi webhook today) turns what arrives into a `ToolRequest`; the
pipeline resolves whose calendar it is, validates arguments before touching credentials, runs
each tool under the per-call budget and the per-user cap, answers each tool call id once, and
returns `ToolOutcome`s for the adapter to render.
"""
