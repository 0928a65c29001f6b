"""The four assets: mask, backgrounds, composite, shopify_media."""
