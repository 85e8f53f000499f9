"""Service assurance: alarms correlated by topology into incidents, routed to the responsible operator."""
