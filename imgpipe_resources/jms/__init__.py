"""3JMS, the retailer's inventory system: signed webhooks in, a polling client, the payload map."""
