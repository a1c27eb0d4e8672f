"""The built-in scenarios, shipped as package data: one TOML file per lesson.

`stepper.scenario.builtin_scenarios()` lists them; `load_scenario("story")` reads one.
"""
