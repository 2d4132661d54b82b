"""pytest plugin: openai_server fixture."""
