"""Sections, prompts and the parallel summarization engine."""
