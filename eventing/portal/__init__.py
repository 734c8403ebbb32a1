"""The owners' portal: server-rendered pages where an owner manages its own subscriptions."""
