"""API docs learned from traffic, on the control side: storing what the gateways learned, the OpenAPI document
built from it, its drift from the route's declared document, and how two documents compare."""
