"""Currents: event envelopes, batching, the retry policy and the delivery worker."""
