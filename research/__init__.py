"""Research studies: measurements of quality on simulated districts, not part of the service.

Contract: modules here may import every layer and the simulator (they compare
models with the simulator's truth); nothing in ``features``, ``models``,
``serving`` or ``sunflower`` imports them (import-linter). Each module is run as
``python -m research.<name>`` and prints its figures; ``docs/models.md`` quotes
them. They are type-checked like the packages.
"""
