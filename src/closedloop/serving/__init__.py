"""Model serving: endpoints, the live model holder, routing to human review, batch transform."""
