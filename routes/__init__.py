"""The control plane: route configuration, its validation, audit trail, admin, API and commands."""
