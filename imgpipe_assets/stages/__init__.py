"""The four stages from photo to shop, as plain functions: cut-out, background, composite,
publish.

Each takes one partition key and the resources it needs (plain objects: a test hands it
fakes) and returns an ``Outcome``: status, storage key, cost, preview and facts, or raises
a named error. Nothing here knows Dagster; the assets call these and turn outcomes into
materialisations.
"""
