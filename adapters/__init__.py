"""Channels: each turns platform events into InboundMessage and replies into platform calls."""
