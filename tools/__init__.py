"""Developer tools beside the integration: the charger simulator and the standalone runner.

Not part of the Home Assistant package that HACS installs.
"""
