"""imgpipe's Dagster code location: assets, checks, sensors and the definitions that join them.

``imgpipe_assets.imaging`` holds the pure imaging core and imports nothing from Dagster.
"""
