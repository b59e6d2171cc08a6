"""Channel adapters: SMTP and HTTP webhooks behind the transports of `messaging.ports`."""
