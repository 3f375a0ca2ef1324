"""AuthZ plugin enforcing the openEuler container-management guide on every daemon API call."""
