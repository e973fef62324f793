"""The chat UI's helpers: rendering (escaped HTML, Markdown export) and background answers per conversation."""
