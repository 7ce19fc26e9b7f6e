"""What operators need: metrics, the operations page and alarms (IPNs gone quiet, a job that keeps failing)."""
