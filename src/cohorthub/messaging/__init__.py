"""Campaigns and Canvases: audiences, Liquid rendering, the send ledger, the scheduler, channels."""
