"""A bindings package: every module inside it is imported at start-up."""
