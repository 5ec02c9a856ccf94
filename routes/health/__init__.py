"""Active health checks of backends: models, the prober, the state machine, the operator's override and admin."""
