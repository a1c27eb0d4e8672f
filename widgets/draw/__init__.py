"""Plain Rich renderables for the panes, drawn line by line, tested without an app."""
