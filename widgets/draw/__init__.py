"""Plain Rich renderables for the panes, drawn line by line and tested without an app."""
