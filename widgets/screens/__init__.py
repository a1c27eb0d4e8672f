"""The app's screens: the debugger itself and the small dialogs it opens."""
