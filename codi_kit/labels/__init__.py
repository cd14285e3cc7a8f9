"""Agent-quality labels beside the labeling contract: the student, prompts and the LLM teachers' helpers."""
