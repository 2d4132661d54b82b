"""Verdict Console: generate, run and verify LLM-written projects, and explain their failures."""

__version__ = "0.1.0"
