"""The app's panes: each draws one part of the latest session snapshot."""
