"""The command-line front-end: parse → call one method of the core (a KnowledgeBase or the Library) → render."""
