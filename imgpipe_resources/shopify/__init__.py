"""Shopify's Admin GraphQL API: the documents imgpipe sends, and the client that sends them."""
