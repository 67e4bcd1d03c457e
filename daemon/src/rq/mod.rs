//! RQ jobs written straight into Redis, readable by stock `rq worker` 1.15 – 3.0.
