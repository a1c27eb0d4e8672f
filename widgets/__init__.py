"""The Textual front end of stepper: panes over a stepping session.

`widgets.draw` holds the plain Rich renderables (heatmaps, bars, chips, the
cumulative strip) that the panes show; they are tested without an app. The engine
package `stepper` never imports this one.
"""
