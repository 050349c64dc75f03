"""The commands, one module per group: each parses its arguments, calls one method of the
core (a KnowledgeBase or the Library) and renders the result."""
