"""Dispatch per hub: the pool of orders and free riders, the problems it builds, and re-plans."""
