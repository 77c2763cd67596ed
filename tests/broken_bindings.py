"""A bindings module that fails to import; discovery must raise, not swallow it."""

raise ImportError("broken_bindings cannot be imported on purpose")
