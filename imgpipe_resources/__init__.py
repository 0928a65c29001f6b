"""imgpipe's resources: typed clients for every external system, each with a local twin.

Storage (local files / S3), segmentation (offline model / Replicate), publishing (dry-run
outbox / Shopify) and the jobs database. Environments choose implementations in
``imgpipe_assets.definitions``; nothing above the resources branches on them.
"""
