"""The core: flows, loops, tasks, workforce, keys and events, with no web or CLI inside."""
