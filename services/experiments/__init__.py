"""Experiments: randomized holdouts of email campaigns and journeys, and their lift."""
