"""Sunflower (向阳花): the console command that wires features, models and serving."""
